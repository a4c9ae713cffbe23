// The bare seccomp user-notification round trip, without any supervisor
// logic: a guest traps getppid, a serving thread answers CONTINUE. The
// floor under xvisor's trapped-call latency (docs/design/scheduler.md,
// bench/README.md).
//
//   cc -O2 -pthread bench/workloads/bare_notify.c -o /tmp/bare_notify
//   /tmp/bare_notify recv|poll [sync|-] [proc [setsid]]
//
// recv: the serving thread blocks in RECV; poll: it polls, then receives.
// sync: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP. proc: guest and server are
// separate processes (as in xvisor); otherwise two threads of one process.
// setsid: the guest process leads a session of its own (another scheduling
// group where the kernel groups by session: docs/design/scheduler.md,
// "One scheduling group").
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static int listener = -1;
static int use_poll;

static void *serve(void *arg) {
    (void)arg;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        if (use_poll) {
            struct pollfd p = {.fd = listener, .events = POLLIN};
            if (poll(&p, 1, -1) < 0) continue;
            if (p.revents & (POLLHUP | POLLERR)) return NULL;
        }
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}


/* Median over 9 rounds of n/9 trapped getppid calls, after a warm-up. */
static double median_call_ns(int n) {
    for (int i = 0; i < 1000; i++) getppid();
    double samples[9];
    for (int r = 0; r < 9; r++) {
        double a = now();
        for (int i = 0; i < n / 9; i++) getppid();
        samples[r] = (now() - a) / (n / 9) * 1e9;
    }
    for (int i = 0; i < 9; i++)
        for (int j = i + 1; j < 9; j++)
            if (samples[j] < samples[i]) { double x = samples[i]; samples[i] = samples[j]; samples[j] = x; }
    return samples[4];
}

static void send_fd(int sock, int fd) {
    char c = 0; struct iovec io = {.iov_base = &c, .iov_len = 1};
    char buf[CMSG_SPACE(sizeof(int))]; memset(buf, 0, sizeof buf);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    sendmsg(sock, &m, 0);
}
static int recv_fd(int sock) {
    char c; struct iovec io = {.iov_base = &c, .iov_len = 1};
    char buf[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    if (recvmsg(sock, &m, 0) <= 0) return -1;
    int fd; memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd); return fd;
}
int main(int argc, char **argv) {
    use_poll = argc > 1 && strcmp(argv[1], "poll") == 0;
    int sync_wake = argc > 2 && strcmp(argv[2], "sync") == 0;
    int n = 100000;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = f};
    int cross = argc > 3 && strcmp(argv[3], "proc") == 0;
    if (cross) {
        int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        pid_t child = fork();
        if (child == 0) {
            if (argc > 4 && strcmp(argv[4], "setsid") == 0 && setsid() < 0) {
                perror("setsid");
                _exit(1);
            }
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            int l = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
            send_fd(sv[1], l); close(l);
            char go; read(sv[1], &go, 1);
            printf("cross-process %s%s: median %.0f ns per trapped getppid\n", use_poll ? "poll+recv" : "recv", sync_wake ? " sync" : "", median_call_ns(n));
            fflush(stdout); _exit(0);
        }
        listener = recv_fd(sv[0]);
        if (sync_wake) ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
        pthread_t t; pthread_create(&t, NULL, serve, NULL);
        write(sv[0], "g", 1);
        waitpid(child, NULL, 0);
        return 0;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) { perror("seccomp"); return 1; }
    if (sync_wake && ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0) < 0)
        perror("SET_FLAGS");
    // The serving thread inherits the filter (created after it) but makes
    // no getppid.
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    printf("%s%s: median %.0f ns per trapped getppid\n", use_poll ? "poll+recv" : "recv", sync_wake ? " sync" : "", median_call_ns(n));
    return 0;
}
