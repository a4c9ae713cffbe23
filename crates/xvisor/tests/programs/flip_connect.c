/* Connects in a loop while another thread keeps changing what the call
 * names, and counts the connections that reached the denied listener.
 *
 *   flip_connect tcp  ALLOWED_PORT DENIED_PORT N   (127.0.0.1; the port in
 *                                                  the address buffer flips)
 *   flip_connect unix ALLOWED_PATH DENIED_PATH N   (the path flips; both paths
 *                                                  the same length)
 *   flip_connect fd   ALLOWED_PORT DENIED_PORT N   (connects descriptor 100 to
 *                                                  the denied port while the
 *                                                  other thread makes 100 a
 *                                                  UDP socket, which the rules
 *                                                  leave free, then a TCP one)
 *
 * Both listeners are this program's own, drained by a third thread.
 * Prints "connected C refused R leaked L": L counts connections that
 * reached the denied listener (as the connecting socket reports its peer,
 * or as the listener counts what it accepted, whichever is more). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { TCP, UNIX_PATH, FD };
static int mode;
static atomic_int stop;
static struct sockaddr_storage names[2]; /* allowed, denied */
static struct sockaddr_storage target;    /* what connect reads */
static socklen_t name_len;
static int listeners[2];
static atomic_int tcp_socket = -1;
static int udp_socket = -1;
static atomic_long denied_accepts;
#define FLIPPED_FD 100

static void *flipper(void *arg) {
    (void)arg;
    volatile char *t = (volatile char *)&target;
    while (!atomic_load(&stop)) {
        if (mode == FD) {
            /* Each held for a moment, so that a connect may start on
             * either and the other be in place when it goes on. */
            dup2(udp_socket, FLIPPED_FD);
            for (volatile int spin = 0; spin < 200; spin++)
                ;
            int tcp = atomic_load(&tcp_socket);
            if (tcp >= 0)
                dup2(tcp, FLIPPED_FD);
            for (volatile int spin = 0; spin < 200; spin++)
                ;
        } else {
            for (int which = 1; which >= 0; which--)
                for (socklen_t i = 0; i < name_len; i++)
                    t[i] = ((char *)&names[which])[i];
        }
    }
    return NULL;
}

static void *acceptor(void *arg) {
    (void)arg;
    struct pollfd p[2] = {{listeners[0], POLLIN, 0}, {listeners[1], POLLIN, 0}};
    for (;;) {
        int n = poll(p, 2, 50);
        if (n == 0 && atomic_load(&stop) == 2)
            return NULL;
        for (int i = 0; i < 2; i++) {
            if (p[i].revents & POLLIN) {
                int c;
                while ((c = accept4(listeners[i], NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (i == 1)
                        atomic_fetch_add(&denied_accepts, 1);
                    close(c);
                }
            }
        }
    }
}

static int listen_on(struct sockaddr_storage *name) {
    int s = socket(name->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)name, name_len) || listen(s, 4096)) {
        perror("listen");
        exit(2);
    }
    return s;
}

/* Whether connected socket `s` reached the denied listener. */
static int reached_denied(int s) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    if (getpeername(s, (struct sockaddr *)&peer, &len))
        return 0;
    if (peer.ss_family == AF_INET)
        return ((struct sockaddr_in *)&peer)->sin_port == ((struct sockaddr_in *)&names[1])->sin_port;
    return strcmp(((struct sockaddr_un *)&peer)->sun_path, ((struct sockaddr_un *)&names[1])->sun_path) == 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: flip_connect tcp|unix|fd ALLOWED DENIED N\n");
        return 2;
    }
    mode = !strcmp(argv[1], "unix") ? UNIX_PATH : !strcmp(argv[1], "fd") ? FD : TCP;
    long n = atol(argv[4]);
    for (int i = 0; i < 2; i++) {
        if (mode == UNIX_PATH) {
            struct sockaddr_un *u = (struct sockaddr_un *)&names[i];
            u->sun_family = AF_UNIX;
            snprintf(u->sun_path, sizeof u->sun_path, "%s", argv[2 + i]);
            unlink(u->sun_path);
            name_len = offsetof(struct sockaddr_un, sun_path) + strlen(u->sun_path) + 1;
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&names[i];
            in->sin_family = AF_INET;
            in->sin_port = htons(atoi(argv[2 + i]));
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            name_len = sizeof *in;
        }
    }
    for (int i = 0; i < 2; i++)
        listeners[i] = listen_on(&names[i]);
    memcpy(&target, &names[mode == FD ? 1 : 0], sizeof target);
    udp_socket = socket(AF_INET, SOCK_DGRAM, 0);
    pthread_t flip, drain;
    pthread_create(&drain, NULL, acceptor, NULL);
    pthread_create(&flip, NULL, flipper, NULL);
    long connected = 0, refused = 0, leaked = 0;
    struct linger abort_on_close = {1, 0};
    for (long i = 0; i < n; i++) {
        int s = socket(mode == UNIX_PATH ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            perror("socket");
            return 2;
        }
        setsockopt(s, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        int r;
        if (mode == FD) {
            atomic_store(&tcp_socket, s);
            r = connect(FLIPPED_FD, (struct sockaddr *)&target, name_len);
        } else {
            r = connect(s, (struct sockaddr *)&target, name_len);
        }
        if (r == 0)
            connected++;
        else
            refused++;
        if (reached_denied(s))
            leaked++;
        close(s);
    }
    atomic_store(&stop, 1);
    pthread_join(flip, NULL);
    atomic_store(&stop, 2);
    pthread_join(drain, NULL);
    /* Seen from either end: a socket the flipper swapped away is seen
     * only by the listener. */
    if (atomic_load(&denied_accepts) > leaked)
        leaked = atomic_load(&denied_accepts);
    printf("connected %ld refused %ld leaked %ld\n", connected, refused, leaked);
    return 0;
}
