/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sam-bench.c - measures one property of whichever libsam.so.4 the dynamic
 * linker picked (ours or corosync's, chosen by LD_LIBRARY_PATH) and prints it
 * as one machine-readable line:
 *
 *   RESULT metric=<name> lib=<path of the loaded libsam> <key>=<value> ...
 *
 * It is written against the public C API only, so the very same binary runs
 * against both libraries; run-bench.sh alternates them and builds the table.
 *
 * Process layout of every run:
 *
 *   sam-bench (the "observer": forks the runner, waits, measures from outside)
 *     `- runner: calls sam_initialize() + sam_register(), becomes the supervisor
 *          `- instance 1, 2, ...: the code after sam_register(), does the work
 *
 * All three share one anonymous MAP_SHARED page set created before the first
 * fork, so results, handshakes and timestamps cross restarts without any
 * help from the library under test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <corosync/sam.h>

#define MAX_SAMPLES 100000
#define MIB (1024.0 * 1024.0)

/* Everything the observer, the supervisor and the instances exchange. */
struct shared {
    int done;   /* the instance has published its results */
    int failed; /* ... and they are an error message */
    char error[512];
    int phase;          /* supervisor metric: phase the instance is in */
    int command;        /* supervisor metric: phase the observer wants */
    uint64_t t_exit_ns; /* restart metric: when the last instance exited */
    uint64_t count;     /* calls made, bytes moved, ... */
    uint64_t elapsed_ns;
    uint64_t cs_cpu_ticks; /* corosync utime+stime over the measured loop */
    uint64_t cs_cpu_ns;    /* same from schedstat, nanosecond resolution */
    pid_t instance_pid;    /* supervisor-memory metric: the instance now measured around */
    int nsamples;
    int64_t samples[MAX_SAMPLES];
};

static struct shared *sh;

/* Options. */
static long opt_count = -1;     /* samples / iterations, metric-specific default */
static double opt_seconds = -1; /* duration of timed loops */
static pid_t corosync_pid;
static const char *expect_lib;
static char lib_path[PATH_MAX];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int load_flag(const int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static void store_flag(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

/*
 * Called in an instance (or the runner) when something went wrong: the
 * message travels to the observer through the shared page and the process
 * leaves. The observer then kills the whole process group, so whatever the
 * supervisor does about this exit (a restart) does no harm.
 */
static void instance_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->error, sizeof(sh->error), fmt, ap);
    va_end(ap);
    store_flag(&sh->failed, 1);
    store_flag(&sh->done, 1);
    _exit(3);
}

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        cs_error_t err_ = (call);                                                                                      \
        if (err_ != CS_OK)                                                                                             \
            instance_fail("%s returned %d", #call, (int)err_);                                                         \
    } while (0)

static void instance_done(void) { store_flag(&sh->done, 1); }

/* ---- /proc readers -------------------------------------------------- */

/* The libsam.so actually mapped into this process, from /proc/self/maps. */
static int find_loaded_libsam(char *out, size_t outlen) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256];
    int found = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *path = strchr(line, '/');
        if (path == NULL)
            continue;
        path[strcspn(path, "\n")] = '\0';
        const char *base = strrchr(path, '/') + 1;
        if (strncmp(base, "libsam.so", 9) != 0)
            continue;
        if (found && strcmp(out, path) != 0) {
            /* Two different libsam copies: the comparison would be meaningless. */
            fclose(f);
            return -2;
        }
        snprintf(out, outlen, "%s", path);
        found = 1;
    }
    fclose(f);
    return found ? 0 : -1;
}

/* utime + stime of a whole process (all threads), in clock ticks. */
static int64_t proc_cpu_ticks(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long utime = 0, stime = 0;
    /* After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
     * stime(15) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (int64_t)(utime + stime);
}

/* CPU time of a whole process in ns: sum of its threads' schedstat run time. */
static int64_t proc_cpu_ns(pid_t pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char spath[300];
        snprintf(spath, sizeof(spath), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(spath, "r");
        if (f == NULL)
            continue; /* thread ended meanwhile */
        unsigned long long run = 0;
        if (fscanf(f, "%llu", &run) == 1)
            total += (int64_t)run;
        fclose(f);
    }
    closedir(d);
    return total;
}

/* VmRSS of a process in KiB. */
static long proc_rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long rss = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &rss) == 1)
            break;
    fclose(f);
    return rss;
}

