/* Logit targets (DESIGN §1.2): the default salient choice (top tokens by probability at the
 * last position until the cumulative probability reaches logit_prob, at most max_logits,
 * demeaned classifier rows, weights = probabilities) and explicit targets (token ids, logit
 * differences, custom directions). Every target is a direction w in the space of the final
 * norm's output at the last position; its value is w · xfin[T-1]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "graph/graph.h"

void agi_targets_free(agi_logit_target *t, int n) {
    if (!t) return;
    for (int k = 0; k < n; k++) {
        free(t[k].wvec);
        free(t[k].label);
    }
    free(t);
}

typedef struct prob_idx {
    double p;
    int32_t i;
} prob_idx;

static int cmp_prob_desc(const void *a, const void *b) {
    const prob_idx *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The decoded piece of a token, for labels (no tokenizer: "<id>"). */
static void piece_of(const ag_model *m, int32_t tok, char *buf, size_t cap) {
    if (!m->tok || ag_token_decode(m, -1, tok, buf, cap, NULL) != AG_OK) snprintf(buf, cap, "<%d>", (int)tok);
}

static char *dup_str(const char *s, const char *func) {
    size_t n = strlen(s);
    char *d = agi_malloc(n + 1, func);
    if (d) memcpy(d, s, n + 1);
    return d;
}

ag_status agi_targets_resolve(const ag_trace *tr, const ag_graph_options *o, agi_logit_target **out, int *n_out,
                              const char *func) {
    *out = NULL;
    *n_out = 0;
    const ag_model *m = tr->model;
    const agi_config *c = &m->cfg;
    int V = c->vocab_size, D = c->dim, T = tr->acts.T;
    const float *logits = tr->acts.logits + (size_t)(T - 1) * V;
    const float *xfin = tr->acts.xfin + (size_t)(T - 1) * D;
    const float *wcls = m->w.wcls;

    /* softmax of the last position (double) */
    double *prob = agi_malloc(sizeof(double) * (size_t)V, func);
    double *mean = agi_calloc((size_t)D, sizeof(double), func);
    if (!prob || !mean) {
        free(prob);
        free(mean);
        return AG_ERR_OUT_OF_MEMORY;
    }
    double mx = -INFINITY, sum = 0.0;
    for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < V; v++) sum += (prob[v] = exp((double)logits[v] - mx));
    for (int v = 0; v < V; v++) prob[v] /= sum;
    for (int v = 0; v < V; v++)
        for (int k = 0; k < D; k++) mean[k] += wcls[(size_t)v * D + k];
    for (int k = 0; k < D; k++) mean[k] /= V;

    ag_status st = AG_OK;
    int n = 0;
    agi_logit_target *t = NULL;
    int32_t *chosen = NULL;
    if (o->n_targets > 0) {
        n = o->n_targets;
    } else { /* the salient default */
        prob_idx *pi = agi_malloc(sizeof *pi * (size_t)V, func);
        chosen = agi_malloc(sizeof *chosen * (size_t)(o->max_logits < V ? o->max_logits : V), func);
        if (!pi || !chosen) {
            free(pi);
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int v = 0; v < V; v++) pi[v] = (prob_idx){prob[v], v};
        qsort(pi, (size_t)V, sizeof *pi, cmp_prob_desc);
        int kmax = o->max_logits < V ? o->max_logits : V;
        double cum = 0.0;
        for (n = 0; n < kmax;) {
            chosen[n] = pi[n].i;
            cum += pi[n].p;
            n++;
            if (cum >= o->logit_prob) break;
        }
        free(pi);
    }
    t = agi_calloc((size_t)n, sizeof *t, func);
    if (!t) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int k = 0; k < n; k++) {
        agi_logit_target *x = &t[k];
        const ag_graph_target *e = o->n_targets > 0 ? &o->targets[k] : NULL;
        x->kind = e ? e->kind : AG_GRAPH_TARGET_TOKEN;
        x->token = e ? e->token : chosen[k];
        x->token_b = -1;
        x->wvec = agi_malloc(sizeof(float) * (size_t)D, func);
        if (!x->wvec) {
            st = AG_ERR_OUT_OF_MEMORY;
            break;
        }
        char buf[160], pa[48], pb[48];
        if (x->kind == AG_GRAPH_TARGET_TOKEN || x->kind == AG_GRAPH_TARGET_LOGIT_DIFF) {
            if (x->token < 0 || x->token >= V) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].token = %d is not a token of the vocabulary [0, %d)", k, (int)x->token, V);
                break;
            }
        }
        if (x->kind == AG_GRAPH_TARGET_TOKEN) {
            for (int d = 0; d < D; d++) x->wvec[d] = (float)(wcls[(size_t)x->token * D + d] - mean[d]);
            x->vid = x->token;
            x->prob = prob[x->token];
            x->weight = e && e->weight > 0 ? e->weight : x->prob;
            piece_of(m, x->token, pa, sizeof pa);
            snprintf(buf, sizeof buf, "Output \"%s\" (p=%.3f)", pa, x->prob);
        } else if (x->kind == AG_GRAPH_TARGET_LOGIT_DIFF) {
            if (e->token_b < 0 || e->token_b >= V) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].token_b = %d is not a token of the vocabulary [0, %d)", k, (int)e->token_b, V);
                break;
            }
            for (int d = 0; d < D; d++)
                x->wvec[d] = wcls[(size_t)x->token * D + d] - wcls[(size_t)e->token_b * D + d];
            x->token_b = e->token_b;
            x->vid = V + k;
            x->weight = e->weight > 0 ? e->weight : 1.0;
            piece_of(m, x->token, pa, sizeof pa);
            piece_of(m, e->token_b, pb, sizeof pb);
            snprintf(buf, sizeof buf, "Output \"%s\" - \"%s\"", pa, pb);
        } else if (x->kind == AG_GRAPH_TARGET_DIRECTION) {
            if (!e->direction) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].direction is NULL", k);
                break;
            }
            for (int d = 0; d < D; d++) {
                if (!isfinite(e->direction[d])) {
                    st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].direction[%d] is not finite", k, d);
                    break;
                }
                x->wvec[d] = e->direction[d];
            }
            if (st != AG_OK) break;
            x->token = -1;
            x->vid = V + k;
            x->weight = e->weight > 0 ? e->weight : 1.0;
            snprintf(buf, sizeof buf, "Output direction %d", k);
        } else {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].kind = %d is not an AG_GRAPH_TARGET_* value", k, (int)x->kind);
            break;
        }
        if (e && e->reserved != 0) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].reserved = %d must be 0", k, (int)e->reserved);
            break;
        }
        if (e && !(isfinite(e->weight))) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "targets[%d].weight is not finite", k);
            break;
        }
        double v = 0.0;
        for (int d = 0; d < D; d++) v += (double)x->wvec[d] * xfin[d];
        x->value = v;
        x->label = dup_str(e && e->label ? e->label : buf, func);
        if (!x->label) {
            st = AG_ERR_OUT_OF_MEMORY;
            break;
        }
    }
done:
    free(prob);
    free(mean);
    free(chosen);
    if (st != AG_OK) {
        agi_targets_free(t, n);
        return st;
    }
    *out = t;
    *n_out = n;
    return AG_OK;
}
