/* GGUF v3, llama2.c checkpoint and llama2.c tokenizer writers (see gguf_write.h). All
 * integers are written little-endian byte by byte, so the output does not depend on the
 * host's byte order. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/gguf_write.h"
#include "io/tokenizer.h"

#define GGUF_ALIGN 32

enum { GT_U32 = 4, GT_I32 = 5, GT_F32 = 6, GT_STRING = 8, GT_ARRAY = 9, GT_U64 = 10 };

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

typedef struct wtensor {
    char *name;
    int n_dims;
    uint64_t ne[4];
    const float *data;
    uint64_t count;
} wtensor;

struct agi_gguf_w {
    bytes kv;
    uint64_t n_kv;
    wtensor *t;
    size_t n_t, cap_t;
    ag_status err;
    const char *func;
};

static int b_reserve(bytes *b, size_t more) {
    if (more <= b->cap - b->n) return 1;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->n < more) {
        if (cap > SIZE_MAX / 2) return 0;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static void b_put(agi_gguf_w *w, bytes *b, const void *src, size_t n) {
    if (w->err != AG_OK) return;
    if (!b_reserve(b, n)) {
        w->err = agi_error(AG_ERR_OUT_OF_MEMORY, w->func, "cannot grow the GGUF buffer to %zu bytes", b->n + n);
        return;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_u32(agi_gguf_w *w, bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    b_put(w, b, x, 4);
}
static void b_u64(agi_gguf_w *w, bytes *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    b_put(w, b, x, 8);
}
static void b_f32(agi_gguf_w *w, bytes *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    b_u32(w, b, u);
}
static void b_str(agi_gguf_w *w, bytes *b, const char *s, size_t n) {
    b_u64(w, b, n);
    b_put(w, b, s, n);
}

ag_status agi_gguf_w_new(agi_gguf_w **out, const char *func) {
    *out = agi_calloc(1, sizeof **out, func);
    if (!*out) return AG_ERR_OUT_OF_MEMORY;
    (*out)->func = func;
    return AG_OK;
}

void agi_gguf_w_free(agi_gguf_w *w) {
    if (!w) return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static void key(agi_gguf_w *w, const char *k, uint32_t type) {
    b_str(w, &w->kv, k, strlen(k));
    b_u32(w, &w->kv, type);
    w->n_kv++;
}

ag_status agi_gguf_w_u32(agi_gguf_w *w, const char *k, uint32_t v) {
    key(w, k, GT_U32);
    b_u32(w, &w->kv, v);
    return w->err;
}
ag_status agi_gguf_w_i32(agi_gguf_w *w, const char *k, int32_t v) {
    key(w, k, GT_I32);
    b_u32(w, &w->kv, (uint32_t)v);
    return w->err;
}
ag_status agi_gguf_w_u64(agi_gguf_w *w, const char *k, uint64_t v) {
    key(w, k, GT_U64);
    b_u64(w, &w->kv, v);
    return w->err;
}
ag_status agi_gguf_w_f32(agi_gguf_w *w, const char *k, float v) {
    key(w, k, GT_F32);
    b_f32(w, &w->kv, v);
    return w->err;
}
ag_status agi_gguf_w_str(agi_gguf_w *w, const char *k, const char *v) {
    key(w, k, GT_STRING);
    b_str(w, &w->kv, v, strlen(v));
    return w->err;
}
ag_status agi_gguf_w_str_array(agi_gguf_w *w, const char *k, size_t n, const char *const *strs, const size_t *lens) {
    key(w, k, GT_ARRAY);
    b_u32(w, &w->kv, GT_STRING);
    b_u64(w, &w->kv, n);
    for (size_t i = 0; i < n; i++) b_str(w, &w->kv, strs[i], lens ? lens[i] : strlen(strs[i]));
    return w->err;
}
ag_status agi_gguf_w_f32_array(agi_gguf_w *w, const char *k, size_t n, const float *v) {
    key(w, k, GT_ARRAY);
    b_u32(w, &w->kv, GT_F32);
    b_u64(w, &w->kv, n);
    for (size_t i = 0; i < n; i++) b_f32(w, &w->kv, v[i]);
    return w->err;
}
ag_status agi_gguf_w_i32_array(agi_gguf_w *w, const char *k, size_t n, const int32_t *v) {
    key(w, k, GT_ARRAY);
    b_u32(w, &w->kv, GT_I32);
    b_u64(w, &w->kv, n);
    for (size_t i = 0; i < n; i++) b_u32(w, &w->kv, (uint32_t)v[i]);
    return w->err;
}

ag_status agi_gguf_w_tensor(agi_gguf_w *w, const char *name, int n_dims, const uint64_t *ne, const float *data) {
    if (w->err != AG_OK) return w->err;
    if (n_dims < 1 || n_dims > 4 || !data)
        return w->err = agi_error(AG_ERR_INVALID_ARGUMENT, w->func, "tensor %s: bad dims or data", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return w->err = agi_error(AG_ERR_OUT_OF_MEMORY, w->func, "cannot grow the tensor list");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return w->err = agi_error(AG_ERR_OUT_OF_MEMORY, w->func, "cannot copy a tensor name");
    t->n_dims = n_dims;
    t->count = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    for (int d = 0; d < n_dims; d++) t->count *= ne[d];
    t->data = data;
    w->n_t++;
    return AG_OK;
}

static uint64_t align_up(uint64_t x) { return (x + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN; }

ag_status agi_gguf_w_to_memory(agi_gguf_w *w, uint8_t **out, size_t *size) {
    *out = NULL;
    *size = 0;
    if (w->err != AG_OK) return w->err;
    bytes b = {NULL, 0, 0};
    b_put(w, &b, "GGUF", 4);
    b_u32(w, &b, 3);
    b_u64(w, &b, w->n_t);
    b_u64(w, &b, w->n_kv);
    b_put(w, &b, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        b_str(w, &b, t->name, strlen(t->name));
        b_u32(w, &b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) b_u64(w, &b, t->ne[d]);
        b_u32(w, &b, 0); /* F32 */
        b_u64(w, &b, off);
        off = align_up(off + t->count * 4);
    }
    static const uint8_t zeros[GGUF_ALIGN] = {0};
    b_put(w, &b, zeros, (size_t)(align_up(b.n) - b.n));
    size_t data_start = b.n;
    for (size_t i = 0; i < w->n_t && w->err == AG_OK; i++) {
        const wtensor *t = &w->t[i];
        if (!b_reserve(&b, (size_t)t->count * 4)) {
            w->err = agi_error(AG_ERR_OUT_OF_MEMORY, w->func, "cannot grow the GGUF buffer");
            break;
        }
        for (uint64_t j = 0; j < t->count; j++) b_f32(w, &b, t->data[j]);
        b_put(w, &b, zeros, (size_t)(align_up(b.n - data_start) - (b.n - data_start)));
    }
    if (w->err != AG_OK) {
        free(b.p);
        return w->err;
    }
    *out = b.p;
    *size = b.n;
    return AG_OK;
}

