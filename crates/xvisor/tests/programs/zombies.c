/* Forks N children (argv[1]) that wait to be killed, kills each, and only
 * then reaps them all: N zombies pile up before any is collected. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    pid_t *children = calloc(n, sizeof *children);
    if (!children)
        return 2;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            for (;;)
                pause();
        }
        children[i] = pid;
    }
    for (int i = 0; i < n; i++)
        kill(children[i], SIGKILL);
    int reaped = 0;
    for (int i = 0; i < n; i++) {
        int status;
        if (waitpid(children[i], &status, 0) == children[i] && WIFSIGNALED(status))
            reaped++;
    }
    printf("%d\n", reaped);
    return reaped == n ? 0 : 1;
}
