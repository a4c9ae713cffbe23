/* Calls an instance must refuse. For each: the errno (or the kill) the
 * guest sees, then an ordinary call to show the supervisor still serves.
 * Usage: hostile NAME [ARG]; prints "NAME: RESULT" and, if it survives,
 * "still served: <first line of /etc/hostname>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static const char *name_of(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case ESRCH: return "ESRCH";
    default: return strerror(e);
    }
}

static void report(const char *what, long ret) {
    printf("%s: %s\n", what, ret < 0 ? name_of(errno) : "OK");
    fflush(stdout);
}

static void still_served(void) {
    char buf[128] = {0};
    int fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) buf[strcspn(buf, "\n")] = 0;
        close(fd);
    }
    printf("still served: %s\n", buf);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *t = argv[1];
    long r;
    errno = 0;
    if (!strcmp(t, "int80")) {
        /* i386 getpid through the 32-bit entry: another ABI, killed. */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
        printf("int80: survived (%ld)\n", ret);
    } else if (!strcmp(t, "x32")) {
        r = syscall(0x40000000 | 39);
        printf("x32: survived (%ld)\n", r);
    } else if (!strcmp(t, "io_uring_setup")) {
        char params[120] = {0};
        report(t, syscall(425, 4, params));
    } else if (!strcmp(t, "bpf")) {
        report(t, syscall(321, 0, NULL, 0));
    } else if (!strcmp(t, "userfaultfd")) {
        report(t, syscall(323, 0));
    } else if (!strcmp(t, "open_by_handle_at")) {
        char handle[64] = {0};
        report(t, syscall(304, AT_FDCWD, handle, O_RDONLY));
    } else if (!strcmp(t, "unshare_user")) {
        report(t, unshare(CLONE_NEWUSER));
    } else if (!strcmp(t, "clone_user")) {
        report(t, syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    } else if (!strcmp(t, "keyctl")) {
        report(t, syscall(250, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
    } else if (!strcmp(t, "tiocsti")) {
        char c = 'x';
        report(t, ioctl(0, TIOCSTI, &c));
    } else if (!strcmp(t, "ptrace_attach")) {
        report(t, ptrace(PTRACE_ATTACH, argc > 2 ? atoi(argv[2]) : 1, 0, 0));
    } else if (!strcmp(t, "vsock")) {
        report(t, socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
    } else if (!strcmp(t, "packet")) {
        report(t, socket(17 /* AF_PACKET */, SOCK_RAW, 0));
    } else if (!strcmp(t, "raw")) {
        report(t, socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1 /* ICMP */));
    } else if (!strcmp(t, "raw6")) {
        report(t, socket(AF_INET6, SOCK_RAW, 58 /* ICMPV6 */));
    } else if (!strcmp(t, "inet_packet")) {
        report(t, socket(AF_INET, 10 /* SOCK_PACKET */, 0x0300 /* htons(ETH_P_ALL) */));
    } else if (!strcmp(t, "personality")) {
        report(t, syscall(135, 0x0040000 /* ADDR_NO_RANDOMIZE */));
    } else if (!strcmp(t, "clone3")) {
        char args[88] = {0};
        report(t, syscall(435, args, sizeof args));
    } else {
        fprintf(stderr, "unknown test %s\n", t);
        return 2;
    }
    still_served();
    return 0;
}