/* Pss and Private_Dirty of a process in KiB, from /proc/PID/smaps_rollup. */
static int proc_pss_kib(pid_t pid, long *pss, long *dirty) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    *pss = *dirty = -1;
    long v;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Pss: %ld", &v) == 1)
            *pss = v;
        else if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
            *dirty = v;
    }
    fclose(f);
    return *pss < 0 || *dirty < 0 ? -1 : 0;
}

/*
 * The same summed over the children of `parent` other than `except`: the
 * helper processes a supervisor keeps (a corosync link, a descriptor sink).
 */
static int helpers_pss_kib(pid_t parent, pid_t except, long *pss, long *dirty, int *count) {
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    *pss = *dirty = 0;
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == except)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        const size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *paren = strrchr(buf, ')');
        int ppid = 0;
        if (paren == NULL || sscanf(paren + 1, " %*c %d", &ppid) != 1 || ppid != parent)
            continue;
        long p, dd;
        if (proc_pss_kib(pid, &p, &dd) != 0)
            continue;
        *pss += p;
        *dirty += dd;
        ++*count;
    }
    closedir(d);
    return 0;
}

/* ---- small helpers ---------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples (p in 0..100). */
static int64_t percentile(const int64_t *sorted, int n, double p) {
    if (n <= 0)
        return 0;
    long rank = (long)((p / 100.0) * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static double seconds_or(double dflt) { return opt_seconds > 0 ? opt_seconds : dflt; }

static long count_or(long dflt) {
    long n = opt_count > 0 ? opt_count : dflt;
    return n > MAX_SAMPLES ? MAX_SAMPLES : n;
}

static void *alloc_touched(size_t size, unsigned char fill) {
    void *p = malloc(size);
    if (p == NULL)
        instance_fail("out of memory for %zu bytes", size);
    memset(p, fill, size);
    return p;
}

/* ---- metrics, instance side ------------------------------------------- */

/*
 * sam_hc_send cost. The loop is timed until a synchronous barrier
 * (sam_stop, then a one-byte sam_data_store round trip) so that heartbeats
 * still queued towards the supervisor -- and, with CMAP, towards corosync --
 * are paid for inside the measurement rather than after it.
 */
static void instance_hc(int with_cmap) {
    const double secs = seconds_or(with_cmap ? 2.0 : 1.0);
    int64_t cs_ticks0 = 0, cs_ns0 = 0;

    CHECK(sam_start());
    for (int i = 0; i < 10000; i++)
        CHECK(sam_hc_send());

    if (with_cmap && corosync_pid > 0) {
        cs_ticks0 = proc_cpu_ticks(corosync_pid);
        cs_ns0 = proc_cpu_ns(corosync_pid);
    }
    const uint64_t t0 = now_ns();
    const uint64_t limit = t0 + (uint64_t)(secs * 1e9);
    uint64_t calls = 0;
    do {
        for (int i = 0; i < 1024; i++)
            CHECK(sam_hc_send());
        calls += 1024;
    } while (now_ns() < limit);
    CHECK(sam_stop());
    const char byte = 1;
    CHECK(sam_data_store(&byte, 1));
    const uint64_t t1 = now_ns();
    if (with_cmap && corosync_pid > 0) {
        sh->cs_cpu_ticks = (uint64_t)(proc_cpu_ticks(corosync_pid) - cs_ticks0);
        sh->cs_cpu_ns = (uint64_t)(proc_cpu_ns(corosync_pid) - cs_ns0);
    }
    sh->count = calls;
    sh->elapsed_ns = t1 - t0;
    instance_done();
    exit(0);
}

/* sam_data_store of one size, repeated for a fixed time, from instance 1. */
static void instance_store(size_t size) {
    const double secs = seconds_or(1.0);
    const long min_iter = 3;
    unsigned char *buf = alloc_touched(size, 0x5a);

    CHECK(sam_data_store(buf, size)); /* warm-up, not timed */
    uint64_t iters = 0;
    const uint64_t t0 = now_ns();
    const uint64_t limit = t0 + (uint64_t)(secs * 1e9);
    uint64_t t1;
    do {
        buf[iters % size] ^= 1; /* never the same blob twice */
        CHECK(sam_data_store(buf, size));
        iters++;
        t1 = now_ns();
    } while (t1 < limit || iters < (uint64_t)min_iter);
    sh->count = iters;
    sh->elapsed_ns = t1 - t0;
    instance_done();
    exit(0);
}

/*
 * sam_data_restore of one size, in instance 2, of data stored by instance 1:
 * the realistic case (state carried over a restart).
 */
static void instance_restore(unsigned int iid, size_t size) {
    if (iid == 1) {
        unsigned char *buf = alloc_touched(size, 0);
        for (size_t i = 0; i < size; i++)
            buf[i] = (unsigned char)(i * 131u + 7u);
        CHECK(sam_data_store(buf, size));
        CHECK(sam_start());
        _exit(1); /* a failure after sam_start: the supervisor restarts us */
    }
    if (iid != 2)
        instance_fail("restore: unexpected instance id %u", iid);

    size_t stored = 0;
    CHECK(sam_data_getsize(&stored));
    if (stored != size)
        instance_fail("restore: sam_data_getsize gave %zu, expected %zu", stored, size);

    const double secs = seconds_or(1.0);
    unsigned char *buf = alloc_touched(size, 0);
    uint64_t iters = 0;
    const uint64_t t0 = now_ns();
    const uint64_t limit = t0 + (uint64_t)(secs * 1e9);
    uint64_t t1;
    do {
        CHECK(sam_data_restore(buf, size));
        iters++;
        t1 = now_ns();
    } while (t1 < limit || iters < 3);
    for (size_t i = 0; i < size; i += 4093)
        if (buf[i] != (unsigned char)(i * 131u + 7u))
            instance_fail("restore: byte %zu differs from what instance 1 stored", i);
    if (buf[size - 1] != (unsigned char)((size - 1) * 131u + 7u))
        instance_fail("restore: last byte differs from what instance 1 stored");
    sh->count = iters;
    sh->elapsed_ns = t1 - t0;
    instance_done();
    exit(0);
}

/*
 * The first sam_data_restore in a fresh instance: instance 1 stores, then
 * each restarted instance times its very first restore (into a buffer it
 * touched beforehand, so only the library's work is timed) and fails, which
 * makes the next. This is what a program that reloads its state at start
 * pays; the restore metric above times restores in an instance that already
 * restored once.
 */
static void instance_first_restore(unsigned int iid, size_t size) {
    const long n = count_or(20);
    if (iid == 1) {
        unsigned char *buf = alloc_touched(size, 0);
        for (size_t i = 0; i < size; i++)
            buf[i] = (unsigned char)(i * 131u + 7u);
        CHECK(sam_data_store(buf, size));
        free(buf);
        CHECK(sam_start());
        _exit(1);
    }
    unsigned char *buf = alloc_touched(size, 0);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const uint64_t t0 = now_ns();
    CHECK(sam_data_restore(buf, size));
    const uint64_t t1 = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    sh->count += (uint64_t)(ru1.ru_minflt - ru0.ru_minflt); /* page faults inside the restore */
    for (size_t i = 0; i < size; i += 4093)
        if (buf[i] != (unsigned char)(i * 131u + 7u))
            instance_fail("first restore: byte %zu differs from what instance 1 stored", i);
    const long idx = (long)iid - 2;
    if (idx >= MAX_SAMPLES)
        instance_fail("first restore: instance id %u out of range", iid);
    sh->samples[idx] = (int64_t)(t1 - t0);
    sh->nsamples = (int)(idx + 1);
    if (idx + 1 >= n) {
        instance_done();
        exit(0);
    }
    CHECK(sam_start());
    _exit(1);
}

/*
 * Supervisor memory: instance 1 waits while the observer reads the
 * supervisor (and its helper processes) at idle, then RESTARTS more
 * instances fail at once; the last one waits for the second reading.
 */
static void instance_supervisor_memory(unsigned int iid) {
    const long restarts = opt_count > 0 ? opt_count : 1000;
    CHECK(sam_start());
    if (iid != 1 && (long)iid <= restarts)
        _exit(1);
    const int phase = iid == 1 ? 1 : 2;
    sh->instance_pid = getpid();
    store_flag(&sh->phase, phase);
    while (load_flag(&sh->command) <= phase)
        sleep_ns(1000000);
    if (phase == 1)
        _exit(1);
    CHECK(sam_stop());
    instance_done();
    exit(0);
}

/*
 * Restart latency: instance k stamps the time and exits (after sam_start, so
 * it is a failure to recover from); instance k+1 measures how long after that
 * stamp it got back from sam_register. The last one exits before sam_start,
 * which ends the supervisor. With `life_us`, each instance runs that long
 * after sam_start before it fails (the stamp is taken after it): an instance
 * that fails the moment it has started is the worst case, one that has run
 * for a millisecond the usual one.
 */
static void instance_restart(unsigned int iid, size_t life_us) {
    const uint64_t t = now_ns();
    const long n = count_or(300);

    if (iid > 1) {
        const long idx = (long)iid - 2;
        if (idx >= MAX_SAMPLES)
            instance_fail("restart: instance id %u out of range", iid);
        sh->samples[idx] = (int64_t)(t - sh->t_exit_ns);
        sh->nsamples = (int)(idx + 1);
    }
    if ((long)iid > n) {
        instance_done();
        exit(0);
    }
    CHECK(sam_start());
    if (life_us > 0) {
        const struct timespec life = {0, (long)life_us * 1000L};
        nanosleep(&life, NULL);
    }
    sh->t_exit_ns = now_ns();
    _exit(1);
}

static volatile sig_atomic_t warn_arrived;
static uint64_t warn_at_ns;

static void on_warn(int sig) {
    (void)sig;
    if (!warn_arrived) {
        warn_at_ns = now_ns(); /* clock_gettime is async-signal-safe */
        warn_arrived = 1;
    }
}

/*
 * Hang detection: a few health checks, then silence. The error is how late
 * the warn signal came relative to the deadline (last check + interval).
 */
static void instance_hang(unsigned int iid, int interval_ms) {
    const long n = count_or(30);
    struct sigaction sa;
    sigset_t block, old;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_warn;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0)
        instance_fail("sigaction: %s", strerror(errno));
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);

    CHECK(sam_start());
    uint64_t last_hc = 0;
    for (int i = 0; i < 5; i++) {
        sleep_ns(10 * 1000000u);
        /*
         * Stamped before the call: on one CPU the supervisor may run (and
         * arm its deadline) before sam_hc_send() returns to us.
         */
        last_hc = now_ns();
        CHECK(sam_hc_send());
    }
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!warn_arrived)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);

    const long idx = (long)iid - 1;
    if (idx < MAX_SAMPLES) {
        sh->samples[idx] = (int64_t)(warn_at_ns - last_hc) - (int64_t)interval_ms * 1000000;
        sh->nsamples = (int)(idx + 1);
    }
    if ((long)iid >= n) {
        CHECK(sam_stop());
        instance_done();
        exit(0);
    }
    _exit(1); /* next sample in the next instance */
}

