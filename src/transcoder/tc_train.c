/* Training transcoders.
 *
 * Data: the model runs over corpus windows (batched forward passes, one GEMM per op over all
 * rows); every scored token gives, for every block l, the read-point input x_l and the MLP
 * output y_l. Tokens go into a bounded buffer of buffer_tokens slots. Batches are drawn from a
 * shuffled permutation of the buffer; after half of it was served, exactly the served slots
 * are refilled with new tokens and the permutation is reshuffled, so every token is served
 * once and the buffer always mixes tokens from many windows. Inputs and outputs are divided by
 * a per-layer scale s (E‖x/s‖² = D on the first fill); the trained set is folded back to the
 * model's units at the end (W_enc/s_in, W_dec·s_out, b_dec·s_out, W_skip·s_out/s_in).
 *
 * Loss per batch of n tokens (on normalised data):
 *   Σ_l (1/n) Σ_r ‖ŷ_l,r − y_l,r‖²  +  λ (1/n) Σ_l Σ_r Σ_i a_l,r,i ‖W_dec_l,i‖       (ReLU)
 * with ‖W_dec_l,i‖ over all output layers of a CLT feature; TopK has no penalty and keeps the
 * decoder rows at unit norm instead. Gradients: every matmul a GEMM over the batch:
 *   dŷ = 2(ŷ − y)/n;  dW_dec = aᵀ dŷ;  da = dŷ W_decᵀ (+ λ‖W_dec,i‖/n);  dpre = da·[a > 0];
 *   dW_enc = dpreᵀ x;  db_enc = Σ dpre;  db_dec = Σ dŷ;  dW_skip = dŷᵀ x.
 * Adam (engine of src/train, without weight decay); learning rate: linear warm-up, constant,
 * linear decay to 0 over the last decay_fraction; λ ramps up over sparsity_warmup_fraction.
 * Dead features (silent for dead_steps steps) are resampled every resample_every steps
 * (during the first resample_until of training): encoder towards a high-error input, decoder
 * towards that input's residual, Adam state reset.
 *
 * Checkpoints (directory): the folded set (usable as is) and train_state.safetensors with the
 * normalised parameters, Adam moments and dead-feature counters. Resuming replays the data
 * pipeline (deterministic) to the checkpoint's step, so the result equals an uninterrupted run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/forward.h"
#include "model/model.h"
#include "train/train.h"
#include "transcoder/transcoder.h"

ag_status ag_transcoder_train_options_init(ag_transcoder_train_options *opts, size_t struct_size) {
    static const char *const fn = "ag_transcoder_train_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_transcoder_train_options d;
    memset(&d, 0, sizeof d);
    d.kind = AG_TRANSCODER_PER_LAYER;
    d.activation = AG_ACTIVATION_RELU;
    d.read_point = AG_READ_MLP_IN;
    d.n_features = 1024;
    d.k = 16;
    d.corpus_tokens = 400000;
    d.temperature = 1.0f;
    d.context = 128;
    d.skip_bos = 1;
    d.buffer_tokens = 65536;
    d.seed = 1;
    d.steps = 3000;
    d.batch_size = 2048;
    d.learning_rate = 2e-3f;
    d.warmup_steps = 100;
    d.decay_fraction = 0.2f;
    d.beta1 = 0.9f;
    d.beta2 = 0.999f;
    d.sparsity_coefficient = 3.0f;
    d.sparsity_warmup_fraction = 0.05f;
    d.dead_steps = 500;
    d.resample_every = 500;
    d.resample_until = 0.6f;
    d.progress_every = 50;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
    opts->struct_size = struct_size;
    return AG_OK;
}

/* ---- the trainer -------------------------------------------------------------------------- */

typedef struct trainer {
    ag_transcoder hdr;  /* shape and settings of the set; layers = views into p */
    agi_tc_layer *views, *gviews;
    agi_layout lay;     /* tensors of p for agi_adamw_step */
    float *p, *g, *m, *v;
    size_t np;
    int n;              /* batch rows */
    float *x, *y, *pre, *a, *yh, *da; /* [L][n][D], [L][n][D], [L][n][F], [L][n][F], [L][n][D], [n][F] */
    float *dnorm;       /* [L][F] */
    double *rowsse;     /* [L][n] */
    float *since;       /* [L][F] steps since each feature fired */
    const float **aptr; /* [L] */
    double *mu;         /* [D] */
    double *asum;       /* [F] */
    float *fsum, *cn;   /* [F] */
    uint8_t *fired;     /* [L][F] fired in the last batch */
} trainer;

static void trainer_free(trainer *t) {
    free(t->views);
    free(t->gviews);
    free(t->lay.t);
    free(t->p);
    free(t->g);
    free(t->m);
    free(t->v);
    free(t->x);
    free(t->y);
    free(t->pre);
    free(t->a);
    free(t->yh);
    free(t->da);
    free(t->dnorm);
    free(t->rowsse);
    free(t->since);
    free(t->aptr);
    free(t->mu);
    free(t->asum);
    free(t->fsum);
    free(t->cn);
    free(t->fired);
}

static void add_tensor(agi_layout *lay, const char *name, int l, size_t *off, size_t count) {
    agi_ptensor *pt = &lay->t[lay->n_t++];
    snprintf(pt->name, sizeof pt->name, "%s.%d", name, l);
    pt->offset = *off;
    pt->count = count;
    pt->rows = (int)count;
    pt->cols = 1;
    pt->decay = 0;
    *off += count;
}

