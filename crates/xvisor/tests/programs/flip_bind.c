/* Binds in a loop while another thread flips the port in the address
 * buffer between an allowed and a denied one, and counts the sockets that
 * ended up bound to the denied port.
 *
 *   flip_bind tcp|udp ALLOWED_PORT DENIED_PORT N     (127.0.0.1)
 *
 * Prints "bound B refused R leaked L": L counts binds that succeeded with
 * the denied port (as getsockname reports it). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int stop;
static struct sockaddr_in target;
static unsigned short ports[2];

static void *flipper(void *unused) {
    (void)unused;
    for (unsigned i = 0; !atomic_load(&stop); i++)
        ((volatile struct sockaddr_in *)&target)->sin_port = htons(ports[i & 1]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: flip_bind tcp|udp ALLOWED_PORT DENIED_PORT N\n");
        return 2;
    }
    int type = strcmp(argv[1], "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
    ports[0] = (unsigned short)atoi(argv[2]);
    ports[1] = (unsigned short)atoi(argv[3]);
    long n = atol(argv[4]);
    target.sin_family = AF_INET;
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    target.sin_port = htons(ports[0]);
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    long bound = 0, refused = 0, leaked = 0;
    for (long i = 0; i < n; i++) {
        int s = socket(AF_INET, type, 0);
        if (s < 0) {
            perror("socket");
            return 1;
        }
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr *)&target, sizeof target) == 0) {
            struct sockaddr_in got;
            socklen_t len = sizeof got;
            bound++;
            if (getsockname(s, (struct sockaddr *)&got, &len) == 0 && ntohs(got.sin_port) == ports[1])
                leaked++;
        } else {
            refused++;
        }
        close(s);
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("bound %ld refused %ld leaked %ld\n", bound, refused, leaked);
    return 0;
}
