/* Checked allocation and the options-struct copy rule. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void *agi_malloc(size_t size, const char *func) {
    void *p = malloc(size ? size : 1);
    if (!p) agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot allocate %zu bytes", size);
    return p;
}

void *agi_calloc(size_t n, size_t size, const char *func) {
    size_t total;
    if (!agi_mul_size(n, size, &total)) {
        agi_error(AG_ERR_OUT_OF_MEMORY, func, "allocation size %zu x %zu overflows", n, size);
        return NULL;
    }
    void *p = calloc(total ? n : 1, total ? size : 1);
    if (!p) agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot allocate %zu bytes", total);
    return p;
}

void ag_free(void *ptr) { free(ptr); }

ag_status agi_options_copy(void *dst, size_t dst_size, const void *src, const char *func,
                           const char *what) {
    if (!src) return AG_OK; /* NULL options: all defaults */
    size_t given;
    memcpy(&given, src, sizeof given);
    if (given < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, func, "%s->struct_size = %zu is too small (initialise it with its _options_init function)", what, given);
    if (given > dst_size) {
        const unsigned char *tail = (const unsigned char *)src + dst_size;
        for (size_t i = 0; i < given - dst_size; i++)
            if (tail[i])
                return agi_error(AG_ERR_VERSION, func, "%s->struct_size = %zu is larger than this library's %zu and its extra fields are not zero", what, given, dst_size);
        given = dst_size;
    }
    memcpy((unsigned char *)dst + sizeof(size_t), (const unsigned char *)src + sizeof(size_t),
           given - sizeof(size_t));
    memcpy(dst, &dst_size, sizeof dst_size);
    return AG_OK;
}

ag_status agi_check_struct_size(size_t given, size_t minimum, const char *func, const char *what) {
    if (given < minimum)
        return agi_error(AG_ERR_VERSION, func, "%s->struct_size = %zu is smaller than the %zu bytes required", what, given, minimum);
    return AG_OK;
}
