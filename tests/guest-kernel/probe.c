/* The guest's test programs in one static binary:
 *   probe hog MIB          allocate and touch MIB MiB, 1 MiB at a time
 *   probe forks N          fork N sleeping children, report the first failure
 *   probe spin SECONDS     use SECONDS of CPU time, report CPU and wall time
 *   probe as UID GID CMD…  run CMD as UID:GID with no supplementary groups */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int hog(long mib) {
    for (long i = 0; i < mib; i++) {
        char *chunk = malloc(1 << 20);
        if (!chunk) { printf("hog: no memory after %ld MiB\n", i); return 1; }
        memset(chunk, 1, 1 << 20);
    }
    printf("hog: all %ld MiB\n", mib);
    return 0;
}

static int forks(int n) {
    pid_t kids[4096];
    int made = 0, err = 0;
    if (n > 4096) n = 4096;
    while (made < n) {
        pid_t p = fork();
        if (p < 0) { err = errno; break; }
        if (p == 0) { pause(); _exit(0); }
        kids[made++] = p;
    }
    if (err) printf("forks: fork %d failed: %s\n", made + 1, strerror(err));
    else printf("forks: all %d\n", made);
    for (int i = 0; i < made; i++) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return err ? 2 : 0;
}

static int spin(double seconds) {
    double wall = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    volatile unsigned long x = 0;
    while (now(CLOCK_PROCESS_CPUTIME_ID) - cpu < seconds)
        for (int i = 0; i < 100000; i++) x++;
    wall = now(CLOCK_MONOTONIC) - wall;
    cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    /* Per mille, so that a shell can compare it. */
    printf("spin: cpu %.2f s wall %.2f s share %d\n", cpu, wall, (int)(1000 * cpu / wall));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "hog")) return hog(atol(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "forks")) return forks(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "spin")) return spin(atof(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "as")) {
        uid_t uid = atoi(argv[2]);
        gid_t gid = atoi(argv[3]);
        if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) { perror("probe as"); return 1; }
        execvp(argv[4], argv + 4);
        perror("probe as: exec");
        return 127;
    }
    fprintf(stderr, "usage: probe hog MIB | forks N | spin SECONDS | as UID GID CMD...\n");
    return 2;
}
