// SPDX-License-Identifier: BSD-3-Clause
// status_format.cpp - see status_format.hpp.
#include <limits>
#include <type_traits>

#include "status_format.hpp"

namespace samrun {

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` and its code
// point, or 0 if it is not one (overlong forms, surrogates and values above
// U+10FFFF are not).
size_t decode_utf8(std::string_view s, char32_t &cp) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char b0 = byte(0);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    size_t len;
    char32_t min;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (s.size() < len) {
        return 0;
    }
    for (size_t i = 1; i < len; ++i) {
        if ((byte(i) & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (byte(i) & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

// Code points a terminal acts on or that reorder what is shown around them.
bool is_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

// `value` as `width` lower-case hex digits (the escapes need at most 4).
std::string hex(unsigned value, int width) {
    static const char digits[] = "0123456789abcdef";
    std::string out(static_cast<size_t>(width), '0');
    for (int i = width - 1; i >= 0; --i, value >>= 4) {
        out[static_cast<size_t>(i)] = digits[value & 0xf];
    }
    return out;
}

// Digits only, as the whole of `s`, into `out` without overflow.
template <typename T> bool parse_decimal(std::string_view s, T &out) {
    static_assert(std::is_unsigned_v<T>);
    if (s.empty()) {
        return false;
    }
    T value = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        T digit = static_cast<T>(c - '0');
        if (value > (std::numeric_limits<T>::max() - digit) / 10) {
            return false;
        }
        value = static_cast<T>(value * 10 + digit);
    }
    out = value;
    return true;
}

} // namespace

std::string terminal_safe(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        char32_t cp;
        size_t len = decode_utf8(text, cp);
        if (len == 0) {
            out += "\\x" + hex(static_cast<unsigned char>(text[0]), 2);
            len = 1;
        } else if (cp == '\\') {
            out += "\\\\";
        } else if (is_control(cp)) {
            out += cp < 0x80 ? "\\x" + hex(cp, 2) : "\\u{" + hex(cp, 4) + "}";
        } else {
            out.append(text.data(), len);
        }
        text.remove_prefix(len);
    }
    return out;
}

std::string json_string(std::string_view text) {
    std::string out = "\"";
    while (!text.empty()) {
        char32_t cp;
        size_t len = decode_utf8(text, cp);
        if (len == 0) {
            out += "\\ufffd";
            len = 1;
        } else if (cp == '"' || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (is_control(cp)) {
            out += "\\u" + hex(cp, 4);
        } else {
            out.append(text.data(), len);
        }
        text.remove_prefix(len);
    }
    return out + "\"";
}

std::optional<pid_t> pid_from_name(std::string_view name) {
    unsigned long long value = 0;
    if (name.empty() || name[0] == '0' || !parse_decimal(name, value) ||
        value > static_cast<unsigned long long>(std::numeric_limits<pid_t>::max())) {
        return std::nullopt;
    }
    return static_cast<pid_t>(value);
}

std::optional<int64_t> age_ms(std::optional<uint64_t> stamp_ns, uint64_t now_ns) {
    if (!stamp_ns || *stamp_ns == 0) {
        return std::nullopt;
    }
    // Either difference fits in uint64_t, and divided by 10^6 in int64_t.
    if (*stamp_ns <= now_ns) {
        return static_cast<int64_t>((now_ns - *stamp_ns) / 1000000u);
    }
    return -static_cast<int64_t>((*stamp_ns - now_ns) / 1000000u);
}

bool started_after(uint64_t start_boottime_ns, uint64_t suspended_ns, uint64_t stamp_ns) {
    // The earliest monotonic time the start can have been.
    uint64_t earliest = start_boottime_ns > suspended_ns ? start_boottime_ns - suspended_ns : 0;
    return earliest > stamp_ns;
}

std::optional<pid_t> client_pid_from_stats_key(std::string_view key) {
    constexpr std::string_view kPrefix = "stats.ipcs.service";
    if (key.substr(0, kPrefix.size()) != kPrefix) {
        return std::nullopt;
    }
    key.remove_prefix(kPrefix.size());
    size_t dot = key.find('.');
    unsigned service = 0;
    if (dot == std::string_view::npos || !parse_decimal(key.substr(0, dot), service)) {
        return std::nullopt;
    }
    key.remove_prefix(dot + 1);
    dot = key.find('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    return pid_from_name(key.substr(0, dot));
}

void JsonObject::add_raw(std::string_view key, const std::string &json) {
    if (text_.size() > 1) {
        text_ += ", ";
    }
    text_ += json_string(key);
    text_ += ": ";
    text_ += json;
}

JsonObject &JsonObject::add_string(std::string_view key, const std::optional<std::string> &value) {
    add_raw(key, value ? json_string(*value) : "null");
    return *this;
}

JsonObject &JsonObject::add_number(std::string_view key, std::optional<int64_t> value) {
    add_raw(key, value ? std::to_string(*value) : "null");
    return *this;
}

JsonObject &JsonObject::add_unsigned(std::string_view key, std::optional<uint64_t> value) {
    add_raw(key, value ? std::to_string(*value) : "null");
    return *this;
}

JsonObject &JsonObject::add_bool(std::string_view key, bool value) {
    add_raw(key, value ? "true" : "false");
    return *this;
}

} // namespace samrun
