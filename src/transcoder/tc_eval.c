/* Evaluating transcoders on held-out text: per layer FVU, L0 and dead fraction, and the
 * next-token loss of the replacement model (every MLP output replaced by its reconstruction,
 * computed from the replacement model's own residual stream) against the real model's and
 * the zero-ablated model's. Position 0 (BOS) is not scored and keeps its real MLP output in the
 * replacement runs (transcoders are trained without it, as circuit-tracer zeroes it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/forward.h"
#include "model/model.h"
#include "transcoder/transcoder.h"

ag_status ag_transcoder_eval_options_init(ag_transcoder_eval_options *opts, size_t struct_size) {
    static const char *const fn = "ag_transcoder_eval_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_transcoder_eval_options d;
    memset(&d, 0, sizeof d);
    d.n_tokens = 65536;
    d.context = 128;
    d.temperature = 1.0f;
    d.seed = 12345;
    d.top_contexts = 8;
    d.top_tokens = 5;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
    opts->struct_size = struct_size;
    return AG_OK;
}

/* Mean cross-entropy pieces over windows [s0, s0+nb): sum and count of -log p(next). */
static void ce_sum(const agi_acts *a, const agi_tc_corpus *c, int s0, int nb, int V, double *sum, int64_t *cnt) {
    int T = a->T;
    for (int b = 0; b < nb; b++) {
        int len = c->len[s0 + b];
        const int32_t *tk = c->tok + (size_t)(s0 + b) * c->ctx;
        for (int p = 0; p + 1 < len; p++) {
            const float *lg = a->logits + ((size_t)b * T + p) * V;
            float mx = lg[0];
            for (int v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            double z = 0.0;
            for (int v = 0; v < V; v++) z += exp((double)lg[v] - mx);
            *sum += log(z) + mx - lg[tk[p + 1]];
            (*cnt)++;
        }
    }
}

/* Replacement forward over the windows already in a->tokens: MLP outputs of positions >= 1
 * replaced by the reconstruction (zero = 1: by 0). acts_buf: [L][B*T][F]. */
static void replaced_forward(const ag_model *m, const ag_transcoder *tc, agi_acts *a, float *acts_buf, const float **ptr,
                             int zero) {
    const agi_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, T = a->T, N = a->B * a->T, F = tc->F;
    agi_forward_embed(m, a, 0, T);
    for (int l = 0; l < L; l++) {
        agi_forward_attn_heads(m, a, l, 0, T);
        agi_forward_attn_out(m, a, l, 0, T);
        agi_forward_mlp_neurons(m, a, l, 0, T);
        agi_forward_mlp_out(m, a, l, 0, T); /* the real output, kept at BOS */
        float *mo = AGI_LROW(a, mlp_out, l, D), *xn = AGI_LROW(a, x, l + 1, D);
        const float *xm = AGI_LROW(a, xmid, l, D);
        float *rec = NULL;
        if (!zero) {
            float *al = acts_buf + (size_t)l * N * F;
            const float *in = agi_tc_input(tc, a, l);
            agi_tc_encode(tc, l, in, N, NULL, al);
            ptr[l] = al;
            rec = acts_buf + (size_t)L * N * F; /* scratch [N][D] after the activations */
            agi_tc_decode(tc, l, ptr, in, N, rec, 0.0f);
        }
        for (int r = 0; r < N; r++) {
            if (r % T == 0) continue;
            float *o = mo + (size_t)r * D, *xr = xn + (size_t)r * D;
            const float *xmr = xm + (size_t)r * D;
            for (int d = 0; d < D; d++) {
                o[d] = zero ? 0.0f : rec[(size_t)r * D + d];
                xr[d] = xmr[d] + o[d];
            }
        }
    }
    agi_forward_final(m, a, 0, T);
}

static int report(const ag_transcoder_eval_options *o, const char *phase, int64_t done, int64_t total) {
    if (!o->progress) return 0;
    ag_transcoder_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.struct_size = sizeof pr;
    pr.phase = phase;
    pr.step = done;
    pr.total_steps = total;
    return o->progress(&pr, o->user_data);
}

static ag_status check_fit(const ag_transcoder *tc, const ag_model *m, const char *func) {
    if (tc->L != m->cfg.n_layers || tc->D != m->cfg.dim)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "the set (%d layers of width %d) does not fit the model %s (%d layers of width %d)",
                         tc->L, tc->D, m->name ? m->name : "", m->cfg.n_layers, m->cfg.dim);
    return AG_OK;
}

