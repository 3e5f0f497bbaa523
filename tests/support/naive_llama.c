/*
 * naive_llama.c — independent double-precision reference of the llama2.c model (see the
 * header). Written from DESIGN §1.1 and models/README.md; shares no code with src/.
 */
#include "naive_llama.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading ------------------------------------------------------------------------------ */

static int read_floats(FILE *f, double *dst, size_t n) {
    float buf[1024];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < 1024 ? n - done : 1024;
        if (fread(buf, sizeof(float), k, f) != k) return -1;
        for (size_t i = 0; i < k; i++) dst[done + i] = (double)buf[i];
        done += k;
    }
    return 0;
}

static int skip_floats(FILE *f, size_t n) {
    double tmp[256];
    while (n > 0) {
        size_t k = n < 256 ? n : 256;
        if (read_floats(f, tmp, k)) return -1;
        n -= k;
    }
    return 0;
}

void nl_free(nl_model *m) {
    if (!m) return;
    free(m->emb);
    free(m->rms_att);
    free(m->wq);
    free(m->wk);
    free(m->wv);
    free(m->wo);
    free(m->rms_ffn);
    free(m->w1);
    free(m->w2);
    free(m->w3);
    free(m->rms_final);
    if (!m->c.shared_classifier) free(m->wcls);
    free(m);
}

nl_model *nl_load_bin(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nl_load_bin: cannot open %s\n", path);
        return NULL;
    }
    int32_t h[7];
    nl_model *m = calloc(1, sizeof *m);
    if (!m || fread(h, sizeof(int32_t), 7, f) != 7) {
        fprintf(stderr, "nl_load_bin: %s: short header\n", path);
        goto fail;
    }
    nl_config *c = &m->c;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared_classifier = h[5] > 0;
    c->vocab_size = h[5] < 0 ? -h[5] : h[5];
    c->seq_len = h[6];
    c->rms_eps = 1e-5;
    c->rope_theta = 10000.0;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->vocab_size <= 0 || c->seq_len <= 0 || c->dim % c->n_heads || c->n_heads % c->n_kv_heads) {
        fprintf(stderr, "nl_load_bin: %s: bad header\n", path);
        goto fail;
    }
    c->head_dim = c->dim / c->n_heads;
    c->kv_dim = c->n_kv_heads * c->head_dim;
    size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size,
           KV = (size_t)c->kv_dim;
#define NL_ALLOC_READ(field, count)                                                   \
    do {                                                                              \
        m->field = malloc((count) * sizeof(double));                                  \
        if (!m->field || read_floats(f, m->field, (count))) {                         \
            fprintf(stderr, "nl_load_bin: %s: cannot read %s\n", path, #field);       \
            goto fail;                                                                \
        }                                                                             \
    } while (0)
    NL_ALLOC_READ(emb, V * D);
    NL_ALLOC_READ(rms_att, L * D);
    NL_ALLOC_READ(wq, L * D * D);
    NL_ALLOC_READ(wk, L * KV * D);
    NL_ALLOC_READ(wv, L * KV * D);
    NL_ALLOC_READ(wo, L * D * D);
    NL_ALLOC_READ(rms_ffn, L * D);
    NL_ALLOC_READ(w1, L * Hd * D);
    NL_ALLOC_READ(w2, L * D * Hd);
    NL_ALLOC_READ(w3, L * Hd * D);
    NL_ALLOC_READ(rms_final, D);
    /* legacy RoPE tables freq_cis_real/imag [seq_len][head_size/2] each: ignored */
    if (skip_floats(f, (size_t)c->seq_len * (size_t)c->head_dim)) {
        fprintf(stderr, "nl_load_bin: %s: truncated RoPE tables\n", path);
        goto fail;
    }
    if (c->shared_classifier) {
        m->wcls = m->emb;
    } else {
        NL_ALLOC_READ(wcls, V * D);
    }
#undef NL_ALLOC_READ
    /* the file must end exactly here */
    if (fgetc(f) != EOF) {
        fprintf(stderr, "nl_load_bin: %s: trailing bytes after the weights\n", path);
        goto fail;
    }
    fclose(f);
    m->n_params = (int64_t)(V * D + L * (2 * D + 2 * D * D + 2 * KV * D + 3 * D * Hd) + D +
                            (c->shared_classifier ? 0 : V * D));
    return m;
fail:
    fclose(f);
    nl_free(m);
    return NULL;
}

/* ---- cache -------------------------------------------------------------------------------- */

