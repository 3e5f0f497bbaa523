/* Model loading (format detection, validation), info and the tokenizer entry points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

static const char *const FN_LOAD = "ag_model_load";

ag_status ag_model_options_init(ag_model_options *opts, size_t struct_size) {
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_model_options_init", "opts is NULL");
    if (struct_size < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, "ag_model_options_init", "struct_size = %zu is too small", struct_size);
    ag_model_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.tokenizer_path = NULL;
    d.rms_eps = 1e-5f;
    d.rope_theta = 10000.0f;
    size_t n = struct_size < sizeof d ? struct_size : sizeof d;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, n);
    opts->struct_size = struct_size;
    return AG_OK;
}

ag_status agi_config_validate(agi_config *c, const char *func, const char *file) {
#define AGI_POS(field, max)                                                                          \
    if (c->field <= 0 || c->field > (max))                                                           \
        return agi_error(AG_ERR_FORMAT, func, "%s: field %s = %d must be in [1, %d]", file, #field,   \
                         c->field, (int)(max));
    AGI_POS(dim, 1 << 16)
    AGI_POS(hidden_dim, 1 << 18)
    AGI_POS(n_layers, 1024)
    AGI_POS(n_heads, 1024)
    AGI_POS(n_kv_heads, 1024)
    AGI_POS(vocab_size, 1 << 22)
    AGI_POS(seq_len, 1 << 20)
#undef AGI_POS
    if (c->dim % c->n_heads != 0)
        return agi_error(AG_ERR_FORMAT, func, "%s: dim = %d is not a multiple of n_heads = %d", file, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return agi_error(AG_ERR_FORMAT, func, "%s: n_heads = %d is not a multiple of n_kv_heads = %d", file, c->n_heads, c->n_kv_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->head_dim % 2 != 0)
        return agi_error(AG_ERR_FORMAT, func, "%s: head size %d is odd (RoPE rotates pairs)", file, c->head_dim);
    c->kv_dim = c->n_kv_heads * c->head_dim;
    if (!(c->rms_eps > 0.0f) || !isfinite(c->rms_eps) || c->rms_eps > 1.0f)
        return agi_error(AG_ERR_FORMAT, func, "%s: rms eps = %g must be in (0, 1]", file, (double)c->rms_eps);
    if (!(c->rope_theta > 1.0f) || !isfinite(c->rope_theta))
        return agi_error(AG_ERR_FORMAT, func, "%s: rope theta = %g must be finite and > 1", file, (double)c->rope_theta);
    return AG_OK;
}

ag_status agi_model_own(ag_model *m, float *p) {
    float **grown = realloc(m->owned, (m->n_owned + 1) * sizeof *grown);
    if (!grown) {
        free(p);
        return agi_error(AG_ERR_OUT_OF_MEMORY, FN_LOAD, "cannot grow the owned-tensor list");
    }
    m->owned = grown;
    m->owned[m->n_owned++] = p;
    return AG_OK;
}

void ag_model_free(ag_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->w.layers);
    agi_tokenizer_free(m->tok);
    agi_blob_release(&m->blob);
    free(m->name);
    free(m);
}

static int is_gguf(const agi_blob *b) { return b->size >= 4 && memcmp(b->data, "GGUF", 4) == 0; }

/* Common tail of both load entry points: parse, attach a tokenizer, check consistency. */
static ag_status model_finish(ag_model *m, const ag_model_options *o) {
    ag_status st = is_gguf(&m->blob) ? agi_gguf_read(m, o) : agi_llama2c_read(m, o);
    if (st != AG_OK) return st;
    if (o->tokenizer_path) {
        agi_blob tb;
        st = agi_blob_map(&tb, o->tokenizer_path, FN_LOAD);
        if (st != AG_OK) return st;
        agi_tokenizer *t = NULL;
        st = agi_tokenizer_from_bin(&t, tb.data, tb.size, m->cfg.vocab_size, o->tokenizer_path, FN_LOAD);
        agi_blob_release(&tb);
        if (st != AG_OK) return st;
        agi_tokenizer_free(m->tok);
        m->tok = t;
    }
    if (m->tok) {
        if (agi_tokenizer_n_vocab(m->tok) != m->cfg.vocab_size)
            return agi_error(AG_ERR_FORMAT, FN_LOAD, "%s: tokenizer has %d tokens but the model's vocab_size is %d",
                             m->name, agi_tokenizer_n_vocab(m->tok), m->cfg.vocab_size);
        m->bos_id = agi_tokenizer_bos(m->tok);
        m->eos_id = agi_tokenizer_eos(m->tok);
    }
    return AG_OK;
}