static ag_status trainer_init(trainer *t, const ag_transcoder *tc, int n, const char *func) {
    memset(t, 0, sizeof *t);
    t->hdr = *tc;
    t->hdr.labels.text = NULL;
    t->hdr.model_name = NULL;
    t->n = n;
    int L = tc->L, D = tc->D, F = tc->F;
    t->views = agi_calloc((size_t)L, sizeof(agi_tc_layer), func);
    t->gviews = agi_calloc((size_t)L, sizeof(agi_tc_layer), func);
    t->lay.t = agi_calloc((size_t)L * 5, sizeof(agi_ptensor), func);
    if (!t->views || !t->gviews || !t->lay.t) return AG_ERR_OUT_OF_MEMORY;
    size_t off = 0;
    size_t *offs = agi_calloc((size_t)L * 5, sizeof(size_t), func);
    if (!offs) return AG_ERR_OUT_OF_MEMORY;
    for (int l = 0; l < L; l++) {
        size_t no = (size_t)agi_tc_n_out(tc, l);
        offs[5 * l + 0] = off, add_tensor(&t->lay, "W_enc", l, &off, (size_t)F * D);
        offs[5 * l + 1] = off, add_tensor(&t->lay, "b_enc", l, &off, (size_t)F);
        offs[5 * l + 2] = off, add_tensor(&t->lay, "W_dec", l, &off, (size_t)F * no * D);
        offs[5 * l + 3] = off, add_tensor(&t->lay, "b_dec", l, &off, (size_t)D);
        offs[5 * l + 4] = off;
        if (tc->has_skip) add_tensor(&t->lay, "W_skip", l, &off, (size_t)D * D);
    }
    t->np = off;
    t->lay.n_params = off;
    t->p = agi_calloc(off, sizeof(float), func);
    t->g = agi_calloc(off, sizeof(float), func);
    t->m = agi_calloc(off, sizeof(float), func);
    t->v = agi_calloc(off, sizeof(float), func);
    if (!t->p || !t->g || !t->m || !t->v) {
        free(offs);
        return AG_ERR_OUT_OF_MEMORY;
    }
    for (int l = 0; l < L; l++) {
        float *base[2] = {t->p, t->g};
        agi_tc_layer *vv[2] = {&t->views[l], &t->gviews[l]};
        for (int k = 0; k < 2; k++) {
            vv[k]->W_enc = base[k] + offs[5 * l + 0];
            vv[k]->b_enc = base[k] + offs[5 * l + 1];
            vv[k]->W_dec = base[k] + offs[5 * l + 2];
            vv[k]->b_dec = base[k] + offs[5 * l + 3];
            vv[k]->W_skip = tc->has_skip ? base[k] + offs[5 * l + 4] : NULL;
            vv[k]->threshold = NULL;
        }
    }
    free(offs);
    t->hdr.layers = t->views;
    size_t nD = (size_t)L * n * D, nF = (size_t)L * n * F;
    t->x = agi_malloc(sizeof(float) * nD, func);
    t->y = agi_malloc(sizeof(float) * nD, func);
    t->yh = agi_malloc(sizeof(float) * nD, func);
    t->pre = agi_malloc(sizeof(float) * nF, func);
    t->a = agi_malloc(sizeof(float) * nF, func);
    t->da = agi_malloc(sizeof(float) * (size_t)n * F, func);
    t->dnorm = agi_malloc(sizeof(float) * (size_t)L * F, func);
    t->rowsse = agi_malloc(sizeof(double) * (size_t)L * n, func);
    t->since = agi_calloc((size_t)L * F, sizeof(float), func);
    t->aptr = agi_calloc((size_t)L, sizeof(float *), func);
    t->mu = agi_calloc((size_t)D, sizeof(double), func);
    t->asum = agi_calloc((size_t)F, sizeof(double), func);
    t->fsum = agi_calloc((size_t)F, sizeof(float), func);
    t->cn = agi_calloc((size_t)F, sizeof(float), func);
    t->fired = agi_calloc((size_t)L * F, 1, func);
    if (!t->aptr || !t->mu || !t->asum || !t->fsum || !t->cn || !t->fired) return AG_ERR_OUT_OF_MEMORY;
    if (!t->x || !t->y || !t->yh || !t->pre || !t->a || !t->da || !t->dnorm || !t->rowsse || !t->since) return AG_ERR_OUT_OF_MEMORY;
    return AG_OK;
}

static int row_out(const trainer *t, int l) { return agi_tc_n_out(&t->hdr, l) * t->hdr.D; }

/* Norm of decoder row i of layer l over every output layer. */
static float dec_norm(const trainer *t, int l, int i) {
    int w = row_out(t, l);
    const float *r = t->views[l].W_dec + (size_t)i * w;
    double s = 0.0;
    for (int k = 0; k < w; k++) s += (double)r[k] * r[k];
    return (float)sqrt(s);
}

