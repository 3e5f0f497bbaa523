/* The monotonic clock behind every phase timing the library reports. */
#include <time.h>

#include "core/core.h"

double agi_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