void nl_cache_free(nl_cache *c) {
    if (!c) return;
    double **f[] = {&c->resid, &c->mid, &c->r_att, &c->attn_in, &c->q, &c->k, &c->v, &c->att,
                    &c->heads, &c->attn_out, &c->r_ffn, &c->mlp_in, &c->gate, &c->up,
                    &c->neurons, &c->mlp_out, &c->r_fin, &c->final_out, &c->logits};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]);
    free(c);
}

nl_cache *nl_cache_new(const nl_model *m, int T) {
    if (!m || T <= 0) return NULL;
    nl_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->T = T;
    c->L = m->c.n_layers;
    c->D = m->c.dim;
    c->KV = m->c.kv_dim;
    c->Hd = m->c.hidden_dim;
    c->H = m->c.n_heads;
    c->V = m->c.vocab_size;
    size_t t = (size_t)T, L = (size_t)c->L, D = (size_t)c->D;
    int ok = 1;
#define NL_Z(field, count) ok &= (c->field = calloc((count), sizeof(double))) != NULL
    NL_Z(resid, (L + 1) * t * D);
    NL_Z(mid, L * t * D);
    NL_Z(r_att, L * t);
    NL_Z(attn_in, L * t * D);
    NL_Z(q, L * t * D);
    NL_Z(k, L * t * (size_t)c->KV);
    NL_Z(v, L * t * (size_t)c->KV);
    NL_Z(att, L * (size_t)c->H * t * t);
    NL_Z(heads, L * t * D);
    NL_Z(attn_out, L * t * D);
    NL_Z(r_ffn, L * t);
    NL_Z(mlp_in, L * t * D);
    NL_Z(gate, L * t * (size_t)c->Hd);
    NL_Z(up, L * t * (size_t)c->Hd);
    NL_Z(neurons, L * t * (size_t)c->Hd);
    NL_Z(mlp_out, L * t * D);
    NL_Z(r_fin, t);
    NL_Z(final_out, t * D);
    NL_Z(logits, t * (size_t)c->V);
#undef NL_Z
    if (!ok) {
        nl_cache_free(c);
        return NULL;
    }
    return c;
}

/* ---- forward ------------------------------------------------------------------------------ */

/* y[r] = sum_c W[r][c] x[c], W [rows][cols] */
static void matvec(double *y, const double *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const double *w = W + (size_t)r * (size_t)cols;
        double s = 0.0;
        for (int c = 0; c < cols; c++) s += w[c] * x[c];
        y[r] = s;
    }
}

static double rms_scale(const double *x, int n, double eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    return 1.0 / sqrt(ss / n + eps);
}

/* Rotate adjacent pairs of each head of vec (n_heads_here heads of hs) at position pos. */
static void rope(double *vec, int n_heads_here, int hs, int pos, double theta) {
    for (int h = 0; h < n_heads_here; h++) {
        double *x = vec + (size_t)h * (size_t)hs;
        for (int i = 0; i < hs / 2; i++) {
            double freq = pow(theta, -2.0 * i / hs);
            double a = pos * freq;
            double cs = cos(a), sn = sin(a);
            double x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * cs - x1 * sn;
            x[2 * i + 1] = x0 * sn + x1 * cs;
        }
    }
}

static double silu(double z) { return z / (1.0 + exp(-z)); }

int nl_forward_i32(const nl_model *m, const int32_t *tokens, int T, double *logits, nl_cache *cache) {
    if (!tokens || T <= 0) return -1;
    int *t = malloc((size_t)T * sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < T; i++) t[i] = tokens[i];
    int rc = nl_forward_ex(m, t, T, NULL, logits, cache);
    free(t);
    return rc;
}

int nl_forward(const nl_model *m, const int *tokens, int T, double *logits, nl_cache *cache) {
    return nl_forward_ex(m, tokens, T, NULL, logits, cache);
}

#define HOOK(site, layer, width, data)                                              \
    do {                                                                            \
        if (o.hook) o.hook(o.user, (site), (layer), T, (width), (data));            \
    } while (0)

