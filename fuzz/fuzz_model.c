/* libFuzzer target: ag_model_load_memory over arbitrary bytes (both formats, the borrowed
 * path, copy = 0). A model that loads is checked for consistency: every weight pointer is
 * read at its first and last element (AddressSanitizer catches any pointer outside the
 * input), and an attached tokenizer encodes and decodes a fixed text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float g_sink;

static void touch(const float *p, size_t n) {
    if (!p || n == 0) abort();
    g_sink += p[0] + p[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Empty input is refused by the blob layer before any reader runs (and libFuzzer may
     * pass data = NULL with it); nothing of the readers to test. */
    if (size == 0) return 0;
    ag_model *m = (ag_model *)(uintptr_t)1;
    ag_status st = ag_model_load_memory(&m, data, size, 0, "fuzz.model", NULL);
    if (st != AG_OK) {
        /* Failures leave *out NULL, carry a message naming the input, and are never bugs. */
        if (m != NULL || !strstr(ag_last_error(), "fuzz.model") || st == AG_ERR_INTERNAL) abort();
        return 0;
    }
    ag_model_info info;
    info.struct_size = sizeof info;
    if (ag_model_get_info(m, &info) != AG_OK) abort();
    const agi_config *c = &m->cfg;
    size_t D = (size_t)c->dim, V = (size_t)c->vocab_size, KV = (size_t)c->kv_dim, H = (size_t)c->hidden_dim;
    touch(m->w.token_embedding, V * D);
    touch(m->w.wcls, V * D);
    touch(m->w.rms_final, D);
    for (int l = 0; l < c->n_layers; l++) {
        const agi_layer_weights *w = &m->w.layers[l];
        touch(w->rms_att, D);
        touch(w->wq, D * D);
        touch(w->wk, KV * D);
        touch(w->wv, KV * D);
        touch(w->wo, D * D);
        touch(w->rms_ffn, D);
        touch(w->w1, H * D);
        touch(w->w2, D * H);
        touch(w->w3, H * D);
    }
    if (info.has_tokenizer) {
        static const char text[] = "Once upon a time \xF0\x9F\x98\x80 \xff\xfe caf\xc3\xa9\n";
        int32_t ids[2 * sizeof text];
        size_t n = 0;
        if (ag_tokenize(m, text, info.bos_id >= 0, ids, sizeof ids / sizeof ids[0], &n) == AG_OK) {
            for (size_t i = 0; i < n; i++) {
                if (ids[i] < 0 || ids[i] >= info.vocab_size) abort();
                char buf[64];
                size_t len;
                ag_status d = ag_token_decode(m, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf, &len);
                if (d != AG_OK && d != AG_ERR_BUFFER_TOO_SMALL) abort();
            }
        }
    }
    ag_model_free(m);
    return 0;
}
