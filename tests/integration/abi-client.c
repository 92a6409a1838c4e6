/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * abi-client.c - a program built against the SYSTEM libsam (corosync's
 * <corosync/sam.h> and libsam.so.4), never against the project's header.
 * Run with LD_LIBRARY_PATH pointing at our build, it proves that a binary
 * made for upstream works unchanged on ours. abi-core.sh and
 * abi-corosync.sh judge its output:
 *
 *   lib <path>                 the libsam mapped into the process (/proc/self/maps)
 *   check <name> <got> <want>  a status code
 *   <event> k=v ...            what happened, one line each
 *
 * Modes:
 *   quit      QUIT: the instance exits 3 after sam_start; the program must exit 3
 *   restart   RESTART: data across restarts, warn signal then kill for a
 *             missed health check, instance ids 1..3; the program exits 0
 *   cmap      RESTART|CMAP: the instance reads its own state key through
 *             corosync-cmapctl, then marks itself failed
 *   quorum    QUORUM_RESTART|CMAP: sam_start waits for quorum (the caller
 *             takes it away first and gives it back), then a clean exit
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <corosync/sam.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* One write per line: several processes share this output. */
    if (write(STDOUT_FILENO, line, (size_t)n) < 0)
        return;
}

static void check(const char *name, cs_error_t got, cs_error_t want) {
    say("check %s %d %d", name, (int)got, (int)want);
}

static void print_loaded_libsam(void) {
    char line[4096];
    FILE *maps = fopen("/proc/self/maps", "r");

    if (maps == NULL)
        return;
    while (fgets(line, sizeof line, maps) != NULL) {
        char *path = strchr(line, '/');
        if (path != NULL && strstr(path, "libsam.so") != NULL) {
            path[strcspn(path, "\n")] = '\0';
            say("lib %s", path);
            break;
        }
    }
    fclose(maps);
}

static void wait_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static volatile sig_atomic_t warned;
static void on_warn(int sig) {
    (void)sig;
    warned = 1;
}

static void common_checks(void) {
    size_t size;

    check("before_init_register", sam_register(NULL), CS_ERR_BAD_HANDLE);
    check("before_init_start", sam_start(), CS_ERR_BAD_HANDLE);
    check("getsize_null", sam_data_getsize(NULL), CS_ERR_INVALID_PARAM);
    check("before_init_getsize", sam_data_getsize(&size), CS_ERR_BAD_HANDLE);
    check("invalid_policy", sam_initialize(100, (sam_recovery_policy_t)0), CS_ERR_INVALID_PARAM);
}

static int mode_quit(void) {
    unsigned int iid = 0;

    check("init", sam_initialize(200, SAM_RECOVERY_POLICY_QUIT), CS_OK);
    check("init_again", sam_initialize(200, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
    if (sam_register(&iid) != CS_OK)
        return 91;
    say("instance iid=%u", iid);
    check("mark_failed_no_cmap", sam_mark_failed(), CS_ERR_INVALID_PARAM);
    check("start", sam_start(), CS_OK);
    check("hc_send", sam_hc_send(), CS_OK);
    say("exiting iid=%u code=3", iid);
    _exit(3);
}

static int mode_restart(void) {
    unsigned int iid = 0;
    char buf[64];
    size_t size = 0;

    check("init", sam_initialize(200, SAM_RECOVERY_POLICY_RESTART), CS_OK);
    check("store_before_register", sam_data_store("abi-0", 6), CS_OK);
    if (sam_register(&iid) != CS_OK)
        return 91;
    memset(buf, 0, sizeof buf);
    if (sam_data_getsize(&size) != CS_OK || size > sizeof buf || sam_data_restore(buf, sizeof buf) != CS_OK)
        strcpy(buf, "?");
    say("instance iid=%u data=%s", iid, buf);
    if (iid == 1) {
        check("store_iid1", sam_data_store("abi-1", 6), CS_OK);
        check("start_iid1", sam_start(), CS_OK);
        _exit(1); /* a failure: restart */
    }
    if (iid == 2) {
        struct sigaction sa;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_warn;
        sigaction(SIGUSR1, &sa, NULL);
        check("store_iid2", sam_data_store("abi-2", 6), CS_OK);
        check("warn_signal_set", sam_warn_signal_set(SIGUSR1), CS_OK);
        check("start_iid2", sam_start(), CS_OK);
        check("hc_send_iid2", sam_hc_send(), CS_OK);
        /* Silence: the supervisor warns after 200 ms and kills 200 ms later. */
        for (int i = 0; i < 300; i++) {
            if (warned) {
                say("warned iid=%u", iid);
                warned = 0;
            }
            wait_ms(10);
        }
        say("not killed iid=%u", iid);
        _exit(0);
    }
    return 0; /* iid 3, before start: the program exits 0 */
}

static int mode_cmap(void) {
    unsigned int iid = 0;
    char cmd[128];
    char state[256] = "";
    FILE *p;

    check("init", sam_initialize(300, SAM_RECOVERY_POLICY_RESTART | SAM_RECOVERY_POLICY_CMAP), CS_OK);
    if (sam_register(&iid) != CS_OK)
        return 91;
    say("instance iid=%u", iid);
    if (iid != 1)
        return 92;
    check("start", sam_start(), CS_OK);
    snprintf(cmd, sizeof cmd, "corosync-cmapctl -g resources.process.%d.state", (int)getppid());
    p = popen(cmd, "r");
    if (p != NULL) {
        if (fgets(state, sizeof state, p) == NULL)
            state[0] = '\0';
        pclose(p);
    }
    state[strcspn(state, "\n")] = '\0';
    /* corosync-cmapctl prints "KEY (str) = VALUE". */
    say("state_after_start %s", strstr(state, " = ") != NULL ? strstr(state, " = ") + 3 : state);
    check("hc_send", sam_hc_send(), CS_OK);
    say("marking iid=%u", iid);
    sam_mark_failed();
    say("still alive after mark_failed");
    return 93;
}

static int mode_quorum(void) {
    unsigned int iid = 0;

    check("init", sam_initialize(300, SAM_RECOVERY_POLICY_QUORUM_RESTART | SAM_RECOVERY_POLICY_CMAP), CS_OK);
    if (sam_register(&iid) != CS_OK)
        return 91;
    say("instance iid=%u", iid);
    say("starting iid=%u", iid);
    check("start", sam_start(), CS_OK);
    say("started iid=%u", iid);
    check("hc_send", sam_hc_send(), CS_OK);
    check("stop", sam_stop(), CS_OK);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";

    print_loaded_libsam();
    say("supervisor pid=%d", (int)getpid());
    common_checks();
    if (strcmp(mode, "quit") == 0)
        return mode_quit();
    if (strcmp(mode, "restart") == 0)
        return mode_restart();
    if (strcmp(mode, "cmap") == 0)
        return mode_cmap();
    if (strcmp(mode, "quorum") == 0)
        return mode_quorum();
    fprintf(stderr, "usage: %s quit|restart|cmap|quorum\n", argv[0]);
    return 2;
}
