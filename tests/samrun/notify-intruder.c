/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * notify-intruder - a hostile local user on a notify socket, for the tests:
 *
 *   notify-intruder SOCKET UID HOLD_MS TEXT...
 *
 * Sends each TEXT ("\n" escapes) to SOCKET (path or @abstract) as user UID,
 * the first datagram carrying a TCP socket that cannot finish closing: its
 * send buffer is full towards a peer that never reads, and SO_LINGER {1,8}
 * makes a close() of its last reference wait up to 8 s for a FIN that cannot
 * be sent. A receiver that closes it where it matters stays there that long.
 * The peer lives in a private network namespace (loopback only), and is kept
 * for HOLD_MS after the sends so the connection stays stuck meanwhile.
 * Prints "sent N (attempts K)" once done, or "refused: ERROR" when SOCKET
 * cannot be reached as UID (exit 4). Needs root (namespace, setresuid).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify-socket.h"

static void die(const char *what) {
    fprintf(stderr, "notify-intruder: %s: %s\n", what, strerror(errno));
    exit(2);
}

static socklen_t make_address(const char *name, struct sockaddr_un *addr) {
    socklen_t len = notify_address(name, addr);
    if (len == 0) {
        fprintf(stderr, "notify-intruder: bad socket name\n");
        exit(2);
    }
    return len;
}

/* Loopback of a fresh network namespace starts down. */
static void loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        die("SIOCGIFFLAGS lo");
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
        die("SIOCSIFFLAGS lo");
    }
    close(fd);
}

/* A connected TCP socket whose FIN cannot leave; *listener is the peer's
 * listening socket, which never accepts (the connection waits in its
 * queue, its receive buffer full). */
static int stuck_tcp_socket(int *listener) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int small = 4096;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*listener < 0 || setsockopt(*listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0 ||
        bind(*listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(*listener, 4) != 0 ||
        getsockname(*listener, (struct sockaddr *)&addr, &len) != 0) {
        die("listener");
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        die("connect");
    }
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        die("O_NONBLOCK");
    }
    /* Fill until the kernel takes no more; then once more after a pause,
     * so that what was in flight has landed and the window is shut. */
    static char junk[65536];
    for (int round = 0; round < 2; ++round) {
        while (send(fd, junk, sizeof junk, MSG_NOSIGNAL) > 0) {
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            die("filling the send buffer");
        }
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    struct linger linger = {1, 8};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) != 0) {
        die("SO_LINGER");
    }
    return fd;
}

enum { kMaxAttempts = 10 };

/* One datagram holding `text`, with `fd` attached unless it is -1. */
static int send_text(int unix_fd, struct sockaddr_un *addr, socklen_t addr_len, char *text, size_t len, int fd) {
    return notify_send(unix_fd, addr, addr_len, text, len, &fd, fd >= 0 ? 1 : 0) < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: notify-intruder SOCKET UID HOLD_MS TEXT...\n");
        return 2;
    }
    uid_t uid = (uid_t)strtoul(argv[2], NULL, 10);
    unsigned long hold_ms = strtoul(argv[3], NULL, 10);
    struct sockaddr_un addr;
    socklen_t addr_len = make_address(argv[1], &addr);

    /* Made before the namespace changes: an abstract name is looked up in
     * the namespace of the socket that sends. */
    int unix_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (unix_fd < 0) {
        die("socket");
    }
    if (unshare(CLONE_NEWNET) != 0) {
        die("unshare(CLONE_NEWNET)");
    }
    loopback_up();
    int listeners[kMaxAttempts];

    if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
        die("dropping to the uid");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int sent = 0;
    int attempts = 0;
    for (int i = 4; i < argc; ++i) {
        char text[4096];
        if (strlen(argv[i]) >= sizeof text) {
            fprintf(stderr, "notify-intruder: text too long\n");
            return 2;
        }
        size_t len = notify_unescape(argv[i], text);
        /* The first text carries the socket. Whoever drops the last reference
         * pays for the close: if the receiver dropped its copy before ours,
         * our own close() waits for the FIN, and the receiver never felt a
         * thing. So we try again until ours is quick, which proves that the
         * receiver (or whatever it passed the socket to) holds the last one. */
        for (;;) {
            int tcp = i == 4 ? stuck_tcp_socket(&listeners[attempts]) : -1;
            if (send_text(unix_fd, &addr, addr_len, text, len, tcp) != 0) {
                printf("refused: %s\n", strerror(errno));
                return 4;
            }
            if (tcp < 0) {
                break;
            }
            ++attempts;
            struct timespec before, after;
            clock_gettime(CLOCK_MONOTONIC, &before);
            close(tcp);
            clock_gettime(CLOCK_MONOTONIC, &after);
            long ms = (after.tv_sec - before.tv_sec) * 1000L + (after.tv_nsec - before.tv_nsec) / 1000000L;
            if (ms < 500) {
                break;
            }
            if (attempts == kMaxAttempts) {
                fprintf(stderr, "notify-intruder: the receiver never kept the last reference\n");
                return 3;
            }
        }
        ++sent;
    }
    printf("sent %d (attempts %d)\n", sent, attempts);
    struct timespec hold = {(time_t)(hold_ms / 1000), (long)(hold_ms % 1000) * 1000000L};
    while (nanosleep(&hold, &hold) != 0) {
    }
    for (int i = 0; i < attempts; ++i) {
        close(listeners[i]);
    }
    return 0;
}
