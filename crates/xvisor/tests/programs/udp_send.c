/* Datagram sends under `udp:` rules, each way a send can name its
 * destination, and a race against them.
 *
 *   udp_send cases ALLOWED_PORT DENIED_PORT
 *       One line per attempt: "WHAT ok", "WHAT N" (a count) or
 *       "WHAT ERRNO-NAME"; then "allowed got A denied got D": the datagrams
 *       each of this program's UDP receivers (127.0.0.1 and ::1, on both
 *       ports) took in.
 *   udp_send race addr|name|fd ALLOWED_PORT DENIED_PORT N
 *       Sends N datagrams while another thread keeps changing what the
 *       call names: `addr` flips the port in sendto's address buffer,
 *       `name` flips sendmsg's msg_name pointer between two addresses,
 *       `fd` makes descriptor 100 a TCP socket (connected to the allowed
 *       port) and a UDP socket in turn while sendto names the denied port
 *       on it. Prints "sent S refused R leaked L": L counts the datagrams
 *       the denied receiver took in.
 *
 * Everything is on the instance's own loopback. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *name_of(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EMSGSIZE: return "EMSGSIZE";
    case ENETUNREACH: return "ENETUNREACH";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "E?";
    }
}

static void report(const char *what, long r) {
    if (r < 0)
        printf("%s %s\n", what, name_of(errno));
    else
        printf("%s %ld\n", what, r);
    fflush(stdout);
}

static struct sockaddr_in v4(int port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, int port) {
    struct sockaddr_in6 a = {0};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

/* Receivers: [0] 127.0.0.1:allowed, [1] 127.0.0.1:denied, [2] [::1]:allowed,
 * [3] [::1]:denied. */
static int receivers[4];
static atomic_long got[2];
static atomic_int stop;

