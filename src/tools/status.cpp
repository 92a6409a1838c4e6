/*
 * status.cpp - reads resources.process.<name>.* from cmap and prints it.
 */
#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "procfs.hpp"
#include "status.hpp"

namespace samrun {

namespace {

constexpr const char *kPrefix = "resources.process.";

struct ProcessEntry {
    std::optional<std::string> state;
    std::optional<std::string> recovery;
    std::optional<uint64_t> poll_period_ms;
    std::optional<uint64_t> last_updated_ns;
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

/* The command line of a local pid, for people: names are supervisor pids. */
std::optional<std::string> command_of(const std::string &name) {
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    std::optional<std::string> read = read_small_file("/proc/" + name + "/cmdline");
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

/* For the table: the program name without its directory, to keep rows short. */
std::string short_command(const std::optional<std::string> &command) {
    if (!command) {
        return "-";
    }
    size_t end = command->find(' ');
    size_t slash = command->rfind('/', end);
    return slash == std::string::npos ? *command : command->substr(slash + 1);
}

std::string json_string(const std::string &text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

template <typename T, typename F> std::string json_or_null(const std::optional<T> &value, F format) {
    return value ? format(*value) : std::string("null");
}

/* Age in milliseconds of a cs_timestamp_get() value; negative means that the
 * key came from a clock ahead of ours (it should not happen on one node). */
std::optional<int64_t> age_ms(const std::optional<uint64_t> &stamp, uint64_t now) {
    if (!stamp || *stamp == 0) {
        return std::nullopt;
    }
    return (static_cast<int64_t>(now) - static_cast<int64_t>(*stamp)) / 1000000;
}

void print_json(const std::map<std::string, ProcessEntry> &entries, uint64_t now) {
    printf("[");
    const char *sep = "\n";
    for (const auto &[name, e] : entries) {
        auto str = [](const std::string &s) { return json_string(s); };
        auto num = [](auto v) { return std::to_string(v); };
        bool numeric = name.find_first_not_of("0123456789") == std::string::npos && !name.empty();
        printf("%s  {\"name\": %s, \"pid\": %s, \"state\": %s, \"recovery\": %s, "
               "\"poll_period_ms\": %s, \"last_updated_ns\": %s, \"last_updated_age_ms\": %s, "
               "\"command\": %s}",
               sep, json_string(name).c_str(), numeric ? name.c_str() : "null", json_or_null(e.state, str).c_str(),
               json_or_null(e.recovery, str).c_str(), json_or_null(e.poll_period_ms, num).c_str(),
               json_or_null(e.last_updated_ns, num).c_str(), json_or_null(age_ms(e.last_updated_ns, now), num).c_str(),
               json_or_null(command_of(name), str).c_str());
        sep = ",\n";
    }
    printf("%s]\n", entries.empty() ? "" : "\n");
}

std::string human_age(const std::optional<int64_t> &ms) {
    if (!ms) {
        return "never";
    }
    char buf[32];
    if (*ms < 0) {
        snprintf(buf, sizeof buf, "in %.1fs", static_cast<double>(-*ms) / 1000.0);
    } else {
        snprintf(buf, sizeof buf, "%.1fs ago", static_cast<double>(*ms) / 1000.0);
    }
    return buf;
}

void print_table(const std::map<std::string, ProcessEntry> &entries, uint64_t now) {
    if (entries.empty()) {
        printf("no supervised processes in cmap (%s*)\n", kPrefix);
        return;
    }
    printf("%-8s %-19s %-8s %-9s %-11s %s\n", "PID", "STATE", "POLICY", "PERIOD", "UPDATED", "COMMAND");
    for (const auto &[name, e] : entries) {
        std::string period = e.poll_period_ms ? std::to_string(*e.poll_period_ms) + "ms" : "-";
        printf("%-8s %-19s %-8s %-9s %-11s %s\n", name.c_str(), e.state.value_or("-").c_str(),
               e.recovery.value_or("-").c_str(), period.c_str(), human_age(age_ms(e.last_updated_ns, now)).c_str(),
               short_command(command_of(name)).c_str());
    }
}

} // namespace

int print_status(bool json) {
    auto handle = CmapHandle(new cmap_handle_t{});
    cs_error_t err = cmap_initialize(handle.get());
    if (err != CS_OK) {
        handle.release();
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
    /* last_updated is cs_timestamp_get(): CLOCK_MONOTONIC in nanoseconds when
     * corosync was built (its inline version silently falls back to the wall
     * clock unless <unistd.h> came first, so we read the clock ourselves). */
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
    if (json) {
        print_json(entries, now);
    } else {
        print_table(entries, now);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

} // namespace samrun
