/* The transcoder handle: allocation, encode / decode (GEMMs through engine/blas.h), the
 * trace helper and the getters. See transcoder.h for the math and the storage layout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/trace.h"
#include "model/model.h"
#include "transcoder/transcoder.h"

double agi_tc_normal(uint64_t *s) {
    double u1 = agi_tc_uniform(s), u2 = agi_tc_uniform(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void layer_free(agi_tc_layer *ly) {
    free(ly->W_enc);
    free(ly->b_enc);
    free(ly->threshold);
    free(ly->W_dec);
    free(ly->b_dec);
    free(ly->W_skip);
}

void ag_transcoder_free(ag_transcoder *tc) {
    if (!tc) return;
    if (tc->layers)
        for (int l = 0; l < tc->L; l++) layer_free(&tc->layers[l]);
    free(tc->layers);
    if (tc->labels.text)
        for (size_t i = 0; i < (size_t)tc->L * (size_t)tc->F; i++) free(tc->labels.text[i]);
    free(tc->labels.text);
    free(tc->labels.density);
    free(tc->labels.json);
    free(tc->model_name);
    free(tc->model_for);
    free(tc);
}

ag_status agi_tc_record_model(ag_transcoder *tc, const ag_model *m, const char *func) {
    const char *name = ag_model_name(m);
    char *copy = agi_malloc(strlen(name ? name : "") + 1, func);
    if (!copy) return AG_ERR_OUT_OF_MEMORY;
    strcpy(copy, name ? name : "");
    free(tc->model_for);
    tc->model_for = copy;
    tc->model_fp = agi_model_fingerprint(m);
    tc->has_model = 1;
    tc->has_file_fp = 0;
    if (!tc->model_name || !tc->model_name[0]) { /* the name written with the fingerprint: the file's base name */
        const char *b = strrchr(copy, '/');
        b = b ? b + 1 : copy;
        char *nm = agi_malloc(strlen(b) + 1, func);
        if (!nm) return AG_ERR_OUT_OF_MEMORY;
        strcpy(nm, b);
        free(tc->model_name);
        tc->model_name = nm;
    }
    return AG_OK;
}

ag_status agi_tc_check_fingerprint(const ag_transcoder *tc, const ag_model *m, const char *func, const char *what) {
    if (!tc->has_model) return AG_OK;
    uint64_t fp = agi_model_fingerprint(m);
    if (fp == tc->model_fp) return AG_OK;
    return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                     "%s was loaded for the model '%s' (weights fingerprint %016llx) but is used with the model '%s' (fingerprint "
                     "%016llx): a set made for another model of the same shape (to use it anyway, load its directory with "
                     "ag_transcoder_load(dir, NULL, ...), which checks shapes only)",
                     what, tc->model_for ? tc->model_for : "", (unsigned long long)tc->model_fp, ag_model_name(m) ? ag_model_name(m) : "",
                     (unsigned long long)fp);
}

ag_status agi_tc_check_model(const ag_transcoder *tc, const ag_model *m, const char *func, const char *what) {
    const agi_config *c = &m->cfg;
    if (tc->L != c->n_layers || tc->D != c->dim)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                         "%s (%d layers of width %d) does not fit the model (%d layers of width %d): a set built for another model",
                         what, tc->L, tc->D, c->n_layers, c->dim);
    return agi_tc_check_fingerprint(tc, m, func, what);
}

int agi_tc_bos0(const ag_model *m, const int32_t *tokens) {
    return tokens[0] == (m->bos_id >= 0 ? m->bos_id : 1); /* llama2.c: BOS = 1 */
}