static ag_status write_file(const char *path, const uint8_t *p, size_t n, const char *func) {
    FILE *f = fopen(path, "wb");
    if (!f) return agi_error(AG_ERR_IO, func, "%s: cannot open for writing: %s", path, strerror(errno));
    size_t put = fwrite(p, 1, n, f);
    int bad = put != n || ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad) return agi_error(AG_ERR_IO, func, "%s: write failed: %s", path, strerror(errno));
    return AG_OK;
}

ag_status agi_gguf_w_to_file(agi_gguf_w *w, const char *path) {
    uint8_t *p;
    size_t n;
    ag_status st = agi_gguf_w_to_memory(w, &p, &n);
    if (st != AG_OK) return st;
    st = write_file(path, p, n, w->func);
    free(p);
    return st;
}

/* ---- whole models ---------------------------------------------------------------------- */

/* GGUF token type of a vocabulary entry: 2 unknown, 3 control, 6 byte, 1 normal. */
static int32_t token_type(const ag_model *m, int32_t id, const char *piece) {
    if (id == m->bos_id || id == m->eos_id) return 3;
    if (strcmp(piece, "<unk>") == 0) return 2;
    if (strlen(piece) == 6 && strncmp(piece, "<0x", 3) == 0 && piece[5] == '>') return 6;
    return 1;
}