static void init_params(trainer *t, uint64_t seed) {
    int L = t->hdr.L, D = t->hdr.D, F = t->hdr.F;
    uint64_t rng = seed ^ 0x7C0DE5EEDull;
    int topk = t->hdr.activation == AG_ACTIVATION_TOPK;
    for (int l = 0; l < L; l++) {
        agi_tc_layer *ly = &t->views[l];
        int w = row_out(t, l);
        for (int i = 0; i < F; i++) {
            float *r = ly->W_dec + (size_t)i * w;
            double s = 0.0;
            for (int k = 0; k < w; k++) {
                r[k] = (float)agi_tc_normal(&rng);
                s += (double)r[k] * r[k];
            }
            float sc = (float)((topk ? 1.0 : 0.1) / sqrt(s));
            for (int k = 0; k < w; k++) r[k] *= sc;
            /* encoder row = the transpose of the own-layer decoder block, norm 0.1 */
            double se = 0.0;
            for (int d = 0; d < D; d++) se += (double)r[d] * r[d];
            float ce = (float)(0.1 / sqrt(se > 1e-30 ? se : 1e-30));
            for (int d = 0; d < D; d++) ly->W_enc[(size_t)i * D + d] = r[d] * ce;
        }
    }
}

/* Unit-norm decoder rows (TopK). */
static void normalize_decoders(trainer *t) {
    for (int l = 0; l < t->hdr.L; l++) {
        int w = row_out(t, l);
        for (int i = 0; i < t->hdr.F; i++) {
            float nr = dec_norm(t, l, i);
            if (nr > 0.0f) {
                float *r = t->views[l].W_dec + (size_t)i * w;
                for (int k = 0; k < w; k++) r[k] /= nr;
            }
        }
    }
}

typedef struct step_stats {
    double loss, mse, sse, var, l0;
} step_stats;

/* Forward, loss, backward into t->g (t->yh holds dŷ afterwards). */
static void forward_backward(trainer *t, float lambda, step_stats *ss) {
    const ag_transcoder *h = &t->hdr;
    int L = h->L, D = h->D, F = h->F, n = t->n;
    int relu = h->activation != AG_ACTIVATION_TOPK;
    size_t nD = (size_t)n * D, nF = (size_t)n * F;
    const float **acts = t->aptr;
    for (int l = 0; l < L; l++) {
        agi_tc_encode(h, l, t->x + l * nD, n, t->pre + l * nF, t->a + l * nF);
        acts[l] = t->a + l * nF;
        for (int i = 0; i < F; i++) t->dnorm[(size_t)l * F + i] = dec_norm(t, l, i);
    }
    memset(t->g, 0, sizeof(float) * t->np);
    double sse = 0.0, var = 0.0, l0 = 0.0, sp = 0.0;
    for (int l = 0; l < L; l++) {
        float *yh = t->yh + l * nD;
        const float *y = t->y + l * nD, *x = t->x + l * nD;
        agi_tc_decode(h, l, acts, x, n, yh, 0.0f);
        double *mu = t->mu;
        for (int d = 0; d < D; d++) mu[d] = 0.0;
        for (int r = 0; r < n; r++)
            for (int d = 0; d < D; d++) mu[d] += y[(size_t)r * D + d];
        for (int d = 0; d < D; d++) mu[d] /= n;
        float sc = 2.0f / (float)n;
        for (int r = 0; r < n; r++) {
            double rs = 0.0, rv = 0.0;
            float *e = yh + (size_t)r * D;
            const float *yr = y + (size_t)r * D;
            for (int d = 0; d < D; d++) {
                double df = (double)e[d] - yr[d];
                rs += df * df;
                rv += (yr[d] - mu[d]) * (yr[d] - mu[d]);
                e[d] = sc * (float)df; /* dŷ */
            }
            t->rowsse[(size_t)l * n + r] = rs;
            sse += rs;
            var += rv;
        }
        /* b_dec, W_skip */
        agi_tc_layer *gl = &t->gviews[l];
        for (int r = 0; r < n; r++)
            for (int d = 0; d < D; d++) gl->b_dec[d] += yh[(size_t)r * D + d];
        if (h->has_skip) agi_linear_dw(gl->W_skip, yh, x, n, D, D, 0.0f);
    }
    for (int s = 0; s < L; s++) {
        int no = agi_tc_n_out(h, s);
        const float *as = t->a + s * nF;
        agi_tc_layer *gs = &t->gviews[s];
        const agi_tc_layer *ps = &t->views[s];
        for (int o = 0; o < no; o++) {
            const float *dy = t->yh + (size_t)(s + o) * nD;
            /* dW_dec_s[:, o, :] = a_s^T dy_{s+o};  da_s (+)= dy_{s+o} W_dec_s[:, o, :]^T */
            agi_gemm(1, 0, F, D, n, 1.0f, as, F, dy, D, 0.0f, gs->W_dec + (size_t)o * D, no * D);
            agi_gemm(0, 1, n, F, D, 1.0f, dy, D, ps->W_dec + (size_t)o * D, no * D, o ? 1.0f : 0.0f, t->da, F);
        }
        const float *nr = t->dnorm + (size_t)s * F;
        int w = no * D;
        /* per-feature activation sums (sparsity term, its W_dec gradient, firing) */
        double *asum = t->asum;
        float *fsum = t->fsum;
        for (int i = 0; i < F; i++) fsum[i] = 0.0f;
        for (int r = 0; r < n; r++) {
            const float *ar = as + (size_t)r * F;
            for (int i = 0; i < F; i++) fsum[i] += ar[i];
        }
        uint8_t *fired = t->fired + (size_t)s * F;
        for (int i = 0; i < F; i++) {
            asum[i] = fsum[i];
            fired[i] = fsum[i] > 0.0f;
            sp += asum[i] * nr[i];
        }
        /* dpre = (da + λ‖d_i‖/n) · [a > 0] (branch-free so it vectorises) */
        float *cn = t->cn;
        for (int i = 0; i < F; i++) cn[i] = relu ? lambda * nr[i] / (float)n : 0.0f;
        int64_t cnt = 0;
        for (int r = 0; r < n; r++) {
            const float *ar = as + (size_t)r * F;
            float *dr = t->da + (size_t)r * F;
            for (int i = 0; i < F; i++) {
                int on = ar[i] > 0.0f;
                cnt += on;
                dr[i] = on ? dr[i] + cn[i] : 0.0f;
            }
        }
        l0 += (double)cnt;
        if (relu && lambda > 0.0f) { /* d/dW_dec of λ/n Σ_r a_ri ‖d_i‖ = λ/n (Σ_r a_ri) d_i/‖d_i‖ */
            for (int i = 0; i < F; i++) {
                if (asum[i] == 0.0 || nr[i] <= 0.0f) continue;
                float c = (float)(lambda * asum[i] / n) / nr[i];
                agi_axpy(w, c, ps->W_dec + (size_t)i * w, gs->W_dec + (size_t)i * w);
            }
        }
        agi_linear_dw(gs->W_enc, t->da, t->x + s * nD, n, D, F, 0.0f); /* dW_enc = dpre^T x */
        for (int r = 0; r < n; r++)
            for (int i = 0; i < F; i++) gs->b_enc[i] += t->da[(size_t)r * F + i];
    }
    ss->sse = sse;
    ss->var = var;
    ss->mse = sse / n / L;
    ss->l0 = l0 / n / L;
    ss->loss = sse / n + lambda * sp / n;
}

