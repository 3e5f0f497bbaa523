/* The trainer: loss and the gradient of every weight for B sequences of T positions.
 *
 * The forward is the engine's agi_forward; the reverse pass, weight gradients included, is the
 * engine's too (agi_backward_weights, engine/backward.c: the same layer loop the attribution
 * methods run, with the weight-gradient GEMMs switched on). What is training's own is here:
 * the trainer's buffers, the softmax cross-entropy that seeds the pass, and the gradient norm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/forward.h"
#include "train/train.h"

void agi_trainer_free(agi_trainer *t) {
    if (!t) return;
    agi_backward_free(&t->bw);
    ag_model_free(t->view);
    agi_acts_free(&t->acts);
    free(t->params);
    free(t->grads);
    free(t->wg.layers);
    agi_layout_free(&t->lay);
    free(t);
}

ag_status agi_trainer_create(agi_trainer **out, const agi_config *cfg, int shared, int B, int T, const char *func) {
    *out = NULL;
    if (B < 1 || T < 1 || T > cfg->seq_len)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "batch %d x %d positions (seq_len %d)", B, T, cfg->seq_len);
    agi_trainer *t = agi_calloc(1, sizeof *t, func);
    if (!t) return AG_ERR_OUT_OF_MEMORY;
    t->B = B;
    t->T = T;
    ag_status st = agi_layout_init(&t->lay, cfg, shared, func);
    if (st != AG_OK) goto fail;
    size_t n = t->lay.n_params;
    t->params = agi_calloc(n, sizeof(float), func);
    t->grads = agi_calloc(n, sizeof(float), func);
    t->wg.layers = agi_calloc((size_t)cfg->n_layers, sizeof *t->wg.layers, func);
    if (!t->params || !t->grads || !t->wg.layers) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    st = agi_model_view(&t->view, &t->lay, t->params, "<training>", func);
    if (st != AG_OK) goto fail;
    agi_grads_bind(&t->wg, &t->lay, t->grads);
    st = agi_acts_alloc(&t->acts, cfg, B, T, T, 1, func);
    if (st != AG_OK) goto fail;
    /* the engine's reverse pass over acts: B cotangent sequences, sequence c reading forward
     * sequence c, the real model (flags 0) */
    st = agi_backward_init(&t->bw, t->view, &t->acts, B, func);
    if (st != AG_OK) goto fail;
    *out = t;
    return AG_OK;
fail:
    agi_trainer_free(t);
    return st;
}

/* Softmax cross-entropy over the logits rows (in place: each row becomes its gradient,
 * (softmax - onehot) / n_scored, or zeros for an unscored row). Returns the mean loss. */
static double cross_entropy(float *logits, const int32_t *targets, int N, int V) {
    int n_scored = 0;
    for (int n = 0; n < N; n++) n_scored += targets[n] >= 0;
    double loss = 0.0, inv = n_scored ? 1.0 / n_scored : 0.0;
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        int32_t tgt = targets[n];
        if (tgt < 0) {
            memset(row, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float mx = row[0], lt = row[tgt];
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        double sum = 0.0;
        for (int v = 0; v < V; v++) {
            float e = expf(row[v] - mx);
            row[v] = e;
            sum += e;
        }
        /* loss = log(sum) + mx - logit[tgt] = -log(e_tgt / sum) */
        loss += log(sum) - ((double)lt - mx);
        float scale = (float)(inv / sum);
        for (int v = 0; v < V; v++) row[v] *= scale;
        row[tgt] -= (float)inv;
    }
    return loss * inv;
}

double agi_grad_norm(const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double agi_trainer_loss(agi_trainer *t, const int32_t *inputs, const int32_t *targets, int want_grad) {
    agi_acts *a = &t->acts;
    int N = t->B * t->T;
    memcpy(a->tokens, inputs, sizeof(int32_t) * (size_t)N);
    agi_forward(t->view, a, 0, t->T);
    double loss = cross_entropy(a->logits, targets, N, t->lay.cfg.vocab_size);
    if (!want_grad) return loss;
    /* a->logits now holds d loss / d logits: the engine's reverse pass from there */
    memset(t->grads, 0, sizeof(float) * t->lay.n_params);
    agi_backward_weights(&t->bw, a->logits, &t->wg);
    return loss;
}
