/* The transcoder basis (issue #6): unit i of block l at position p is transcoder feature i.
 *  - as a source it writes a_i · W_dec[i, o, :] into MLP output l + o for every output layer o
 *    of the set (one for a PLT, L - l for a CLT);
 *  - as a target it reads W_enc[i] at the read point: at u (the MLP input) through the frozen
 *    ffn norm, d = W_enc[i] ⊙ g_ffn · r_ffn[p], or at x_mid directly; its value is the
 *    pre-activation without the encoder bias, W_enc[i] · x (circuit-tracer's convention);
 *  - the error of (l, p) is mlp_out − reconstruction (reconstruction = features + b_dec + skip);
 *  - b_dec and the skip term are constants: they are no node, and their contribution to each
 *    target is reported separately (value = Σ edges + constant). With every MLP output held
 *    fixed (DESIGN §1.2) the skip term is fixed too.
 * Position 0 holding BOS is treated as circuit-tracer does: no features and no error there;
 * its whole MLP output is a constant (it is the same in every prompt).
 * The instance copies everything it needs (activations, encoder rows, transposed decoders,
 * the labels of active features), so the graph does not borrow the transcoder set. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/trace.h"
#include "graph/graph.h"
#include "transcoder/transcoder.h"

typedef struct tc_basis {
    agi_basis base;
    int L, T, D, F, read_point;
    int32_t kind;
    float *acts;   /* [L][T][F] */
    float *value;  /* [L][T][F] W_enc · x */
    float *err;    /* [L][T][D] */
    float *cst;    /* [L][T][D] */
    float *W_enc;  /* [L][F][D] copy */
    float **decT;  /* [L][L] (or [L][1]) transposed decoder blocks [D][F], NULL where absent */
    char **label;  /* [L][F] or NULL; NULL entries = "" */
} tc_basis;

static const tc_basis *TB(const agi_basis *b) { return (const tc_basis *)b; }

static const float *tc_decoder(const agi_basis *b, const ag_trace *tr, int l, int *ld) {
    (void)tr;
    *ld = TB(b)->F;
    return TB(b)->decT[(size_t)l * TB(b)->L];
}
static const float *tc_cross_decoder(const agi_basis *b, const ag_trace *tr, int l, int o, int *ld) {
    (void)tr;
    *ld = TB(b)->F;
    return TB(b)->decT[(size_t)l * TB(b)->L + o];
}
static int tc_n_out(const agi_basis *b, int l) { return TB(b)->kind == AG_TRANSCODER_CROSS_LAYER ? TB(b)->L - l : 1; }
static const float *tc_acts(const agi_basis *b, const ag_trace *tr, int l) {
    (void)tr;
    return TB(b)->acts + (size_t)l * TB(b)->T * TB(b)->F;
}
static void tc_read_dir(const agi_basis *b, const ag_trace *tr, int l, int p, int i, float *d) {
    const tc_basis *t = TB(b);
    const float *w = t->W_enc + ((size_t)l * t->F + i) * t->D;
    if (t->read_point == AG_READ_RESID_MID) {
        memcpy(d, w, sizeof(float) * (size_t)t->D);
        return;
    }
    const float *g = tr->model->w.layers[l].rms_ffn;
    float r = AGI_LROW(&tr->acts, r_ffn, l, 1)[p];
    for (int k = 0; k < t->D; k++) d[k] = w[k] * g[k] * r;
}
static const float *tc_recon_error(const agi_basis *b, const ag_trace *tr, int l, int p) {
    (void)tr;
    const tc_basis *t = TB(b);
    return t->err + ((size_t)l * t->T + p) * t->D;
}
static double tc_target_value(const agi_basis *b, const ag_trace *tr, int l, int p, int i) {
    (void)tr;
    const tc_basis *t = TB(b);
    return t->value[((size_t)l * t->T + p) * t->F + i];
}
static const float *tc_constant(const agi_basis *b, const ag_trace *tr, int l, int p) {
    (void)tr;
    const tc_basis *t = TB(b);
    return t->cst + ((size_t)l * t->T + p) * t->D;
}
static const char *tc_label(const agi_basis *b, int l, int i) {
    const tc_basis *t = TB(b);
    if (!t->label || l < 0 || l >= t->L || i < 0 || i >= t->F) return "";
    const char *s = t->label[(size_t)l * t->F + i];
    return s ? s : "";
}
static void tc_release(agi_basis *b) {
    tc_basis *t = (tc_basis *)b;
    free(t->acts);
    free(t->value);
    free(t->err);
    free(t->cst);
    free(t->W_enc);
    if (t->decT)
        for (size_t q = 0; q < (size_t)t->L * t->L; q++) free(t->decT[q]);
    free(t->decT);
    if (t->label)
        for (size_t q = 0; q < (size_t)t->L * t->F; q++) free(t->label[q]);
    free(t->label);
    free(t);
}