static void resample(trainer *t, const ag_transcoder_train_options *o, int64_t step) {
    const ag_transcoder *h = &t->hdr;
    int L = h->L, D = h->D, F = h->F, n = t->n;
    size_t nD = (size_t)n * D;
    uint64_t rng = o->seed * 0xD1B54A32D192ED03ull + (uint64_t)step;
    for (int l = 0; l < L; l++) {
        float *since = t->since + (size_t)l * F;
        agi_tc_layer *ly = &t->views[l];
        int w = row_out(t, l), n_dead = 0;
        double enc_alive = 0.0;
        int n_alive = 0;
        for (int i = 0; i < F; i++) {
            if (since[i] >= (float)o->dead_steps) n_dead++;
            else {
                double s = 0.0;
                for (int d = 0; d < D; d++) s += (double)ly->W_enc[(size_t)i * D + d] * ly->W_enc[(size_t)i * D + d];
                enc_alive += sqrt(s);
                n_alive++;
            }
        }
        if (!n_dead) continue;
        double enc_norm = n_alive ? 0.2 * enc_alive / n_alive : 0.1;
        const double *rs = t->rowsse + (size_t)l * n;
        double tot = 0.0;
        for (int r = 0; r < n; r++) tot += rs[r] * rs[r];
        for (int i = 0; i < F; i++) {
            if (since[i] < (float)o->dead_steps) continue;
            /* a row with probability proportional to its squared loss */
            double u = agi_tc_uniform(&rng) * tot, acc = 0.0;
            int r = n - 1;
            for (int q = 0; q < n; q++) {
                acc += rs[q] * rs[q];
                if (acc >= u) {
                    r = q;
                    break;
                }
            }
            const float *xr = t->x + (size_t)l * nD + (size_t)r * D;
            const float *er = t->yh + (size_t)l * nD + (size_t)r * D; /* 2/n (ŷ − y) */
            double sx = 0.0, se = 0.0;
            for (int d = 0; d < D; d++) sx += (double)xr[d] * xr[d], se += (double)er[d] * er[d];
            sx = sqrt(sx);
            se = sqrt(se);
            size_t eo = (size_t)i * D;
            float *dr = ly->W_dec + (size_t)i * w;
            float dn = h->activation == AG_ACTIVATION_TOPK ? 1.0f : 0.1f;
            for (int d = 0; d < D; d++) {
                ly->W_enc[eo + d] = sx > 0 ? (float)(enc_norm * xr[d] / sx) : 0.0f;
                dr[d] = se > 0 ? (float)(-dn * er[d] / se) : 0.0f; /* towards y − ŷ */
            }
            for (int k = D; k < w; k++) dr[k] = 0.0f;
            ly->b_enc[i] = 0.0f;
            /* Adam state of the row */
            size_t pe = (size_t)(ly->W_enc - t->p) + eo, pd = (size_t)(dr - t->p), pb = (size_t)(ly->b_enc - t->p) + (size_t)i;
            memset(t->m + pe, 0, sizeof(float) * (size_t)D);
            memset(t->v + pe, 0, sizeof(float) * (size_t)D);
            memset(t->m + pd, 0, sizeof(float) * (size_t)w);
            memset(t->v + pd, 0, sizeof(float) * (size_t)w);
            t->m[pb] = t->v[pb] = 0.0f;
            since[i] = 0.0f;
        }
    }
}

