// SPDX-License-Identifier: BSD-3-Clause
// procfs.hpp - reading /proc files of processes that may vanish while they
// are read. A process can end between open() and read(); the kernel then
// fails the read with ESRCH. std::ifstream turns such a read error into an
// exception (libstdc++'s filebuf throws whatever the exception mask says), so
// a foreign notify sender that exits at the wrong moment could end sam-run.
// These helpers report "nothing" instead, and callers treat that as "not ours".
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace samrun {

// The whole content of a small file (at most `limit` bytes), or nullopt if it
// cannot be opened or a read fails. Never throws except std::bad_alloc.
[[nodiscard]] std::optional<std::string> read_small_file(const std::string &path, size_t limit = 65536);

// The parent pid from the text of /proc/PID/stat ("pid (comm) S ppid ..."),
// or nullopt if the text is not in that form. comm may contain spaces and
// parentheses, so the fields are read after the last ')'.
[[nodiscard]] std::optional<pid_t> parent_from_stat(const std::string &stat);

// The start time from the same text (field 22, "starttime": clock ticks
// since boot, CLOCK_BOOTTIME), or nullopt if the text is not in that form.
[[nodiscard]] std::optional<unsigned long long> start_ticks_from_stat(const std::string &stat);

} // namespace samrun
