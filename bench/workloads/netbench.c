/* bench/run's network rows: one TCP server and its clients, built static so
 * that a container with nothing else in its root can run it.
 *
 *   netbench serve PORT CONNECTIONS
 *       listens on 0.0.0.0:PORT, prints "ready", serves CONNECTIONS
 *       connections one after the other, then exits. A connection's first
 *       byte says what it wants: 'S' sink (read to end of file, answer the
 *       count as 8 bytes), 'R' one request (99 more bytes, answered with
 *       100).
 *   netbench up ADDR PORT MIB
 *       sends MIB MiB to a sink; prints MiB per second, from the connect to
 *       the server's count of what arrived.
 *   netbench rr ADDR PORT N
 *       N times: connect, send a 100-byte request, read the 100-byte answer,
 *       close; prints the median microseconds of one such exchange.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 17];

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

static void read_exact(int fd, char *p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0) die("read");
        if (r == 0) {
            fprintf(stderr, "netbench: connection closed early\n");
            exit(1);
        }
        p += r;
        n -= (size_t)r;
    }
}

static int dial(const char *addr, int port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "netbench: bad address %s\n", addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void serve(int port, long connections) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) die("bind");
    if (listen(fd, 128)) die("listen");
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; i < connections; i++) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) die("accept");
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char what;
        ssize_t r = read(c, &what, 1);
        if (r == 1 && what == 'S') {
            uint64_t total = 0;
            while ((r = read(c, buf, sizeof buf)) > 0) total += (uint64_t)r;
            if (r < 0) die("read");
            write_all(c, (char *)&total, sizeof total);
        } else if (r == 1 && what == 'R') {
            read_exact(c, buf, 99);
            write_all(c, buf, 100);
            /* The client closes first: no TIME_WAIT piles up on the server. */
            while (read(c, buf, 1) > 0) {
            }
        }
        close(c);
    }
    close(fd);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "serve")) {
        serve(atoi(argv[2]), atol(argv[3]));
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "up")) {
        long mib = atol(argv[4]);
        memset(buf, 'x', sizeof buf);
        double t0 = now();
        int fd = dial(argv[2], atoi(argv[3]));
        write_all(fd, "S", 1);
        uint64_t want = (uint64_t)mib << 20, sent = 0;
        while (sent < want) {
            size_t n = want - sent < sizeof buf ? (size_t)(want - sent) : sizeof buf;
            write_all(fd, buf, n);
            sent += n;
        }
        shutdown(fd, SHUT_WR);
        uint64_t got;
        read_exact(fd, (char *)&got, sizeof got);
        double dt = now() - t0;
        close(fd);
        if (got != want) {
            fprintf(stderr, "netbench: the server received %llu of %llu bytes\n", (unsigned long long)got,
                    (unsigned long long)want);
            return 1;
        }
        printf("%.1f\n", (double)mib / dt);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "rr")) {
        long n = atol(argv[4]);
        if (n < 1) n = 1;
        double *t = calloc((size_t)n, sizeof *t);
        if (!t) die("calloc");
        memset(buf, 'r', 100);
        buf[0] = 'R';
        for (long i = 0; i < n; i++) {
            double t0 = now();
            int fd = dial(argv[2], atoi(argv[3]));
            write_all(fd, buf, 100);
            read_exact(fd, buf + 200, 100);
            close(fd);
            t[i] = (now() - t0) * 1e6;
        }
        qsort(t, (size_t)n, sizeof *t, cmp);
        printf("%.1f\n", t[n / 2]);
        return 0;
    }
    fprintf(stderr, "usage: netbench serve PORT CONNECTIONS | up ADDR PORT MIB | rr ADDR PORT N\n");
    return 2;
}
