/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sam-client.c - a program from outside the project that uses libsam only
 * through its installed header and library, as any user would.
 *
 * It checks which libsam.so the dynamic linker really loaded (from
 * /proc/self/maps), optionally that every public function is reachable at
 * symbol version COROSYNC_SAM_1.0, and then the return values that need no
 * corosync (QUIT and RESTART policies, no CMAP, no QUORUM).
 *
 *   sam-client            API checks without fork
 *   sam-client register   also sam_register(): the instance exits with 42
 *                         before sam_start(), so the whole program must exit
 *                         with status 42 (the supervisor exits like it)
 *
 * Environment:
 *   SAM_EXPECT_DIR=DIR    fail unless the loaded libsam.so lies under DIR
 *   SAM_CHECK_VERSIONS=1  fail unless dlvsym finds all 12 functions at
 *                         COROSYNC_SAM_1.0
 *
 * Exit status: 0 (or 42 with "register") on success, 1 on any failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <corosync/sam.h>

static int failures;

static void expect(const char *what, cs_error_t got, cs_error_t want) {
    if (got == want) {
        printf("ok   %-44s = %d\n", what, (int)got);
        return;
    }
    printf("FAIL %-44s = %d, expected %d\n", what, (int)got, (int)want);
    failures++;
}

/* Path of the libsam.so mapped into this process, or "" if none. */
static void loaded_libsam(char *path, size_t len) {
    char line[4096];
    FILE *maps = fopen("/proc/self/maps", "r");

    path[0] = '\0';
    if (maps == NULL)
        return;
    while (fgets(line, sizeof(line), maps) != NULL) {
        char *file = strchr(line, '/');

        if (file == NULL || strstr(file, "/libsam.so") == NULL)
            continue;
        file[strcspn(file, "\n")] = '\0';
        snprintf(path, len, "%s", file);
        break;
    }
    fclose(maps);
}

static void check_loaded_library(void) {
    char path[4096];
    const char *want_dir = getenv("SAM_EXPECT_DIR");

    loaded_libsam(path, sizeof(path));
    printf("libsam loaded from: %s\n", path[0] ? path : "(not found)");
    if (want_dir == NULL || want_dir[0] == '\0')
        return;
    if (strncmp(path, want_dir, strlen(want_dir)) != 0) {
        printf("FAIL libsam.so is not the one under %s\n", want_dir);
        failures++;
    }
}

static void check_symbol_versions(void) {
    static const char *const names[] = {
        "sam_initialize",
        "sam_finalize",
        "sam_register",
        "sam_start",
        "sam_stop",
        "sam_hc_send",
        "sam_hc_callback_register",
        "sam_warn_signal_set",
        "sam_data_store",
        "sam_data_restore",
        "sam_data_getsize",
        "sam_mark_failed",
    };
    const char *flag = getenv("SAM_CHECK_VERSIONS");
    size_t i;

    if (flag == NULL || strcmp(flag, "1") != 0)
        return;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (dlvsym(RTLD_DEFAULT, names[i], "COROSYNC_SAM_1.0") != NULL)
            continue;
        printf("FAIL %s@COROSYNC_SAM_1.0 not found\n", names[i]);
        failures++;
    }
    if (failures == 0)
        printf("ok   all 12 functions found at COROSYNC_SAM_1.0\n");
}

static void check_api(void) {
    char out[16];
    size_t size = 1;

    expect("sam_finalize() before init", sam_finalize(), CS_ERR_BAD_HANDLE);
    expect("sam_initialize(1000, 0)", sam_initialize(1000, 0), CS_ERR_INVALID_PARAM);
    expect("sam_initialize(1000, QUIT|RESTART)",
           sam_initialize(1000, SAM_RECOVERY_POLICY_QUIT | SAM_RECOVERY_POLICY_RESTART), CS_ERR_INVALID_PARAM);
    expect("sam_initialize(1000, QUIT)", sam_initialize(1000, SAM_RECOVERY_POLICY_QUIT), CS_OK);
    expect("sam_initialize(1000, QUIT) again", sam_initialize(1000, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
    expect("sam_start() before register", sam_start(), CS_ERR_BAD_HANDLE);
    expect("sam_hc_send() before register", sam_hc_send(), CS_ERR_BAD_HANDLE);
    expect("sam_data_getsize(NULL)", sam_data_getsize(NULL), CS_ERR_INVALID_PARAM);
    expect("sam_data_getsize(&size)", sam_data_getsize(&size), CS_OK);
    if (size != 0) {
        printf("FAIL stored size %zu, expected 0\n", size);
        failures++;
    }
    expect("sam_data_store(\"hello\", 6)", sam_data_store("hello", 6), CS_OK);
    expect("sam_data_getsize(&size)", sam_data_getsize(&size), CS_OK);
    expect("sam_data_restore(out, 2)", sam_data_restore(out, 2), CS_ERR_INVALID_PARAM);
    expect("sam_data_restore(out, 16)", sam_data_restore(out, sizeof(out)), CS_OK);
    if (size != 6 || memcmp(out, "hello", 6) != 0) {
        printf("FAIL data round trip (size %zu)\n", size);
        failures++;
    }
    expect("sam_finalize()", sam_finalize(), CS_OK);
    expect("sam_finalize() again", sam_finalize(), CS_ERR_BAD_HANDLE);
    expect("sam_initialize() after finalize", sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART), CS_ERR_BAD_HANDLE);
}

static int check_register(void) {
    unsigned int iid = 0;
    cs_error_t err;

    expect("sam_initialize(0, QUIT)", sam_initialize(0, SAM_RECOVERY_POLICY_QUIT), CS_OK);
    if (failures != 0)
        return 1;
    fflush(stdout);
    err = sam_register(&iid);
    /* Only the instance gets here (or the caller, on error). */
    expect("sam_register(&iid)", err, CS_OK);
    if (err == CS_OK && iid != 1) {
        printf("FAIL instance id %u, expected 1\n", iid);
        failures++;
    }
    if (failures != 0)
        return 1;
    printf("instance 1 exits with 42 before sam_start\n");
    fflush(stdout);
    return 42;
}

int main(int argc, char **argv) {
    check_loaded_library();
    check_symbol_versions();
    if (argc > 1 && strcmp(argv[1], "register") == 0)
        return failures ? 1 : check_register();
    check_api();
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