static ag_status model_new(ag_model **out, const char *name, const ag_model_options *opts,
                           ag_model_options *o, const char *func) {
    *out = NULL;
    ag_model_options_init(o, sizeof *o);
    ag_status st = agi_options_copy(o, sizeof *o, opts, func, "opts");
    if (st != AG_OK) return st;
    ag_model *m = agi_calloc(1, sizeof *m, func);
    if (!m) return AG_ERR_OUT_OF_MEMORY;
    m->name = strdup(name ? name : "<memory>");
    if (!m->name) {
        free(m);
        return agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot copy the model name");
    }
    m->bos_id = m->eos_id = -1;
    *out = m;
    return AG_OK;
}

ag_status ag_model_load(ag_model **out, const char *path, const ag_model_options *opts) {
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, FN_LOAD, "out is NULL");
    *out = NULL;
    if (!path) return agi_error(AG_ERR_INVALID_ARGUMENT, FN_LOAD, "path is NULL");
    ag_model_options o;
    ag_model *m;
    ag_status st = model_new(&m, path, opts, &o, FN_LOAD);
    if (st != AG_OK) return st;
    st = agi_blob_map(&m->blob, path, FN_LOAD);
    if (st == AG_OK) st = model_finish(m, &o);
    if (st != AG_OK) {
        ag_model_free(m);
        return st;
    }
    agi_clear_error();
    *out = m;
    return AG_OK;
}

ag_status ag_model_load_memory(ag_model **out, const void *data, size_t size, int32_t copy,
                               const char *name, const ag_model_options *opts) {
    static const char *const fn = "ag_model_load_memory";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!data) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "data is NULL");
    ag_model_options o;
    ag_model *m;
    ag_status st = model_new(&m, name, opts, &o, fn);
    if (st != AG_OK) return st;
    /* Weights are read in place as float32: a borrowed buffer that is not 4-byte aligned
     * is copied (malloc's alignment suffices) instead of being read misaligned. */
    int must_copy = copy != 0 || ((uintptr_t)data % sizeof(float)) != 0;
    st = agi_blob_memory(&m->blob, data, size, must_copy, m->name, fn);
    if (st == AG_OK) st = model_finish(m, &o);
    if (st != AG_OK) {
        ag_model_free(m);
        return st;
    }
    agi_clear_error();
    *out = m;
    return AG_OK;
}

const char *ag_model_name(const ag_model *m) { return m ? m->name : NULL; }

/* ---- fingerprint (model.h) ---------------------------------------------------------------- */

static uint64_t fp_mix(uint64_t h, uint64_t w) {
    h ^= w + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static uint64_t fp_tensor(uint64_t h, const float *x, size_t n) {
    h = fp_mix(h, (uint64_t)n);
    if (!x || n == 0) return fp_mix(h, 0);
    size_t k = n < AGI_FINGERPRINT_SAMPLES ? n : AGI_FINGERPRINT_SAMPLES;
    for (size_t i = 0; i < k; i++) {
        /* evenly spaced; i = k - 1 is the last element */
        size_t at = k == 1 ? 0 : (size_t)(((unsigned long long)i * (n - 1)) / (k - 1));
        uint32_t bits;
        memcpy(&bits, &x[at], sizeof bits);
        h = fp_mix(h, bits);
    }
    return h;
}

uint64_t agi_model_fingerprint(const ag_model *m) {
    const agi_config *c = &m->cfg;
    size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, KV = (size_t)c->kv_dim, V = (size_t)c->vocab_size;
    uint64_t h = 0x6174747267726170ull; /* "attrgrap" */
    const int shape[6] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size};
    for (int i = 0; i < 6; i++) h = fp_mix(h, (uint64_t)(uint32_t)shape[i]);
    h = fp_tensor(h, m->w.token_embedding, V * D);
    for (int l = 0; l < c->n_layers; l++) {
        const agi_layer_weights *w = &m->w.layers[l];
        h = fp_tensor(h, w->rms_att, D);
        h = fp_tensor(h, w->wq, D * D);
        h = fp_tensor(h, w->wk, KV * D);
        h = fp_tensor(h, w->wv, KV * D);
        h = fp_tensor(h, w->wo, D * D);
        h = fp_tensor(h, w->rms_ffn, D);
        h = fp_tensor(h, w->w1, Hd * D);
        h = fp_tensor(h, w->w2, D * Hd);
        h = fp_tensor(h, w->w3, Hd * D);
    }
    h = fp_tensor(h, m->w.rms_final, D);
    return fp_tensor(h, m->w.wcls, V * D); /* the values, whether or not shared with the embedding */
}

