/* Parameter layout, model views over a parameter array, and initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "train/train.h"
#include "world/world.h"

static void add(agi_layout *lay, const char *name, int rows, int cols, int decay, size_t *off) {
    agi_ptensor *t = &lay->t[lay->n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = *off;
    t->rows = rows;
    t->cols = cols;
    t->count = (size_t)rows * (size_t)cols;
    t->decay = decay;
    *off += t->count;
}

ag_status agi_layout_init(agi_layout *lay, const agi_config *cfg, int shared, const char *func) {
    memset(lay, 0, sizeof *lay);
    lay->cfg = *cfg;
    lay->shared_classifier = shared != 0;
    int L = cfg->n_layers, D = cfg->dim, KV = cfg->kv_dim, Hd = cfg->hidden_dim, V = cfg->vocab_size;
    lay->t = agi_calloc((size_t)(9 * L + 3), sizeof *lay->t, func);
    if (!lay->t) return AG_ERR_OUT_OF_MEMORY;
    size_t off = 0;
    add(lay, "token_embd", V, D, 1, &off);
    for (int l = 0; l < L; l++) {
        char n[40];
#define ADD(suffix, r, c, d)                                   \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);             \
    add(lay, n, r, c, d, &off);
        ADD("attn_norm", D, 1, 0)
        ADD("attn_q", D, D, 1)
        ADD("attn_k", KV, D, 1)
        ADD("attn_v", KV, D, 1)
        ADD("attn_output", D, D, 1)
        ADD("ffn_norm", D, 1, 0)
        ADD("ffn_gate", Hd, D, 1)
        ADD("ffn_down", D, Hd, 1)
        ADD("ffn_up", Hd, D, 1)
#undef ADD
    }
    add(lay, "output_norm", D, 1, 0, &off);
    if (!shared) add(lay, "output", V, D, 1, &off);
    lay->n_params = off;
    return AG_OK;
}

void agi_layout_free(agi_layout *lay) {
    free(lay->t);
    memset(lay, 0, sizeof *lay);
}

void agi_model_view_bind(ag_model *m, const agi_layout *lay, const float *base) {
    const agi_ptensor *t = lay->t;
    int k = 0;
    m->w.token_embedding = base + t[k++].offset;
    for (int l = 0; l < lay->cfg.n_layers; l++) {
        agi_layer_weights *w = &m->w.layers[l];
        w->rms_att = base + t[k++].offset;
        w->wq = base + t[k++].offset;
        w->wk = base + t[k++].offset;
        w->wv = base + t[k++].offset;
        w->wo = base + t[k++].offset;
        w->rms_ffn = base + t[k++].offset;
        w->w1 = base + t[k++].offset;
        w->w2 = base + t[k++].offset;
        w->w3 = base + t[k++].offset;
    }
    m->w.rms_final = base + t[k++].offset;
    m->w.shared_classifier = lay->shared_classifier;
    m->w.wcls = lay->shared_classifier ? m->w.token_embedding : base + t[k++].offset;
}

void agi_grads_bind(agi_weight_grads *g, const agi_layout *lay, float *base) {
    const agi_ptensor *t = lay->t;
    int k = 0;
    g->token_embedding = base + t[k++].offset;
    for (int l = 0; l < lay->cfg.n_layers; l++) {
        agi_layer_grads *w = &g->layers[l];
        w->rms_att = base + t[k++].offset;
        w->wq = base + t[k++].offset;
        w->wk = base + t[k++].offset;
        w->wv = base + t[k++].offset;
        w->wo = base + t[k++].offset;
        w->rms_ffn = base + t[k++].offset;
        w->w1 = base + t[k++].offset;
        w->w2 = base + t[k++].offset;
        w->w3 = base + t[k++].offset;
    }
    g->rms_final = base + t[k++].offset;
    g->wcls = lay->shared_classifier ? g->token_embedding : base + t[k++].offset;
}

ag_status agi_model_view(ag_model **out, const agi_layout *lay, const float *base, const char *name, const char *func) {
    *out = NULL;
    ag_model *m = agi_calloc(1, sizeof *m, func);
    if (!m) return AG_ERR_OUT_OF_MEMORY;
    m->name = strdup(name ? name : "<training>");
    m->w.layers = agi_calloc((size_t)lay->cfg.n_layers, sizeof *m->w.layers, func);
    if (!m->name || !m->w.layers) {
        ag_model_free(m);
        return agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot allocate a model view");
    }
    m->format = AG_FORMAT_GGUF;
    m->cfg = lay->cfg;
    m->bos_id = m->eos_id = -1;
    agi_model_view_bind(m, lay, base);
    *out = m;
    return AG_OK;
}

void agi_params_init(const agi_layout *lay, float *p, uint64_t seed) {
    agi_rng r;
    agi_rng_seed(&r, seed, 0x1A17u, 0);
    double resid_std = 0.02 / sqrt(2.0 * lay->cfg.n_layers);
    for (int k = 0; k < lay->n_t; k++) {
        const agi_ptensor *t = &lay->t[k];
        float *x = p + t->offset;
        if (!t->decay) { /* RMSNorm gain */
            for (size_t i = 0; i < t->count; i++) x[i] = 1.0f;
            continue;
        }
        size_t n = strlen(t->name);
        int resid = (n >= 11 && strcmp(t->name + n - 11, "attn_output") == 0) ||
                    (n >= 8 && strcmp(t->name + n - 8, "ffn_down") == 0);
        double std = resid ? resid_std : 0.02;
        for (size_t i = 0; i < t->count; i++) x[i] = (float)(std * agi_rng_normal(&r));
    }
}
