// Temporary placeholder while the core lands: every call fails loudly.
#include <corosync/sam.h>
#define SAM_EXPORT extern "C" __attribute__((visibility("default")))
SAM_EXPORT cs_error_t sam_initialize(int, sam_recovery_policy_t) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_finalize() { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_start() { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_stop() { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_warn_signal_set(int) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_register(unsigned int *) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_hc_send() { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_hc_callback_register(sam_hc_callback_t) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_data_getsize(size_t *) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_data_restore(void *, size_t) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_data_store(const void *, size_t) { return CS_ERR_NOT_SUPPORTED; }
SAM_EXPORT cs_error_t sam_mark_failed() { return CS_ERR_NOT_SUPPORTED; }
