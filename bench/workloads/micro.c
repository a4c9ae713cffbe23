/* Micro-benchmarks of system calls, timed inside the process so that a
 * sandbox's start-up cost is excluded. Usage: micro NAME ITERATIONS
 * Prints one line: "<name> <iterations> <nanoseconds per operation>".
 *
 * After a warm-up (a tenth of the iterations, at most 1,000: page faults,
 * caches, the sandbox's first look at each call), the iterations run in 9
 * batches and the median batch's time per operation is printed: one
 * interrupt or a neighbour's burst spoils a batch, not the figure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCHES 9

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static char buf[4096];

/* the raw system call: no C-library caching */
static void op_getppid(long n) {
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
}

/* access("/", F_OK): a call xvisor traps in every profile (it carries a
 * path), with almost no kernel work: the trapped-call probe. */
static void op_access(long n) {
    for (long i = 0; i < n; i++)
        if (syscall(SYS_access, "/", F_OK)) die("access");
}

static void op_open_close(long n) {
    for (long i = 0; i < n; i++) {
        int fd = open("/etc/passwd", O_RDONLY);
        if (fd < 0) die("open");
        close(fd);
    }
}

static void op_stat(long n) {
    struct stat st;
    for (long i = 0; i < n; i++)
        if (stat("/etc/passwd", &st)) die("stat");
}

static int zero_fd = -1;
static void op_read_4k(long n) {
    for (long i = 0; i < n; i++)
        if (read(zero_fd, buf, sizeof buf) != sizeof buf) die("read");
}

static int to_child[2], from_child[2];
static pid_t pingpong_partner;
static void op_pipe_pingpong(long n) {
    for (long i = 0; i < n; i++) {
        if (write(to_child[1], "x", 1) != 1) die("write");
        if (read(from_child[0], buf, 1) != 1) die("read");
    }
}

static void op_fork_exec_wait(long n) {
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) die("child");
    }
}

/* n children forked at once, each waiting on a pipe, then released and
 * reaped together: a burst of exits (a test runner's, a build's). */
static void op_fork_burst_reap(long n) {
    int release[2];
    if (pipe(release) != 0) die("pipe");
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            char c;
            close(release[1]);
            ssize_t got = read(release[0], &c, 1);
            _exit(got == 0 ? 0 : 1);
        }
    }
    close(release[0]);
    close(release[1]);
    for (long i = 0; i < n; i++) {
        int status;
        if (wait(&status) < 0) die("wait");
        if (!WIFEXITED(status) || WEXITSTATUS(status)) die("child");
    }
}

static void *thread_body(void *arg) { return arg; }
static void op_thread_create_join(long n) {
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_body, NULL)) die("pthread_create");
        pthread_join(t, NULL);
    }
}

static void op_mmap_munmap(long n) {
    for (long i = 0; i < n; i++) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) die("mmap");
        munmap(p, 4096);
    }
}

static void *wait_for_child(void *arg) {
    int status;
    waitpid(*(pid_t *)arg, &status, 0);
    return NULL;
}

/* The trapped-call probe while another thread of the process is blocked
 * in wait4 for a child that does not end (a call xvisor parks): parking
 * must not slow the others down. */
static pid_t parked_child;
static pthread_t parked_waiter;
static void start_parked_wait(void) {
    parked_child = fork();
    if (parked_child < 0) die("fork");
    if (parked_child == 0) {
        pause();
        _exit(0);
    }
    if (pthread_create(&parked_waiter, NULL, wait_for_child, &parked_child)) die("pthread_create");
    struct timespec settle = {0, 20000000};
    nanosleep(&settle, NULL);
}

static void start_pingpong_partner(void) {
    if (pipe(to_child) || pipe(from_child)) die("pipe");
    pingpong_partner = fork();
    if (pingpong_partner < 0) die("fork");
    if (pingpong_partner == 0) {
        /* echoes until the benchmark closes its end */
        close(to_child[1]);
        close(from_child[0]);
        while (read(to_child[0], buf, 1) == 1)
            if (write(from_child[1], buf, 1) != 1) _exit(1);
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
}

/* connect_close: a TCP connection to a listener of this program on
 * 127.0.0.1:18080 (accepted and closed by a thread), then closed with a
 * reset (no TIME_WAIT to run out of ports): what a policy's [net].connect
 * rule costs per connection. */
static int connect_listener = -1;
static void *drain_listener(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(connect_listener, NULL, NULL);
        if (c >= 0) close(c);
    }
    return NULL;
}
static void start_connect_listener(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(18080)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    connect_listener = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(connect_listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(connect_listener, (struct sockaddr *)&a, sizeof a) || listen(connect_listener, 4096)) die("listen");
    pthread_t t;
    if (pthread_create(&t, NULL, drain_listener, NULL)) die("pthread_create");
}
static void op_connect_close(long n) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(18080)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct linger reset = {1, 0};
    for (long i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) die("socket");
        setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
        close(s);
    }
}

/* udp_*: datagrams of 64 bytes to a receiver of this program on the
 * instance's loopback (127.0.0.1:18053), drained by a thread: sendto with
 * the address, send on a connected socket, sendmsg with msg_name; and
 * dns_roundtrip, a query sent with sendto and the answer read back from an
 * echoing thread (127.0.0.1:18054), as a stub resolver does. */
