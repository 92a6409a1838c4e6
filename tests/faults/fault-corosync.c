/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-corosync.c - corosync SIGKILLed and started again while supervisors
 * are in each state, with CMAP (and QUORUM): registered, running, during a
 * restart of the instance, and waiting for quorum. Nothing may be lost (the
 * instance keeps running, stored data survives) and the keys under
 * resources.process.<pid>. must be published again with the right state.
 *
 * Runs inside tests/corosync/with-corosync.sh (its name ends in -corosync:
 * tests/common/corosync-env.am),
 * which provides COROSYNC_CTL; keys are read with corosync-cmapctl.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultlib.h"

enum { R_REGISTERED = 1, R_STARTED, R_DATA };

static int go_pipe[2];

static void ctl(const char *what) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "\"$COROSYNC_CTL\" %s >/dev/null", what);
    if (system(cmd) != 0)
        FL_FAIL("COROSYNC_CTL %s failed", what);
}

/* The value of resources.process.<pid>.<key>, or "" if absent. */
static void cmap_get(pid_t pid, const char *key, char *out, size_t len) {
    char cmd[256], line[512];
    snprintf(cmd, sizeof cmd, "corosync-cmapctl -g resources.process.%d.%s 2>/dev/null", (int)pid, key);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return;
    if (fgets(line, sizeof line, p) != NULL) {
        char *eq = strstr(line, " = ");
        if (eq != NULL) {
            snprintf(out, len, "%s", eq + 3);
            out[strcspn(out, "\n")] = '\0';
        }
    }
    pclose(p);
}

static void expect_state(pid_t sup, const char *state, uint64_t timeout_ms, const char *when) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    char v[128];
    for (;;) {
        cmap_get(sup, "state", v, sizeof v);
        if (strcmp(v, state) == 0)
            break;
        if (tp_now_ms() > end) {
            fl_reap(sup);
            FL_FAIL("%s: state of %d is \"%s\", expected \"%s\"", when, (int)sup, v, state);
        }
        usleep(50000); /* polling corosync, with the deadline above */
    }
    char rec[64], period[64];
    cmap_get(sup, "recovery", rec, sizeof rec);
    cmap_get(sup, "poll_period", period, sizeof period);
    FL_CHECK(strcmp(rec, "restart") == 0 && strcmp(period, "500") == 0, "%s: recovery \"%s\", poll_period \"%s\"", when,
             rec, period);
    fl_note("%s: state \"%s\", recovery and poll_period published", when, state);
}

static void wait_go(void) {
    char c;
    alarm(60);
    if (read(go_pipe[0], &c, 1) != 1)
        FL_FAIL("no go from the test");
    alarm(0);
}

static void go(void) {
    if (write(go_pipe[1], "g", 1) != 1)
        FL_FAIL("write: %m");
}

/* sam_start(), retried while corosync comes back; returns the failures. */
static int start_retrying(void) {
    int failures = 0;
    cs_error_t err;
    while ((err = sam_start()) != CS_OK) {
        if (++failures > 100)
            FL_FAIL("sam_start keeps failing: %d", err);
        usleep(100000);
    }
    return failures;
}

