/* Guest programs for the process monitor and scheduler tests.
 *
 *   tasks tree      10 children with 5 threads each, in different states:
 *                   per child one thread that only computes (no system
 *                   call at all), two that sleep, two blocked reading a
 *                   pipe; the child's main thread waits on a pipe; children
 *                   0 and 1 are stopped. The parent then waits for them
 *                   (wait4, parked in the supervisor). SIGUSR1 (SA_RESTART)
 *                   releases the children; once all are reaped it prints
 *                   "reaped N" and waits for SIGTERM, which ends it with 0.
 *   tasks eintr     a wait4 for a sleeping child is interrupted by SIGALRM,
 *   tasks restart   without / with SA_RESTART: prints what wait4 returned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILDREN 10
#define STOPPED 2

static int release_pipe[2];
static pid_t children[CHILDREN];
static volatile sig_atomic_t handled;

static void *compute(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    for (;;)
        x++;
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec t = {1000, 0};
        nanosleep(&t, NULL);
    }
    return NULL;
}

static void *reader(void *arg) {
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR) {
    }
    for (;;)
        pause();
    return NULL;
}

static void child(int ready_fd) {
    static int quiet[2];
    if (pipe(quiet) != 0)
        _exit(90);
    pthread_t t;
    void *(*kinds[5])(void *) = {compute, sleeper, sleeper, reader, reader};
    for (int i = 0; i < 5; i++)
        if (pthread_create(&t, NULL, kinds[i], &quiet[0]) != 0)
            _exit(91);
    if (write(ready_fd, "r", 1) != 1)
        _exit(92);
    char c;
    while (read(release_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
}

static void release(int sig) {
    (void)sig;
    handled = 1;
    close(release_pipe[1]);
    for (int i = 0; i < STOPPED; i++)
        kill(children[i], SIGCONT);
}

static void finish(int sig) {
    (void)sig;
    _exit(0);
}

static int tree(void) {
    int ready[2];
    if (pipe(release_pipe) != 0 || pipe(ready) != 0)
        return 2;
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 3;
        if (pid == 0) {
            close(release_pipe[1]);
            close(ready[0]);
            child(ready[1]);
        }
        children[i] = pid;
    }
    close(release_pipe[0]);
    close(ready[1]);
    for (int n = 0; n < CHILDREN;) {
        char buf[CHILDREN];
        ssize_t got = read(ready[0], buf, sizeof buf);
        if (got <= 0)
            return 4;
        n += (int)got;
    }
    for (int i = 0; i < STOPPED; i++)
        kill(children[i], SIGSTOP);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = release;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = finish;
    sigaction(SIGTERM, &sa, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    int reaped = 0;
    while (reaped < CHILDREN) {
        int status;
        pid_t pid = wait4(-1, &status, 0, NULL);
        if (pid < 0) {
            printf("wait4 failed: %s\n", strerror(errno));
            return 5;
        }
        reaped++;
    }
    printf("reaped %d after the signal: %d\n", reaped, (int)handled);
    fflush(stdout);
    for (;;)
        pause();
}

static void on_alarm(int sig) {
    (void)sig;
    handled = 1;
}

static int interrupted_wait(int restart) {
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec t = {1, 500000000};
        nanosleep(&t, NULL);
        _exit(7);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    int status = 0;
    pid_t got = wait4(pid, &status, 0, NULL);
    if (got < 0) {
        printf("wait4: %s\n", errno == EINTR ? "EINTR" : strerror(errno));
        got = wait4(pid, &status, 0, NULL);
    }
    printf("handler ran: %d\n", (int)handled);
    printf("child: %s %d\n", got == pid ? "exited" : "lost", WEXITSTATUS(status));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 1;
    if (strcmp(argv[1], "tree") == 0)
        return tree();
    if (strcmp(argv[1], "eintr") == 0)
        return interrupted_wait(0);
    if (strcmp(argv[1], "restart") == 0)
        return interrupted_wait(1);
    return 1;
}
