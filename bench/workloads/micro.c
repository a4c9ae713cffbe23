/* Micro-benchmarks of system calls, timed inside the process so that a
 * sandbox's start-up cost is excluded. Usage: micro NAME ITERATIONS
 * Prints one line: "<name> <iterations> <nanoseconds per operation>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *thread_body(void *arg) { return arg; }

static void *wait_for_child(void *arg) {
    int status;
    waitpid(*(pid_t *)arg, &status, 0);
    return NULL;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: micro NAME ITERATIONS\n");
        return 2;
    }
    const char *name = argv[1];
    long n = atol(argv[2]);
    char buf[4096];
    double t0 = now_ns();
    if (!strcmp(name, "getppid")) {
        /* the raw system call: no C-library caching */
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
    } else if (!strcmp(name, "trapped_probe")) {
        /* access("/", F_OK): a call xvisor traps in every profile (it carries
         * a path), with almost no kernel work: the trapped-call probe. */
        for (long i = 0; i < n; i++)
            if (syscall(SYS_access, "/", F_OK)) die("access");
    } else if (!strcmp(name, "trapped_while_parked")) {
        /* The trapped-call probe while another thread of the process is
         * blocked in wait4 for a child that does not end (a call xvisor
         * parks): parking must not slow the others down. */
        pid_t child = fork();
        if (child < 0) die("fork");
        if (child == 0) {
            pause();
            _exit(0);
        }
        pthread_t waiter;
        if (pthread_create(&waiter, NULL, wait_for_child, &child)) die("pthread_create");
        struct timespec settle = {0, 20000000};
        nanosleep(&settle, NULL);
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (syscall(SYS_access, "/", F_OK)) die("access");
        double t1 = now_ns();
        kill(child, SIGKILL);
        pthread_join(waiter, NULL);
        printf("%s %ld %.1f\n", name, n, (t1 - t0) / n);
        return 0;
    } else if (!strcmp(name, "open_close")) {
        for (long i = 0; i < n; i++) {
            int fd = open("/etc/passwd", O_RDONLY);
            if (fd < 0) die("open");
            close(fd);
        }
    } else if (!strcmp(name, "stat")) {
        struct stat st;
        for (long i = 0; i < n; i++)
            if (stat("/etc/passwd", &st)) die("stat");
    } else if (!strcmp(name, "read_4k")) {
        int fd = open("/dev/zero", O_RDONLY);
        if (fd < 0) die("open");
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (read(fd, buf, sizeof buf) != sizeof buf) die("read");
    } else if (!strcmp(name, "pipe_pingpong")) {
        int a[2], b[2];
        if (pipe(a) || pipe(b)) die("pipe");
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            for (long i = 0; i < n; i++) {
                if (read(a[0], buf, 1) != 1) _exit(1);
                if (write(b[1], buf, 1) != 1) _exit(1);
            }
            _exit(0);
        }
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(a[1], "x", 1) != 1) die("write");
            if (read(b[0], buf, 1) != 1) die("read");
        }
        waitpid(pid, NULL, 0);
    } else if (!strcmp(name, "fork_exec_wait")) {
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
    } else if (!strcmp(name, "thread_create_join")) {
        for (long i = 0; i < n; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, thread_body, NULL)) die("pthread_create");
            pthread_join(t, NULL);
        }
    } else if (!strcmp(name, "mmap_munmap")) {
        for (long i = 0; i < n; i++) {
            void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) die("mmap");
            munmap(p, 4096);
        }
    } else {
        fprintf(stderr, "unknown benchmark %s\n", name);
        return 2;
    }
    double t1 = now_ns();
    printf("%s %ld %.1f\n", name, n, (t1 - t0) / n);
    return 0;
}