ag_status ag_model_get_info(const ag_model *m, ag_model_info *info) {
    static const char *const fn = "ag_model_get_info";
    if (!m || !info) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", m ? "info" : "model");
    ag_status st = agi_check_struct_size(info->struct_size, offsetof(ag_model_info, rope_theta) + sizeof(float), fn, "info");
    if (st != AG_OK) return st;
    ag_model_info r;
    memset(&r, 0, sizeof r);
    const agi_config *c = &m->cfg;
    r.format = m->format;
    r.arch = AG_ARCH_LLAMA;
    r.dim = c->dim;
    r.hidden_dim = c->hidden_dim;
    r.n_layers = c->n_layers;
    r.n_heads = c->n_heads;
    r.n_kv_heads = c->n_kv_heads;
    r.head_dim = c->head_dim;
    r.vocab_size = c->vocab_size;
    r.seq_len = c->seq_len;
    r.shared_classifier = m->w.shared_classifier;
    r.has_tokenizer = m->tok != NULL;
    int64_t D = c->dim, Hd = c->hidden_dim, KV = c->kv_dim, V = c->vocab_size, L = c->n_layers;
    r.n_params = V * D + L * (2 * D + 2 * D * D + 2 * KV * D + 3 * D * Hd) + D + (m->w.shared_classifier ? 0 : V * D);
    r.rms_eps = c->rms_eps;
    r.rope_theta = c->rope_theta;
    r.bos_id = m->bos_id;
    r.eos_id = m->eos_id;
    size_t n = info->struct_size < sizeof r ? info->struct_size : sizeof r;
    r.struct_size = info->struct_size;
    memcpy(info, &r, n);
    return AG_OK;
}

/* ---- tokenizer entry points ---------------------------------------------------------- */

ag_status ag_tokenize(const ag_model *m, const char *text, int32_t add_bos, int32_t *tokens,
                      size_t cap, size_t *n_out) {
    static const char *const fn = "ag_tokenize";
    if (!m || !text || !n_out || (!tokens && cap))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : !text ? "text" : !n_out ? "n_out" : "tokens");
    if (!m->tok) return agi_error(AG_ERR_STATE, fn, "%s has no tokenizer (pass a tokenizer .bin in ag_model_options.tokenizer_path)", m->name);
    return agi_tokenizer_encode(m->tok, text, add_bos != 0, tokens, cap, n_out, fn);
}

ag_status ag_token_decode(const ag_model *m, int32_t prev, int32_t token, char *buf, size_t cap,
                          size_t *n_out) {
    static const char *const fn = "ag_token_decode";
    if (!m || (!buf && cap)) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : "buf");
    if (!m->tok) return agi_error(AG_ERR_STATE, fn, "%s has no tokenizer", m->name);
    char scratch[2];
    size_t len;
    const char *p = agi_tokenizer_decode(m->tok, prev, token, scratch, &len);
    if (!p) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "token = %d is outside [0, %d)", token, m->cfg.vocab_size);
    if (n_out) *n_out = len;
    if (len + 1 > cap) return agi_error(AG_ERR_BUFFER_TOO_SMALL, fn, "the piece needs %zu bytes, buffer has %zu", len + 1, cap);
    memcpy(buf, p, len);
    buf[len] = '\0';
    return AG_OK;
}

ag_status ag_token_piece(const ag_model *m, int32_t token, const char **piece, float *score) {
    static const char *const fn = "ag_token_piece";
    if (!m || !piece) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : "piece");
    if (!m->tok) return agi_error(AG_ERR_STATE, fn, "%s has no tokenizer", m->name);
    float s = 0.0f;
    const char *p = agi_tokenizer_piece(m->tok, token, &s);
    if (!p) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "token = %d is outside [0, %d)", token, m->cfg.vocab_size);
    *piece = p;
    if (score) *score = s;
    return AG_OK;
}
