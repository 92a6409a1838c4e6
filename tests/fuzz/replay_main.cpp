// SPDX-License-Identifier: BSD-3-Clause
// replay_main.cpp - runs files (or every file of directories) through the
// fuzz target without libFuzzer, so the seed corpus is checked by any
// compiler. Exit status 0 when every input ran; the target aborts on a
// broken invariant.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

bool run_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return false;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    (void)LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    return true;
}

} // namespace

int main(int argc, char **argv) {
    unsigned ran = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        struct stat st {};
        if (::stat(argv[i], &st) != 0) {
            std::fprintf(stderr, "replay: no such input %s\n", argv[i]);
            ok = false;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            ok = run_file(argv[i]) && ok;
            ++ran;
            continue;
        }
        DIR *d = ::opendir(argv[i]);
        if (d == nullptr) {
            ok = false;
            continue;
        }
        while (dirent *e = ::readdir(d)) {
            if (e->d_name[0] == '.')
                continue;
            ok = run_file(std::string(argv[i]) + "/" + e->d_name) && ok;
            ++ran;
        }
        ::closedir(d);
    }
    std::printf("replay: %u inputs run\n", ran);
    if (ran == 0) {
        std::fprintf(stderr, "replay: no input given\n");
        return 1;
    }
    return ok ? 0 : 1;
}
