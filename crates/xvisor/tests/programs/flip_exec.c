/* Executes, N times in a fresh child, a path that another thread of the
 * child keeps flipping between two programs of the same name length:
 *
 *   flip_exec PATH_A PATH_B N ARG
 *
 * Each program is run as `PATH ARG`. Prints "exited E killed K" (children
 * that ended by exiting, and by SIGKILL). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char paths[2][256];
static char path[256];

static void *flipper(void *arg) {
    (void)arg;
    volatile char *p = path;
    for (;;)
        for (int which = 1; which >= 0; which--)
            for (size_t i = 0; paths[which][i]; i++)
                p[i] = paths[which][i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5 || strlen(argv[1]) != strlen(argv[2]) || strlen(argv[1]) >= sizeof path) {
        fprintf(stderr, "usage: flip_exec PATH_A PATH_B N ARG (paths of one length)\n");
        return 2;
    }
    strcpy(paths[0], argv[1]);
    strcpy(paths[1], argv[2]);
    strcpy(path, argv[1]);
    long n = atol(argv[3]), exited = 0, killed = 0;
    for (long i = 0; i < n; i++) {
        pid_t child = fork();
        if (child == 0) {
            pthread_t t;
            pthread_create(&t, NULL, flipper, NULL);
            char *args[] = {path, argv[4], NULL};
            execv(path, args);
            _exit(127);
        }
        int status;
        if (child < 0 || waitpid(child, &status, 0) < 0) {
            perror("fork/wait");
            return 2;
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else if (WIFEXITED(status))
            exited++;
    }
    fflush(stdout);
    printf("exited %ld killed %ld\n", exited, killed);
    return 0;
}