/* Copy the trainer's (normalised) parameters into tc, folding the scales back. */
static void fold_into(const trainer *t, ag_transcoder *tc, const float *s_in, const float *s_out) {
    int L = tc->L, D = tc->D, F = tc->F;
    for (int l = 0; l < L; l++) {
        const agi_tc_layer *src = &t->views[l];
        agi_tc_layer *dst = &tc->layers[l];
        float si = s_in ? s_in[l] : 1.0f, so = s_out ? s_out[l] : 1.0f;
        int no = agi_tc_n_out(tc, l);
        for (size_t q = 0; q < (size_t)F * D; q++) dst->W_enc[q] = src->W_enc[q] / si;
        memcpy(dst->b_enc, src->b_enc, sizeof(float) * (size_t)F);
        for (int i = 0; i < F; i++)
            for (int o = 0; o < no; o++) {
                float sc = s_out ? s_out[l + o] : 1.0f;
                const float *a = src->W_dec + ((size_t)i * no + o) * D;
                float *b = dst->W_dec + ((size_t)i * no + o) * D;
                for (int d = 0; d < D; d++) b[d] = a[d] * sc;
            }
        for (int d = 0; d < D; d++) dst->b_dec[d] = src->b_dec[d] * so;
        if (tc->has_skip)
            for (size_t q = 0; q < (size_t)D * D; q++) dst->W_skip[q] = src->W_skip[q] * so / si;
    }
}

