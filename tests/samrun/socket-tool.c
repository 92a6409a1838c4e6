/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * socket-tool - the program side of socket activation and of the file
 * descriptor store, for the sam-run tests (no libsystemd):
 *   socket-tool free-port       print a TCP port of 127.0.0.1 free right now
 *   socket-tool show            print what was passed: pid, LISTEN_PID,
 *                               LISTEN_FDS, LISTEN_FDNAMES, the kind of each
 *                               passed descriptor, and any other descriptor
 *                               above stderr ("extra=")
 *   socket-tool serve N         accept on descriptor 3, answer "ok" to N
 *                               connections, then die of SIGSEGV
 *   socket-tool client ADDR STOPFILE SECONDS
 *                               connect to ADDR (tcp:IPV4:PORT or unix:PATH)
 *                               in a tight loop, one connection at a time,
 *                               until STOPFILE exists; count the answered
 *                               connections and the refused ones
 *   socket-tool fd ACTION...    in order, from one process:
 *       counter                 the memfd named "counter" passed back by
 *                               sam-run: add 1 (or create it with 1 and store
 *                               it with FDSTORE=1 FDNAME=counter)
 *       store:NAME | store      a new memfd, stored under NAME (or no FDNAME=)
 *       store-many:NAME:K       K memfds in one message under NAME
 *       store-passed            store again every descriptor passed in, under
 *                               its name (the same open files)
 *       store-pipe:NAME         the write end of a pipe, stored under NAME
 *       remove:NAME             FDSTOREREMOVE=1 FDNAME=NAME
 *       store-nofd              FDSTORE=1 without a descriptor
 *       bad-name                FDSTORE=1 FDNAME=a:b with a memfd
 *       unstored-pipe           the write end of a pipe sent without FDSTORE=1
 *       pipe-closed:NAME        has sam-run closed the write end sent last
 *                               (store-pipe/unstored-pipe)? prints NAME=yes/no
 *       ready | sleep:MS | exit:N | crash
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "notify-socket.h"

static int passed_count(void) {
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL || atol(pid) != (long)getpid()) {
        return 0;
    }
    return atoi(fds);
}

/* The name of passed descriptor `index` (0-based), or "" */
static const char *passed_name(int index, char *out, size_t size) {
    const char *names = getenv("LISTEN_FDNAMES");
    out[0] = '\0';
    if (names == NULL) {
        return out;
    }
    for (int i = 0; i < index; ++i) {
        names = strchr(names, ':');
        if (names == NULL) {
            return out;
        }
        ++names;
    }
    size_t len = strcspn(names, ":");
    if (len >= size) {
        len = size - 1;
    }
    memcpy(out, names, len);
    out[len] = '\0';
    return out;
}

static const char *kind_of(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return "closed";
    }
    if (S_ISSOCK(st.st_mode)) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
            int family = 0;
            len = sizeof family;
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len);
            return family == AF_UNIX ? "listening-unix" : family == AF_INET6 ? "listening-tcp6" : "listening-tcp";
        }
        return "socket";
    }
    if (S_ISFIFO(st.st_mode)) {
        return "pipe";
    }
    return "file";
}

static int show(void) {
    int n = passed_count();
    const char *lp = getenv("LISTEN_PID");
    const char *names = getenv("LISTEN_FDNAMES");
    printf("pid=%d listen_pid=%s listen_fds=%s names=%s\n", (int)getpid(), lp ? lp : "unset",
           getenv("LISTEN_FDS") ? getenv("LISTEN_FDS") : "unset", names ? names : "unset");
    for (int i = 0; i < n; ++i) {
        char name[256];
        printf("fd%d=%s name=%s\n", 3 + i, kind_of(3 + i), passed_name(i, name, sizeof name));
    }
    DIR *dir = opendir("/proc/self/fd");
    printf("extra=");
    struct dirent *e;
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 + n && fd != dirfd(dir)) {
            printf("%d,", fd);
        }
    }
    printf("\n");
    if (dir != NULL) {
        closedir(dir);
    }
    return 0;
}

