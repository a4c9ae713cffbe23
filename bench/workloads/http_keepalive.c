/* Keep-alive HTTP/1.1 client for bench/run's nginx row: one connection to
 * 127.0.0.1:PORT, N sequential GETs of PATH, each answer read in full
 * (headers, then Content-Length bytes of body). Prints the requests per
 * second over the N requests (the connection's set-up excluded). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void fill(int fd) {
    if (have == sizeof buf) {
        fprintf(stderr, "answer too large\n");
        exit(1);
    }
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n < 0) die("read");
    if (n == 0) {
        fprintf(stderr, "the server closed the connection\n");
        exit(1);
    }
    have += (size_t)n;
}

/* Reads one answer; returns its status code. */
static int answer(int fd) {
    char *end;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) fill(fd);
    size_t head = (size_t)(end - buf) + 4;
    int status = atoi(buf + 9);
    size_t body = 0;
    for (char *p = buf; p && p < end;) {
        if (!strncasecmp(p, "Content-Length:", 15)) body = strtoul(p + 15, NULL, 10);
        p = memchr(p, '\n', (size_t)(end - p));
        if (p) p++;
    }
    while (have < head + body) fill(fd);
    memmove(buf, buf + head + body, have - head - body);
    have -= head + body;
    return status;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT PATH REQUESTS\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[3]);
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", argv[2]);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (write(fd, req, (size_t)len) != len) die("write");
        int status = answer(fd);
        if (status != 200) {
            fprintf(stderr, "request %ld: status %d\n", i, status);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)n / s);
    return 0;
}