ag_status agi_tc_alloc(ag_transcoder **out, int32_t kind, int32_t activation, int32_t read_point, int L, int D, int F,
                       int k, int has_threshold, int has_skip, const char *func) {
    *out = NULL;
    if (L < 1 || D < 1 || F < 1 || L > 4096 || D > (1 << 20) || F > (1 << 26))
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "transcoder shape n_layers = %d, d_model = %d, n_features = %d is out of range", L, D, F);
    ag_transcoder *tc = agi_calloc(1, sizeof *tc, func);
    if (!tc) return AG_ERR_OUT_OF_MEMORY;
    tc->kind = kind;
    tc->activation = activation;
    tc->read_point = read_point;
    tc->L = L;
    tc->D = D;
    tc->F = F;
    tc->k = k;
    tc->has_skip = has_skip;
    tc->layers = agi_calloc((size_t)L, sizeof(agi_tc_layer), func);
    if (!tc->layers) {
        free(tc);
        return AG_ERR_OUT_OF_MEMORY;
    }
    for (int l = 0; l < L; l++) {
        agi_tc_layer *ly = &tc->layers[l];
        size_t fd, dec;
        if (!agi_mul_size((size_t)F, (size_t)D, &fd) || !agi_mul_size(fd, (size_t)agi_tc_n_out(tc, l), &dec)) {
            ag_transcoder_free(tc);
            return agi_error(AG_ERR_OUT_OF_MEMORY, func, "transcoder of %d x %d features overflows", F, D);
        }
        ly->W_enc = agi_calloc(fd, sizeof(float), func);
        ly->b_enc = agi_calloc((size_t)F, sizeof(float), func);
        ly->W_dec = agi_calloc(dec, sizeof(float), func);
        ly->b_dec = agi_calloc((size_t)D, sizeof(float), func);
        if (has_threshold) ly->threshold = agi_calloc((size_t)F, sizeof(float), func);
        if (has_skip) ly->W_skip = agi_calloc((size_t)D * (size_t)D, sizeof(float), func);
        if (!ly->W_enc || !ly->b_enc || !ly->W_dec || !ly->b_dec || (has_threshold && !ly->threshold) ||
            (has_skip && !ly->W_skip)) {
            ag_transcoder_free(tc);
            return AG_ERR_OUT_OF_MEMORY;
        }
    }
    *out = tc;
    return AG_OK;
}

/* ---- encode / decode ------------------------------------------------------------------------ */

typedef struct fidx {
    float v;
    int i;
} fidx;

/* (value desc, index asc): a strict total order, so TopK is deterministic under ties */
static int fidx_before(const fidx *a, const fidx *b) { return a->v > b->v || (a->v == b->v && a->i < b->i); }

static void relu_copy(float *restrict a, const float *restrict pre, size_t N) {
    for (size_t q = 0; q < N; q++) a[q] = pre[q] > 0.0f ? pre[q] : 0.0f;
}

void agi_tc_activate(const ag_transcoder *tc, int l, const float *pre, int n, float *a) {
    int F = tc->F;
    const float *th = tc->layers[l].threshold;
    if (tc->activation == AG_ACTIVATION_TOPK) {
        int k = tc->k < F ? tc->k : F;
        fidx *heap = malloc(sizeof(fidx) * (size_t)(k > 0 ? k : 1));
        for (int r = 0; r < n; r++) {
            const float *p = pre + (size_t)r * F;
            float *o = a + (size_t)r * F;
            /* a min-heap (by fidx_before) of the k best */
            int h = 0;
            for (int i = 0; i < F && heap; i++) {
                fidx e = {p[i], i};
                if (h < k) {
                    int c = h++;
                    while (c > 0) {
                        int par = (c - 1) / 2;
                        if (!fidx_before(&heap[par], &e)) break;
                        heap[c] = heap[par];
                        c = par;
                    }
                    heap[c] = e;
                } else if (k > 0 && fidx_before(&e, &heap[0])) {
                    int c = 0;
                    for (;;) {
                        int lc = 2 * c + 1, rc = lc + 1, m = c;
                        fidx *best = &e;
                        if (lc < k && fidx_before(best, &heap[lc])) best = &heap[lc], m = lc;
                        if (rc < k && fidx_before(best, &heap[rc])) best = &heap[rc], m = rc;
                        if (m == c) break;
                        heap[c] = heap[m];
                        c = m;
                    }
                    heap[c] = e;
                }
            }
            if (!heap) { /* out of memory: plain ReLU keeps the result defined */
                for (int i = 0; i < F; i++) o[i] = p[i] > 0.0f ? p[i] : 0.0f;
                continue;
            }
            if (o != p) memset(o, 0, sizeof(float) * (size_t)F);
            else {
                /* in place: remember the kept values first */
                for (int j = 0; j < h; j++) heap[j].v = p[heap[j].i];
                memset(o, 0, sizeof(float) * (size_t)F);
            }
            for (int j = 0; j < h; j++) o[heap[j].i] = heap[j].v > 0.0f ? heap[j].v : 0.0f;
        }
        free(heap);
        return;
    }
    size_t N = (size_t)n * (size_t)F;
    if (tc->activation == AG_ACTIVATION_JUMPRELU && th) {
        for (size_t q = 0; q < N; q++) {
            float v = pre[q];
            a[q] = v > th[q % (size_t)F] ? v : 0.0f;
        }
    } else if (a == pre) {
        for (size_t q = 0; q < N; q++) a[q] = a[q] > 0.0f ? a[q] : 0.0f;
    } else {
        relu_copy(a, pre, N);
    }
}