/*
 * Supervisor cost: phase 1 heartbeats every 250 ms ("idle"), phase 2 every
 * millisecond ("busy"). The observer measures the supervisor from outside and
 * moves the instance between phases through the shared page.
 */
static void instance_supervisor_load(void) {
    CHECK(sam_start());
    uint64_t hb = 0;
    for (int phase = 1; phase <= 2; phase++) {
        const uint64_t period = phase == 1 ? 250 * 1000000u : 1000000u;
        struct timespec next;
        clock_gettime(CLOCK_MONOTONIC, &next);
        store_flag(&sh->phase, phase);
        hb = 0;
        while (load_flag(&sh->command) <= phase) {
            CHECK(sam_hc_send());
            hb++;
            next.tv_nsec += (long)period;
            while (next.tv_nsec >= 1000000000L) {
                next.tv_nsec -= 1000000000L;
                next.tv_sec++;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
                ;
        }
    }
    sh->count = hb;
    CHECK(sam_stop());
    instance_done();
    exit(0);
}

/*
 * What the machine itself charges for a restart, with no libsam call at all:
 * a child stamps the time and exits, its parent reaps it and forks the next,
 * which measures the gap. Same clock, same process shape as the restart
 * metric; it puts the restart numbers of both libraries in proportion.
 */
static int measure_fork_floor(void) {
    const long n = count_or(300);
    for (long i = 0; i < n; i++) {
        pid_t a = fork();
        if (a < 0)
            return -1;
        if (a == 0) {
            sh->t_exit_ns = now_ns();
            _exit(1);
        }
        if (waitpid(a, NULL, 0) != a)
            return -1;
        pid_t b = fork();
        if (b < 0)
            return -1;
        if (b == 0) {
            sh->samples[i] = (int64_t)(now_ns() - sh->t_exit_ns);
            _exit(0);
        }
        if (waitpid(b, NULL, 0) != b)
            return -1;
        sh->nsamples = (int)(i + 1);
    }
    return 0;
}

/* ---- metric table ----------------------------------------------------- */

enum kind { HC, STORE, RESTORE, FIRST_RESTORE, RESTART, HANG, SUPERVISOR, SUPERVISOR_MEMORY, FORK_FLOOR };

struct metric_def {
    const char *name;
    enum kind kind;
    int cmap;
    size_t size;
    int interval_ms;
    const char *what;
};

static const struct metric_def metrics[] = {
    {"hc", HC, 0, 0, 1000, "sam_hc_send cost, RESTART"},
    {"hc-cmap", HC, 1, 0, 1000, "sam_hc_send cost and corosync CPU, RESTART|CMAP"},
    {"store-64", STORE, 0, 64, 0, "sam_data_store of 64 B from an instance"},
    {"store-64k", STORE, 0, 64u << 10, 0, "sam_data_store of 64 KiB from an instance"},
    {"store-1m", STORE, 0, 1u << 20, 0, "sam_data_store of 1 MiB from an instance"},
    {"store-64m", STORE, 0, 64u << 20, 0, "sam_data_store of 64 MiB from an instance"},
    {"restore-1m", RESTORE, 0, 1u << 20, 0, "sam_data_restore of 1 MiB after a restart"},
    {"restore-64m", RESTORE, 0, 64u << 20, 0, "sam_data_restore of 64 MiB after a restart"},
    {"first-restore-1m", FIRST_RESTORE, 0, 1u << 20, 0,
     "first sam_data_restore of 1 MiB in each fresh instance after a restart"},
    {"first-restore-64m", FIRST_RESTORE, 0, 64u << 20, 0,
     "first sam_data_restore of 64 MiB in each fresh instance after a restart"},
    {"restart", RESTART, 0, 0, 0, "instance exit -> next instance back from sam_register"},
    {"restart-cmap", RESTART, 1, 0, 0, "same, RESTART|CMAP"},
    {"restart-warm", RESTART, 0, 1000, 0, "same, each instance failing 1 ms after sam_start"},
    {"restart-warm-cmap", RESTART, 1, 1000, 0, "same, RESTART|CMAP"},
    {"hang", HANG, 0, 0, 100, "warn signal lateness after the last health check, 100 ms interval"},
    {"supervisor", SUPERVISOR, 0, 0, 1000, "supervisor RSS and CPU, idle and 1 kHz heartbeats"},
    {"supmem", SUPERVISOR_MEMORY, 0, 0, 0,
     "supervisor (and helper processes) Pss/Private_Dirty, idle and after 1,000 restarts"},
    {"supmem-cmap", SUPERVISOR_MEMORY, 1, 0, 0, "same, RESTART|CMAP"},
    {"fork-floor", FORK_FLOOR, 0, 0, 0, "reference without libsam: child exits -> waitpid -> next child runs"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: sam-bench METRIC [-n COUNT] [-t SECONDS] [--corosync-pid PID] [--expect-lib PATH]\n"
                 "Measures one metric against the libsam.so.4 that LD_LIBRARY_PATH selects and prints\n"
                 "  RESULT metric=METRIC lib=PATH key=value ...\n"
                 "  -n COUNT            samples (restart: 300, hang: 30, first-restore: 20),\n"
                 "                      restarts (supmem: 1000)\n"
                 "  -t SECONDS          length of timed loops (hc: 1, hc-cmap: 2, store/restore: 1,\n"
                 "                      supervisor: 3 per phase)\n"
                 "  --corosync-pid PID  corosync to charge CPU to in hc-cmap (default: $COROSYNC_PID)\n"
                 "  --expect-lib PATH   fail unless the loaded libsam resolves to this file or lies in\n"
                 "                      this directory\n"
                 "metrics:\n");
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
        fprintf(out, "  %-13s %s\n", metrics[i].name, metrics[i].what);
}

/* ---- observer side ---------------------------------------------------- */

static pid_t runner_pid;

static void kill_runner_group(void) {
    if (runner_pid > 0)
        kill(-runner_pid, SIGKILL);
}

static void print_head(const struct metric_def *m) { printf("RESULT metric=%s lib=%s", m->name, lib_path); }

static void report_error(const struct metric_def *m, const char *msg) {
    print_head(m);
    printf(" error=\"");
    for (const char *p = msg; *p; p++)
        putchar(*p == '"' ? '\'' : *p);
    printf("\"\n");
    fflush(stdout);
}

/*
 * Waits until the instance set `done` or the supervisor exited. Returns the
 * supervisor's wait status through *status when it did exit, else -1.
 */
static int wait_done(double timeout_s, int *status) {
    const uint64_t limit = now_ns() + (uint64_t)(timeout_s * 1e9);
    *status = -1;
    while (!load_flag(&sh->done)) {
        int st;
        pid_t r = waitpid(runner_pid, &st, WNOHANG);
        if (r == runner_pid) {
            *status = st;
            /* The instance may have published just before its supervisor left. */
            return load_flag(&sh->done) ? 0 : -1;
        }
        if (now_ns() > limit)
            return -2;
        /* Rarely: the observer shares the pinned CPU with what it measures. */
        sleep_ns(20000000);
    }
    return 0;
}

/* After the results are in: give the supervisor a few seconds to exit on its own. */
static const char *reap_runner(int status) {
    static char buf[64];
    if (status == -1) {
        const uint64_t limit = now_ns() + 5000000000ull;
        for (;;) {
            pid_t r = waitpid(runner_pid, &status, WNOHANG);
            if (r == runner_pid)
                break;
            if (now_ns() > limit) {
                kill_runner_group();
                waitpid(runner_pid, &status, 0);
                return "killed";
            }
            sleep_ns(1000000);
        }
    }
    /* Instances left behind (they should not be) go with the group. */
    kill_runner_group();
    if (WIFEXITED(status))
        snprintf(buf, sizeof(buf), "%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof(buf), "sig%d", WTERMSIG(status));
    else
        snprintf(buf, sizeof(buf), "?");
    return buf;
}

static void sample_stats(const char *unit_key, double scale) {
    int n = sh->nsamples;
    qsort(sh->samples, (size_t)n, sizeof(sh->samples[0]), cmp_i64);
    printf(" n=%d median_%s=%.3f p99_%s=%.3f max_%s=%.3f min_%s=%.3f", n, unit_key,
           percentile(sh->samples, n, 50) / scale, unit_key, percentile(sh->samples, n, 99) / scale, unit_key,
           n ? sh->samples[n - 1] / scale : 0.0, unit_key, n ? sh->samples[0] / scale : 0.0);
}

/* The supervisor metric: sample the supervisor during each phase. */
static int measure_supervisor(double secs, double *cpu_pct, long *rss) {
    for (int phase = 1; phase <= 2; phase++) {
        const uint64_t limit = now_ns() + 10000000000ull;
        while (load_flag(&sh->phase) < phase) {
            if (load_flag(&sh->done) || now_ns() > limit)
                return -1;
            sleep_ns(1000000);
        }
        sleep_ns(300000000); /* settle */
        const int64_t c0 = proc_cpu_ns(runner_pid);
        const uint64_t t0 = now_ns();
        sleep_ns((uint64_t)(secs * 1e9));
        const int64_t c1 = proc_cpu_ns(runner_pid);
        const uint64_t t1 = now_ns();
        rss[phase - 1] = proc_rss_kib(runner_pid);
        if (c0 < 0 || c1 < 0 || rss[phase - 1] < 0)
            return -1;
        cpu_pct[phase - 1] = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
        store_flag(&sh->command, phase + 1);
    }
    return 0;
}

/*
 * The supervisor-memory metric: in each phase, once the instance says it
 * waits, the supervisor and its helper processes (every other child of it)
 * are read. mem[phase] = supervisor Pss, Private_Dirty, helpers' Pss,
 * Private_Dirty (KiB).
 */
static int measure_supervisor_memory(long mem[2][4], int helpers[2]) {
    for (int phase = 1; phase <= 2; phase++) {
        const uint64_t limit = now_ns() + 60000000000ull;
        while (load_flag(&sh->phase) < phase) {
            if (load_flag(&sh->done) || now_ns() > limit)
                return -1;
            sleep_ns(1000000);
        }
        sleep_ns(300000000); /* settle: deferred log lines, cmap writes */
        if (proc_pss_kib(runner_pid, &mem[phase - 1][0], &mem[phase - 1][1]) != 0 ||
            helpers_pss_kib(runner_pid, sh->instance_pid, &mem[phase - 1][2], &mem[phase - 1][3],
                            &helpers[phase - 1]) != 0)
            return -1;
        store_flag(&sh->command, phase + 1);
    }
    return 0;
}

int main(int argc, char **argv) {
    const struct metric_def *m = NULL;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *metric = argv[1];
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
        if (strcmp(metrics[i].name, metric) == 0)
            m = &metrics[i];
    if (m == NULL) {
        fprintf(stderr, "sam-bench: unknown metric '%s'\n", metric);
        usage(stderr);
        return 2;
    }
    if (getenv("COROSYNC_PID") != NULL)
        corosync_pid = (pid_t)atoi(getenv("COROSYNC_PID"));
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            opt_count = atol(argv[++i]);
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            opt_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--corosync-pid") == 0 && i + 1 < argc)
            corosync_pid = (pid_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--expect-lib") == 0 && i + 1 < argc)
            expect_lib = argv[++i];
        else {
            fprintf(stderr, "sam-bench: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    int r = find_loaded_libsam(lib_path, sizeof(lib_path));
    if (r != 0) {
        fprintf(stderr, "sam-bench: %s\n",
                r == -2 ? "two different libsam.so mapped" : "no libsam.so in /proc/self/maps");
        return 2;
    }
    fprintf(stderr, "sam-bench: %s uses %s\n", m->name, lib_path);
    if (expect_lib != NULL) {
        char want[PATH_MAX], got[PATH_MAX];
        if (realpath(expect_lib, want) == NULL || realpath(lib_path, got) == NULL) {
            fprintf(stderr, "sam-bench: cannot resolve %s or %s\n", expect_lib, lib_path);
            return 2;
        }
        size_t wl = strlen(want);
        int ok = strcmp(want, got) == 0 ||
                 (strncmp(want, got, wl) == 0 && got[wl] == '/' && strchr(got + wl + 1, '/') == NULL);
        if (!ok) {
            report_error(m, "loaded libsam is not the expected one");
            fprintf(stderr, "sam-bench: loaded %s, expected %s\n", got, want);
            return 2;
        }
    }

    /* Ours backs off crash loops; the restart metrics want every restart at once. */
    setenv("SAM_RESTART_DELAY_MS", "0", 0);

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("sam-bench: mmap");
        return 2;
    }

    if (m->kind == FORK_FLOOR) {
        if (measure_fork_floor() != 0) {
            report_error(m, "fork or waitpid failed");
            return 1;
        }
        print_head(m);
        sample_stats("us", 1e3);
        printf("\n");
        return 0;
    }

    /*
     * corosync is never quite idle (totem, timers): its CPU rate with no
     * client, measured now, is subtracted to give what the heartbeats cost.
     */
    double cs_idle_ns_per_s = 0;
    if (m->kind == HC && m->cmap && corosync_pid > 0) {
        const int64_t c0 = proc_cpu_ns(corosync_pid);
        const uint64_t t0 = now_ns();
        sleep_ns(1000000000u);
        cs_idle_ns_per_s = (double)(proc_cpu_ns(corosync_pid) - c0) * 1e9 / (double)(now_ns() - t0);
    }

    sam_recovery_policy_t policy = SAM_RECOVERY_POLICY_RESTART;
    if (m->cmap)
        policy |= SAM_RECOVERY_POLICY_CMAP;

    fflush(NULL);
    runner_pid = fork();
    if (runner_pid < 0) {
        perror("sam-bench: fork");
        return 2;
    }
    if (runner_pid == 0) {
        /* Runner: its own process group so the observer can clean up everything. */
        setpgid(0, 0);
        unsigned int iid = 0;
        cs_error_t err = sam_initialize(m->interval_ms, policy);
        if (err != CS_OK)
            instance_fail("sam_initialize returned %d", (int)err);
        err = sam_register(&iid);
        if (err != CS_OK)
            instance_fail("sam_register returned %d", (int)err);
        /* From here on: an instance. */
        switch (m->kind) {
        case HC:
            instance_hc(m->cmap);
            break;
        case STORE:
            instance_store(m->size);
            break;
        case RESTORE:
            instance_restore(iid, m->size);
            break;
        case FIRST_RESTORE:
            instance_first_restore(iid, m->size);
            break;
        case SUPERVISOR_MEMORY:
            instance_supervisor_memory(iid);
            break;
        case RESTART:
            instance_restart(iid, m->size);
            break;
        case HANG:
            instance_hang(iid, m->interval_ms);
            break;
        case SUPERVISOR:
            instance_supervisor_load();
            break;
        case FORK_FLOOR:
            break;
        }
        _exit(4);
    }
    setpgid(runner_pid, runner_pid); /* no race with the child's own call */

    double cpu_pct[2] = {0, 0};
    long rss[2] = {0, 0};
    int measured = 0;
    if (m->kind == SUPERVISOR)
        measured = measure_supervisor(seconds_or(3.0), cpu_pct, rss);
    long mem[2][4] = {{0}};
    int helpers[2] = {0, 0};
    if (m->kind == SUPERVISOR_MEMORY)
        measured = measure_supervisor_memory(mem, helpers);

    int status;
    r = wait_done(120.0, &status);
    if (r != 0 || load_flag(&sh->failed) || measured != 0) {
        char msg[700];
        if (load_flag(&sh->failed))
            snprintf(msg, sizeof(msg), "%s", sh->error);
        else if (r == -2)
            snprintf(msg, sizeof(msg), "timed out waiting for the instance");
        else if (measured != 0)
            snprintf(msg, sizeof(msg), "could not follow the supervisor's phases");
        else
            snprintf(msg, sizeof(msg), "supervisor ended (status 0x%x) before the instance finished", (unsigned)status);
        kill_runner_group();
        waitpid(runner_pid, NULL, 0);
        report_error(m, msg);
        return 1;
    }
    const char *sup_exit = reap_runner(status);

    print_head(m);
    const double secs = (double)sh->elapsed_ns / 1e9;
    switch (m->kind) {
    case HC:
        printf(" calls=%llu ns_per_call=%.2f", (unsigned long long)sh->count,
               (double)sh->elapsed_ns / (double)sh->count);
        if (m->cmap && corosync_pid > 0) {
            const double tick_ms = 1000.0 / (double)sysconf(_SC_CLK_TCK);
            const double hb = (double)sh->count;
            const double elapsed_s = (double)sh->elapsed_ns / 1e9;
            double net_ns = (double)sh->cs_cpu_ns - cs_idle_ns_per_s * elapsed_s;
            if (net_ns < 0)
                net_ns = 0;
            printf(" cs_cpu_ms=%.1f cs_cpu_ms_per_100k=%.3f cs_sched_ms=%.3f"
                   " cs_sched_ms_per_100k=%.4f cs_net_ms_per_100k=%.4f cs_cpu_pct=%.3f"
                   " cs_idle_pct=%.3f",
                   sh->cs_cpu_ticks * tick_ms, sh->cs_cpu_ticks * tick_ms * 1e5 / hb, sh->cs_cpu_ns / 1e6,
                   sh->cs_cpu_ns / 1e6 * 1e5 / hb, net_ns / 1e6 * 1e5 / hb,
                   100.0 * (double)sh->cs_cpu_ns / (double)sh->elapsed_ns, 100.0 * cs_idle_ns_per_s / 1e9);
        }
        break;
    case STORE:
    case RESTORE:
        printf(" size=%zu iterations=%llu ops_per_s=%.1f mib_per_s=%.1f", m->size, (unsigned long long)sh->count,
               (double)sh->count / secs, (double)sh->count * (double)m->size / MIB / secs);
        break;
    case RESTART:
        sample_stats("us", 1e3);
        break;
    case FIRST_RESTORE:
        sample_stats("us", 1e3);
        if (sh->nsamples > 0)
            printf(" size=%zu mib_per_s=%.1f faults_per_restore=%.1f", m->size,
                   (double)m->size / MIB / (percentile(sh->samples, sh->nsamples, 50) / 1e9),
                   (double)sh->count / sh->nsamples);
        break;
    case SUPERVISOR_MEMORY:
        for (int i = 0; i < 2; i++)
            printf(" %s_sup_pss_kib=%ld %s_sup_dirty_kib=%ld %s_helpers=%d %s_helpers_pss_kib=%ld"
                   " %s_helpers_dirty_kib=%ld %s_sum_pss_kib=%ld %s_sum_dirty_kib=%ld",
                   i ? "restarted" : "idle", mem[i][0], i ? "restarted" : "idle", mem[i][1], i ? "restarted" : "idle",
                   helpers[i], i ? "restarted" : "idle", mem[i][2], i ? "restarted" : "idle", mem[i][3],
                   i ? "restarted" : "idle", mem[i][0] + mem[i][2], i ? "restarted" : "idle", mem[i][1] + mem[i][3]);
        break;
    case HANG:
        sample_stats("ms", 1e6);
        break;
    case SUPERVISOR:
        printf(" idle_rss_kib=%ld idle_cpu_pct=%.4f busy_rss_kib=%ld busy_cpu_pct=%.4f "
               "busy_heartbeats=%llu",
               rss[0], cpu_pct[0], rss[1], cpu_pct[1], (unsigned long long)sh->count);
        break;
    case FORK_FLOOR:
        break;
    }
    printf(" sup_exit=%s\n", sup_exit);
    return 0;
}