ag_status ag_transcoder_evaluate(const ag_transcoder *tc, const ag_model *m, const ag_transcoder_eval_options *opts,
                                 ag_transcoder_layer_stats *layers, ag_transcoder_eval *summary) {
    static const char *const fn = "ag_transcoder_evaluate";
    if (!tc || !m) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "model");
    if (summary) {
        ag_status st = agi_check_struct_size(summary->struct_size, sizeof(ag_transcoder_eval), fn, "summary");
        if (st != AG_OK) return st;
    }
    ag_transcoder_eval_options o;
    ag_transcoder_eval_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    st = check_fit(tc, m, fn);
    if (st != AG_OK) return st;
    if (o.n_tokens < 1 && !o.corpus_path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->n_tokens must be >= 1");
    const agi_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, F = tc->F, V = c->vocab_size;
    agi_tc_corpus corpus;
    if (report(&o, "corpus", 0, 1)) return agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    st = agi_tc_corpus_make(&corpus, m, o.corpus_path, o.n_tokens, o.context, o.temperature, o.seed, fn);
    if (st != AG_OK) return st;
    int T = corpus.ctx;
    int B = (int)((32u << 20) / ((size_t)L * c->n_heads * (size_t)T * T * 4 + 1));
    if (B < 1) B = 1;
    if (B > 16) B = 16;
    if (B > corpus.n_seq) B = corpus.n_seq;
    int N = B * T;
    agi_acts a;
    st = agi_acts_alloc(&a, c, B, T, T, 1, fn);
    float *abuf = st == AG_OK ? agi_malloc(sizeof(float) * ((size_t)L * N * F + (size_t)N * D), fn) : NULL;
    float *rec = agi_malloc(sizeof(float) * (size_t)N * D, fn);
    const float **ptr = agi_calloc((size_t)L, sizeof(float *), fn);
    double *sse = agi_calloc((size_t)L, sizeof(double), fn), *sy2 = agi_calloc((size_t)L, sizeof(double), fn);
    double *sy = agi_calloc((size_t)L * D, sizeof(double), fn), *l0 = agi_calloc((size_t)L, sizeof(double), fn);
    uint8_t *fired = agi_calloc((size_t)L * F, 1, fn);
    if (st == AG_OK && (!abuf || !rec || !ptr || !sse || !sy2 || !sy || !l0 || !fired)) st = AG_ERR_OUT_OF_MEMORY;
    double ce_m = 0.0, ce_r = 0.0, ce_z = 0.0;
    int64_t n_ce = 0, n_ce2 = 0, n_ce3 = 0, n_tok = 0;
    for (int s0 = 0; st == AG_OK && s0 < corpus.n_seq; s0 += B) {
        int nb = corpus.n_seq - s0 < B ? corpus.n_seq - s0 : B;
        agi_tc_forward_windows(m, &a, &corpus, s0, nb);
        ce_sum(&a, &corpus, s0, nb, V, &ce_m, &n_ce);
        /* per-layer reconstruction from the real model's inputs */
        for (int l = 0; l < L; l++) {
            float *al = abuf + (size_t)l * N * F;
            const float *in = agi_tc_input(tc, &a, l);
            agi_tc_encode(tc, l, in, N, NULL, al);
            ptr[l] = al;
            agi_tc_decode(tc, l, ptr, in, N, rec, 0.0f);
            const float *y = AGI_LROW(&a, mlp_out, l, D);
            for (int b = 0; b < nb; b++)
                for (int p = 1; p < corpus.len[s0 + b]; p++) {
                    size_t r = (size_t)b * T + p;
                    double e2 = 0.0, y2 = 0.0;
                    for (int d = 0; d < D; d++) {
                        double df = (double)rec[r * D + d] - y[r * D + d];
                        e2 += df * df;
                        y2 += (double)y[r * D + d] * y[r * D + d];
                        sy[(size_t)l * D + d] += y[r * D + d];
                    }
                    sse[l] += e2;
                    sy2[l] += y2;
                    const float *ar = al + r * F;
                    int cnt = 0;
                    for (int i = 0; i < F; i++)
                        if (ar[i] > 0.0f) cnt++, fired[(size_t)l * F + i] = 1;
                    l0[l] += cnt;
                    if (l == 0) n_tok++;
                }
        }
        replaced_forward(m, tc, &a, abuf, ptr, 0);
        ce_sum(&a, &corpus, s0, nb, V, &ce_r, &n_ce2);
        replaced_forward(m, tc, &a, abuf, ptr, 1);
        ce_sum(&a, &corpus, s0, nb, V, &ce_z, &n_ce3);
        if (report(&o, "evaluate", s0 + nb, corpus.n_seq)) st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    }
    if (st == AG_OK) {
        double mf = 0.0, ml0 = 0.0, md = 0.0;
        for (int l = 0; l < L; l++) {
            double mean2 = 0.0;
            for (int d = 0; d < D; d++) {
                double mu = n_tok ? sy[(size_t)l * D + d] / n_tok : 0.0;
                mean2 += mu * mu;
            }
            double var = sy2[l] - (double)n_tok * mean2;
            int nd = 0;
            for (int i = 0; i < F; i++) nd += !fired[(size_t)l * F + i];
            ag_transcoder_layer_stats ls;
            ls.fvu = var > 0 ? sse[l] / var : 0.0;
            ls.mse = n_tok ? sse[l] / n_tok : 0.0;
            ls.l0 = n_tok ? l0[l] / n_tok : 0.0;
            ls.dead_fraction = (double)nd / F;
            ls.n_tokens = n_tok;
            if (layers) layers[l] = ls;
            mf += ls.fvu;
            ml0 += ls.l0;
            md += ls.dead_fraction;
        }
        if (summary) {
            size_t given = summary->struct_size;
            ag_transcoder_eval e;
            memset(&e, 0, sizeof e);
            e.struct_size = given;
            e.n_tokens = n_ce;
            e.loss_model = n_ce ? ce_m / n_ce : NAN;
            e.loss_replacement = n_ce2 ? ce_r / n_ce2 : NAN;
            e.loss_zero_ablation = n_ce3 ? ce_z / n_ce3 : NAN;
            double den = e.loss_zero_ablation - e.loss_model;
            e.loss_recovered = den != 0.0 ? (e.loss_zero_ablation - e.loss_replacement) / den : NAN;
            e.mean_fvu = mf / L;
            e.mean_l0 = ml0 / L;
            e.mean_dead_fraction = md / L;
            memcpy(summary, &e, given < sizeof e ? given : sizeof e);
        }
        agi_clear_error();
    }
    agi_acts_free(&a);
    agi_tc_corpus_free(&corpus);
    free(abuf);
    free(rec);
    free(ptr);
    free(sse);
    free(sy2);
    free(sy);
    free(l0);
    free(fired);
    return st;
}

/* ---- labels (stub replaced below) */
ag_status ag_transcoder_label(ag_transcoder *tc, const ag_model *m, const ag_transcoder_eval_options *opts) {
    (void)tc; (void)m; (void)opts;
    return agi_error(AG_ERR_UNSUPPORTED, "ag_transcoder_label", "not yet");
}
