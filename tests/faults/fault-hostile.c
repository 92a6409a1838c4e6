/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-hostile.c - an instance that attacks its own supervisor: garbage,
 * truncated, oversized and inconsistent datagrams written straight to its
 * channel socket (found in /proc/self/fd), a data descriptor that is not a
 * sealed memfd, and a scribbled heartbeat page. Each time the supervisor must
 * log why, kill the instance, start a new one (policy RESTART) and go on; the
 * last instance checks that its channel works and ends the run.
 *
 * One request is not an attack but a mistake: to copy data from an address
 * where nothing is mapped. Bytes the supervisor cannot read from outside may
 * still be readable by the instance (memfd_secret, VM_PFNMAP mappings), so the
 * supervisor answers by asking for a memfd instead; the library's own copy
 * into that memfd then fails, and sam_data_store() returns CS_ERR_LIBRARY.
 * That instance is not killed: it fails after sam_start() and is restarted.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultlib.h"

/* The wire header, as an attacker would copy it from the source. */
struct header {
    uint32_t magic;
    uint16_t type;
    uint16_t reserved;
    uint64_t arg;
    uint64_t size;
};
#define MAGIC 0x53414d31u

enum { R_ATTACK = 1, R_FINAL, R_REPLY };

struct attack {
    const char *name;
    const char *expected_log; /* the supervisor's reason, as logged; NULL: not killed */
};

static const struct attack attacks[] = {
    {"garbage", "malformed message (bad magic)"},
    {"truncated header", "malformed message (truncated header)"},
    {"oversized datagram", "sent an oversized message"},
    {"unknown type", "malformed message (unknown request type)"},
    {"inline length mismatch", "malformed message (inline data length does not match its header)"},
    {"descriptor on start", "malformed message (unexpected descriptor count)"},
    {"unsealed memfd", "not a sealed memfd of the stated size"},
    {"unreadable remote data", NULL},
    {"scribbled heartbeat page", "wrote a time in the future to its heartbeat page"},
};
#define N_ATTACKS (sizeof attacks / sizeof attacks[0])
#define N_KILLED (N_ATTACKS - 1)

static char log_path[4096];

static int channel_fd(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;
    while (d != NULL && (e = readdir(d)) != NULL) {
        const int fd = atoi(e->d_name);
        int type = 0;
        socklen_t len = sizeof type;
        if (e->d_name[0] != '.' && fd != dirfd(d) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
            type == SOCK_SEQPACKET)
            found = fd;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

static uint64_t *heartbeat_page(void) {
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    uint64_t *page = NULL;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && strcmp(perms, "rw-s") == 0 &&
            strstr(line, "/memfd:sam-heartbeat") != NULL && hi - lo >= (unsigned long)sysconf(_SC_PAGESIZE))
            page = (uint64_t *)lo;
    }
    if (f != NULL)
        fclose(f);
    return page;
}

static void send_raw(int fd, const void *buf, size_t len, int pass_fd) {
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {0};
    char control[CMSG_SPACE(sizeof(int))];
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)len)
        FL_FAIL("sendmsg of %zu bytes: %m", len);
}

static void attack(unsigned which) {
    const int fd = channel_fd();
    if (fd < 0)
        FL_FAIL("no SOCK_SEQPACKET descriptor in /proc/self/fd");
    static unsigned char big[40000];
    struct header h = {MAGIC, 1, 0, 0, 0};
    switch (which) {
    case 0:
        memset(big, 0x5a, 100);
        send_raw(fd, big, 100, -1);
        break;
    case 1:
        send_raw(fd, &h, 10, -1);
        break;
    case 2:
        memcpy(big, &h, sizeof h);
        send_raw(fd, big, sizeof big, -1);
        break;
    case 3:
        h.type = 99;
        send_raw(fd, &h, sizeof h, -1);
        break;
    case 4:
        h.type = 3;
        h.size = 100;
        memcpy(big, &h, sizeof h);
        send_raw(fd, big, sizeof h + 50, -1);
        break;
    case 5:
        send_raw(fd, &h, sizeof h, 0);
        break;
    case 6: {
        const int mfd = memfd_create("hostile", MFD_CLOEXEC);
        if (mfd < 0 || ftruncate(mfd, 65536) != 0)
            FL_FAIL("memfd: %m");
        h.type = 4;
        h.size = 65536;
        send_raw(fd, &h, sizeof h, mfd);
        break;
    }
    case 7: {
        /* "Read 64 KiB of my memory at 4096", where nothing is mapped: the
         * reply asks for a memfd (CS_ERR_TRY_AGAIN); through the API the
         * same store fails in our own copy. Then fail, to be restarted. */
        h.type = 8;
        h.arg = 4096;
        h.size = 65536;
        send_raw(fd, &h, sizeof h, -1);
        struct {
            uint32_t magic;
            int32_t status;
        } reply = {0, 0};
        if (recv(fd, &reply, sizeof reply, 0) != (ssize_t)sizeof reply || reply.magic != 0x53414d52u)
            FL_FAIL("no reply to the remote read request");
        fl_report(R_REPLY, reply.status, sam_data_store((const void *)(uintptr_t)4096, 65536));
        exit(1);
    }
    case 8: {
        uint64_t *page = heartbeat_page();
        if (page == NULL)
            FL_FAIL("heartbeat page not found in /proc/self/maps");
        if (sam_start() != CS_OK)
            FL_FAIL("sam_start failed");
        __atomic_store_n(page, UINT64_MAX, __ATOMIC_RELEASE); /* a time far in the future */
        break;
    }
    }
}

