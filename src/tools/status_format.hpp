// SPDX-License-Identifier: BSD-3-Clause
// status_format.hpp - the pure parts of `sam-run --status`: turning text that
// others chose into something safe to print, and the arithmetic on what cmap
// says. Everything shown comes from outside: any cmap writer can create
// resources.process.* keys, and the command line read from /proc belongs to
// whoever holds that pid now. So every string is escaped for the terminal or
// for JSON, numbers are checked before they are used, and nothing here can
// overflow whatever the values.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace samrun {

// `text` with everything a terminal could act on made visible: C0 and C1
// control characters, DEL and bidirectional overrides as \xHH or \u{HHHH},
// bytes that are not UTF-8 as \xHH, and '\' as "\\". Printable UTF-8 is kept.
[[nodiscard]] std::string terminal_safe(std::string_view text);

// A JSON string literal, quotes included, valid whatever `text` holds:
// control characters (also DEL, C1, bidirectional overrides, U+2028/9) as
// \uXXXX, bytes that are not UTF-8 as U+FFFD.
[[nodiscard]] std::string json_string(std::string_view text);

// The pid a key name stands for: only a canonical decimal number (no sign,
// no leading zero, no spaces) from 1 to the largest pid_t.
[[nodiscard]] std::optional<pid_t> pid_from_name(std::string_view name);

// Age in milliseconds of a cs_timestamp_get() value (monotonic ns) at `now`;
// negative when the stamp is ahead of `now`. nullopt when there is no stamp
// (absent or 0). Exact for every pair of values: no signed overflow.
[[nodiscard]] std::optional<int64_t> age_ms(std::optional<uint64_t> stamp_ns, uint64_t now_ns);

// Did a process start after `stamp_ns` (CLOCK_MONOTONIC)? Its start time is
// known in CLOCK_BOOTTIME (/proc/PID/stat), which runs ahead of the monotonic
// clock by the time spent suspended; `suspended_ns` is that difference now,
// at least as much as when the process started. The answer is "yes" only when
// certain: then the process cannot be the one that wrote `stamp_ns`.
[[nodiscard]] bool started_after(uint64_t start_boottime_ns, uint64_t suspended_ns, uint64_t stamp_ns);

// The client pid in a key of corosync's stats map that describes an IPC
// connection, "stats.ipcs.service<N>.<pid>.<connection>.<field>".
[[nodiscard]] std::optional<pid_t> client_pid_from_stats_key(std::string_view key);

// Builds one JSON object, members in the order added. Keys are ours
// (constants); values are escaped or printed as numbers.
class JsonObject {
  public:
    JsonObject &add_string(std::string_view key, const std::optional<std::string> &value);
    JsonObject &add_number(std::string_view key, std::optional<int64_t> value);
    JsonObject &add_unsigned(std::string_view key, std::optional<uint64_t> value);
    JsonObject &add_bool(std::string_view key, bool value);
    [[nodiscard]] std::string str() const { return text_ + "}"; }

  private:
    void add_raw(std::string_view key, const std::string &json);
    std::string text_ = "{";
};

} // namespace samrun
