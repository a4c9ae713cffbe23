/* One thread flips a path buffer between an allowed and a denied file
 * while the main thread opens and reads through it in a loop: whatever
 * the interleaving, the denied file's bytes must never be read.
 * Usage: flip_open ALLOWED DENIED ITERATIONS MARKER
 * Prints "opened N leaked M" (M: reads that contained MARKER). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[4096];
static const char *paths[2];
static atomic_int stop;

static void *flipper(void *unused) {
    (void)unused;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        /* Byte by byte: the opener also sees torn mixtures of both. */
        const char *p = paths[i & 1];
        size_t n = strlen(p) + 1;
        for (size_t k = 0; k < n; k++)
            ((volatile char *)path)[k] = p[k];
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: flip_open ALLOWED DENIED ITERATIONS MARKER\n");
        return 2;
    }
    paths[0] = argv[1];
    paths[1] = argv[2];
    long iterations = atol(argv[3]);
    const char *marker = argv[4];
    strcpy(path, argv[1]);
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    long opened = 0, leaked = 0;
    char buf[256];
    for (long i = 0; i < iterations; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        opened++;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, marker))
                leaked++;
        }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("opened %ld leaked %ld\n", opened, leaked);
    return 0;
}