static ag_status add_tokenizer(agi_gguf_w *w, const ag_model *m, const char *func) {
    int32_t V = m->cfg.vocab_size;
    char **pieces = agi_calloc((size_t)V, sizeof *pieces, func);
    size_t *lens = agi_calloc((size_t)V, sizeof *lens, func);
    float *scores = agi_calloc((size_t)V, sizeof *scores, func);
    int32_t *types = agi_calloc((size_t)V, sizeof *types, func);
    ag_status st = AG_OK;
    if (!pieces || !lens || !scores || !types) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int32_t i = 0; i < V; i++) {
        const char *p = agi_tokenizer_piece(m->tok, i, &scores[i]);
        /* agi_tokenizer_piece is NUL-terminated; pieces with inner NULs do not occur in
         * sentencepiece vocabularies (<0x00> is spelled out). Spaces become U+2581. */
        size_t n = strlen(p), spaces = 0;
        for (size_t k = 0; k < n; k++) spaces += p[k] == ' ';
        char *q = agi_malloc(n + 2 * spaces + 1, func);
        if (!q) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        size_t o = 0;
        for (size_t k = 0; k < n; k++) {
            if (p[k] == ' ') {
                q[o++] = (char)0xE2;
                q[o++] = (char)0x96;
                q[o++] = (char)0x81;
            } else {
                q[o++] = p[k];
            }
        }
        q[o] = '\0';
        pieces[i] = q;
        lens[i] = o;
        types[i] = token_type(m, i, p);
    }
    agi_gguf_w_str(w, "tokenizer.ggml.model", "llama");
    agi_gguf_w_str_array(w, "tokenizer.ggml.tokens", (size_t)V, (const char *const *)pieces, lens);
    agi_gguf_w_f32_array(w, "tokenizer.ggml.scores", (size_t)V, scores);
    agi_gguf_w_i32_array(w, "tokenizer.ggml.token_type", (size_t)V, types);
    if (m->bos_id >= 0) agi_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos_id);
    if (m->eos_id >= 0) agi_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)m->eos_id);
    for (int32_t i = 0; i < V; i++)
        if (types[i] == 2) {
            agi_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)i);
            break;
        }
    st = w->err;
done:
    if (pieces)
        for (int32_t i = 0; i < V; i++) free(pieces[i]);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return st;
}

ag_status agi_model_to_gguf(const ag_model *m, const char *const *extra_kv, size_t n_extra, agi_gguf_w **out,
                            const char *func) {
    *out = NULL;
    agi_gguf_w *w;
    ag_status st = agi_gguf_w_new(&w, func);
    if (st != AG_OK) return st;
    const agi_config *c = &m->cfg;
    agi_gguf_w_str(w, "general.architecture", "llama");
    const char *name = NULL;
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(extra_kv[2 * i], "general.name") == 0) name = extra_kv[2 * i + 1];
    agi_gguf_w_str(w, "general.name", name ? name : "attrgraph model");
    agi_gguf_w_u32(w, "general.alignment", GGUF_ALIGN);
    agi_gguf_w_u32(w, "llama.context_length", (uint32_t)c->seq_len);
    agi_gguf_w_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    agi_gguf_w_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    agi_gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    agi_gguf_w_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    agi_gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    agi_gguf_w_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    agi_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_eps);
    agi_gguf_w_f32(w, "llama.rope.freq_base", c->rope_theta);
    agi_gguf_w_u32(w, "llama.vocab_size", (uint32_t)c->vocab_size);
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(extra_kv[2 * i], "general.name") != 0) agi_gguf_w_str(w, extra_kv[2 * i], extra_kv[2 * i + 1]);
    if (m->tok) {
        st = add_tokenizer(w, m, func);
        if (st != AG_OK) goto fail;
    }
    uint64_t D = (uint64_t)c->dim, V = (uint64_t)c->vocab_size, KV = (uint64_t)c->kv_dim, Hd = (uint64_t)c->hidden_dim;
    const agi_weights *wt = &m->w;
    uint64_t ne[2];
    ne[0] = D;
    ne[1] = V;
    agi_gguf_w_tensor(w, "token_embd.weight", 2, ne, wt->token_embedding);
    agi_gguf_w_tensor(w, "output_norm.weight", 1, ne, wt->rms_final);
    if (!wt->shared_classifier) agi_gguf_w_tensor(w, "output.weight", 2, ne, wt->wcls);
    for (int l = 0; l < c->n_layers; l++) {
        const agi_layer_weights *lw = &wt->layers[l];
        struct {
            const char *name;
            uint64_t in, out;
            int nd;
            const float *p;
        } list[9] = {
            {"attn_norm", D, 1, 1, lw->rms_att}, {"attn_q", D, D, 2, lw->wq},       {"attn_k", D, KV, 2, lw->wk},
            {"attn_v", D, KV, 2, lw->wv},        {"attn_output", D, D, 2, lw->wo}, {"ffn_norm", D, 1, 1, lw->rms_ffn},
            {"ffn_gate", D, Hd, 2, lw->w1},      {"ffn_down", Hd, D, 2, lw->w2},   {"ffn_up", D, Hd, 2, lw->w3},
        };
        for (int k = 0; k < 9; k++) {
            char tname[64];
            snprintf(tname, sizeof tname, "blk.%d.%s.weight", l, list[k].name);
            ne[0] = list[k].in;
            ne[1] = list[k].out;
            agi_gguf_w_tensor(w, tname, list[k].nd, ne, list[k].p);
        }
    }
    st = w->err;
    if (st != AG_OK) goto fail;
    *out = w;
    return AG_OK;
fail:
    agi_gguf_w_free(w);
    return st;
}

