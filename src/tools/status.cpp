// SPDX-License-Identifier: BSD-3-Clause
// status.cpp - reads resources.process.<name>.* (libsam's keys) and
// samrun.<name>.* (sam-run's history, history.hpp) from cmap and prints them.
#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base.hpp"
#include "history.hpp"
#include "procfs.hpp"
#include "status.hpp"
#include "status_format.hpp"

namespace samrun {

namespace {

constexpr const char *kPrefix = "resources.process.";

struct ProcessEntry {
    std::optional<std::string> state;
    std::optional<std::string> recovery;
    std::optional<uint64_t> poll_period_ms;
    std::optional<uint64_t> last_updated_ns;
    // sam-run's own keys; absent for a program supervised by another
    // libsam user, or a sam-run without them.
    std::optional<uint64_t> restarts;
    std::optional<std::string> containment;
    std::optional<uint64_t> instance_started_ns; // CLOCK_MONOTONIC
    std::optional<std::string> last_failure;
    std::optional<uint64_t> last_failure_ns; // CLOCK_REALTIME
};

struct CmapCloser {
    void operator()(cmap_handle_t *handle) const {
        cmap_finalize(*handle);
        delete handle;
    }
};
using CmapHandle = std::unique_ptr<cmap_handle_t, CmapCloser>;

std::optional<std::string> get_string(cmap_handle_t handle, const std::string &key) {
    char *value = nullptr;
    if (cmap_get_string(handle, key.c_str(), &value) != CS_OK || value == nullptr) {
        return std::nullopt;
    }
    std::string copy(value);
    free(value);
    return copy;
}

std::optional<uint64_t> get_u64(cmap_handle_t handle, const std::string &key) {
    uint64_t value = 0;
    if (cmap_get_uint64(handle, key.c_str(), &value) != CS_OK) {
        return std::nullopt;
    }
    return value;
}

std::optional<uint64_t> get_u32(cmap_handle_t handle, const std::string &key) {
    uint32_t value = 0;
    if (cmap_get_uint32(handle, key.c_str(), &value) != CS_OK) {
        return std::nullopt;
    }
    return value;
}

// sam-run's history of the program supervised by `name`, if published.
void read_history(cmap_handle_t handle, const std::string &name, ProcessEntry &e) {
    std::string prefix = std::string(kHistoryPrefix) + name + ".";
    e.restarts = get_u32(handle, prefix + "restarts");
    e.containment = get_string(handle, prefix + "containment");
    e.instance_started_ns = get_u64(handle, prefix + "instance_started");
    e.last_failure = get_string(handle, prefix + "last_failure");
    e.last_failure_ns = get_u64(handle, prefix + "last_failure_time");
}

// Who holds the pid named by a key, as far as we can tell.
enum class Holder {
    Supervisor, // a process that can be the one that wrote the keys
    Gone,       // no such process, or the name is not a pid
    Other,      // the pid is used by a process that did not write them
};

struct Clocks {
    uint64_t monotonic_ns = 0;
    uint64_t suspended_ns = 0; // CLOCK_BOOTTIME - CLOCK_MONOTONIC
};

// The pids with an IPC connection to corosync right now, from its stats map
// (stats.ipcs.service<N>.<pid>.*); nullopt if that map cannot be read. A
// supervisor that publishes keys has a cmap connection as long as it runs,
// held by its link process (a child of the supervisor, see
// src/lib/link_process.hpp): the parents of those pids count too.
std::optional<std::set<pid_t>> corosync_clients() {
    cmap_handle_t raw;
    if (cmap_initialize_map(&raw, CMAP_MAP_STATS) != CS_OK) {
        return std::nullopt;
    }
    CmapHandle handle(new cmap_handle_t{raw});
    cmap_iter_handle_t iter;
    if (cmap_iter_init(*handle, "stats.ipcs.service", &iter) != CS_OK) {
        return std::nullopt;
    }
    std::set<pid_t> pids;
    char key[CMAP_KEYNAME_MAXLEN + 1];
    size_t value_len;
    cmap_value_types_t type;
    while (cmap_iter_next(*handle, iter, key, &value_len, &type) == CS_OK) {
        if (std::optional<pid_t> pid = client_pid_from_stats_key(key)) {
            pids.insert(*pid);
        }
    }
    cmap_iter_finalize(*handle, iter);
    std::set<pid_t> parents;
    for (pid_t client : pids) {
        std::optional<std::string> stat = read_small_file("/proc/" + std::to_string(client) + "/stat");
        const size_t paren = stat ? stat->rfind(')') : std::string::npos;
        int ppid = 0;
        if (paren != std::string::npos && sscanf(stat->c_str() + paren + 1, " %*c %d", &ppid) == 1 && ppid > 1) {
            parents.insert(static_cast<pid_t>(ppid));
        }
    }
    pids.insert(parents.begin(), parents.end());
    return pids;
}

// A pid is reused once its process is gone, so a live pid proves nothing by
// itself: the process must also have started before the keys' last update,
// and be connected to corosync.
Holder holder_of(std::optional<pid_t> pid, const ProcessEntry &e, const Clocks &clocks,
                 const std::optional<std::set<pid_t>> &clients) {
    if (!pid) {
        return Holder::Gone;
    }
    std::optional<std::string> stat = read_small_file("/proc/" + std::to_string(*pid) + "/stat");
    std::optional<unsigned long long> ticks = stat ? start_ticks_from_stat(*stat) : std::nullopt;
    if (!ticks) {
        return Holder::Gone;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (hz > 0 && e.last_updated_ns && *e.last_updated_ns != 0) {
        // ticks * (10^9 / hz) cannot overflow for any uptime below 500 years.
        uint64_t start_ns = static_cast<uint64_t>(*ticks) * (1000000000u / static_cast<uint64_t>(hz));
        if (started_after(start_ns, clocks.suspended_ns, *e.last_updated_ns)) {
            return Holder::Other;
        }
    }
    if (clients && clients->count(*pid) == 0) {
        return Holder::Other;
    }
    return Holder::Supervisor;
}

// The command line of the supervisor, for people; NULs become spaces.
std::optional<std::string> command_of(pid_t pid) {
    std::optional<std::string> read = read_small_file("/proc/" + std::to_string(pid) + "/cmdline");
    if (!read || read->empty()) {
        return std::nullopt;
    }
    std::string raw = std::move(*read);
    while (!raw.empty() && raw.back() == '\0') {
        raw.pop_back();
    }
    for (char &c : raw) {
        if (c == '\0') {
            c = ' ';
        }
    }
    return raw;
}

// One row, whatever the output format.
struct Row {
    std::string name;
    std::optional<pid_t> pid;
    const ProcessEntry *entry = nullptr;
    Holder holder = Holder::Gone;
    std::optional<std::string> command; // only for Holder::Supervisor
    std::optional<int64_t> age_ms;
    std::optional<int64_t> up_ms;          // since the current instance started
    std::optional<int64_t> failure_age_ms; // since the last failure
};

// For the table: the program name without its directory, to keep rows short.
std::string short_command(const Row &row) {
    switch (row.holder) {
    case Holder::Gone:
        return "[stale: supervisor gone]";
    case Holder::Other:
        return "[stale: pid now used by another process]";
    case Holder::Supervisor:
        break;
    }
    if (!row.command) {
        return "-";
    }
    size_t end = row.command->find(' ');
    size_t slash = row.command->rfind('/', end);
    return slash == std::string::npos ? *row.command : row.command->substr(slash + 1);
}

void print_json(const std::vector<Row> &rows) {
    printf("[");
    const char *sep = "\n";
    for (const Row &row : rows) {
        const ProcessEntry &e = *row.entry;
        JsonObject object;
        object.add_string("name", row.name)
            .add_number("pid", row.pid)
            .add_string("state", e.state)
            .add_string("recovery", e.recovery)
            .add_unsigned("poll_period_ms", e.poll_period_ms)
            .add_unsigned("last_updated_ns", e.last_updated_ns)
            .add_number("last_updated_age_ms", row.age_ms)
            .add_unsigned("restarts", e.restarts)
            .add_string("containment", e.containment)
            .add_unsigned("instance_started_ns", e.instance_started_ns)
            .add_number("up_ms", row.up_ms)
            .add_string("last_failure", e.last_failure)
            .add_unsigned("last_failure_time_ns", e.last_failure_ns)
            .add_number("last_failure_age_ms", row.failure_age_ms)
            .add_string("command", row.command)
            .add_bool("stale", row.holder != Holder::Supervisor);
        printf("%s  %s", sep, object.str().c_str());
        sep = ",\n";
    }
    printf("%s]\n", rows.empty() ? "" : "\n");
}

std::string human_age(const std::optional<int64_t> &ms) {
    if (!ms) {
        return "never";
    }
    char buf[32];
    if (*ms < 0) {
        snprintf(buf, sizeof buf, "in %.1fs", -static_cast<double>(*ms) / 1000.0);
    } else {
        snprintf(buf, sizeof buf, "%.1fs ago", static_cast<double>(*ms) / 1000.0);
    }
    return buf;
}

// "42.0s", "12m05s", "3h07m", "2d04h": how long, for people.
std::string human_duration(const std::optional<int64_t> &ms) {
    if (!ms || *ms < 0) {
        return "-";
    }
    char buf[32];
    int64_t s = *ms / 1000;
    if (s < 60) {
        snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(*ms) / 1000.0);
    } else if (s < 3600) {
        snprintf(buf, sizeof buf, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    } else if (s < 86400) {
        snprintf(buf, sizeof buf, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    } else {
        snprintf(buf, sizeof buf, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
    }
    return buf;
}

// "exit 3, 5.2s ago", or "-" before the first failure.
std::string failure_text(const Row &row) {
    const ProcessEntry &e = *row.entry;
    if (!e.last_failure) {
        return "-";
    }
    std::string text = terminal_safe(*e.last_failure);
    if (row.failure_age_ms) {
        text += ", " + human_age(row.failure_age_ms);
    }
    return text;
}

void print_table(const std::vector<Row> &rows) {
    if (rows.empty()) {
        printf("no supervised processes in cmap (%s*)\n", kPrefix);
        return;
    }
    printf("%-8s %-19s %-8s %-9s %-11s %-8s %-9s %-13s %-28s %s\n", "PID", "STATE", "POLICY", "PERIOD", "UPDATED",
           "RESTARTS", "UP", "CONTAINMENT", "LAST FAILURE", "COMMAND");
    for (const Row &row : rows) {
        const ProcessEntry &e = *row.entry;
        std::string period = e.poll_period_ms ? std::to_string(*e.poll_period_ms) + "ms" : "-";
        std::string restarts = e.restarts ? std::to_string(*e.restarts) : "-";
        printf("%-8s %-19s %-8s %-9s %-11s %-8s %-9s %-13s %-28s %s\n", terminal_safe(row.name).c_str(),
               terminal_safe(e.state.value_or("-")).c_str(), terminal_safe(e.recovery.value_or("-")).c_str(),
               period.c_str(), human_age(row.age_ms).c_str(), restarts.c_str(), human_duration(row.up_ms).c_str(),
               terminal_safe(e.containment.value_or("-")).c_str(), failure_text(row).c_str(),
               terminal_safe(short_command(row)).c_str());
    }
}

} // namespace

int print_status(bool json) {
    auto handle = CmapHandle(new cmap_handle_t{});
    cs_error_t err = cmap_initialize(handle.get());
    if (err != CS_OK) {
        delete handle.release(); // never initialized: nothing to finalize
        fprintf(stderr, "sam-run: cannot connect to corosync (cmap error %d): is corosync running?\n",
                static_cast<int>(err));
        return 1;
    }
    cmap_iter_handle_t iter;
    err = cmap_iter_init(*handle, kPrefix, &iter);
    if (err != CS_OK) {
        fprintf(stderr, "sam-run: cannot list cmap keys (cmap error %d)\n", static_cast<int>(err));
        return 1;
    }
    std::map<std::string, ProcessEntry> entries;
    char key[CMAP_KEYNAME_MAXLEN + 1];
    size_t value_len;
    cmap_value_types_t type;
    const size_t prefix_len = strlen(kPrefix);
    while (cmap_iter_next(*handle, iter, key, &value_len, &type) == CS_OK) {
        std::string full(key);
        std::string rest = full.substr(prefix_len);
        size_t dot = rest.rfind('.');
        if (dot == std::string::npos || dot == 0) {
            continue;
        }
        std::string name = rest.substr(0, dot);
        std::string field = rest.substr(dot + 1);
        ProcessEntry &entry = entries[name];
        if (field == "state") {
            entry.state = get_string(*handle, full);
        } else if (field == "recovery") {
            entry.recovery = get_string(*handle, full);
        } else if (field == "poll_period") {
            entry.poll_period_ms = get_u64(*handle, full);
        } else if (field == "last_updated") {
            entry.last_updated_ns = get_u64(*handle, full);
        }
    }
    cmap_iter_finalize(*handle, iter);
    // A sam-run that gave up (--max-restarts) left only its own keys, with
    // state "failed": list it too.
    if (cmap_iter_init(*handle, kHistoryPrefix, &iter) == CS_OK) {
        const size_t history_len = strlen(kHistoryPrefix);
        while (cmap_iter_next(*handle, iter, key, &value_len, &type) == CS_OK) {
            std::string rest = std::string(key).substr(history_len);
            size_t dot = rest.rfind('.');
            if (dot == std::string::npos || dot == 0 || rest.substr(dot + 1) != "state" ||
                entries.count(rest.substr(0, dot)) != 0) {
                continue;
            }
            entries[rest.substr(0, dot)].state = get_string(*handle, key);
        }
        cmap_iter_finalize(*handle, iter);
    }
    for (auto &[name, entry] : entries) {
        read_history(*handle, name, entry);
    }
    // last_updated is cs_timestamp_get(): CLOCK_MONOTONIC in nanoseconds when
    // corosync was built (its inline version silently falls back to the wall
    // clock unless <unistd.h> came first, so we read the clock ourselves).
    Clocks clocks;
    clocks.monotonic_ns = clock_ns(CLOCK_MONOTONIC);
    uint64_t boottime = clock_ns(CLOCK_BOOTTIME);
    clocks.suspended_ns = boottime > clocks.monotonic_ns ? boottime - clocks.monotonic_ns : 0;
    std::optional<std::set<pid_t>> clients = corosync_clients();
    std::vector<Row> rows;
    for (const auto &[name, e] : entries) {
        Row row;
        row.name = name;
        row.pid = pid_from_name(name);
        row.entry = &e;
        row.holder = holder_of(row.pid, e, clocks, clients);
        if (row.holder == Holder::Supervisor) {
            row.command = command_of(*row.pid);
        }
        row.age_ms = age_ms(e.last_updated_ns, clocks.monotonic_ns);
        // The history of a stale entry describes a run that is over.
        if (row.holder == Holder::Supervisor) {
            row.up_ms = age_ms(e.instance_started_ns, clocks.monotonic_ns);
        }
        row.failure_age_ms = age_ms(e.last_failure_ns, clock_ns(CLOCK_REALTIME));
        rows.push_back(std::move(row));
    }
    if (json) {
        print_json(rows);
    } else {
        print_table(rows);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

} // namespace samrun
