/* llama2.c legacy float32 checkpoints: a 7 x int32 header, then float32 tensors in a fixed
 * order (see ../shared/models/README.md). The legacy RoPE tables are skipped; a negative
 * vocab_size means an unshared classifier follows them. Weights are used in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

static const char *const FN = "ag_model_load";

ag_status agi_llama2c_read(ag_model *m, const ag_model_options *o) {
    const char *file = m->name;
    agi_reader r = {m->blob.data, m->blob.size, 0, 0};
    int32_t h[7];
    static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) h[i] = agi_read_i32(&r);
    if (r.bad)
        return agi_error(AG_ERR_FORMAT, FN, "%s: %zu bytes is shorter than the 28-byte llama2.c header", file, m->blob.size);
    if (memcmp(m->blob.data, "ak42", 4) == 0 || h[0] == 0x616b3432)
        return agi_error(AG_ERR_UNSUPPORTED, FN, "%s: llama2.c version-2 export (magic ak42) is not supported; use the legacy export or GGUF", file);
    for (int i = 0; i < 7; i++)
        if (i != 5 && h[i] <= 0)
            return agi_error(AG_ERR_FORMAT, FN, "%s: header field %s = %d must be positive", file, names[i], h[i]);
    if (h[5] == 0 || h[5] == INT32_MIN)
        return agi_error(AG_ERR_FORMAT, FN, "%s: header field vocab_size = %d is invalid", file, h[5]);
    agi_config *c = &m->cfg;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->vocab_size = h[5] < 0 ? -h[5] : h[5];
    c->seq_len = h[6];
    c->rms_eps = o->rms_eps;
    c->rope_theta = o->rope_theta;
    ag_status st = agi_config_validate(c, FN, file);
    if (st != AG_OK) return st;
    m->format = AG_FORMAT_LLAMA2C;
    int shared = h[5] > 0;

    /* Expected size in floats, computed in 64 bits (every factor is < 2^22 after validation). */
    uint64_t D = (uint64_t)c->dim, Hd = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t V = (uint64_t)c->vocab_size, KV = (uint64_t)c->kv_dim, S = (uint64_t)c->seq_len;
    uint64_t hs = (uint64_t)c->head_dim;
    uint64_t n = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * Hd * D + D + S * hs;
    if (!shared) n += V * D;
    uint64_t need = 28 + 4 * n;
    if ((uint64_t)m->blob.size != need)
        return agi_error(AG_ERR_FORMAT, FN,
                         "%s: file has %zu bytes but the header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) implies %llu",
                         file, m->blob.size, h[0], h[1], h[2], h[3], h[4], h[5], h[6], (unsigned long long)need);

    const float *p = (const float *)(const void *)(m->blob.data + 28);
    agi_weights *w = &m->w;
    w->layers = agi_calloc((size_t)L, sizeof *w->layers, FN);
    if (!w->layers) return AG_ERR_OUT_OF_MEMORY;
    /* Tensors in file order; each is [L][rows][cols] with one slice per layer. */
    w->token_embedding = p;
    p += V * D;
#define AGI_PER_LAYER(field, per)                                                        \
    for (uint64_t l = 0; l < L; l++) w->layers[l].field = p + l * (per);                 \
    p += L * (per);
    AGI_PER_LAYER(rms_att, D)
    AGI_PER_LAYER(wq, D * D)
    AGI_PER_LAYER(wk, KV * D)
    AGI_PER_LAYER(wv, KV * D)
    AGI_PER_LAYER(wo, D * D)
    AGI_PER_LAYER(rms_ffn, D)
    AGI_PER_LAYER(w1, Hd * D)
    AGI_PER_LAYER(w2, D * Hd)
    AGI_PER_LAYER(w3, Hd * D)
#undef AGI_PER_LAYER
    w->rms_final = p; p += D;
    p += S * hs; /* legacy freq_cis_real + freq_cis_imag, recomputed instead */
    w->wcls = shared ? w->token_embedding : p;
    w->shared_classifier = shared;
    return AG_OK;
}