void agi_tc_encode(const ag_transcoder *tc, int l, const float *x, int n, float *pre, float *a) {
    const agi_tc_layer *ly = &tc->layers[l];
    int F = tc->F, D = tc->D;
    float *p = pre ? pre : a;
    for (int r = 0; r < n; r++) memcpy(p + (size_t)r * F, ly->b_enc, sizeof(float) * (size_t)F);
    agi_linear(p, x, ly->W_enc, n, D, F, 1.0f); /* p[n][F] += x[n][D] · W_enc[F][D]^T */
    agi_tc_activate(tc, l, p, n, a);
}

void agi_tc_decode(const ag_transcoder *tc, int l, const float *const *acts, const float *x, int n, float *out,
                   float beta) {
    int F = tc->F, D = tc->D;
    const agi_tc_layer *ly = &tc->layers[l];
    if (beta == 0.0f) {
        for (int r = 0; r < n; r++) memcpy(out + (size_t)r * D, ly->b_dec, sizeof(float) * (size_t)D);
    } else {
        for (int r = 0; r < n; r++) agi_axpy(D, 1.0f, ly->b_dec, out + (size_t)r * D);
    }
    int l0 = tc->kind == AG_TRANSCODER_CROSS_LAYER ? 0 : l;
    for (int s = l0; s <= l; s++) {
        int no = agi_tc_n_out(tc, s), o = l - s;
        if (o >= no || !acts[s]) continue;
        /* out[n][D] += a_s[n][F] · W_dec_s[:, o, :] ([F][D] with row stride no*D) */
        agi_gemm(0, 0, n, D, F, 1.0f, acts[s], F, tc->layers[s].W_dec + (size_t)o * D, no * D, 1.0f, out, D);
    }
    if (ly->W_skip && x) agi_linear(out, x, ly->W_skip, n, D, D, 1.0f);
}

const float *agi_tc_input(const ag_transcoder *tc, const agi_acts *a, int l) {
    int D = tc->D;
    return tc->read_point == AG_READ_RESID_MID ? AGI_LROW(a, xmid, l, D) : AGI_LROW(a, u, l, D);
}

/* ---- public API ------------------------------------------------------------------------------ */

ag_status ag_transcoder_get_info(const ag_transcoder *tc, ag_transcoder_info *info) {
    static const char *const fn = "ag_transcoder_get_info";
    if (!tc || !info) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "info");
    size_t given = info->struct_size;
    ag_status st = agi_check_struct_size(given, sizeof(size_t) + sizeof(int32_t), fn, "info");
    if (st != AG_OK) return st;
    ag_transcoder_info d;
    memset(&d, 0, sizeof d);
    d.struct_size = given;
    d.kind = tc->kind;
    d.activation = tc->activation;
    d.read_point = tc->read_point;
    d.n_layers = tc->L;
    d.d_model = tc->D;
    d.n_features = tc->F;
    d.k = tc->activation == AG_ACTIVATION_TOPK ? tc->k : 0;
    d.has_skip = tc->has_skip;
    d.has_labels = tc->labels.text != NULL;
    memcpy(info, &d, given < sizeof d ? given : sizeof d);
    if (given > sizeof d) memset((char *)info + sizeof d, 0, given - sizeof d);
    return AG_OK;
}

ag_status ag_transcoder_tensor(const ag_transcoder *tc, int32_t layer, const char *name, const float **data,
                               int64_t shape[3], int32_t *ndim) {
    static const char *const fn = "ag_transcoder_tensor";
    if (!tc || !name || !data || !shape || !ndim)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : !name ? "name" : !data ? "data" : !shape ? "shape" : "ndim");
    if (layer < 0 || layer >= tc->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", layer, tc->L);
    const agi_tc_layer *ly = &tc->layers[layer];
    int64_t F = tc->F, D = tc->D;
    shape[0] = shape[1] = shape[2] = 0;
    const float *p = NULL;
    int nd = 1;
    if (strcmp(name, "W_enc") == 0) p = ly->W_enc, shape[0] = F, shape[1] = D, nd = 2;
    else if (strcmp(name, "b_enc") == 0) p = ly->b_enc, shape[0] = F;
    else if (strcmp(name, "threshold") == 0) p = ly->threshold, shape[0] = F;
    else if (strcmp(name, "b_dec") == 0) p = ly->b_dec, shape[0] = D;
    else if (strcmp(name, "W_skip") == 0) p = ly->W_skip, shape[0] = D, shape[1] = D, nd = 2;
    else if (strcmp(name, "W_dec") == 0) {
        p = ly->W_dec;
        shape[0] = F;
        if (tc->kind == AG_TRANSCODER_CROSS_LAYER) shape[1] = tc->L - layer, shape[2] = D, nd = 3;
        else shape[1] = D, nd = 2;
    } else
        return agi_error(AG_ERR_NOT_FOUND, fn, "no tensor named '%s' (W_enc, b_enc, threshold, W_dec, b_dec, W_skip)", name);
    if (!p) return agi_error(AG_ERR_NOT_FOUND, fn, "layer %d has no '%s'", layer, name);
    *data = p;
    *ndim = nd;
    return AG_OK;
}