static int supervisor(void *unused) {
    (void)unused;
    fl_stderr_to(log_path);
    setenv("SAM_LOG_STDERR", "1", 1);
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    if (sam_initialize(300, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    if (iid <= N_ATTACKS) {
        if (iid % 2 == 0 && iid != N_ATTACKS && sam_start() != CS_OK) /* some attacks come while started */
            FL_FAIL("sam_start failed");
        fl_report(R_ATTACK, iid, 0);
        attack(iid - 1);
        alarm(20); /* bounded: the test fails long before this if nobody kills us */
        for (;;)
            pause();
    }
    /* After all that, the channel of a new instance works normally. */
    static const char probe[] = "still working";
    char back[sizeof probe] = {0};
    const int ok = sam_data_store(probe, sizeof probe) == CS_OK && sam_data_restore(back, sizeof back) == CS_OK &&
                   memcmp(probe, back, sizeof probe) == 0;
    fl_report(R_FINAL, iid, ok);
    exit(0);
}

int main(void) {
    snprintf(log_path, sizeof log_path, "%s/fault-hostile.supervisor.log",
             getenv("FAULT_BUILDDIR") ? getenv("FAULT_BUILDDIR") : ".");
    fl_reports_open();
    pid_t sup = fl_fork(supervisor, NULL);
    for (unsigned i = 1; i <= N_ATTACKS; ++i) {
        struct fl_report r = fl_report_expect(R_ATTACK, 20000);
        FL_CHECK(r.a == i, "instance %lld attacked, expected %u", (long long)r.a, i);
        if (attacks[i - 1].expected_log == NULL) {
            const struct fl_report rep = fl_report_expect(R_REPLY, 10000);
            FL_CHECK(rep.a == CS_ERR_TRY_AGAIN && rep.b == CS_ERR_LIBRARY,
                     "attack '%s': reply %lld (want CS_ERR_TRY_AGAIN), sam_data_store %lld (want CS_ERR_LIBRARY)",
                     attacks[i - 1].name, (long long)rep.a, (long long)rep.b);
            fl_note("attack %u (%s): asked for a memfd instead, the store failed in the instance", i,
                    attacks[i - 1].name);
            continue;
        }
        /* The supervisor must say why it killed the attacker... */
        if (!fl_file_wait(log_path, attacks[i - 1].expected_log, 1, 10000)) {
            fl_reap(sup);
            FL_FAIL("attack '%s': the supervisor did not log \"%s\" (see %s)", attacks[i - 1].name,
                    attacks[i - 1].expected_log, log_path);
        }
        /* ...and it is still there. After the last attack the next instance
         * may already have finished, and the supervisor with it: its report
         * below proves that one. */
        FL_CHECK(i == N_ATTACKS || !tp_process_gone(sup), "the supervisor died after attack '%s'", attacks[i - 1].name);
        fl_note("attack %u (%s): supervisor logged \"%s\", killed the instance and restarted", i, attacks[i - 1].name,
                attacks[i - 1].expected_log);
    }
    struct fl_report fin = fl_report_expect(R_FINAL, 20000);
    FL_CHECK(fin.a == N_ATTACKS + 1 && fin.b == 1, "final instance %lld: channel works = %lld", (long long)fin.a,
             (long long)fin.b);
    int status = 0;
    if (!fl_wait_child(sup, 20000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit after its last instance");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    const int restarts = fl_file_count(log_path, "restarting");
    FL_CHECK(restarts == (int)N_ATTACKS, "%d restarts logged, expected %u", restarts, (unsigned)N_ATTACKS);
    const int kills = fl_file_count(log_path, "sending SIGKILL");
    FL_CHECK(kills == (int)N_KILLED, "%d kills logged, expected %u", kills, (unsigned)N_KILLED);
    fl_note("hostile: %u attacks, %d kills, %d restarts, supervisor survived and exited 0", (unsigned)N_ATTACKS, kills,
            restarts);
    return 0;
}
