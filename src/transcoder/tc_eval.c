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

/* Windows per forward batch: attention scores within ~32 MiB, at most 16 and the corpus. */
static int batch_windows(const agi_config *c, const agi_tc_corpus *corpus) {
    int T = corpus->ctx;
    int B = (int)((32u << 20) / ((size_t)c->n_layers * c->n_heads * (size_t)T * T * 4 + 1));
    if (B < 1) B = 1;
    if (B > 16) B = 16;
    return B > corpus->n_seq ? corpus->n_seq : B;
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
    st = agi_tc_check_model(tc, m, fn, "the set");
    if (st != AG_OK) return st;
    if (o.n_tokens < 1 && !o.corpus_path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->n_tokens must be >= 1");
    const agi_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, F = tc->F, V = c->vocab_size;
    agi_tc_corpus corpus;
    if (report(&o, "corpus", 0, 1)) return agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    st = agi_tc_corpus_make(&corpus, m, o.corpus_path, o.n_tokens, o.context, o.temperature, o.seed, fn);
    if (st != AG_OK) return st;
    int T = corpus.ctx;
    int B = batch_windows(c, &corpus);
    int N = B * T;
    agi_acts a;
    st = agi_acts_alloc(&a, c, B, T, T, 1, fn);
    float *abuf = st == AG_OK ? agi_malloc(sizeof(float) * ((size_t)L * N * F + (size_t)N * D), fn) : NULL;
    const float **ptr = agi_calloc((size_t)L, sizeof(float *), fn);
    double *sse = agi_calloc((size_t)L, sizeof(double), fn), *sy2 = agi_calloc((size_t)L, sizeof(double), fn);
    double *sy = agi_calloc((size_t)L * D, sizeof(double), fn), *l0 = agi_calloc((size_t)L, sizeof(double), fn);
    uint8_t *fired = agi_calloc((size_t)L * F, 1, fn);
    float *rec = abuf ? abuf + (size_t)L * N * F : NULL; /* [N][D] scratch after the activations */
    if (st == AG_OK && (!abuf || !ptr || !sse || !sy2 || !sy || !l0 || !fired)) st = AG_ERR_OUT_OF_MEMORY;
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
    free(ptr);
    free(sse);
    free(sy2);
    free(sy);
    free(l0);
    free(fired);
    return st;
}

/* ---- feature labels ---------------------------------------------------------------------------
 * For every feature: the top_contexts highest activations on the text (a min-heap per feature),
 * its density, and the top_tokens output tokens of its decoder direction through the
 * unembedding, logits = W_cls · (g_final ⊙ Σ_o W_dec[i, o, :]). The label (the graph's clerp)
 * reads  "ctx …big red [ball] → ball, toy"  (the top context, the activating token in brackets,
 * then the top output tokens). Everything goes into labels.json beside the transcoders. */

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct example {
    float act;
    int32_t seq, pos;
} example;

/* min-heap by act (ties: later seq/pos first out, so earlier examples win) */
static int ex_less(const example *a, const example *b) {
    return a->act < b->act || (a->act == b->act && (a->seq > b->seq || (a->seq == b->seq && a->pos > b->pos)));
}
static void heap_push(example *h, int *n, int cap, example e) {
    if (*n < cap) {
        int c = (*n)++;
        while (c > 0) {
            int p = (c - 1) / 2;
            if (!ex_less(&e, &h[p])) break;
            h[c] = h[p];
            c = p;
        }
        h[c] = e;
        return;
    }
    if (!ex_less(&h[0], &e)) return;
    int c = 0;
    for (;;) {
        int l = 2 * c + 1, r = l + 1, m = c;
        const example *best = &e;
        if (l < cap && ex_less(&h[l], best)) best = &h[l], m = l;
        if (r < cap && ex_less(&h[r], best)) best = &h[r], m = r;
        if (m == c) break;
        h[c] = h[m];
        c = m;
    }
    h[c] = e;
}
static int ex_cmp_desc(const void *a, const void *b) {
    const example *x = a, *y = b;
    return ex_less(y, x) ? -1 : ex_less(x, y) ? 1 : 0;
}

/* Replace every byte that is not part of a valid UTF-8 sequence by '?' (byte-fallback tokens
 * decode to lone bytes; JSON writers and viewers need valid UTF-8). */
static void utf8_sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        int ok = n >= 0 && !(n == 1 && *p < 0xC2);
        for (int k = 1; ok && k <= n; k++) ok = (p[k] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

/* Append the decoded text of tokens [p0, p1] of window s to buf, the token at `mark` in [ ]. */
static void context_text(const ag_model *m, const agi_tc_corpus *c, int s, int p0, int p1, int mark, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    const int32_t *tk = c->tok + (size_t)s * c->ctx;
    for (int p = p0; p <= p1 && n + 1 < cap; p++) {
        char piece[64];
        size_t len = 0;
        if (ag_token_decode(m, p > 0 ? tk[p - 1] : -1, tk[p], piece, sizeof piece, &len) != AG_OK) snprintf(piece, sizeof piece, "<%d>", (int)tk[p]);
        for (char *q = piece; *q; q++)
            if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        int w = snprintf(buf + n, cap - n, p == mark ? "[%s]" : "%s", piece);
        if (w < 0) break;
        n += (size_t)w;
        if (n >= cap) {
            n = cap - 1;
            break;
        }
    }
    utf8_sanitize(buf);
}

static void token_text(const ag_model *m, int32_t t, char *buf, size_t cap) {
    size_t len = 0;
    if (ag_token_decode(m, -1, t, buf, cap, &len) != AG_OK) snprintf(buf, cap, "<%d>", (int)t);
    for (char *q = buf; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
    utf8_sanitize(buf);
}

typedef struct lidx {
    float v;
    int i;
} lidx;
static int lidx_cmp(const void *a, const void *b) {
    const lidx *x = a, *y = b;
    return x->v > y->v ? -1 : x->v < y->v ? 1 : x->i - y->i;
}

ag_status ag_transcoder_label(ag_transcoder *tc, const ag_model *m, const ag_transcoder_eval_options *opts) {
    static const char *const fn = "ag_transcoder_label";
    if (!tc || !m) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "model");
    ag_transcoder_eval_options o;
    ag_transcoder_eval_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    st = agi_tc_check_model(tc, m, fn, "the set");
    if (st != AG_OK) return st;
    if (!m->tok) return agi_error(AG_ERR_STATE, fn, "labels need a tokenizer attached to the model");
    if (o.top_contexts < 1 || o.top_tokens < 1) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "top_contexts and top_tokens must be >= 1");
    const agi_config *c = &m->cfg;
    int L = tc->L, D = tc->D, F = tc->F, V = c->vocab_size, K = o.top_contexts, KT = o.top_tokens < V ? o.top_tokens : V;
    agi_tc_corpus corpus;
    if (report(&o, "corpus", 0, 1)) return agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    st = agi_tc_corpus_make(&corpus, m, o.corpus_path, o.n_tokens, o.context, o.temperature, o.seed, fn);
    if (st != AG_OK) return st;
    int T = corpus.ctx;
    int B = batch_windows(c, &corpus);
    int N = B * T;
    size_t LF = (size_t)L * F;
    agi_acts a;
    st = agi_acts_alloc(&a, c, B, T, T, 0, fn);
    float *al = agi_malloc(sizeof(float) * (size_t)N * F, fn);
    example *heap = agi_malloc(sizeof(example) * LF * (size_t)K, fn);
    int *hn = agi_calloc(LF, sizeof(int), fn);
    int64_t *cnt = agi_calloc(LF, sizeof(int64_t), fn);
    float *dirs = agi_malloc(sizeof(float) * (size_t)F * D, fn);
    float *lg = agi_malloc(sizeof(float) * (size_t)F * V, fn);
    lidx *li = agi_malloc(sizeof(lidx) * (size_t)V, fn);
    if (st == AG_OK && (!al || !heap || !hn || !cnt || !dirs || !lg || !li)) st = AG_ERR_OUT_OF_MEMORY;
    int64_t n_tok = 0;
    for (int s0 = 0; st == AG_OK && s0 < corpus.n_seq; s0 += B) {
        int nb = corpus.n_seq - s0 < B ? corpus.n_seq - s0 : B;
        agi_tc_forward_windows(m, &a, &corpus, s0, nb);
        for (int b = 0; b < nb; b++) n_tok += corpus.len[s0 + b] - 1;
        for (int l = 0; l < L; l++) {
            agi_tc_encode(tc, l, agi_tc_input(tc, &a, l), N, NULL, al);
            for (int b = 0; b < nb; b++)
                for (int p = 1; p < corpus.len[s0 + b]; p++) {
                    const float *ar = al + ((size_t)b * T + p) * F;
                    for (int i = 0; i < F; i++) {
                        if (!(ar[i] > 0.0f)) continue;
                        size_t q = (size_t)l * F + i;
                        cnt[q]++;
                        heap_push(heap + q * K, &hn[q], K, (example){ar[i], s0 + b, p});
                    }
                }
        }
        if (report(&o, "label", s0 + nb, corpus.n_seq)) st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    }
    cJSON *root = st == AG_OK ? cJSON_CreateObject() : NULL;
    cJSON *feats = NULL;
    char **text = st == AG_OK ? agi_calloc(LF, sizeof(char *), fn) : NULL;
    double *dens = st == AG_OK ? agi_calloc(LF, sizeof(double), fn) : NULL;
    if (st == AG_OK && (!root || !text || !dens)) st = AG_ERR_OUT_OF_MEMORY;
    if (st == AG_OK) {
        cJSON_AddStringToObject(root, "format", "attrgraph-transcoder-labels");
        cJSON_AddNumberToObject(root, "version", 1);
        cJSON_AddNumberToObject(root, "n_layers", L);
        cJSON_AddNumberToObject(root, "n_features", F);
        cJSON_AddNumberToObject(root, "n_tokens", (double)n_tok);
        cJSON_AddStringToObject(root, "model", m->name ? m->name : "");
        feats = cJSON_AddArrayToObject(root, "features");
        if (!feats) st = AG_ERR_OUT_OF_MEMORY;
    }
    for (int l = 0; l < L && st == AG_OK; l++) {
        int no = agi_tc_n_out(tc, l);
        const float *Wd = tc->layers[l].W_dec;
        for (int i = 0; i < F; i++)
            for (int d = 0; d < D; d++) {
                float sacc = 0.0f;
                for (int q = 0; q < no; q++) sacc += Wd[((size_t)i * no + q) * D + d];
                dirs[(size_t)i * D + d] = sacc * m->w.rms_final[d];
            }
        agi_linear(lg, dirs, m->w.wcls, F, D, V, 0.0f); /* lg[F][V] = dirs · W_cls^T */
        for (int i = 0; i < F && st == AG_OK; i++) {
            size_t q = (size_t)l * F + i;
            for (int v = 0; v < V; v++) li[v] = (lidx){lg[(size_t)i * V + v], v};
            qsort(li, (size_t)V, sizeof *li, lidx_cmp); /* V is small for the test models; fine */
            example *h = heap + q * K;
            qsort(h, (size_t)hn[q], sizeof *h, ex_cmp_desc);
            dens[q] = n_tok ? (double)cnt[q] / (double)n_tok : 0.0;
            cJSON *f = cJSON_CreateObject();
            cJSON *tt = cJSON_CreateArray(), *tl = cJSON_CreateArray(), *exs = cJSON_CreateArray();
            if (!f || !tt || !tl || !exs) {
                cJSON_Delete(f);
                cJSON_Delete(tt);
                cJSON_Delete(tl);
                cJSON_Delete(exs);
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            char toks[256] = "";
            size_t tn = 0;
            for (int k = 0; k < KT; k++) {
                char piece[64];
                token_text(m, li[k].i, piece, sizeof piece);
                cJSON_AddItemToArray(tt, cJSON_CreateString(piece));
                cJSON_AddItemToArray(tl, cJSON_CreateNumber(li[k].v));
                if (k < 3) {
                    int w = snprintf(toks + tn, sizeof toks - tn, "%s%s", k ? "," : "", piece);
                    if (w > 0 && tn + (size_t)w < sizeof toks) tn += (size_t)w;
                }
            }
            char ctx0[160] = "";
            for (int e = 0; e < hn[q]; e++) {
                char ctx[512];
                int sq = h[e].seq, p = h[e].pos, len = corpus.len[sq];
                context_text(m, &corpus, sq, p - 12 > 1 ? p - 12 : 1, p + 3 < len - 1 ? p + 3 : len - 1, p, ctx, sizeof ctx);
                if (e == 0) context_text(m, &corpus, sq, p - 5 > 1 ? p - 5 : 1, p, p, ctx0, sizeof ctx0);
                cJSON *ex = cJSON_CreateObject();
                if (ex) {
                    cJSON_AddStringToObject(ex, "text", ctx);
                    cJSON_AddNumberToObject(ex, "activation", h[e].act);
                    cJSON_AddItemToArray(exs, ex);
                }
            }
            char lab[512];
            if (hn[q]) snprintf(lab, sizeof lab, "%s \xe2\x86\x92%s", ctx0, toks);
            else snprintf(lab, sizeof lab, "(inactive) \xe2\x86\x92%s", toks);
            text[q] = agi_malloc(strlen(lab) + 1, fn);
            if (!text[q]) {
                cJSON_Delete(f);
                cJSON_Delete(tt);
                cJSON_Delete(tl);
                cJSON_Delete(exs);
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            strcpy(text[q], lab);
            cJSON_AddNumberToObject(f, "layer", l);
            cJSON_AddNumberToObject(f, "index", i);
            cJSON_AddStringToObject(f, "label", lab);
            cJSON_AddNumberToObject(f, "density", dens[q]);
            cJSON_AddItemToObject(f, "top_tokens", tt);
            cJSON_AddItemToObject(f, "top_logits", tl);
            cJSON_AddItemToObject(f, "examples", exs);
            cJSON_AddItemToArray(feats, f);
        }
    }
    char *json = st == AG_OK ? cJSON_PrintUnformatted(root) : NULL;
    if (st == AG_OK && !json) st = agi_error(AG_ERR_OUT_OF_MEMORY, fn, "out of memory printing labels.json");
    cJSON_Delete(root);
    if (st == AG_OK) {
        if (tc->labels.text)
            for (size_t q = 0; q < LF; q++) free(tc->labels.text[q]);
        free(tc->labels.text);
        free(tc->labels.density);
        free(tc->labels.json);
        tc->labels.text = text;
        tc->labels.density = dens;
        tc->labels.json = json;
        text = NULL;
        dens = NULL;
        agi_clear_error();
    }
    if (text)
        for (size_t q = 0; q < LF; q++) free(text[q]);
    free(text);
    free(dens);
    agi_acts_free(&a);
    agi_tc_corpus_free(&corpus);
    free(al);
    free(heap);
    free(hn);
    free(cnt);
    free(dirs);
    free(lg);
    free(li);
    return st;
}