ag_status ag_transcoder_encode(const ag_transcoder *tc, int32_t layer, const float *x, size_t n, float *acts,
                               float *pre) {
    static const char *const fn = "ag_transcoder_encode";
    if (!tc || !x || !acts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : !x ? "x" : "acts");
    if (layer < 0 || layer >= tc->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", layer, tc->L);
    if (n > (size_t)INT32_MAX / (size_t)tc->F) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "n = %zu rows is too many", n);
    agi_tc_encode(tc, layer, x, (int)n, pre, acts);
    return AG_OK;
}

ag_status ag_transcoder_decode(const ag_transcoder *tc, int32_t layer, const float *acts, const float *x, size_t n,
                               float *out) {
    static const char *const fn = "ag_transcoder_decode";
    if (!tc || !acts || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : !acts ? "acts" : "out");
    if (layer < 0 || layer >= tc->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", layer, tc->L);
    if (tc->has_skip && !x) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "x is NULL but the set has a skip connection");
    if (n > (size_t)INT32_MAX / (size_t)tc->F) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "n = %zu rows is too many", n);
    const float **ptr = calloc((size_t)tc->L, sizeof *ptr);
    if (!ptr) return agi_error(AG_ERR_OUT_OF_MEMORY, fn, "out of memory");
    if (tc->kind == AG_TRANSCODER_CROSS_LAYER)
        for (int s = 0; s <= layer; s++) ptr[s] = acts + (size_t)s * n * (size_t)tc->F;
    else
        ptr[layer] = acts;
    agi_tc_decode(tc, layer, ptr, x, (int)n, out, 0.0f);
    free(ptr);
    return AG_OK;
}

ag_status ag_transcoder_trace(const ag_transcoder *tc, const ag_trace *tr, int32_t layer, float *acts, float *recon,
                              float *error) {
    static const char *const fn = "ag_transcoder_trace";
    if (!tc || !tr) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "trace");
    ag_status st = agi_tc_check_model(tc, tr->model, fn, "the set");
    if (st != AG_OK) return st;
    if (layer < 0 || layer >= tc->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", layer, tc->L);
    int T = tr->acts.T, F = tc->F, D = tc->D;
    int need_all = tc->kind == AG_TRANSCODER_CROSS_LAYER && (recon || error);
    int l0 = need_all ? 0 : layer;
    float *buf = agi_malloc(sizeof(float) * (size_t)(layer - l0 + 1) * (size_t)T * (size_t)F, fn);
    const float **ptr = calloc((size_t)tc->L, sizeof *ptr);
    float *rec = recon ? recon : (error ? agi_malloc(sizeof(float) * (size_t)T * (size_t)D, fn) : NULL);
    if (!buf || !ptr || ((recon || error) && !rec)) {
        free(buf);
        free(ptr);
        if (rec != recon) free(rec);
        return agi_error(AG_ERR_OUT_OF_MEMORY, fn, "out of memory");
    }
    for (int s = l0; s <= layer; s++) {
        float *as = buf + (size_t)(s - l0) * T * F;
        agi_tc_encode(tc, s, agi_tc_input(tc, &tr->acts, s), T, NULL, as);
        ptr[s] = as;
    }
    if (acts) memcpy(acts, ptr[layer], sizeof(float) * (size_t)T * F);
    if (rec) {
        agi_tc_decode(tc, layer, ptr, agi_tc_input(tc, &tr->acts, layer), T, rec, 0.0f);
        if (error) {
            const float *mo = AGI_LROW(&tr->acts, mlp_out, layer, D);
            for (size_t q = 0; q < (size_t)T * D; q++) error[q] = mo[q] - rec[q];
        }
    }
    free(buf);
    free(ptr);
    if (rec != recon) free(rec);
    return AG_OK;
}

ag_status ag_transcoder_feature_label(const ag_transcoder *tc, int32_t layer, int32_t feature, const char **label) {
    static const char *const fn = "ag_transcoder_feature_label";
    if (!tc || !label) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "label");
    if (layer < 0 || layer >= tc->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", layer, tc->L);
    if (feature < 0 || feature >= tc->F)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "feature = %d is outside [0, %d)", feature, tc->F);
    if (!tc->labels.text) return agi_error(AG_ERR_NOT_FOUND, fn, "the set has no labels (run ag_transcoder_label)");
    *label = tc->labels.text[(size_t)layer * tc->F + feature];
    return AG_OK;
}
