/* A guest debugger's moves without a debugger: a process forks a child
 * and attaches to it (PTRACE_ATTACH of a running task, PTRACE_SEIZE of a
 * group-stopped one), reads its registers, detaches; then tries pid 1 and
 * a pid that does not exist and a host pid. Prints one line per step, the same natively
 * and in an instance (but for pid 1, which prints what it got). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    default: return strerror(e);
    }
}

static pid_t spinner(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            getppid();
            usleep(1000);
        }
    }
    return pid;
}

int main(int argc, char **argv) {
    int status;
    struct user_regs_struct regs;

    /* A running child, attached. */
    pid_t child = spinner();
    usleep(20000);
    long r = ptrace(PTRACE_ATTACH, child, 0, 0);
    printf("attach running child: %s\n", name(r < 0 ? errno : 0));
    if (r == 0) {
        waitpid(child, &status, __WALL);
        printf("stopped: %d (sig %d)\n", WIFSTOPPED(status), WSTOPSIG(status));
        r = ptrace(PTRACE_GETREGS, child, 0, &regs);
        printf("getregs: %s\n", name(r < 0 ? errno : 0));
        r = ptrace(PTRACE_DETACH, child, 0, 0);
        printf("detach: %s\n", name(r < 0 ? errno : 0));
    }
    /* Attached again after the detach: it is untraced again. */
    usleep(20000);
    r = ptrace(PTRACE_SEIZE, child, 0, 0);
    printf("seize it again: %s\n", name(r < 0 ? errno : 0));
    if (r == 0) {
        r = ptrace(PTRACE_INTERRUPT, child, 0, 0);
        waitpid(child, &status, __WALL);
        printf("interrupted: %d\n", WIFSTOPPED(status));
        ptrace(PTRACE_DETACH, child, 0, 0);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);

    /* A group-stopped child, seized (as strace does). */
    child = spinner();
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    r = ptrace(PTRACE_SEIZE, child, 0, 0);
    printf("seize stopped child: %s\n", name(r < 0 ? errno : 0));
    kill(child, SIGKILL);
    waitpid(child, &status, __WALL);
    printf("killed: %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);

    /* A pid nobody has. */
    r = ptrace(PTRACE_ATTACH, 999999, 0, 0);
    printf("attach missing pid: %s\n", name(r < 0 ? errno : 0));
    if (argc > 1) {
        r = ptrace(PTRACE_ATTACH, 1, 0, 0);
        printf("attach pid 1: %s\n", name(r < 0 ? errno : 0));
        if (r == 0)
            ptrace(PTRACE_DETACH, 1, 0, 0);
    }
    if (argc > 2) {
        /* A host pid (the test's own): outside the instance's pid
         * namespace, it names nothing there. */
        r = ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0);
        printf("attach host pid: %s\n", name(r < 0 ? errno : 0));
    }
    return 0;
}
