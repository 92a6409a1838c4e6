// SPDX-License-Identifier: BSD-3-Clause
// script.cpp - see script.hpp.
#include "script.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "harness.hpp"

namespace it {

namespace {

void on_recorded(int sig) { emit_signal(sig, instance_id()); }

void on_term_exit(int sig) {
    emit_signal(sig, instance_id());
    ::_exit(0);
}

void catch_signal(int sig, void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    (void)::sigaction(sig, &sa, nullptr);
}

// What a program executed by the instance inherits: the targets of its
// descriptors above 2, spaces replaced, comma separated.
std::string exec_fd_targets() {
    FILE *p = ::popen("for f in /proc/$$/fd/*; do n=${f##*/}; [ \"$n\" -gt 2 ] && readlink \"$f\"; done", "r");
    if (p == nullptr)
        return "<popen failed>";
    std::string out;
    char line[512];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        std::string t(line);
        while (!t.empty() && t.back() == '\n')
            t.pop_back();
        for (char &c : t)
            if (c == ' ')
                c = '_';
        out += (out.empty() ? "" : ",") + t;
    }
    ::pclose(p);
    return out.empty() ? "none" : out;
}

// The lines of /proc/self/maps.
std::vector<std::string> own_maps() {
    std::vector<std::string> lines;
    FILE *f = std::fopen("/proc/self/maps", "re");
    if (f == nullptr)
        return lines;
    char line[1024];
    while (std::fgets(line, sizeof line, f) != nullptr)
        lines.emplace_back(line);
    std::fclose(f);
    return lines;
}

int count_qb_maps() {
    int n = 0;
    for (const std::string &l : own_maps())
        if (l.find("/qb-") != std::string::npos)
            ++n;
    return n;
}

// A wild write through everything this process may write and shares with
// another process, except the page sam_hc_send() writes to anyway.
int scribble_shared_mappings() {
    struct Range {
        uintptr_t start, end;
    };
    std::vector<Range> targets; // collected first: writing changes nothing in the list
    for (const std::string &l : own_maps()) {
        unsigned long start = 0, end = 0;
        char perms[8] = {};
        if (std::sscanf(l.c_str(), "%lx-%lx %7s", &start, &end, perms) != 3)
            continue;
        if (perms[1] != 'w' || perms[3] != 's' || l.find("sam-heartbeat") != std::string::npos)
            continue;
        targets.push_back(Range{start, end});
    }
    for (const Range &r : targets)
        std::memset(reinterpret_cast<void *>(r.start), 0xa5, r.end - r.start);
    return static_cast<int>(targets.size());
}

} // namespace

int run_script(const Script &s) {
    cs_error_t err = sam_initialize(s.interval_ms, static_cast<sam_recovery_policy_t>(s.policy));
    if (err != CS_OK) {
        emit("ev=init_failed err=%d", static_cast<int>(err));
        return 90;
    }
    unsigned iid = 0;
    err = sam_register(&iid);
    // Only an instance gets here (or a supervisor on internal error).
    set_instance_id(iid);
    for (int sig : s.record)
        catch_signal(sig, on_recorded);
    if (s.exit_on_term)
        catch_signal(SIGTERM, on_term_exit);
    if (s.warn_signal != 0 && err == CS_OK)
        err = sam_warn_signal_set(s.warn_signal);
    emit("ev=reg iid=%u err=%d ppid=%d", iid, static_cast<int>(err), static_cast<int>(::getppid()));
    if (err != CS_OK)
        return 91;

    const int hc_period = s.hc_period_ms >= 0 ? s.hc_period_ms : (s.interval_ms > 3 ? s.interval_ms / 3 : 1);
    bool started = false;
    bool beating = true;
    if (s.auto_start) {
        emit("ev=starting iid=%u", iid);
        err = sam_start();
        started = err == CS_OK;
        emit("ev=started iid=%u err=%d", iid, static_cast<int>(err));
    }
    uint64_t idle_since = now_ns();
    for (;;) {
        const std::string line = command(started && beating ? hc_period : 100);
        if (started && beating)
            (void)sam_hc_send();
        if (line.empty()) {
            // Nobody told us anything for a long time: the test is gone.
            if (now_ns() - idle_since > ms(60000))
                return 99;
            continue;
        }
        idle_since = now_ns();
        const std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
        if (line == "start") {
            emit("ev=starting iid=%u", iid);
            err = sam_start();
            started = started || err == CS_OK;
            emit("ev=started iid=%u err=%d", iid, static_cast<int>(err));
        } else if (line == "stop") {
            err = sam_stop();
            if (err == CS_OK)
                started = false;
            emit("ev=stopped iid=%u err=%d", iid, static_cast<int>(err));
        } else if (line == "hang") {
            beating = false;
            emit("ev=hung iid=%u", iid);
        } else if (line == "beat") {
            beating = true;
            emit("ev=beating iid=%u", iid);
        } else if (line.rfind("exit", 0) == 0) {
            emit("ev=exiting iid=%u", iid);
            ::_exit(std::atoi(arg.c_str()));
        } else if (line.rfind("crash", 0) == 0) {
            const int sig = std::atoi(arg.c_str());
            emit("ev=exiting iid=%u sig=%d", iid, sig);
            signal(sig, SIG_DFL);
            sigset_t only;
            sigemptyset(&only);
            sigaddset(&only, sig);
            (void)::sigprocmask(SIG_UNBLOCK, &only, nullptr);
            ::kill(::getpid(), sig);
            ::_exit(98);
        } else if (line == "mark_failed") {
            emit("ev=marking iid=%u", iid);
            err = sam_mark_failed();
            emit("ev=marked iid=%u err=%d", iid, static_cast<int>(err));
        } else if (line.rfind("hc", 0) == 0) {
            const long n = std::atol(arg.c_str());
            long ok = 0;
            emit("ev=hc_begin iid=%u n=%ld", iid, n);
            for (long i = 0; i < n; ++i)
                ok += sam_hc_send() == CS_OK ? 1 : 0;
            emit("ev=hc_done iid=%u n=%ld ok=%ld", iid, n, ok);
        } else if (line == "execfds") {
            emit("ev=execfds iid=%u fds=%s", iid, exec_fd_targets().c_str());
        } else if (line == "qbmaps") {
            emit("ev=qbmaps iid=%u n=%d", iid, count_qb_maps());
        } else if (line == "scribble") {
            const int n = scribble_shared_mappings();
            emit("ev=scribbled iid=%u n=%d", iid, n);
        } else if (line.rfind("store", 0) == 0) {
            const std::string blob(static_cast<size_t>(std::atol(arg.c_str())), 's');
            err = sam_data_store(blob.data(), blob.size());
            emit("ev=stored iid=%u err=%d", iid, static_cast<int>(err));
        } else {
            emit("ev=ack iid=%u cmd=%s", iid, line.c_str());
        }
    }
}

} // namespace it