int nl_forward_ex(const nl_model *m, const int *tokens, int T, const nl_forward_opts *opts,
                  double *logits, nl_cache *cache) {
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (!m || T <= 0 || T > m->c.seq_len) return -1;
    if (o.freeze && (!o.frozen || o.frozen->T != T)) return -1;
    if (o.start_layer < 0 || o.start_layer > m->c.n_layers) return -1;
    if (o.start_layer > 0 && !o.start_resid) return -1;
    if (cache && cache->T != T) return -1;
    const nl_config *c = &m->c;
    const int D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, H = c->n_heads, V = c->vocab_size;
    const int hs = c->head_dim, L = c->n_layers, group = c->n_heads / c->n_kv_heads;
    if (!o.start_resid) { /* the tokens are used only for the embeddings */
        if (!tokens) return -1;
        for (int p = 0; p < T; p++)
            if (tokens[p] < 0 || tokens[p] >= V) return -1;
    }
    const size_t t = (size_t)T;
    const nl_cache *fz = o.frozen;

    nl_cache *own = NULL;
    nl_cache *C = cache;
    if (!C) {
        own = nl_cache_new(m, T);
        if (!own) return -1;
        C = own;
    }

    double *x = malloc(t * (size_t)D * sizeof *x);
    double *scores = malloc(t * sizeof *scores);
    if (!x || !scores) {
        free(x);
        free(scores);
        nl_cache_free(own);
        return -1;
    }

    if (o.start_resid) {
        memcpy(x, o.start_resid, t * (size_t)D * sizeof *x);
    } else {
        for (int p = 0; p < T; p++)
            memcpy(x + (size_t)p * D, m->emb + (size_t)tokens[p] * D, (size_t)D * sizeof *x);
    }

    for (int l = o.start_layer; l < L; l++) {
        const size_t sD = t * (size_t)D, sKV = t * (size_t)KV, sH = t * (size_t)Hd;
        double *resid = C->resid + l * sD, *mid = C->mid + l * sD, *r_att = C->r_att + l * t;
        double *a = C->attn_in + l * sD, *q = C->q + l * sD, *k = C->k + l * sKV, *v = C->v + l * sKV;
        double *att = C->att + (size_t)l * (size_t)H * t * t, *heads = C->heads + l * sD;
        double *attn_out = C->attn_out + l * sD, *r_ffn = C->r_ffn + l * t, *u = C->mlp_in + l * sD;
        double *gate = C->gate + l * sH, *up = C->up + l * sH, *nn = C->neurons + l * sH;
        double *mlp_out = C->mlp_out + l * sD;
        const double *g_att = m->rms_att + (size_t)l * D, *g_ffn = m->rms_ffn + (size_t)l * D;
        const double *wq = m->wq + (size_t)l * D * D, *wk = m->wk + (size_t)l * KV * D;
        const double *wv = m->wv + (size_t)l * KV * D, *wo = m->wo + (size_t)l * D * D;
        const double *w1 = m->w1 + (size_t)l * Hd * D, *w2 = m->w2 + (size_t)l * D * Hd;
        const double *w3 = m->w3 + (size_t)l * Hd * D;

        HOOK(NL_SITE_RESID, l, D, x);
        memcpy(resid, x, sD * sizeof *x);

        /* attention input, q k v, RoPE */
        for (int p = 0; p < T; p++) {
            const double *xp = x + (size_t)p * D;
            double r = (o.freeze & NL_FREEZE_NORMS) ? fz->r_att[l * t + (size_t)p] : rms_scale(xp, D, c->rms_eps);
            r_att[p] = r;
            double *ap = a + (size_t)p * D;
            for (int i = 0; i < D; i++) ap[i] = xp[i] * r * g_att[i];
            matvec(q + (size_t)p * D, wq, ap, D, D);
            matvec(k + (size_t)p * KV, wk, ap, KV, D);
            matvec(v + (size_t)p * KV, wv, ap, KV, D);
            rope(q + (size_t)p * D, H, hs, p, c->rope_theta);
            rope(k + (size_t)p * KV, c->n_kv_heads, hs, p, c->rope_theta);
        }
        /* causal softmax attention per head */
        const double scale = 1.0 / sqrt((double)hs);
        for (int h = 0; h < H; h++) {
            int kvh = h / group;
            double *P = att + (size_t)h * t * t;
            for (int qi = 0; qi < T; qi++) {
                double *Prow = P + (size_t)qi * t;
                if (o.freeze & NL_FREEZE_ATTN) {
                    const double *F = fz->att + ((size_t)l * (size_t)H + (size_t)h) * t * t + (size_t)qi * t;
                    for (int kj = 0; kj < T; kj++) Prow[kj] = kj <= qi ? F[kj] : 0.0;
                } else {
                    const double *qv = q + (size_t)qi * D + (size_t)h * hs;
                    double mx = -INFINITY;
                    for (int kj = 0; kj <= qi; kj++) {
                        const double *kv = k + (size_t)kj * KV + (size_t)kvh * hs;
                        double s = 0.0;
                        for (int d = 0; d < hs; d++) s += qv[d] * kv[d];
                        scores[kj] = s * scale;
                        if (scores[kj] > mx) mx = scores[kj];
                    }
                    double sum = 0.0;
                    for (int kj = 0; kj <= qi; kj++) {
                        scores[kj] = exp(scores[kj] - mx);
                        sum += scores[kj];
                    }
                    for (int kj = 0; kj < T; kj++) Prow[kj] = kj <= qi ? scores[kj] / sum : 0.0;
                }
                double *out = heads + (size_t)qi * D + (size_t)h * hs;
                for (int d = 0; d < hs; d++) out[d] = 0.0;
                for (int kj = 0; kj <= qi; kj++) {
                    const double *vv = v + (size_t)kj * KV + (size_t)kvh * hs;
                    for (int d = 0; d < hs; d++) out[d] += Prow[kj] * vv[d];
                }
            }
        }
        HOOK(NL_SITE_ATTN_HEADS, l, D, heads);
        for (int p = 0; p < T; p++) matvec(attn_out + (size_t)p * D, wo, heads + (size_t)p * D, D, D);
        HOOK(NL_SITE_ATTN_OUT, l, D, attn_out);
        for (size_t i = 0; i < sD; i++) x[i] += attn_out[i];
        HOOK(NL_SITE_MID, l, D, x);
        memcpy(mid, x, sD * sizeof *x);

        /* MLP */
        for (int p = 0; p < T; p++) {
            const double *xp = x + (size_t)p * D;
            double r = (o.freeze & NL_FREEZE_NORMS) ? fz->r_ffn[l * t + (size_t)p] : rms_scale(xp, D, c->rms_eps);
            r_ffn[p] = r;
            double *up_ = u + (size_t)p * D;
            for (int i = 0; i < D; i++) up_[i] = xp[i] * r * g_ffn[i];
            matvec(gate + (size_t)p * Hd, w1, up_, Hd, D);
            matvec(up + (size_t)p * Hd, w3, up_, Hd, D);
        }
        HOOK(NL_SITE_GATE, l, Hd, gate);
        HOOK(NL_SITE_UP, l, Hd, up);
        for (size_t i = 0; i < sH; i++) {
            double g = (o.freeze & NL_FREEZE_GATES) ? fz->gate[l * sH + i] : gate[i];
            nn[i] = silu(g) * up[i];
        }
        HOOK(NL_SITE_NEURONS, l, Hd, nn);
        if (o.freeze & NL_FREEZE_MLP_OUT) {
            memcpy(mlp_out, fz->mlp_out + l * sD, sD * sizeof *x);
        } else {
            for (int p = 0; p < T; p++) matvec(mlp_out + (size_t)p * D, w2, nn + (size_t)p * Hd, D, Hd);
        }
        HOOK(NL_SITE_MLP_OUT, l, D, mlp_out);
        for (size_t i = 0; i < sD; i++) x[i] += mlp_out[i];
    }

    /* final norm and classifier */
    HOOK(NL_SITE_RESID, L, D, x);
    memcpy(C->resid + (size_t)L * t * D, x, t * (size_t)D * sizeof *x);
    for (int p = 0; p < T; p++) {
        const double *xp = x + (size_t)p * D;
        double r = (o.freeze & NL_FREEZE_NORMS) ? fz->r_fin[p] : rms_scale(xp, D, c->rms_eps);
        C->r_fin[p] = r;
        double *fo = C->final_out + (size_t)p * D;
        for (int i = 0; i < D; i++) fo[i] = xp[i] * r * m->rms_final[i];
        matvec(C->logits + (size_t)p * V, m->wcls, fo, V, D);
    }
    HOOK(NL_SITE_LOGITS, L, V, C->logits);
    if (logits) memcpy(logits, C->logits, t * (size_t)V * sizeof *logits);

    free(x);
    free(scores);
    nl_cache_free(own);
    return 0;
}
#undef HOOK