static int cmap_supervisor(void *unused) {
    (void)unused;
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    if (sam_initialize(500, SAM_RECOVERY_POLICY_RESTART | SAM_RECOVERY_POLICY_CMAP) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    fl_report(R_REGISTERED, iid, 0);
    wait_go();
    const int failures = start_retrying();
    fl_report(R_STARTED, iid, failures);
    if (iid == 1) {
        static const char data[] = "kept across corosync and instance restarts";
        if (sam_data_store(data, sizeof data) != CS_OK)
            FL_FAIL("sam_data_store failed");
        for (;;) { /* healthy until the test says "fail now" */
            sam_hc_send();
            fd_set set;
            FD_ZERO(&set);
            FD_SET(go_pipe[0], &set);
            struct timeval tv = {0, 50 * 1000};
            char c;
            if (select(go_pipe[0] + 1, &set, NULL, NULL, &tv) > 0 && read(go_pipe[0], &c, 1) == 1)
                exit(1); /* a failure: the supervisor restarts us */
        }
    }
    char back[64] = {0};
    const int ok =
        sam_data_restore(back, sizeof back) == CS_OK && strcmp(back, "kept across corosync and instance restarts") == 0;
    fl_report(R_DATA, iid, ok);
    wait_go();
    sam_stop();
    exit(0);
}

static int quorum_supervisor(void *unused) {
    (void)unused;
    if (sam_initialize(500, SAM_RECOVERY_POLICY_QUORUM_RESTART | SAM_RECOVERY_POLICY_CMAP) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    fl_report(R_REGISTERED, iid, 0);
    const int failures = start_retrying(); /* blocks while the cluster is not quorate */
    fl_report(R_STARTED, iid, failures);
    wait_go();
    sam_stop();
    exit(0);
}

int main(void) {
    if (getenv("COROSYNC_CTL") == NULL) {
        fl_note("SKIP: run me inside tests/corosync/with-corosync.sh");
        return 77;
    }
    fl_reports_open();
    if (pipe(go_pipe) != 0)
        FL_FAIL("pipe: %m");

    /* CMAP: registered, running, during a restart. */
    pid_t sup = fl_fork(cmap_supervisor, NULL);
    struct fl_report r = fl_report_expect(R_REGISTERED, 20000);
    expect_state(sup, "stopped", 10000, "registered");
    ctl("kill");
    ctl("start");
    expect_state(sup, "stopped", 10000, "registered, after corosync was killed and started");
    go();
    r = fl_report_expect(R_STARTED, 20000);
    FL_CHECK(r.b == 0, "sam_start failed %lld times with corosync up", (long long)r.b);
    const pid_t instance1 = r.pid;
    expect_state(sup, "running", 10000, "running");

    ctl("kill");
    /* Two intervals without corosync: the healthy instance must go on. */
    usleep(1000 * 1000);
    FL_CHECK(!tp_process_gone(instance1), "the instance died while corosync was away");
    ctl("start");
    expect_state(sup, "running", 10000, "running, after corosync was killed and started");
    char lu1[64], lu2[64];
    cmap_get(sup, "last_updated", lu1, sizeof lu1);
    usleep(600 * 1000);
    cmap_get(sup, "last_updated", lu2, sizeof lu2);
    FL_CHECK(strtoull(lu2, NULL, 10) > strtoull(lu1, NULL, 10), "last_updated not refreshed (%s, %s)", lu1, lu2);
    FL_CHECK(!tp_process_gone(instance1), "the instance was killed around the corosync restart");

    /* During a restart: corosync dies, then the instance fails. */
    ctl("kill");
    go(); /* instance 1 exits 1 */
    r = fl_report_expect(R_REGISTERED, 20000);
    FL_CHECK(r.a == 2, "instance %lld after the failure, expected 2", (long long)r.a);
    ctl("start");
    go(); /* instance 2 may start */
    r = fl_report_expect(R_STARTED, 30000);
    fl_note("during a restart: instance 2's sam_start failed %lld times before corosync was back", (long long)r.b);
    expect_state(sup, "running", 10000, "instance 2 running, after corosync came back");
    r = fl_report_expect(R_DATA, 20000);
    FL_CHECK(r.b == 1, "data stored by instance 1 lost in instance 2");
    go();
    int status = 0;
    if (!fl_wait_child(sup, 20000, &status)) {
        fl_reap(sup);
        FL_FAIL("the CMAP supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "CMAP supervisor status 0x%x", status);
    char v[64];
    cmap_get(sup, "state", v, sizeof v);
    FL_CHECK(v[0] == '\0', "keys of %d left in cmap after a clean exit (state \"%s\")", (int)sup, v);

    /* QUORUM|CMAP: waiting for quorum while corosync is killed. */
    ctl("expected-votes 2");
    ctl("wait-inquorate 10");
    sup = fl_fork(quorum_supervisor, NULL);
    r = fl_report_expect(R_REGISTERED, 20000);
    expect_state(sup, "waiting for quorum", 10000, "waiting for quorum");
    ctl("kill");
    ctl("start"); /* the configuration has expected_votes 1 again: quorate */
    r = fl_report_expect(R_STARTED, 30000);
    fl_note("waiting for quorum: sam_start returned after corosync came back quorate (%lld failures)", (long long)r.b);
    expect_state(sup, "running", 10000, "quorum back, running");
    go();
    if (!fl_wait_child(sup, 20000, &status)) {
        fl_reap(sup);
        FL_FAIL("the QUORUM supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "QUORUM supervisor status 0x%x", status);
    return 0;
}