static int udp_out = -1;
static struct sockaddr_in udp_to = {.sin_family = AF_INET};
static void *udp_drain(void *arg) {
    int r = (int)(long)arg;
    char in[2048];
    for (;;) recv(r, in, sizeof in, 0);
    return NULL;
}
static void *udp_echo(void *arg) {
    int r = (int)(long)arg;
    char in[2048];
    struct sockaddr_in from;
    for (;;) {
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(r, in, sizeof in, 0, (struct sockaddr *)&from, &len);
        if (n > 0) sendto(r, in, n, 0, (struct sockaddr *)&from, len);
    }
    return NULL;
}
static void start_udp(int port, void *(*serve)(void *), int connected) {
    udp_to.sin_port = htons(port);
    udp_to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (bind(r, (struct sockaddr *)&udp_to, sizeof udp_to)) die("bind");
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(long)r)) die("pthread_create");
    udp_out = socket(AF_INET, SOCK_DGRAM, 0);
    if (connected && connect(udp_out, (struct sockaddr *)&udp_to, sizeof udp_to)) die("connect");
}
static void op_udp_sendto(long n) {
    for (long i = 0; i < n; i++)
        if (sendto(udp_out, buf, 64, 0, (struct sockaddr *)&udp_to, sizeof udp_to) != 64) die("sendto");
}
static void op_udp_send_connected(long n) {
    for (long i = 0; i < n; i++)
        if (send(udp_out, buf, 64, 0) != 64) die("send");
}
static void op_udp_sendmsg(long n) {
    struct iovec iov = {buf, 64};
    struct msghdr m = {.msg_name = &udp_to, .msg_namelen = sizeof udp_to, .msg_iov = &iov, .msg_iovlen = 1};
    for (long i = 0; i < n; i++)
        if (sendmsg(udp_out, &m, 0) != 64) die("sendmsg");
}
static void op_dns_roundtrip(long n) {
    char answer[512];
    for (long i = 0; i < n; i++) {
        if (sendto(udp_out, buf, 40, 0, (struct sockaddr *)&udp_to, sizeof udp_to) != 40) die("sendto");
        if (recv(udp_out, answer, sizeof answer, 0) != 40) die("recv");
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: micro NAME ITERATIONS\n");
        return 2;
    }
    const char *name = argv[1];
    long n = atol(argv[2]);
    if (n < BATCHES) n = BATCHES;
    void (*op)(long) = NULL;
    if (!strcmp(name, "getppid")) op = op_getppid;
    else if (!strcmp(name, "trapped_probe")) op = op_access;
    else if (!strcmp(name, "trapped_while_parked")) {
        start_parked_wait();
        op = op_access;
    } else if (!strcmp(name, "open_close")) op = op_open_close;
    else if (!strcmp(name, "stat")) op = op_stat;
    else if (!strcmp(name, "read_4k")) {
        zero_fd = open("/dev/zero", O_RDONLY);
        if (zero_fd < 0) die("open");
        op = op_read_4k;
    } else if (!strcmp(name, "pipe_pingpong")) {
        start_pingpong_partner();
        op = op_pipe_pingpong;
    } else if (!strcmp(name, "fork_exec_wait")) op = op_fork_exec_wait;
    else if (!strcmp(name, "fork_burst_reap")) op = op_fork_burst_reap;
    else if (!strcmp(name, "thread_create_join")) op = op_thread_create_join;
    else if (!strcmp(name, "mmap_munmap")) op = op_mmap_munmap;
    else if (!strcmp(name, "connect_close")) {
        start_connect_listener();
        op = op_connect_close;
    } else if (!strcmp(name, "udp_sendto")) {
        start_udp(18053, udp_drain, 0);
        op = op_udp_sendto;
    } else if (!strcmp(name, "udp_send_connected")) {
        start_udp(18053, udp_drain, 1);
        op = op_udp_send_connected;
    } else if (!strcmp(name, "udp_sendmsg")) {
        start_udp(18053, udp_drain, 0);
        op = op_udp_sendmsg;
    } else if (!strcmp(name, "dns_roundtrip")) {
        start_udp(18054, udp_echo, 0);
        op = op_dns_roundtrip;
    }
    else {
        fprintf(stderr, "unknown benchmark %s\n", name);
        return 2;
    }
    long warm_up = n / 10 < 1000 ? n / 10 : 1000;
    op(warm_up);
    double per_op[BATCHES];
    long batch = n / BATCHES;
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_ns();
        op(batch);
        per_op[b] = (now_ns() - t0) / batch;
    }
    qsort(per_op, BATCHES, sizeof per_op[0], by_value);
    if (parked_child > 0) {
        kill(parked_child, SIGKILL);
        pthread_join(parked_waiter, NULL);
    }
    if (pingpong_partner > 0) {
        close(to_child[1]);
        waitpid(pingpong_partner, NULL, 0);
    }
    printf("%s %ld %.1f\n", name, batch * BATCHES, per_op[BATCHES / 2]);
    return 0;
}