static void bind_receivers(int allowed, int denied) {
    int ports[2] = {allowed, denied};
    for (int i = 0; i < 4; i++) {
        int six = i >= 2;
        receivers[i] = socket(six ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int big = 4 << 20;
        setsockopt(receivers[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        int r;
        if (six) {
            struct sockaddr_in6 a = v6("::1", ports[i % 2]);
            r = bind(receivers[i], (struct sockaddr *)&a, sizeof a);
        } else {
            struct sockaddr_in a = v4(ports[i % 2]);
            r = bind(receivers[i], (struct sockaddr *)&a, sizeof a);
        }
        if (r) {
            perror("bind");
            exit(2);
        }
    }
}

static void drain_once(int timeout_ms) {
    struct pollfd p[4];
    for (int i = 0; i < 4; i++)
        p[i] = (struct pollfd){receivers[i], POLLIN, 0};
    if (poll(p, 4, timeout_ms) <= 0)
        return;
    char buf[2048];
    for (int i = 0; i < 4; i++)
        while (recv(receivers[i], buf, sizeof buf, 0) >= 0)
            atomic_fetch_add(&got[i % 2], 1);
}

static void *drainer(void *arg) {
    (void)arg;
    while (atomic_load(&stop) != 2)
        drain_once(20);
    return NULL;
}

static long send_msg(int s, void *name, socklen_t len, void *control, size_t control_len) {
    char data[] = "m";
    struct iovec iov = {data, 1};
    struct msghdr m = {0};
    m.msg_name = name;
    m.msg_namelen = len;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = control_len;
    return sendmsg(s, &m, 0);
}

static int cases(int allowed, int denied) {
    bind_receivers(allowed, denied);
    struct sockaddr_in ok4 = v4(allowed), no4 = v4(denied);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    report("sendto allowed", sendto(s, "x", 1, 0, (struct sockaddr *)&ok4, sizeof ok4));
    report("sendto denied", sendto(s, "x", 1, 0, (struct sockaddr *)&no4, sizeof no4));
    /* An AF_UNSPEC address is read as IPv4 by an IPv4 UDP socket. */
    struct sockaddr_in unspec = no4;
    unspec.sin_family = AF_UNSPEC;
    report("sendto unspec denied", sendto(s, "x", 1, 0, (struct sockaddr *)&unspec, sizeof unspec));
    report("sendto short address", sendto(s, "x", 1, 0, (struct sockaddr *)&ok4, 8));
    report("sendto bad pointer", sendto(s, "x", 1, 0, (struct sockaddr *)8, sizeof ok4));
    report("sendto bad data", sendto(s, (void *)8, 1, 0, (struct sockaddr *)&ok4, sizeof ok4));
    report("sendmsg allowed", send_msg(s, &ok4, sizeof ok4, NULL, 0));
    report("sendmsg denied", send_msg(s, &no4, sizeof no4, NULL, 0));
    /* Gathered data goes as one datagram. */
    {
        struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
        struct msghdr m = {.msg_name = &ok4, .msg_namelen = sizeof ok4, .msg_iov = iov, .msg_iovlen = 3};
        report("sendmsg gathered", sendmsg(s, &m, 0));
    }
    /* Control messages: a source address and TTL pass on; a source route
     * (which would send elsewhere) does not. */
    {
        union {
            char buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        struct msghdr m = {.msg_control = u.buf, .msg_controllen = sizeof u.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        c = CMSG_NXTHDR(&m, c);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_TTL;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int ttl = 9;
        memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
        report("sendmsg pktinfo ttl", send_msg(s, &ok4, sizeof ok4, u.buf, sizeof u.buf));
        unsigned char route[CMSG_SPACE(12)] __attribute__((aligned(8))) = {0};
        struct cmsghdr *r = (struct cmsghdr *)route;
        r->cmsg_level = IPPROTO_IP;
        r->cmsg_type = IP_RETOPTS;
        r->cmsg_len = CMSG_LEN(12);
        unsigned char *o = CMSG_DATA(r);
        o[0] = 0x83; /* LSRR */
        o[1] = 7;
        o[2] = 4;
        memcpy(o + 3, &no4.sin_addr, 4);
        o[7] = 1; /* end of options */
        report("sendmsg source route", send_msg(s, &ok4, sizeof ok4, route, sizeof route));
        /* The same set on the socket, for every packet it sends. */
        unsigned char lsrr[8] = {0x83, 7, 4, 0, 0, 0, 0, 1};
        memcpy(lsrr + 3, &no4.sin_addr, 4);
        int so = socket(AF_INET, SOCK_DGRAM, 0);
        report("setsockopt source route", setsockopt(so, IPPROTO_IP, IP_OPTIONS, lsrr, sizeof lsrr));
        close(so);
    }
    /* UDP_SEGMENT: one send, several datagrams. */
    {
        unsigned char seg[CMSG_SPACE(sizeof(unsigned short))] __attribute__((aligned(8))) = {0};
        struct cmsghdr *c = (struct cmsghdr *)seg;
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(unsigned short));
        unsigned short size = 2;
        memcpy(CMSG_DATA(c), &size, sizeof size);
        char data[6] = "abcdef";
        struct iovec iov = {data, 6};
        struct msghdr m = {.msg_name = &ok4, .msg_namelen = sizeof ok4, .msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = seg, .msg_controllen = sizeof seg};
        long r = sendmsg(s, &m, 0);
        /* Without GSO on loopback the kernel says EIO or ENODEV: shown as
         * what the native run says too. */
        report("sendmsg segments", r);
    }
    /* sendmmsg: the messages before a denied one are sent. */
    {
        struct iovec iov = {"y", 1};
        struct mmsghdr mm[3];
        memset(mm, 0, sizeof mm);
        void *names[3] = {&ok4, &ok4, &no4};
        for (int i = 0; i < 3; i++) {
            mm[i].msg_hdr.msg_name = names[i];
            mm[i].msg_hdr.msg_namelen = sizeof ok4;
            mm[i].msg_hdr.msg_iov = &iov;
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_len = 77;
        }
        report("sendmmsg allowed allowed denied", sendmmsg(s, mm, 3, 0));
        printf("sendmmsg lengths %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
        report("sendmmsg denied first", sendmmsg(s, mm + 2, 1, 0));
    }
    /* connect, then sends without an address (which run in the kernel). */
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    report("connect denied", connect(c, (struct sockaddr *)&no4, sizeof no4));
    report("connect allowed", connect(c, (struct sockaddr *)&ok4, sizeof ok4));
    report("send connected", send(c, "z", 1, 0));
    report("write connected", write(c, "z", 1));
    /* A connected socket still sends to an address it is given. */
    report("sendto connected denied", sendto(c, "z", 1, 0, (struct sockaddr *)&no4, sizeof no4));
    /* IPv6: plain, IPv4-mapped, and an IPv4 address given to an IPv6
     * socket. */
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 ok6 = v6("::1", allowed), no6 = v6("::1", denied);
    struct sockaddr_in6 okm = v6("::ffff:127.0.0.1", allowed), nom = v6("::ffff:127.0.0.1", denied);
    report("v6 sendto allowed", sendto(s6, "x", 1, 0, (struct sockaddr *)&ok6, sizeof ok6));
    report("v6 sendto denied", sendto(s6, "x", 1, 0, (struct sockaddr *)&no6, sizeof no6));
    report("mapped sendto allowed", sendto(s6, "x", 1, 0, (struct sockaddr *)&okm, sizeof okm));
    report("mapped sendto denied", sendto(s6, "x", 1, 0, (struct sockaddr *)&nom, sizeof nom));
    report("v6 socket v4 address denied", sendto(s6, "x", 1, 0, (struct sockaddr *)&no4, sizeof no4));
    report("v6 sendmsg denied", send_msg(s6, &no6, sizeof no6, NULL, 0));
    /* A unix datagram socket pair: descriptors passed along. */
    {
        int pair[2];
        socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
        int pipefd[2];
        pipe(pipefd);
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        struct msghdr m = {.msg_control = u.buf, .msg_controllen = sizeof u.buf};
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pipefd[1], sizeof(int));
        report("unix sendmsg with a descriptor", send_msg(pair[0], NULL, 0, u.buf, sizeof u.buf));
        char data[8];
        struct iovec iov = {data, sizeof data};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } r;
        struct msghdr in = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = r.buf, .msg_controllen = sizeof r.buf};
        int passed = -1;
        if (recvmsg(pair[1], &in, 0) >= 0 && CMSG_FIRSTHDR(&in))
            memcpy(&passed, CMSG_DATA(CMSG_FIRSTHDR(&in)), sizeof(int));
        char back = 0;
        int works = passed >= 0 && write(passed, "p", 1) == 1 && read(pipefd[0], &back, 1) == 1 && back == 'p';
        printf("unix descriptor passed %s\n", works ? "works" : "broken");
        /* A unix datagram to a path, found in the instance. */
        struct sockaddr_un path = {.sun_family = AF_UNIX};
        snprintf(path.sun_path, sizeof path.sun_path, "/tmp/udp_send.%d.sock", getpid());
        unlink(path.sun_path);
        int bound = socket(AF_UNIX, SOCK_DGRAM, 0);
        bind(bound, (struct sockaddr *)&path, sizeof path);
        report("unix sendto path", sendto(pair[0], "q", 1, 0, (struct sockaddr *)&path, sizeof path));
        report("unix recv", recv(bound, data, sizeof data, MSG_DONTWAIT));
        unlink(path.sun_path);
    }
    usleep(20000);
    for (int i = 0; i < 5; i++)
        drain_once(10);
    printf("allowed got %ld denied got %ld\n", atomic_load(&got[0]), atomic_load(&got[1]));
    return 0;
}

enum { ADDR, NAME, FD };
static int mode;
static struct sockaddr_in names[2]; /* allowed, denied */
static struct sockaddr_in target;   /* what sendto reads */
static struct msghdr flipped;       /* what sendmsg reads */
static atomic_int tcp_socket = -1;
static int udp_socket = -1;
#define FLIPPED_FD 100

static void *flipper(void *arg) {
    (void)arg;
    volatile char *t = (volatile char *)&target;
    while (!atomic_load(&stop)) {
        if (mode == FD) {
            dup2(udp_socket, FLIPPED_FD);
            for (volatile int spin = 0; spin < 200; spin++)
                ;
            dup2(atomic_load(&tcp_socket), FLIPPED_FD);
            for (volatile int spin = 0; spin < 200; spin++)
                ;
        } else if (mode == NAME) {
            *(void *volatile *)&flipped.msg_name = &names[1];
            *(void *volatile *)&flipped.msg_name = &names[0];
        } else {
            for (int which = 1; which >= 0; which--)
                for (size_t i = 0; i < sizeof target; i++)
                    t[i] = ((char *)&names[which])[i];
        }
    }
    return NULL;
}

static int race(const char *how, int allowed, int denied, long n) {
    mode = !strcmp(how, "name") ? NAME : !strcmp(how, "fd") ? FD : ADDR;
    bind_receivers(allowed, denied);
    names[0] = v4(allowed);
    names[1] = v4(denied);
    target = names[mode == FD ? 1 : 0];
    udp_socket = socket(AF_INET, SOCK_DGRAM, 0);
    if (mode == FD) {
        /* A TCP socket connected to a listener on the allowed port: a send
         * on it goes to its peer, whatever address it is given. */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(l, (struct sockaddr *)&names[0], sizeof names[0]) || listen(l, 1)) {
            perror("listen");
            return 2;
        }
        int t = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(t, (struct sockaddr *)&names[0], sizeof names[0])) {
            perror("connect");
            return 2;
        }
        int peer = accept(l, NULL, NULL);
        int big = 1 << 20;
        setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        /* Drained by shutting reads: data sent to it is dropped. */
        shutdown(peer, SHUT_RD);
        atomic_store(&tcp_socket, t);
        /* Open before the flipper first runs. */
        dup2(udp_socket, FLIPPED_FD);
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct iovec iov = {"r", 1};
    flipped.msg_name = &names[0];
    flipped.msg_namelen = sizeof names[0];
    flipped.msg_iov = &iov;
    flipped.msg_iovlen = 1;
    pthread_t flip, drain;
    pthread_create(&drain, NULL, drainer, NULL);
    pthread_create(&flip, NULL, flipper, NULL);
    long sent = 0, refused = 0;
    for (long i = 0; i < n; i++) {
        long r;
        if (mode == FD)
            r = sendto(FLIPPED_FD, "r", 1, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&target, sizeof target);
        else if (mode == NAME)
            r = sendmsg(s, &flipped, 0);
        else
            r = sendto(s, "r", 1, 0, (struct sockaddr *)&target, sizeof target);
        if (r >= 0)
            sent++;
        else
            refused++;
    }
    atomic_store(&stop, 1);
    pthread_join(flip, NULL);
    usleep(50000);
    atomic_store(&stop, 2);
    pthread_join(drain, NULL);
    drain_once(50);
    printf("sent %ld refused %ld leaked %ld\n", sent, refused, atomic_load(&got[1]));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "cases"))
        return cases(atoi(argv[2]), atoi(argv[3]));
    if (argc == 6 && !strcmp(argv[1], "race"))
        return race(argv[2], atoi(argv[3]), atoi(argv[4]), atol(argv[5]));
    fprintf(stderr, "usage: udp_send cases ALLOWED DENIED | udp_send race addr|name|fd ALLOWED DENIED N\n");
    return 2;
}