ag_status agi_basis_transcoder_create(agi_basis **out, const ag_transcoder *tc, const ag_trace *tr, const char *func) {
    *out = NULL;
    ag_status fst = agi_tc_check_model(tc, tr->model, func, "opts->transcoders");
    if (fst != AG_OK) return fst;
    int L = tc->L, T = tr->acts.T, D = tc->D, F = tc->F;
    tc_basis *t = agi_calloc(1, sizeof *t, func);
    if (!t) return AG_ERR_OUT_OF_MEMORY;
    t->base.name = "transcoders";
    t->base.id = AG_BASIS_TRANSCODERS;
    t->base.decoder = tc_decoder;
    t->base.acts = tc_acts;
    t->base.read_dir = tc_read_dir;
    t->base.recon_error = tc_recon_error;
    t->base.n_out = tc_n_out;
    t->base.cross_decoder = tc_cross_decoder;
    t->base.target_value = tc_target_value;
    t->base.constant = tc_constant;
    t->base.label = tc_label;
    t->base.sparse = 1;
    t->base.n_units = F;
    t->base.cross_layer = tc->kind == AG_TRANSCODER_CROSS_LAYER;
    t->base.release = tc_release;
    t->L = L, t->T = T, t->D = D, t->F = F, t->read_point = tc->read_point, t->kind = tc->kind;
    size_t LTF = (size_t)L * T * F, LTD = (size_t)L * T * D;
    t->acts = agi_malloc(sizeof(float) * LTF, func);
    t->value = agi_malloc(sizeof(float) * LTF, func);
    t->err = agi_malloc(sizeof(float) * LTD, func);
    t->cst = agi_malloc(sizeof(float) * LTD, func);
    t->W_enc = agi_malloc(sizeof(float) * (size_t)L * F * D, func);
    t->decT = agi_calloc((size_t)L * L, sizeof(float *), func);
    const float **ptr = agi_calloc((size_t)L, sizeof(float *), func);
    if (!t->acts || !t->value || !t->err || !t->cst || !t->W_enc || !t->decT || !ptr) {
        free(ptr);
        tc_release(&t->base);
        return AG_ERR_OUT_OF_MEMORY;
    }
    int bos0 = agi_tc_bos0(tr->model, tr->acts.tokens);
    for (int l = 0; l < L; l++) {
        const agi_tc_layer *ly = &tc->layers[l];
        memcpy(t->W_enc + (size_t)l * F * D, ly->W_enc, sizeof(float) * (size_t)F * D);
        const float *x = agi_tc_input(tc, &tr->acts, l);
        float *a = t->acts + (size_t)l * T * F, *v = t->value + (size_t)l * T * F;
        agi_tc_encode(tc, l, x, T, v, a); /* v = pre (with b_enc) for now */
        for (int p = 0; p < T; p++)
            for (int i = 0; i < F; i++) v[(size_t)p * F + i] -= ly->b_enc[i];
        if (bos0) memset(a, 0, sizeof(float) * (size_t)F); /* no features at BOS */
        ptr[l] = a;
        /* constants b_dec + skip, then the reconstruction error */
        float *cs = t->cst + (size_t)l * T * D, *er = t->err + (size_t)l * T * D;
        for (int p = 0; p < T; p++) memcpy(cs + (size_t)p * D, ly->b_dec, sizeof(float) * (size_t)D);
        if (ly->W_skip) agi_linear(cs, x, ly->W_skip, T, D, D, 1.0f);
        agi_tc_decode(tc, l, ptr, x, T, er, 0.0f); /* the full reconstruction */
        const float *mo = AGI_LROW(&tr->acts, mlp_out, l, D);
        for (size_t q = 0; q < (size_t)T * D; q++) er[q] = mo[q] - er[q];
        if (bos0) { /* BOS: its MLP output is a constant, no error */
            memcpy(cs, mo, sizeof(float) * (size_t)D);
            memset(er, 0, sizeof(float) * (size_t)D);
        }
        /* transposed decoder blocks [D][F] */
        int no = agi_tc_n_out(tc, l);
        for (int o = 0; o < no; o++) {
            float *dt = agi_malloc(sizeof(float) * (size_t)D * F, func);
            if (!dt) {
                free(ptr);
                tc_release(&t->base);
                return AG_ERR_OUT_OF_MEMORY;
            }
            for (int i = 0; i < F; i++)
                for (int d = 0; d < D; d++) dt[(size_t)d * F + i] = ly->W_dec[((size_t)i * no + o) * D + d];
            t->decT[(size_t)l * L + o] = dt;
        }
    }
    free(ptr);
    if (tc->labels.text) { /* the labels of the features active anywhere in the prompt */
        t->label = agi_calloc((size_t)L * F, sizeof(char *), func);
        if (!t->label) {
            tc_release(&t->base);
            return AG_ERR_OUT_OF_MEMORY;
        }
        for (int l = 0; l < L; l++)
            for (int i = 0; i < F; i++) {
                int on = 0;
                for (int p = 0; p < T && !on; p++) on = t->acts[((size_t)l * T + p) * F + i] != 0.0f;
                const char *s = tc->labels.text[(size_t)l * F + i];
                if (!on || !s || !*s) continue;
                char *cp = agi_malloc(strlen(s) + 1, func);
                if (!cp) {
                    tc_release(&t->base);
                    return AG_ERR_OUT_OF_MEMORY;
                }
                strcpy(cp, s);
                t->label[(size_t)l * F + i] = cp;
            }
    }
    *out = &t->base;
    return AG_OK;
}

ag_status ag_graph_node_constant(const ag_graph *g, size_t index, double *constant) {
    static const char *const fn = "ag_graph_node_constant";
    if (!g || !constant) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : "constant");
    if (index >= (size_t)g->n_nodes)
        return agi_error(AG_ERR_NOT_FOUND, fn, "node index %zu is outside [0, %lld)", index, (long long)g->n_nodes);
    *constant = g->constant ? g->constant[index] : 0.0;
    return AG_OK;
}
