// Calls that natively never fail with EINTR, made while SIGCHLD (caught,
// without SA_RESTART) keeps arriving: each child ends at once, and the
// parent stats, closes pipe ends and forks. Prints how many calls failed
// with EINTR, which must be none under any profile.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap(int signo) {
    (void)signo;
    int saved = errno, status;
    while (waitpid(-1, &status, WNOHANG) > 0) {
    }
    errno = saved;
}

static void count(long *interrupted, long *failed) {
    if (errno == EINTR)
        (*interrupted)++;
    else
        (*failed)++;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap;
    sigaction(SIGCHLD, &sa, NULL);
    long interrupted = 0, failed = 0;
    for (int i = 0; i < rounds; i++) {
        int p[2];
        if (pipe(p) != 0) {
            failed++;
            continue;
        }
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        if (child < 0)
            count(&interrupted, &failed);
        struct stat st;
        for (int k = 0; k < 3; k++)
            if (stat("/", &st) != 0)
                count(&interrupted, &failed);
        for (int k = 0; k < 2; k++)
            if (close(p[k]) != 0)
                count(&interrupted, &failed);
    }
    printf("interrupted %ld failed %ld\n", interrupted, failed);
    return 0;
}
