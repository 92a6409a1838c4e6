/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sam.h - public interface of libsam, the Simple Availability Manager client.
 *
 * A process calls sam_initialize() and then sam_register(). sam_register()
 * forks: the calling process stays behind as the supervisor and never
 * returns from the call; the new child process (the "instance") returns from
 * it and does the real work. The supervisor watches the instance and, by the
 * policy chosen at initialisation, restarts it or exits with it when it dies,
 * stops sending health checks after sam_start(), or asks to be marked failed.
 *
 * Every function returns a cs_error_t from <corosync/corotypes.h>. All of
 * them are safe to call from several threads of one process.
 *
 * This header is declaration-compatible with the one shipped by corosync
 * (library soname libsam.so.4, symbol version COROSYNC_SAM_1.0).
 */
#ifndef COROSYNC_SAM_H_DEFINED
#define COROSYNC_SAM_H_DEFINED

#include <stddef.h>

#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What the supervisor does when an instance fails.
 *
 * Exactly one of QUIT or RESTART must be given; QUORUM and CMAP are extra
 * bits that can be OR-ed onto either.
 *   QUIT     the supervisor exits, with the instance's exit status.
 *   RESTART  the supervisor forks a new instance (the instance id grows by 1).
 *   QUORUM   the instance may only run while the corosync cluster is
 *            quorate: sam_start() waits for quorum and losing quorum while
 *            started counts as a failure.
 *   CMAP     the instance's state is published in corosync's cmap under
 *            resources.process.<supervisor pid>. (CONFDB is the old name).
 */
typedef enum {
    SAM_RECOVERY_POLICY_QUIT = 1,
    SAM_RECOVERY_POLICY_RESTART = 2,
    SAM_RECOVERY_POLICY_QUORUM = 0x08,
    SAM_RECOVERY_POLICY_QUORUM_QUIT = SAM_RECOVERY_POLICY_QUORUM | SAM_RECOVERY_POLICY_QUIT,
    SAM_RECOVERY_POLICY_QUORUM_RESTART = SAM_RECOVERY_POLICY_QUORUM | SAM_RECOVERY_POLICY_RESTART,
    SAM_RECOVERY_POLICY_CMAP = 0x10,
    SAM_RECOVERY_POLICY_CONFDB = 0x10,
} sam_recovery_policy_t;

/*
 * Health callback, run by a library thread in the instance about once per
 * interval while started. Return 0 while healthy; any other value stops the
 * automatic health checks, so the supervisor soon treats the instance as hung.
 */
typedef int (*sam_hc_callback_t)(void);

/*
 * Prepare the library. time_interval is the health-check deadline in
 * milliseconds (0: only the instance's death is watched).
 * Returns CS_OK; CS_ERR_INVALID_PARAM for a policy that is neither QUIT nor
 * RESTART once QUORUM and CMAP are masked off; CS_ERR_BAD_HANDLE when already
 * initialised (or finalised); with QUORUM, the error of the quorum service if
 * it cannot be reached.
 */
cs_error_t sam_initialize(int time_interval, sam_recovery_policy_t recovery_policy);

/*
 * Stop health checking (if started) and release the library's resources in
 * this process, stored data included. Returns CS_OK, or CS_ERR_BAD_HANDLE when
 * not initialised or already finalised.
 */
cs_error_t sam_finalize(void);

/*
 * Begin health checking of this instance. With QUORUM, waits until the
 * cluster is quorate. Returns CS_OK; CS_ERR_BAD_HANDLE outside the registered
 * state; CS_ERR_LIBRARY when the supervisor cannot be reached; with CMAP, the
 * cmap error if the state could not be published.
 */
cs_error_t sam_start(void);

/*
 * End health checking; sam_start() may be called again later. Returns CS_OK,
 * CS_ERR_BAD_HANDLE when not started, CS_ERR_LIBRARY when the supervisor
 * cannot be reached, or with CMAP the cmap error.
 */
cs_error_t sam_stop(void);

/*
 * Choose the signal the supervisor sends before it kills a silent instance
 * (SIGTERM by default). Valid once initialised, in the supervisor-to-be and in
 * an instance (where it is applied in the supervisor). Returns CS_OK,
 * CS_ERR_BAD_HANDLE in the wrong state, CS_ERR_INVALID_PARAM for a number that
 * is not a signal, CS_ERR_LIBRARY when the supervisor cannot be reached.
 */
cs_error_t sam_warn_signal_set(int warn_signal);

/*
 * Fork the first instance. Returns, in the instance only, CS_OK with the
 * instance id (1 for the first, one more after every recovery) stored in
 * *instance_id unless it is NULL. Returns CS_ERR_BAD_HANDLE when not in the
 * initialised state (or, with CMAP, when the keys cannot be created), and
 * CS_ERR_LIBRARY when the supervisor could not be set up.
 */
cs_error_t sam_register(unsigned int *instance_id);

/*
 * Tell the supervisor this instance is alive. Returns CS_OK or
 * CS_ERR_BAD_HANDLE when not started.
 */
cs_error_t sam_hc_send(void);

/*
 * Install a health callback (see sam_hc_callback_t); a later call replaces
 * it. Returns CS_OK; CS_ERR_BAD_HANDLE outside the registered state;
 * CS_ERR_INVALID_PARAM when the interval is 0 or the first callback is NULL;
 * CS_ERR_LIBRARY when the thread cannot be created.
 */
cs_error_t sam_hc_callback_register(sam_hc_callback_t cb);

/*
 * Size in bytes of the stored data (0 when none). Returns CS_OK,
 * CS_ERR_INVALID_PARAM for a NULL size, CS_ERR_BAD_HANDLE in the wrong state.
 */
cs_error_t sam_data_getsize(size_t *size);

/*
 * Copy the stored data into data, which holds size bytes. Nothing stored:
 * CS_OK and nothing copied. Returns CS_ERR_INVALID_PARAM for NULL data or a
 * buffer smaller than the stored data, CS_ERR_BAD_HANDLE in the wrong state.
 */
cs_error_t sam_data_restore(void *data, size_t size);

/*
 * Replace the stored data with size bytes at data (NULL deletes it). The data
 * is kept by the supervisor and seen by every later instance. Returns CS_OK,
 * CS_ERR_BAD_HANDLE in the wrong state, CS_ERR_NO_MEMORY when it does not fit
 * (the previous data stays), CS_ERR_LIBRARY when the supervisor cannot be
 * reached.
 */
cs_error_t sam_data_store(const void *data, size_t size);

/*
 * Declare this instance failed: it is killed without the warn signal, its
 * cmap state becomes "failed" and the supervisor exits instead of restarting.
 * Returns CS_ERR_INVALID_PARAM without the CMAP policy bit,
 * CS_ERR_BAD_HANDLE when neither registered nor started.
 */
cs_error_t sam_mark_failed(void);

#ifdef __cplusplus
}
#endif

#endif /* COROSYNC_SAM_H_DEFINED */
