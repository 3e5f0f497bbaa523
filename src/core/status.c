/* Status strings, the thread-local last error, version queries. The error buffer is the
 * library's only global state, and it is per thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static _Thread_local char agi_last_error_buf[1024];

ag_status agi_error(ag_status status, const char *func, const char *fmt, ...) {
    int n = snprintf(agi_last_error_buf, sizeof agi_last_error_buf, "%s: ", func ? func : "attrgraph");
    if (n < 0) n = 0;
    if ((size_t)n < sizeof agi_last_error_buf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(agi_last_error_buf + n, sizeof agi_last_error_buf - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return status;
}

void agi_clear_error(void) { agi_last_error_buf[0] = '\0'; }

const char *ag_last_error(void) { return agi_last_error_buf; }

const char *ag_status_string(ag_status status) {
    switch (status) {
    case AG_OK: return "ok";
    case AG_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AG_ERR_OUT_OF_MEMORY: return "out of memory";
    case AG_ERR_IO: return "input/output error";
    case AG_ERR_FORMAT: return "corrupt or inconsistent file";
    case AG_ERR_UNSUPPORTED: return "unsupported";
    case AG_ERR_STATE: return "wrong state or call order";
    case AG_ERR_VERSION: return "struct size or version mismatch";
    case AG_ERR_NOT_FOUND: return "not found";
    case AG_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case AG_ERR_CANCELLED: return "cancelled";
    case AG_ERR_NUMERIC: return "non-finite number";
    case AG_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

unsigned ag_version_number(void) { return AG_VERSION_NUMBER; }
const char *ag_version_string(void) { return AG_VERSION_STRING; }