static char *path_join2(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static ag_status save_state(const trainer *t, ag_transcoder *tc, const char *dir, int64_t step, const float *s_in,
                            const float *s_out, const char *func) {
    fold_into(t, tc, s_in, s_out);
    ag_status st = ag_transcoder_save(tc, dir);
    if (st != AG_OK) return st;
    char sb[32], nb[32];
    snprintf(sb, sizeof sb, "%lld", (long long)step);
    snprintf(nb, sizeof nb, "%zu", t->np);
    const char *meta[] = {"attrgraph.train_step", sb, "attrgraph.n_params", nb};
    agi_st_out ts[4] = {{"params", t->p, 1, {(int64_t)t->np, 0, 0, 0}},
                        {"adam_m", t->m, 1, {(int64_t)t->np, 0, 0, 0}},
                        {"adam_v", t->v, 1, {(int64_t)t->np, 0, 0, 0}},
                        {"since_fired", t->since, 1, {(int64_t)t->hdr.L * t->hdr.F, 0, 0, 0}}};
    char *p = path_join2(dir, "train_state.safetensors");
    if (!p) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory");
    st = agi_st_write(p, ts, 4, meta, 2, func);
    free(p);
    return st;
}

static ag_status load_state(trainer *t, const char *dir, int64_t *step, const char *func) {
    char *p = path_join2(dir, "train_state.safetensors");
    if (!p) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory");
    agi_st_file f;
    ag_status st = agi_st_read(&f, p, func);
    free(p);
    if (st != AG_OK) return st;
    const char *s = agi_st_meta(&f, "attrgraph.train_step");
    const agi_st_tensor *tp = agi_st_find(&f, "params"), *tm = agi_st_find(&f, "adam_m"), *tv = agi_st_find(&f, "adam_v"),
                        *tsn = agi_st_find(&f, "since_fired");
    if (!s || !tp || !tm || !tv || !tsn || tp->dtype != AGI_ST_F32 || agi_st_numel(tp) != (int64_t)t->np ||
        agi_st_numel(tm) != (int64_t)t->np || agi_st_numel(tv) != (int64_t)t->np ||
        agi_st_numel(tsn) != (int64_t)t->hdr.L * t->hdr.F) {
        st = agi_error(AG_ERR_FORMAT, func, "%s/train_state.safetensors: not a checkpoint of this set (step, params [%zu], adam_m, adam_v, since_fired)",
                       dir, t->np);
    } else {
        agi_st_to_f32(tp, t->p);
        agi_st_to_f32(tm, t->m);
        agi_st_to_f32(tv, t->v);
        agi_st_to_f32(tsn, t->since);
        *step = atoll(s);
    }
    agi_st_free(&f);
    return st;
}

static float lr_at(const ag_transcoder_train_options *o, int64_t step) {
    float lr = o->learning_rate;
    if (o->warmup_steps > 0 && step < o->warmup_steps) return lr * (float)(step + 1) / (float)o->warmup_steps;
    int64_t decay_start = o->steps - (int64_t)((double)o->decay_fraction * (double)o->steps);
    if (step >= decay_start && o->steps > decay_start)
        return lr * (float)(o->steps - step) / (float)(o->steps - decay_start);
    return lr;
}

/* The core, shared by ag_transcoder_train and the planted-dictionary tests. `tc` gives the
 * shape and receives the result (folded with s_in / s_out, which may be NULL). */
static ag_status train_core(ag_transcoder *tc, agi_tc_source_fn src, void *user, const ag_transcoder_train_options *o,
                            const float *s_in, const float *s_out, const char *func) {
    trainer t;
    ag_status st = trainer_init(&t, tc, o->batch_size, func);
    if (st != AG_OK) {
        trainer_free(&t);
        return st;
    }
    int L = tc->L, D = tc->D, F = tc->F, n = o->batch_size;
    int64_t step0 = 0;
    if (o->resume_path) {
        st = load_state(&t, o->resume_path, &step0, func);
        for (int64_t s = 0; st == AG_OK && s < step0; s++) { /* replay the data pipeline */
            int r = src(user, t.x, t.y, n);
            if (r) st = (ag_status)r;
        }
    } else {
        init_params(&t, o->seed);
    }
    agi_adamw opt = {o->learning_rate, o->beta1, o->beta2, 1e-8f, 0.0f};
    double t0 = agi_now_seconds();
    step_stats acc = {0};
    float acc_dead = 0.0f;
    int acc_n = 0;
    int64_t sw = (int64_t)((double)o->sparsity_warmup_fraction * (double)o->steps);
    for (int64_t step = step0; step < o->steps && st == AG_OK; step++) {
        int r = src(user, t.x, t.y, n);
        if (r) {
            st = (ag_status)r;
            break;
        }
        if (step == 0) { /* b_dec starts at the mean output */
            for (int l = 0; l < L; l++)
                for (int d = 0; d < D; d++) {
                    double s = 0.0;
                    for (int q = 0; q < n; q++) s += t.y[((size_t)l * n + q) * D + d];
                    t.views[l].b_dec[d] = (float)(s / n);
                }
        }
        float lambda = o->sparsity_coefficient * (sw > 0 && step < sw ? (float)(step + 1) / (float)sw : 1.0f);
        step_stats ss;
        forward_backward(&t, lambda, &ss);
        if (!isfinite(ss.loss)) {
            st = agi_error(AG_ERR_NUMERIC, func, "the loss became non-finite at step %lld (lower learning_rate?)", (long long)step);
            break;
        }
        opt.lr = lr_at(o, step);
        agi_adamw_step(&t.lay, t.p, t.g, t.m, t.v, step + 1, &opt);
        if (tc->activation == AG_ACTIVATION_TOPK) normalize_decoders(&t);
        /* dead features */
        int n_dead = 0;
        for (int l = 0; l < L; l++) {
            const uint8_t *fired = t.fired + (size_t)l * F;
            float *since = t.since + (size_t)l * F;
            for (int i = 0; i < F; i++) since[i] = fired[i] ? 0.0f : since[i] + 1.0f;
            for (int i = 0; i < F; i++) n_dead += since[i] >= (float)o->dead_steps;
        }
        if (o->resample_every > 0 && (step + 1) % o->resample_every == 0 &&
            (double)(step + 1) < (double)o->resample_until * (double)o->steps && n_dead > 0)
            resample(&t, o, step);
        acc.loss += ss.loss;
        acc.mse += ss.mse;
        acc.sse += ss.sse;
        acc.var += ss.var;
        acc.l0 += ss.l0;
        acc_dead += (float)n_dead / (float)((size_t)L * F);
        acc_n++;
        int last = step + 1 == o->steps;
        if (o->checkpoint_path && (last || (o->checkpoint_every > 0 && (step + 1) % o->checkpoint_every == 0))) {
            st = save_state(&t, tc, o->checkpoint_path, step + 1, s_in, s_out, func);
            if (st != AG_OK) break;
        }
        if (o->progress && (last || (o->progress_every > 0 && (step + 1) % o->progress_every == 0))) {
            ag_transcoder_progress pr;
            memset(&pr, 0, sizeof pr);
            pr.struct_size = sizeof pr;
            pr.phase = "train";
            pr.step = step + 1;
            pr.total_steps = o->steps;
            pr.loss = (float)(acc.loss / acc_n);
            pr.mse = (float)(acc.mse / acc_n);
            pr.fvu = (float)(acc.var > 0 ? acc.sse / acc.var : 0.0);
            pr.l0 = (float)(acc.l0 / acc_n);
            pr.dead_fraction = acc_dead / (float)acc_n;
            pr.learning_rate = opt.lr;
            pr.sparsity_coefficient = lambda;
            pr.tokens_seen = (double)(step + 1) * n;
            pr.elapsed_seconds = agi_now_seconds() - t0;
            memset(&acc, 0, sizeof acc);
            acc_dead = 0.0f;
            acc_n = 0;
            if (o->progress(&pr, o->user_data)) st = agi_error(AG_ERR_CANCELLED, func, "cancelled by the progress callback");
        }
    }
    if (st == AG_OK) fold_into(&t, tc, s_in, s_out);
    trainer_free(&t);
    return st;
}

ag_status agi_tc_train_core(ag_transcoder *tc, agi_tc_source_fn src, void *user, const ag_transcoder_train_options *o,
                            const char *func) {
    return train_core(tc, src, user, o, NULL, NULL, func);
}

/* ---- the model as a data source ------------------------------------------------------------ */

typedef struct msrc {
    const ag_model *m;
    const ag_transcoder *tc;
    agi_tc_corpus corpus;
    agi_acts acts;   /* Bw windows */
    int Bw;
    int L, D, T;
    int64_t cap, rd;
    float *bx, *by;  /* [L][cap][D] */
    int64_t *perm;   /* [cap] */
    int *order;      /* [n_seq] window order of the current epoch */
    int cursor;      /* next window of `order` to run */
    int cur_b, cur_p, cur_nb; /* next token in the current forward batch */
    uint64_t rng;
    int skip_bos;
    float *s_in, *s_out; /* [L] */
    int64_t tokens_collected;
} msrc;

static void shuffle_int(int *v, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(agi_tc_rng(rng) % (uint64_t)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
static void shuffle_i64(int64_t *v, int64_t n, uint64_t *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(agi_tc_rng(rng) % (uint64_t)(i + 1));
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Run the next Bw windows forward. */
static void msrc_next_batch(msrc *s) {
    const agi_tc_corpus *c = &s->corpus;
    if (s->cursor >= c->n_seq) {
        shuffle_int(s->order, c->n_seq, &s->rng);
        s->cursor = 0;
    }
    int nb = c->n_seq - s->cursor < s->Bw ? c->n_seq - s->cursor : s->Bw;
    int T = s->T;
    for (int b = 0; b < s->Bw; b++) {
        int32_t *dst = s->acts.tokens + (size_t)b * T;
        if (b < nb) memcpy(dst, c->tok + (size_t)s->order[s->cursor + b] * c->ctx, sizeof(int32_t) * (size_t)T);
        else memset(dst, 0, sizeof(int32_t) * (size_t)T);
    }
    agi_forward(s->m, &s->acts, 0, T);
    s->cur_nb = nb;
    s->cur_b = 0;
    s->cur_p = s->skip_bos ? 1 : 0;
}

/* Put the next scored token into buffer slot `slot`. */
static void msrc_fill_slot(msrc *s, int64_t slot) {
    for (;;) {
        if (s->cur_b >= s->cur_nb) {
            msrc_next_batch(s);
            s->cursor += s->cur_nb;
            continue;
        }
        int len = s->corpus.len[s->order[s->cursor - s->cur_nb + s->cur_b]];
        if (s->cur_p >= len) {
            s->cur_b++;
            s->cur_p = s->skip_bos ? 1 : 0;
            continue;
        }
        break;
    }
    size_t row = (size_t)s->cur_b * s->T + (size_t)s->cur_p;
    int D = s->D;
    for (int l = 0; l < s->L; l++) {
        const float *xi = agi_tc_input(s->tc, &s->acts, l) + row * D;
        const float *yo = AGI_LROW(&s->acts, mlp_out, l, D) + row * D;
        memcpy(s->bx + ((size_t)l * s->cap + (size_t)slot) * D, xi, sizeof(float) * (size_t)D);
        memcpy(s->by + ((size_t)l * s->cap + (size_t)slot) * D, yo, sizeof(float) * (size_t)D);
    }
    s->cur_p++;
    s->tokens_collected++;
}

static int msrc_batch(void *user, float *x, float *y, int n) {
    msrc *s = user;
    int D = s->D;
    for (int j = 0; j < n; j++) {
        if (s->rd >= s->cap / 2) {
            for (int64_t q = 0; q < s->cap / 2; q++) msrc_fill_slot(s, s->perm[q]);
            shuffle_i64(s->perm, s->cap, &s->rng);
            s->rd = 0;
        }
        int64_t slot = s->perm[s->rd++];
        for (int l = 0; l < s->L; l++) {
            const float *bx = s->bx + ((size_t)l * s->cap + (size_t)slot) * D, *by = s->by + ((size_t)l * s->cap + (size_t)slot) * D;
            float *xo = x + ((size_t)l * n + j) * D, *yo = y + ((size_t)l * n + j) * D;
            float ri = 1.0f / s->s_in[l], ro = 1.0f / s->s_out[l];
            for (int d = 0; d < D; d++) {
                xo[d] = bx[d] * ri;
                yo[d] = by[d] * ro;
            }
        }
    }
    return 0;
}

static void msrc_free(msrc *s) {
    agi_tc_corpus_free(&s->corpus);
    agi_acts_free(&s->acts);
    free(s->bx);
    free(s->by);
    free(s->perm);
    free(s->order);
    free(s->s_in);
    free(s->s_out);
}

static int report_phase(const ag_transcoder_train_options *o, const char *phase, double t0) {
    if (!o->progress) return 0;
    ag_transcoder_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.struct_size = sizeof pr;
    pr.phase = phase;
    pr.total_steps = o->steps;
    pr.elapsed_seconds = agi_now_seconds() - t0;
    return o->progress(&pr, o->user_data);
}

ag_status ag_transcoder_train(ag_transcoder **out, const ag_model *m, const ag_transcoder_train_options *opts) {
    static const char *const fn = "ag_transcoder_train";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!m) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "model is NULL");
    ag_transcoder_train_options o;
    ag_transcoder_train_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.kind != AG_TRANSCODER_PER_LAYER && o.kind != AG_TRANSCODER_CROSS_LAYER)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->kind = %d is not an AG_TRANSCODER_* value", (int)o.kind);
    if (o.activation != AG_ACTIVATION_RELU && o.activation != AG_ACTIVATION_TOPK)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->activation = %d: training supports AG_ACTIVATION_RELU and AG_ACTIVATION_TOPK", (int)o.activation);
    if (o.read_point != AG_READ_MLP_IN && o.read_point != AG_READ_RESID_MID)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->read_point = %d is not an AG_READ_* value", (int)o.read_point);
    if (o.n_features < 1 || o.n_features > (1 << 24))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->n_features = %d must be in [1, 2^24]", (int)o.n_features);
    if (o.activation == AG_ACTIVATION_TOPK && (o.k < 1 || o.k > o.n_features))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->k = %d must be in [1, n_features]", (int)o.k);
    if (o.steps < 1 || o.batch_size < 1 || o.batch_size > (1 << 20))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->steps = %lld and batch_size = %d must be >= 1", (long long)o.steps, (int)o.batch_size);
    if (o.buffer_tokens < 2 * (int64_t)o.batch_size)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->buffer_tokens = %lld must be at least 2 x batch_size", (long long)o.buffer_tokens);
    if (!(o.learning_rate > 0.0f) || !(o.sparsity_coefficient >= 0.0f) || !(o.decay_fraction >= 0.0f && o.decay_fraction <= 1.0f) ||
        !(o.beta1 >= 0.0f && o.beta1 < 1.0f) || !(o.beta2 >= 0.0f && o.beta2 < 1.0f) || o.warmup_steps < 0 || o.dead_steps < 1 ||
        o.resample_every < 0)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "an optimisation option is out of range (learning_rate > 0, sparsity_coefficient >= 0, "
                                                      "decay_fraction in [0,1], betas in [0,1), warmup_steps >= 0, dead_steps >= 1)");
    if (o.corpus_tokens < 1 && !o.corpus_path)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->corpus_tokens = %lld must be >= 1", (long long)o.corpus_tokens);
    const agi_config *c = &m->cfg;
    ag_transcoder *tc = NULL;
    st = agi_tc_alloc(&tc, o.kind, o.activation, o.read_point, c->n_layers, c->dim, o.n_features, o.k, 0, o.skip, fn);
    if (st != AG_OK) return st;
    if (m->name) {
        const char *b = strrchr(m->name, '/');
        b = b ? b + 1 : m->name;
        tc->model_name = malloc(strlen(b) + 1);
        if (tc->model_name) strcpy(tc->model_name, b);
    }
    if ((st = agi_tc_record_model(tc, m, fn)) != AG_OK) { /* trained for `m` */
        ag_transcoder_free(tc);
        return st;
    }
    double t0 = agi_now_seconds();
    msrc s;
    memset(&s, 0, sizeof s);
    s.m = m;
    s.tc = tc;
    s.L = c->n_layers;
    s.D = c->dim;
    s.skip_bos = o.skip_bos != 0;
    s.rng = o.seed * 0x2545F4914F6CDD1Dull + 17;
    if (report_phase(&o, "corpus", t0)) st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    if (st == AG_OK) st = agi_tc_corpus_make(&s.corpus, m, o.corpus_path, o.corpus_tokens, o.context,
                                             o.temperature, o.seed, fn);
    if (st == AG_OK) {
        s.T = s.corpus.ctx;
        size_t per = (size_t)c->n_layers * c->n_heads * (size_t)s.T * s.T * 4 + (size_t)s.T * 4 * (size_t)(c->dim * 12 + c->hidden_dim * 3);
        s.Bw = (int)((64u << 20) / (per ? per : 1));
        if (s.Bw < 1) s.Bw = 1;
        if (s.Bw > 64) s.Bw = 64;
        if (s.Bw > s.corpus.n_seq) s.Bw = s.corpus.n_seq;
        st = agi_acts_alloc(&s.acts, c, s.Bw, s.T, s.T, 0, fn);
    }
    if (st == AG_OK) {
        s.cap = o.buffer_tokens;
        size_t fl;
        if (!agi_mul_size((size_t)s.L * (size_t)s.cap, (size_t)s.D, &fl)) st = agi_error(AG_ERR_OUT_OF_MEMORY, fn, "buffer size overflows");
        else {
            s.bx = agi_malloc(sizeof(float) * fl, fn);
            s.by = agi_malloc(sizeof(float) * fl, fn);
            s.perm = agi_malloc(sizeof(int64_t) * (size_t)s.cap, fn);
            s.order = agi_malloc(sizeof(int) * (size_t)s.corpus.n_seq, fn);
            s.s_in = agi_malloc(sizeof(float) * (size_t)s.L, fn);
            s.s_out = agi_malloc(sizeof(float) * (size_t)s.L, fn);
            if (!s.bx || !s.by || !s.perm || !s.order || !s.s_in || !s.s_out) st = AG_ERR_OUT_OF_MEMORY;
        }
    }
    if (st == AG_OK) {
        int64_t scored = 0;
        for (int q = 0; q < s.corpus.n_seq; q++) scored += s.corpus.len[q] - (s.skip_bos ? 1 : 0);
        if (scored < 1) st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "the corpus has no scored tokens");
    }
    if (st == AG_OK && report_phase(&o, "collect", t0)) st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    if (st == AG_OK) {
        for (int q = 0; q < s.corpus.n_seq; q++) s.order[q] = q;
        shuffle_int(s.order, s.corpus.n_seq, &s.rng);
        s.cursor = 0;
        s.cur_b = s.cur_nb = 0;
        for (int64_t q = 0; q < s.cap; q++) {
            s.perm[q] = q;
            msrc_fill_slot(&s, q);
        }
        for (int l = 0; l < s.L; l++) {
            double sx = 0.0, sy = 0.0;
            const float *bx = s.bx + (size_t)l * s.cap * s.D, *by = s.by + (size_t)l * s.cap * s.D;
            for (size_t q = 0; q < (size_t)s.cap * s.D; q++) sx += (double)bx[q] * bx[q], sy += (double)by[q] * by[q];
            s.s_in[l] = (float)sqrt(sx / ((double)s.cap * s.D));
            s.s_out[l] = (float)sqrt(sy / ((double)s.cap * s.D));
            if (!(s.s_in[l] > 0.0f)) s.s_in[l] = 1.0f;
            if (!(s.s_out[l] > 0.0f)) s.s_out[l] = 1.0f;
        }
        shuffle_i64(s.perm, s.cap, &s.rng);
        s.rd = 0;
        st = train_core(tc, msrc_batch, &s, &o, s.s_in, s.s_out, fn);
    }
    msrc_free(&s);
    if (st != AG_OK) {
        ag_transcoder_free(tc);
        return st;
    }
    agi_clear_error();
    *out = tc;
    return AG_OK;
}
