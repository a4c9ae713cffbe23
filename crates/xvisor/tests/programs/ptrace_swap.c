/* A tracer tries to get around the instance's filter: its tracee calls
 * getppid(); at the syscall-entry stop the tracer turns the call into
 * unshare(CLONE_NEWUSER), which the instance refuses (natively an
 * unprivileged caller may make it). The kernel filters the call after the
 * entry stop, as changed. Then PTRACE_O_SUSPEND_SECCOMP, which would turn
 * the filter off for the tracee. Prints one line each. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif

static const char *name(long r) {
    if (r >= 0) return "ok";
    switch (-r) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    default: return strerror((int)-r);
    }
}

int main(void) {
    int status;
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        syscall(SYS_getppid);
        _exit(0);
    }
    waitpid(child, &status, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    for (;;) {
        ptrace(PTRACE_SYSCALL, child, 0, 0);
        if (waitpid(child, &status, 0) < 0 || !WIFSTOPPED(status)) {
            printf("tracee gone\n");
            return 1;
        }
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, child, 0, &regs);
        if (WSTOPSIG(status) == (SIGTRAP | 0x80) && regs.orig_rax == SYS_getppid) {
            regs.orig_rax = SYS_unshare;
            regs.rdi = CLONE_NEWUSER;
            ptrace(PTRACE_SETREGS, child, 0, &regs);
            ptrace(PTRACE_SYSCALL, child, 0, 0);
            waitpid(child, &status, 0);
            ptrace(PTRACE_GETREGS, child, 0, &regs);
            printf("getppid turned into unshare(CLONE_NEWUSER): %s\n", name((long)regs.rax));
            break;
        }
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);

    /* A tracer asking to suspend its tracee's filter. */
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    long r = ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_SUSPEND_SECCOMP);
    printf("seize with PTRACE_O_SUSPEND_SECCOMP: %s\n", name(r < 0 ? -errno : 0));
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return 0;
}
