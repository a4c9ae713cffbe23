// The floor under xvisor's strict profile: runs PROGRAM with *every*
// system call trapped by seccomp user notification and answered CONTINUE
// by a loop of two ioctls, as xvisor's serving thread does under strict,
// but with no namespaces, no decisions, no process monitor. What a
// sandbox that traps every call cannot go below on this machine
// (bench/run reports it beside xvisor-strict; bench/README.md, "What a
// trapped call costs").
//
//   cc -O2 bench/workloads/notify_floor.c -o notify_floor
//   notify_floor PROGRAM [ARGS...]
//
// As in xvisor: guest and server are separate processes in one session
// (one scheduling group), the server blocks in RECV with
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, and it takes the listener from the
// guest with pidfd_getfd (the guest cannot send it: its sendmsg would be
// trapped). Exits with the program's status.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static void die(const char *what) {
    perror(what);
    exit(125);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: notify_floor PROGRAM [ARGS...]\n");
        return 2;
    }
    int report[2];
    if (pipe(report)) die("pipe");
    pid_t guest = fork();
    if (guest < 0) die("fork");
    if (guest == 0) {
        close(report[0]);
        // The listener takes the lowest free descriptor: say which, then
        // install (from then on every call waits for the server).
        int probe = dup(0);
        if (probe < 0) _exit(125);
        close(probe);
        if (write(report[1], &probe, sizeof probe) != sizeof probe) _exit(125);
        close(report[1]);
        struct sock_filter trap_all[] = {
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        };
        struct sock_fprog prog = {.len = 1, .filter = trap_all};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(125);
        if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog) < 0) {
            perror("seccomp");
            _exit(125);
        }
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    close(report[1]);
    int number;
    if (read(report[0], &number, sizeof number) != sizeof number) die("read the listener's number");
    int pidfd = syscall(SYS_pidfd_open, guest, 0);
    if (pidfd < 0) die("pidfd_open");
    // Retried for the instant between the announcement and the install,
    // until the descriptor is the listener (it answers SET_FLAGS).
    int listener = -1;
    for (int tries = 0; listener < 0; tries++) {
        int fd = syscall(SYS_pidfd_getfd, pidfd, number, 0);
        if (fd >= 0 &&
            ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0) == 0) {
            listener = fd;
            break;
        }
        if (fd >= 0) close(fd);
        if (tries > 100000) {
            fprintf(stderr, "notify_floor: no listener from the guest\n");
            kill(guest, SIGKILL);
            return 125;
        }
        sched_yield();
    }
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == EINTR) continue;
            // ENOENT: the caller died, or every task under the filter is
            // gone; only a poll tells which.
            struct pollfd p = {.fd = listener, .events = POLLIN};
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) break;
            continue;
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int status;
    if (waitpid(guest, &status, 0) < 0) die("waitpid");
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
