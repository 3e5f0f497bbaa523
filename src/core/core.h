/* Internal core services shared by every module: error reporting, checked allocation,
 * overflow-safe size arithmetic and the options-struct copy rule. Internal names use the
 * agi_ prefix so the linker version script (ag_*) can never export them. */
#ifndef AGI_CORE_H
#define AGI_CORE_H

#include <stddef.h>
#include <stdint.h>
#include "attrgraph.h"

#if defined(__GNUC__) || defined(__clang__)
#define AGI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AGI_PRINTF(a, b)
#endif

/* Record "func: message" as the calling thread's last error and return `status`. */
ag_status agi_error(ag_status status, const char *func, const char *fmt, ...) AGI_PRINTF(3, 4);
/* Clear the calling thread's last error (called on entry of public functions that succeed). */
void agi_clear_error(void);

/* Allocation that records AG_ERR_OUT_OF_MEMORY on failure (returns NULL). Sizes are
 * checked for overflow: agi_calloc(n, size) fails cleanly when n*size overflows. */
void *agi_malloc(size_t size, const char *func);
void *agi_calloc(size_t n, size_t size, const char *func);

/* Seconds on the monotonic clock (for phase timings). */
double agi_now_seconds(void);

/* Overflow-safe arithmetic: return 0 on overflow, 1 and *out on success. */
static inline int agi_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int agi_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
static inline int agi_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* The options-struct rule (see attrgraph.h): copy min(caller, ours) bytes of `src` over
 * `defaults` (already filled), and require a larger caller struct to have a zero tail.
 * Returns AG_OK, or AG_ERR_VERSION / AG_ERR_INVALID_ARGUMENT with the error recorded. */
ag_status agi_options_copy(void *dst, size_t dst_size, const void *src, const char *func,
                           const char *what);

/* Check an output struct's struct_size against the fields it must hold. */
ag_status agi_check_struct_size(size_t given, size_t minimum, const char *func, const char *what);

#endif
