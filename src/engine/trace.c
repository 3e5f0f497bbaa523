/* ag_trace: run the forward pass once over a prompt and expose what it cached. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/forward.h"
#include "engine/trace.h"

ag_status ag_trace_options_init(ag_trace_options *opts, size_t struct_size) {
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_trace_options_init", "opts is NULL");
    if (struct_size < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, "ag_trace_options_init", "struct_size = %zu is too small", struct_size);
    memset(opts, 0, struct_size);
    opts->struct_size = struct_size;
    return AG_OK;
}

ag_status agi_check_tokens(const ag_model *m, const int32_t *tokens, size_t n, const char *func, const char *what,
                           const char *count, const char *purpose) {
    if (n == 0) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s is 0 (%s)", count, purpose);
    if (!tokens) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s is NULL", what);
    if (n > (size_t)m->cfg.seq_len)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s = %zu exceeds the model's context of %d tokens (seq_len)", count, n,
                         m->cfg.seq_len);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s[%zu] = %d is outside the vocabulary [0, %d)", what, i, tokens[i],
                             m->cfg.vocab_size);
    return AG_OK;
}

ag_status ag_trace_create(ag_trace **out, const ag_model *m, const int32_t *tokens, size_t n,
                          const ag_trace_options *opts) {
    static const char *const fn = "ag_trace_create";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!m) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "model is NULL");
    ag_trace_options o;
    ag_trace_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.reserved != 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->reserved = %d must be 0", o.reserved);
    st = agi_check_tokens(m, tokens, n, fn, "tokens", "n_tokens", "a prompt needs at least one token");
    if (st != AG_OK) return st;
    ag_trace *t = agi_calloc(1, sizeof *t, fn);
    if (!t) return AG_ERR_OUT_OF_MEMORY;
    t->model = m;
    st = agi_acts_alloc(&t->acts, &m->cfg, 1, (int)n, (int)n, 1, fn);
    if (st != AG_OK) {
        free(t);
        return st;
    }
    memcpy(t->acts.tokens, tokens, n * sizeof *tokens);
    agi_forward(m, &t->acts, 0, (int)n);
    const float *lg = t->acts.logits;
    for (size_t i = 0; i < n * (size_t)m->cfg.vocab_size; i++)
        if (!isfinite(lg[i])) {
            ag_trace_free(t);
            return agi_error(AG_ERR_NUMERIC, fn, "%s: logit %zu at position %zu is not finite", m->name,
                             i % (size_t)m->cfg.vocab_size, i / (size_t)m->cfg.vocab_size);
        }
    agi_clear_error();
    *out = t;
    return AG_OK;
}

void ag_trace_free(ag_trace *t) {
    if (!t) return;
    agi_acts_free(&t->acts);
    free(t);
}

size_t ag_trace_n_tokens(const ag_trace *t) { return t ? (size_t)t->acts.T : 0; }
const int32_t *ag_trace_tokens(const ag_trace *t) { return t ? t->acts.tokens : NULL; }
const ag_model *ag_trace_model(const ag_trace *t) { return t ? t->model : NULL; }

ag_status ag_trace_tensor(const ag_trace *t, ag_tensor_kind which, int32_t layer, const float **data,
                          int64_t shape[3], int32_t *ndim) {
    static const char *const fn = "ag_trace_tensor";
    if (!t || !data || !shape || !ndim)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !t ? "trace" : !data ? "data" : !shape ? "shape" : "ndim");
    const agi_config *c = &t->model->cfg;
    const agi_acts *a = &t->acts;
    int64_t T = a->T, D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim;
    int max_layer = which == AG_TENSOR_RESID ? c->n_layers : c->n_layers - 1;
    int per_layer = which < AG_TENSOR_FINAL_NORM_SCALE;
    if (per_layer && (layer < 0 || layer > max_layer))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d] for tensor kind %d", layer, max_layer, (int)which);
    int l = layer;
    const float *p = NULL;
    int64_t s0 = T, s1 = D, s2 = 0;
    switch (which) {
    case AG_TENSOR_RESID: p = AGI_LROW(a, x, l, D); break;
    case AG_TENSOR_MID: p = AGI_LROW(a, xmid, l, D); break;
    case AG_TENSOR_ATTN_NORM_SCALE: p = AGI_LROW(a, r_att, l, 1); s1 = 0; break;
    case AG_TENSOR_ATTN_IN: p = AGI_LROW(a, a, l, D); break;
    case AG_TENSOR_Q: p = AGI_LROW(a, q, l, D); break;
    case AG_TENSOR_K: p = AGI_LROW(a, k, l, KV); s1 = KV; break;
    case AG_TENSOR_V: p = AGI_LROW(a, v, l, KV); s1 = KV; break;
    case AG_TENSOR_ATTN_PATTERN: p = agi_acts_att(a, c, l, 0, 0); s0 = c->n_heads; s1 = T; s2 = T; break;
    case AG_TENSOR_ATTN_HEADS: p = AGI_LROW(a, heads, l, D); break;
    case AG_TENSOR_FFN_NORM_SCALE: p = AGI_LROW(a, r_ffn, l, 1); s1 = 0; break;
    case AG_TENSOR_MLP_IN: p = AGI_LROW(a, u, l, D); break;
    case AG_TENSOR_GATE: p = AGI_LROW(a, gate, l, Hd); s1 = Hd; break;
    case AG_TENSOR_UP: p = AGI_LROW(a, up, l, Hd); s1 = Hd; break;
    case AG_TENSOR_NEURONS: p = AGI_LROW(a, n, l, Hd); s1 = Hd; break;
    case AG_TENSOR_MLP_OUT: p = AGI_LROW(a, mlp_out, l, D); break;
    case AG_TENSOR_FINAL_NORM_SCALE: p = a->r_fin; s1 = 0; break;
    case AG_TENSOR_FINAL_OUT: p = a->xfin; break;
    case AG_TENSOR_LOGITS: p = a->logits; s1 = c->vocab_size; break;
    default: return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "unknown tensor kind %d", (int)which);
    }
    shape[0] = s0;
    shape[1] = s1;
    shape[2] = s2;
    *ndim = s2 ? 3 : s1 ? 2 : 1;
    *data = p;
    return AG_OK;
}