/* ---- llama2.c formats ------------------------------------------------------------------- */

static void put_floats(agi_gguf_w *w, bytes *b, const float *p, size_t n) {
    if (!b_reserve(b, n * 4)) {
        if (w->err == AG_OK) w->err = agi_error(AG_ERR_OUT_OF_MEMORY, w->func, "cannot grow the output buffer");
        return;
    }
    for (size_t i = 0; i < n; i++) b_f32(w, b, p[i]);
}

ag_status agi_model_write_llama2c(const ag_model *m, const char *path, const char *func) {
    agi_gguf_w w; /* only for its sticky error and byte helpers */
    memset(&w, 0, sizeof w);
    w.func = func;
    bytes b = {NULL, 0, 0};
    const agi_config *c = &m->cfg;
    size_t D = (size_t)c->dim, KV = (size_t)c->kv_dim, Hd = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    int32_t hdr[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                      m->w.shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++) b_u32(&w, &b, (uint32_t)hdr[i]);
    put_floats(&w, &b, m->w.token_embedding, V * D);
    const agi_layer_weights *lw = m->w.layers;
    int L = c->n_layers;
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].rms_att, D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].wq, D * D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].wk, KV * D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].wv, KV * D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].wo, D * D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].rms_ffn, D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].w1, Hd * D);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].w2, D * Hd);
    for (int l = 0; l < L; l++) put_floats(&w, &b, lw[l].w3, Hd * D);
    put_floats(&w, &b, m->w.rms_final, D);
    /* legacy RoPE tables freq_cis_real/imag [seq_len][head_size/2] (readers ignore them),
     * computed in float32 as llama2.c's model.py does */
    int hs = c->head_dim;
    for (int part = 0; part < 2; part++)
        for (int p = 0; p < c->seq_len; p++)
            for (int i = 0; i < hs; i += 2) {
                float freq = 1.0f / powf(c->rope_theta, (float)i / (float)hs);
                float ang = (float)p * freq;
                b_f32(&w, &b, part ? sinf(ang) : cosf(ang));
            }
    if (!m->w.shared_classifier) put_floats(&w, &b, m->w.wcls, V * D);
    ag_status st = w.err;
    if (st == AG_OK) st = write_file(path, b.p, b.n, func);
    free(b.p);
    return st;
}

ag_status agi_tokenizer_write_bin(const ag_model *m, const char *path, const char *func) {
    if (!m->tok) return agi_error(AG_ERR_STATE, func, "%s has no tokenizer", m->name);
    agi_gguf_w w;
    memset(&w, 0, sizeof w);
    w.func = func;
    bytes b = {NULL, 0, 0};
    int32_t V = m->cfg.vocab_size;
    uint32_t max_len = 0;
    for (int32_t i = 0; i < V; i++) {
        size_t n = strlen(agi_tokenizer_piece(m->tok, i, NULL));
        if (n > max_len) max_len = (uint32_t)n;
    }
    b_u32(&w, &b, max_len);
    for (int32_t i = 0; i < V; i++) {
        float s;
        const char *p = agi_tokenizer_piece(m->tok, i, &s);
        size_t n = strlen(p);
        b_f32(&w, &b, s);
        b_u32(&w, &b, (uint32_t)n);
        b_put(&w, &b, p, n);
    }
    ag_status st = w.err;
    if (st == AG_OK) st = write_file(path, b.p, b.n, func);
    free(b.p);
    return st;
}

/* ---- public entry points ---------------------------------------------------------------- */

ag_status ag_model_save(const ag_model *m, const char *path, int32_t format) {
    static const char *const fn = "ag_model_save";
    if (!m || !path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : "path");
    ag_status st;
    if (format == AG_FORMAT_GGUF) {
        agi_gguf_w *w;
        const char *kv[2] = {"general.name", m->name};
        st = agi_model_to_gguf(m, kv, 1, &w, fn);
        if (st != AG_OK) return st;
        st = agi_gguf_w_to_file(w, path);
        agi_gguf_w_free(w);
    } else if (format == AG_FORMAT_LLAMA2C) {
        st = agi_model_write_llama2c(m, path, fn);
    } else {
        return agi_error(AG_ERR_UNSUPPORTED, fn, "format = %d: only AG_FORMAT_GGUF (2) and AG_FORMAT_LLAMA2C (1) are written",
                         format);
    }
    if (st == AG_OK) agi_clear_error();
    return st;
}

ag_status ag_model_save_tokenizer(const ag_model *m, const char *path) {
    static const char *const fn = "ag_model_save_tokenizer";
    if (!m || !path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : "path");
    ag_status st = agi_tokenizer_write_bin(m, path, fn);
    if (st == AG_OK) agi_clear_error();
    return st;
}