static int serve(int count) {
    if (passed_count() < 1) {
        fprintf(stderr, "socket-tool: no socket passed (LISTEN_PID/LISTEN_FDS)\n");
        return 3;
    }
    printf("serving: instance %s\n", getenv("SAM_RUN_INSTANCE") ? getenv("SAM_RUN_INSTANCE") : "?");
    for (int served = 0; served < count;) {
        int c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            perror("socket-tool: accept");
            return 3;
        }
        (void)!write(c, "ok\n", 3);
        close(c);
        ++served;
    }
    printf("crashing after %d connections\n", count);
    fflush(stdout);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    raise(SIGSEGV);
    return 4;
}

static int client(const char *addr, const char *stopfile, int seconds) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "tcp:", 4) == 0) {
        char host[64];
        const char *colon = strrchr(addr + 4, ':');
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        if (colon == NULL || (size_t)(colon - addr - 4) >= sizeof host) {
            return 2;
        }
        memcpy(host, addr + 4, (size_t)(colon - addr - 4));
        host[colon - addr - 4] = '\0';
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
            return 2;
        }
        len = sizeof *in;
    } else if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", addr + 5);
        len = sizeof *un;
    } else {
        return 2;
    }
    long long end = (long long)tp_now_ms() + seconds * 1000LL;
    unsigned long served = 0, refused = 0, other = 0;
    long long longest_wait = 0;
    while (access(stopfile, F_OK) != 0 && (long long)tp_now_ms() < end) {
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        long long start = (long long)tp_now_ms();
        if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
            if (errno == ECONNREFUSED) {
                ++refused;
            } else {
                if (other < 5) {
                    fprintf(stderr, "socket-tool: connect: %s\n", strerror(errno));
                }
                ++other;
            }
            close(fd);
            continue;
        }
        char buf[16];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n >= 2 && memcmp(buf, "ok", 2) == 0) {
            ++served;
        } else {
            if (other < 5) {
                fprintf(stderr, "socket-tool: read: %s\n", n < 0 ? strerror(errno) : "no answer");
            }
            ++other;
        }
        if ((long long)tp_now_ms() - start > longest_wait) {
            longest_wait = (long long)tp_now_ms() - start;
        }
        close(fd);
    }
    printf("served=%lu refused=%lu other=%lu longest_wait_ms=%lld\n", served, refused, other, longest_wait);
    return 0;
}

/* One datagram with `count` descriptors to $NOTIFY_SOCKET. */
static void notify(const char *text, const int *fds, int count) {
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    socklen_t alen = name != NULL ? notify_address(name, &addr) : 0;
    if (alen == 0) {
        fprintf(stderr, "socket-tool: no usable NOTIFY_SOCKET\n");
        exit(2);
    }
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_send(sock, &addr, alen, text, strlen(text), fds, (size_t)count) < 0) {
        perror("socket-tool: sendmsg");
        exit(3);
    }
    close(sock);
}

static int new_memfd(uint64_t value) {
    int fd = memfd_create("socket-tool", MFD_CLOEXEC);
    if (fd < 0 || pwrite(fd, &value, sizeof value, 0) != (ssize_t)sizeof value) {
        perror("socket-tool: memfd");
        exit(3);
    }
    return fd;
}

static void store_memfds(const char *name, int count) {
    int fds[64];
    char text[512];
    for (int i = 0; i < count; ++i) {
        fds[i] = new_memfd(0);
    }
    if (name != NULL) {
        snprintf(text, sizeof text, "FDSTORE=1\nFDNAME=%s", name);
    } else {
        snprintf(text, sizeof text, "FDSTORE=1");
    }
    notify(text, fds, count);
    for (int i = 0; i < count; ++i) {
        close(fds[i]);
    }
}

static void counter(void) {
    int n = passed_count();
    for (int i = 0; i < n; ++i) {
        char name[256];
        if (strcmp(passed_name(i, name, sizeof name), "counter") == 0) {
            uint64_t value = 0;
            if (pread(3 + i, &value, sizeof value, 0) != (ssize_t)sizeof value) {
                perror("socket-tool: pread");
                exit(3);
            }
            ++value;
            (void)!pwrite(3 + i, &value, sizeof value, 0);
            printf("counter=%llu (restored)\n", (unsigned long long)value);
            return;
        }
    }
    int fd = new_memfd(1);
    notify("FDSTORE=1\nFDNAME=counter", &fd, 1);
    close(fd);
    printf("counter=1 (new)\n");
}

