/* Many guest threads making trapped calls at once. Usage: scaling THREADS
 * CALLS. Every thread makes CALLS trapped probes (access("/", F_OK), which
 * xvisor traps in every profile) and times each one. Prints one line:
 * "<threads> <calls per thread> <wall ns per call> <median ns per call>
 * <answered>": wall time over all calls (what the machine sustains), the
 * median latency of a single call, and how many calls succeeded. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long calls;
static float *latencies;
static long answered[4096];
static pthread_barrier_t start;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *worker(void *arg) {
    long id = (long)arg;
    float *mine = latencies + id * calls;
    pthread_barrier_wait(&start);
    for (long i = 0; i < calls; i++) {
        double t0 = now_ns();
        long r = syscall(SYS_access, "/", 0);
        mine[i] = (float)(now_ns() - t0);
        if (r == 0)
            answered[id]++;
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    long threads = atol(argv[1]);
    calls = atol(argv[2]);
    if (threads < 1 || threads > 4096 || calls < 1)
        return 2;
    latencies = malloc(sizeof(float) * threads * calls);
    pthread_t *t = malloc(sizeof(pthread_t) * threads);
    if (!latencies || !t)
        return 3;
    pthread_barrier_init(&start, NULL, threads + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (long i = 0; i < threads; i++)
        if (pthread_create(&t[i], &attr, worker, (void *)i))
            return 4;
    pthread_barrier_wait(&start);
    double t0 = now_ns();
    long total = 0;
    for (long i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += answered[i];
    }
    double wall = now_ns() - t0;
    qsort(latencies, threads * calls, sizeof(float), by_value);
    printf("%ld %ld %.1f %.1f %ld\n", threads, calls, wall / (threads * calls), latencies[threads * calls / 2], total);
    return 0;
}