/* ---- finite differences ------------------------------------------------------------------ */

void nl_fd_grad(nl_scalar_fn f, void *user, double *x, size_t n, double h, double *grad) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = f(user, x, n);
        x[i] = x0 - h;
        double fm = f(user, x, n);
        x[i] = x0;
        grad[i] = (fp - fm) / (2.0 * h);
    }
}

void nl_fd_grad5(nl_scalar_fn f, void *user, double *x, size_t n, double h, double *grad) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + 2.0 * h;
        double f2p = f(user, x, n);
        x[i] = x0 + h;
        double f1p = f(user, x, n);
        x[i] = x0 - h;
        double f1m = f(user, x, n);
        x[i] = x0 - 2.0 * h;
        double f2m = f(user, x, n);
        x[i] = x0;
        grad[i] = (-f2p + 8.0 * f1p - 8.0 * f1m + f2m) / (12.0 * h);
    }
}

double nl_fd_dir(nl_scalar_fn f, void *user, const double *x, const double *dir, size_t n, double h) {
    double *y = calloc(n ? n : 1, sizeof *y);
    if (!y) return NAN;
    for (size_t i = 0; i < n; i++) y[i] = x[i] + h * dir[i];
    double fp = f(user, y, n);
    for (size_t i = 0; i < n; i++) y[i] = x[i] - h * dir[i];
    double fm = f(user, y, n);
    free(y);
    return (fp - fm) / (2.0 * h);
}

