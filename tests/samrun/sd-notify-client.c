/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sd-notify-client - a daemon that talks to its supervisor only through
 * libsystemd's sd_notify(), as an unmodified systemd service would. The test
 * scripts drive it with a list of actions:
 *   ready | stopping | trigger | status:TEXT | ping:N (N WATCHDOG=1 messages,
 *   spaced by half of the watchdog period from sd_watchdog_enabled()) |
 *   sleep:MS | await:PATH (until PATH exists, at most 60 s) | hang | exit:CODE
 * Each action is echoed on stdout first, so the tests can follow along.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned long ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void send_or_die(const char *state) {
    int r = sd_notify(0, state);
    if (r <= 0) {
        fprintf(stderr, "sd-notify-client: sd_notify(%s) returned %d\n", state, r);
        exit(90);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; ++i) {
        const char *action = argv[i];
        printf("sd-notify-client[%d]: %s\n", (int)getpid(), action);
        if (strcmp(action, "ready") == 0) {
            send_or_die("READY=1");
        } else if (strcmp(action, "stopping") == 0) {
            send_or_die("STOPPING=1");
        } else if (strcmp(action, "trigger") == 0) {
            send_or_die("WATCHDOG=trigger");
        } else if (strncmp(action, "status:", 7) == 0) {
            char buf[512];
            snprintf(buf, sizeof buf, "STATUS=%s", action + 7);
            send_or_die(buf);
        } else if (strncmp(action, "ping:", 5) == 0) {
            uint64_t usec = 0;
            if (sd_watchdog_enabled(0, &usec) <= 0) {
                fprintf(stderr, "sd-notify-client: no watchdog (WATCHDOG_USEC/WATCHDOG_PID)\n");
                return 91;
            }
            for (long n = strtol(action + 5, NULL, 10); n > 0; --n) {
                send_or_die("WATCHDOG=1");
                sleep_ms(usec / 2000);
            }
        } else if (strncmp(action, "sleep:", 6) == 0) {
            sleep_ms(strtoul(action + 6, NULL, 10));
        } else if (strncmp(action, "await:", 6) == 0) {
            int waited_ms = 0;
            while (access(action + 6, F_OK) != 0) {
                if (waited_ms >= 60000) {
                    fprintf(stderr, "sd-notify-client: %s did not appear within 60 s\n", action + 6);
                    return 93;
                }
                sleep_ms(10);
                waited_ms += 10;
            }
        } else if (strcmp(action, "hang") == 0) {
            for (;;) {
                pause();
            }
        } else if (strncmp(action, "exit:", 5) == 0) {
            return atoi(action + 5);
        } else {
            fprintf(stderr, "sd-notify-client: unknown action %s\n", action);
            return 92;
        }
    }
    return 0;
}
