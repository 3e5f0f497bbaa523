/* ag_model_load_builtin: the model compiled into the library.
 *
 * CMake turns models/builtin.gguf into a C array (cmake/embed_file.cmake writes
 * <build>/ag_builtin_model.c defining agi_builtin_gguf / agi_builtin_gguf_size, 64-byte aligned
 * so the float32 tensors are used in place). Without the file (or with -DAG_BUILTIN_MODEL=OFF)
 * the array is empty and this returns AG_ERR_NOT_FOUND. */
#include <stddef.h>

#include "core/core.h"

extern const unsigned char agi_builtin_gguf[];
extern const size_t agi_builtin_gguf_size;

ag_status ag_model_load_builtin(ag_model **out) {
    static const char *const fn = "ag_model_load_builtin";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (agi_builtin_gguf_size == 0)
        return agi_error(AG_ERR_NOT_FOUND, fn,
                         "this build of libattrgraph has no built-in model (configure with models/builtin.gguf present "
                         "and AG_BUILTIN_MODEL=ON)");
    ag_status st = ag_model_load_memory(out, agi_builtin_gguf, agi_builtin_gguf_size, 0, "builtin", NULL);
    if (st != AG_OK) return st;
    agi_clear_error();
    return AG_OK;
}