/* ---- test helpers ------------------------------------------------------------------------- */

#ifndef AG_SHARED_DIR
#define AG_SHARED_DIR "../shared"
#endif

const char *ag_test_fixture(const char *rel) {
    static _Thread_local char bufs[8][4096];
    static _Thread_local unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", AG_SHARED_DIR, rel ? rel : "");
    return b;
}

int ag_test_under_valgrind(void) {
    const char *v = getenv("AG_UNDER_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

double ag_max_abs_d(const double *x, size_t n) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return INFINITY;
        double a = fabs(x[i]);
        if (a > mx) mx = a;
    }
    return mx;
}

double ag_max_abs_f(const float *x, size_t n) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return INFINITY;
        double a = fabs((double)x[i]);
        if (a > mx) mx = a;
    }
    return mx;
}

double ag_max_diff_fd(const float *a, const double *b, size_t n) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!isfinite(d)) return INFINITY;
        if (d > mx) mx = d;
    }
    return mx;
}

double ag_max_diff_ff(const float *a, const float *b, size_t n) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!isfinite(d)) return INFINITY;
        if (d > mx) mx = d;
    }
    return mx;
}

double ag_max_diff_dd(const double *a, const double *b, size_t n) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!isfinite(d)) return INFINITY;
        if (d > mx) mx = d;
    }
    return mx;
}

static double rel(double diff, double scale) { return diff / (scale > 1e-30 ? scale : 1e-30); }

double ag_rel_err_fd(const float *got, const double *want, size_t n) {
    return rel(ag_max_diff_fd(got, want, n), ag_max_abs_d(want, n));
}
double ag_rel_err_ff(const float *got, const float *want, size_t n) {
    return rel(ag_max_diff_ff(got, want, n), ag_max_abs_f(want, n));
}
double ag_rel_err_dd(const double *got, const double *want, size_t n) {
    return rel(ag_max_diff_dd(got, want, n), ag_max_abs_d(want, n));
}

cJSON *ag_test_load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ag_test_load_json: cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *g = realloc(buf, cap * 2);
            if (!g) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = g;
            cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - 1 - len, f);
        len += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "ag_test_load_json: cannot read %s\n", path);
        return NULL;
    }
    buf[len] = '\0';
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!j) fprintf(stderr, "ag_test_load_json: %s is not valid JSON\n", path);
    return j;
}

/* Count (mode 0) or write (mode 1) the numbers of a nested array. -1 on a non-number leaf. */
static long flatten(const cJSON *a, double *out, size_t *k) {
    if (cJSON_IsNumber(a)) {
        if (out) out[*k] = a->valuedouble;
        (*k)++;
        return 0;
    }
    if (!cJSON_IsArray(a)) return -1;
    for (const cJSON *e = a->child; e; e = e->next)
        if (flatten(e, out, k)) return -1;
    return 0;
}

double *ag_json_doubles(const cJSON *arr, size_t *n) {
    size_t k = 0;
    if (n) *n = 0;
    if (!arr || flatten(arr, NULL, &k) || k == 0) return NULL;
    double *v = malloc(k * sizeof *v);
    if (!v) return NULL;
    size_t k2 = 0;
    flatten(arr, v, &k2);
    if (n) *n = k;
    return v;
}

int32_t *ag_json_ints(const cJSON *arr, size_t *n) {
    size_t k = 0;
    double *d = ag_json_doubles(arr, &k);
    if (n) *n = 0;
    if (!d) return NULL;
    int32_t *v = malloc(k * sizeof *v);
    if (!v) {
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        if (d[i] != floor(d[i]) || d[i] < INT32_MIN || d[i] > INT32_MAX) {
            free(d);
            free(v);
            return NULL;
        }
        v[i] = (int32_t)d[i];
    }
    free(d);
    if (n) *n = k;
    return v;
}

const cJSON *ag_json_get(const cJSON *root, ...) {
    va_list ap;
    va_start(ap, root);
    const cJSON *cur = root;
    const char *key;
    while (cur && (key = va_arg(ap, const char *)) != NULL) cur = cJSON_GetObjectItemCaseSensitive(cur, key);
    va_end(ap);
    return cur;
}