static int last_pipe_read = -1;

static void send_pipe(const char *text) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        exit(3);
    }
    notify(text, &p[1], 1);
    close(p[1]);
    if (last_pipe_read >= 0) {
        close(last_pipe_read);
    }
    last_pipe_read = p[0];
}

/* The read end sees POLLHUP once no write end is left anywhere. */
static void pipe_closed(const char *label) {
    struct pollfd p = {last_pipe_read, POLLIN, 0};
    int ready = last_pipe_read >= 0 ? poll(&p, 1, 5000) : 0;
    printf("%s=%s\n", label, ready == 1 && (p.revents & POLLHUP) ? "yes" : "no");
}

static int fd_actions(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < argc; ++i) {
        const char *a = argv[i];
        char text[512];
        if (strcmp(a, "counter") == 0) {
            counter();
        } else if (strcmp(a, "store") == 0) {
            store_memfds(NULL, 1);
        } else if (strncmp(a, "store:", 6) == 0) {
            store_memfds(a + 6, 1);
        } else if (strncmp(a, "store-many:", 11) == 0) {
            char name[256];
            const char *colon = strrchr(a + 11, ':');
            if (colon == NULL || (size_t)(colon - a - 11) >= sizeof name) {
                return 2;
            }
            memcpy(name, a + 11, (size_t)(colon - a - 11));
            name[colon - a - 11] = '\0';
            int count = atoi(colon + 1);
            store_memfds(name, count > 64 ? 64 : count);
        } else if (strcmp(a, "store-passed") == 0) {
            for (int k = 0; k < passed_count(); ++k) {
                char name[256];
                int fd = 3 + k;
                snprintf(text, sizeof text, "FDSTORE=1\nFDNAME=%s", passed_name(k, name, sizeof name));
                notify(text, &fd, 1);
            }
        } else if (strncmp(a, "store-pipe:", 11) == 0) {
            snprintf(text, sizeof text, "FDSTORE=1\nFDNAME=%s", a + 11);
            send_pipe(text);
        } else if (strncmp(a, "remove:", 7) == 0) {
            snprintf(text, sizeof text, "FDSTOREREMOVE=1\nFDNAME=%s", a + 7);
            notify(text, NULL, 0);
        } else if (strcmp(a, "store-nofd") == 0) {
            notify("FDSTORE=1\nFDNAME=nothing", NULL, 0);
        } else if (strcmp(a, "bad-name") == 0) {
            int fd = new_memfd(0);
            notify("FDSTORE=1\nFDNAME=a:b", &fd, 1);
            close(fd);
        } else if (strcmp(a, "unstored-pipe") == 0) {
            send_pipe("STATUS=here is a pipe");
        } else if (strncmp(a, "pipe-closed:", 12) == 0) {
            pipe_closed(a + 12);
        } else if (strcmp(a, "ready") == 0) {
            notify("READY=1", NULL, 0);
        } else if (strncmp(a, "sleep:", 6) == 0) {
            long ms = atol(a + 6);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0) {
            }
        } else if (strncmp(a, "exit:", 5) == 0) {
            return atoi(a + 5);
        } else if (strcmp(a, "crash") == 0) {
            struct rlimit no_core = {0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            raise(SIGSEGV);
        } else if (strcmp(a, "show") == 0) {
            show();
        } else {
            fprintf(stderr, "socket-tool: unknown action '%s'\n", a);
            return 2;
        }
    }
    return 0;
}

static int free_port(void) {
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(fd, (struct sockaddr *)&in, sizeof in) != 0 || getsockname(fd, (struct sockaddr *)&in, &len) != 0) {
        perror("socket-tool: bind");
        return 3;
    }
    printf("%d\n", ntohs(in.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "free-port") == 0) {
        return free_port();
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        return show();
    }
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        return serve(atoi(argv[2]));
    }
    if (argc == 5 && strcmp(argv[1], "client") == 0) {
        return client(argv[2], argv[3], atoi(argv[4]));
    }
    if (argc >= 2 && strcmp(argv[1], "fd") == 0) {
        return fd_actions(argc - 2, argv + 2);
    }
    fprintf(stderr, "usage: socket-tool free-port | show | serve N | client ADDR STOPFILE SECONDS | fd ACTION...\n");
    return 2;
}
