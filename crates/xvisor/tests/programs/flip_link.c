/* One thread keeps pointing a symlink at an allowed file, then at a denied
 * one (a new link renamed over it each time), while the main thread opens
 * and reads through the link in a loop: whatever the interleaving, the
 * denied file's bytes must never be read.
 * Usage: flip_link LINK ALLOWED DENIED ITERATIONS MARKER
 * Prints "opened N leaked M" (M: reads that contained MARKER). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *link_path, *targets[2];
static atomic_int stop;

static void *flipper(void *unused) {
    (void)unused;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", link_path);
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        unlink(tmp);
        if (symlink(targets[i & 1], tmp) == 0)
            rename(tmp, link_path);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: flip_link LINK ALLOWED DENIED ITERATIONS MARKER\n");
        return 2;
    }
    link_path = argv[1];
    targets[0] = argv[2];
    targets[1] = argv[3];
    long iterations = atol(argv[4]);
    const char *marker = argv[5];
    unlink(link_path);
    if (symlink(targets[0], link_path) != 0) {
        perror("symlink");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    long opened = 0, leaked = 0;
    char buf[256];
    for (long i = 0; i < iterations; i++) {
        int fd = open(link_path, O_RDONLY);
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
