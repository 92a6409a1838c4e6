/* SPDX-License-Identifier: BSD-3-Clause */
/* notify-socket.c - see notify-socket.h. */
#include "notify-socket.h"

#include <errno.h>
#include <string.h>

socklen_t notify_address(const char *name, struct sockaddr_un *addr) {
    size_t len = strlen(name);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (len == 0 || len >= sizeof addr->sun_path) {
        return 0;
    }
    memcpy(addr->sun_path, name, len);
    if (name[0] == '@') {
        /* Abstract: no terminator, the length says where the name ends. */
        addr->sun_path[0] = '\0';
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

size_t notify_unescape(const char *in, char *out) {
    size_t n = 0;
    for (; *in != '\0'; ++in) {
        if (in[0] == '\\' && in[1] == 'n') {
            out[n++] = '\n';
            ++in;
        } else {
            out[n++] = *in;
        }
    }
    return n;
}

ssize_t notify_send(int sock, const struct sockaddr_un *addr, socklen_t addr_len, const void *data, size_t size,
                    const int *fds, size_t count) {
    if (count > NOTIFY_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov = {(void *)data, size};
    union {
        char buf[CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_name = (void *)addr;
    msg.msg_namelen = addr_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (count > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}
