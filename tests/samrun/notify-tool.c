/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * notify-tool - raw notify-socket helper for the tests, no libsystemd:
 *   notify-tool listen:SOCKET   print each datagram received on SOCKET (path
 *                               or @abstract), one a line ("|" for newlines)
 *   notify-tool ACTION...       from one process (as a daemon would), in order:
 *       send:TEXT               send TEXT ("\n" escapes) to $NOTIFY_SOCKET
 *       garbage                 send malformed datagrams to $NOTIFY_SOCKET
 *       sleep:MS | exit:N
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify-socket.h"

static socklen_t make_address(const char *name, struct sockaddr_un *addr) {
    socklen_t len = notify_address(name, addr);
    if (len == 0) {
        fprintf(stderr, "notify-tool: bad socket name\n");
        exit(2);
    }
    return len;
}

static int send_raw(const void *data, size_t size) {
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    if (name == NULL) {
        fprintf(stderr, "notify-tool: NOTIFY_SOCKET is not set\n");
        exit(2);
    }
    socklen_t len = make_address(name, &addr);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = notify_send(fd, &addr, len, data, size, NULL, 0);
    close(fd);
    return n == (ssize_t)size ? 0 : 1;
}

static void sleep_ms(unsigned long ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int listen_on(const char *name) {
    struct sockaddr_un addr;
    socklen_t len = make_address(name, &addr);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (name[0] != '@') {
        unlink(name);
    }
    if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
        perror("notify-tool: bind");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening\n");
    for (;;) {
        char buf[8192];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) {
            continue;
        }
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == '\n') {
                buf[i] = '|';
            }
        }
        buf[n] = '\0';
        printf("%s\n", buf);
    }
}

static int send_text(const char *escaped) {
    char *text = strdup(escaped);
    int failed = send_raw(text, notify_unescape(escaped, text));
    free(text);
    return failed;
}

static int send_garbage(void) {
    static char big[70000];
    static const char binary[] = {'\0', '\1', '\377', 'R', 'E', 'A', 'D', 'Y', '\0', '=', '1', '\n'};
    static const char weird[] = "WATCHDOG=triggerX\nSTOPPING=0\nREADY=2\nSTATUS=\001\002";
    int failed = 0;
    memset(big, 'A', sizeof big);
    failed |= send_raw("", 0);
    failed |= send_raw("\n\n\n", 3);
    failed |= send_raw("=1\nREADY\nWATCHDOG\n=\n", 20);
    failed |= send_raw(binary, sizeof binary);
    failed |= send_raw("READY=1\0garbage", 15);
    failed |= send_raw(big, 5000);
    (void)send_raw(big, sizeof big); /* may be refused by the kernel: too big */
    failed |= send_raw(weird, sizeof weird - 1);
    return failed;
}

int main(int argc, char **argv) {
    if (argc == 2 && strncmp(argv[1], "listen:", 7) == 0) {
        return listen_on(argv[1] + 7);
    }
    for (int i = 1; i < argc; ++i) {
        const char *action = argv[i];
        int failed = 0;
        if (strncmp(action, "send:", 5) == 0) {
            failed = send_text(action + 5);
        } else if (strcmp(action, "garbage") == 0) {
            failed = send_garbage();
        } else if (strncmp(action, "sleep:", 6) == 0) {
            sleep_ms(strtoul(action + 6, NULL, 10));
        } else if (strncmp(action, "exit:", 5) == 0) {
            return atoi(action + 5);
        } else {
            fprintf(stderr, "usage: notify-tool listen:SOCKET | {send:TEXT|garbage|sleep:MS|exit:N}...\n");
            return 2;
        }
        if (failed) {
            fprintf(stderr, "notify-tool: %s: send failed\n", action);
            return 3;
        }
    }
    return 0;
}
