/* libFuzzer target: the safetensors reader of transcoder files (agi_st_parse, cJSON header)
 * and, when the bytes parse, the float conversion of every tensor. A failure must name the
 * file; a success must give tensors whose bytes lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "transcoder/transcoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    agi_st_file f;
    ag_status st = agi_st_parse(&f, "fuzz.safetensors", data, size, "fuzz");
    if (st != AG_OK) {
        if (!strstr(ag_last_error(), "fuzz.safetensors") && st != AG_ERR_OUT_OF_MEMORY) abort();
        agi_st_free(&f);
        return 0;
    }
    for (int i = 0; i < f.n; i++) {
        const agi_st_tensor *t = &f.t[i];
        if (t->data < data || t->data + t->nbytes > data + size) abort();
        int64_t n = agi_st_numel(t);
        if (n > 0 && n < (1 << 20)) {
            float *dst = malloc(sizeof(float) * (size_t)n);
            if (dst) agi_st_to_f32(t, dst);
            free(dst);
        }
    }
    (void)agi_st_meta(&f, "format");
    agi_st_free(&f);
    return 0;
}
