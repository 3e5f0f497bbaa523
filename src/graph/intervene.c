/* Interventions: the public ag_intervene API and the engine shared with validation and steered
 * generation (see intervene.h and the INTERVENTIONS section of attrgraph.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/trace.h"
#include "graph/intervene.h"
#include "transcoder/transcoder.h"

struct ag_intervention_result {
    const ag_model *model;
    int32_t mode;
    agi_acts full;  /* the run's values */
    agi_acts delta; /* their change from the trace */
    size_t n_items;
    int T;
    int32_t *item_unit; /* [n_items] 1 when the item is a unit intervention (neuron or feature) */
    int32_t *item_pos;  /* [n_items][2] position range [begin, end) */
    float *previous;    /* [n_items][T] clean unit values (NAN outside the range / not a unit) */
    float *value;       /* [n_items][T] the values clamped to */
    /* with a transcoder set: its features in this run, [2][tc_L][T][tc_F] (the run's values, then
     * their changes from the trace; see run_features); NULL without a set */
    float *feat;
    int tc_L, tc_F;
};

/* ---- options ------------------------------------------------------------------------------ */

ag_status ag_intervene_options_init(ag_intervene_options *opts, size_t struct_size) {
    static const char *const fn = "ag_intervene_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_intervene_options d;
    memset(&d, 0, sizeof d);
    d.mode = AG_INTERVENE_FREE;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
    opts->struct_size = struct_size;
    return AG_OK;
}

static ag_status check_options(const ag_intervene_options *o, const char *fn) {
    if (o->mode != AG_INTERVENE_DIRECT && o->mode != AG_INTERVENE_LINEAR && o->mode != AG_INTERVENE_FREE)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->mode = %d is not AG_INTERVENE_DIRECT (1), _LINEAR (2) or _FREE (3)",
                         o->mode);
    const int32_t *f[3] = {&o->freeze_attention, &o->freeze_norms, &o->freeze_gates};
    static const char *const names[3] = {"freeze_attention", "freeze_norms", "freeze_gates"};
    for (int i = 0; i < 3; i++)
        if (*f[i] != 0 && *f[i] != 1) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->%s = %d must be 0 or 1", names[i], *f[i]);
    if (o->free_replacement != 0 && o->free_replacement != 1)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->free_replacement = %d must be 0 or 1", o->free_replacement);
    if (o->free_replacement && !o->transcoder)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->free_replacement = 1 needs opts->transcoder (the replacement model's set)");
    return AG_OK;
}

void agi_intervene_mode(const ag_intervene_options *o, unsigned *freeze, int *delta) {
    if (o->mode == AG_INTERVENE_DIRECT) {
        *freeze = AGI_FREEZE_DIRECT;
        *delta = 1;
    } else if (o->mode == AG_INTERVENE_LINEAR) {
        *freeze = AGI_FREEZE_LINEAR;
        *delta = 1;
    } else {
        *freeze = (o->freeze_attention ? AGI_FREEZE_ATTN : 0u) | (o->freeze_norms ? AGI_FREEZE_NORMS : 0u) |
                  (o->freeze_gates ? AGI_FREEZE_GATES : 0u);
        *delta = 0;
    }
}

/* ---- items -------------------------------------------------------------------------------- */

static int is_unit_site(int32_t site) { return site == AG_SITE_MLP || site == AG_SITE_FEATURE; }

/* [begin, end) of a checked item for a sequence of T positions. */
static void item_range(const ag_intervention *it, int T, int *b, int *e) {
    *b = it->position;
    *e = it->position_end == 0 ? it->position + 1 : it->position_end == AG_POSITION_OPEN ? T : it->position_end;
    if (*e > T) *e = T;
}

/* A unit is clamped at most once per position: sort the unit items by (layer, index, first
 * position) and look for overlapping neighbours. O(n log n). */
typedef struct unit_span {
    int32_t site, layer, index, b, e;
    size_t item;
} unit_span;

static int cmp_span(const void *x, const void *y) {
    const unit_span *a = x, *b = y;
    if (a->site != b->site) return a->site < b->site ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

static ag_status check_duplicates(const ag_intervention *items, size_t n, int T, const char *fn) {
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) nu += is_unit_site(items[i].site);
    if (nu < 2) return AG_OK;
    unit_span *sp = agi_calloc(nu, sizeof *sp, fn);
    if (!sp) return AG_ERR_OUT_OF_MEMORY;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_unit_site(items[i].site)) continue;
        int b, e;
        item_range(&items[i], T, &b, &e);
        sp[k++] = (unit_span){items[i].site, items[i].layer, items[i].index, b, e, i};
    }
    qsort(sp, nu, sizeof *sp, cmp_span);
    ag_status st = AG_OK;
    size_t open = 0; /* the span with the furthest end so far in the current (layer, index) */
    for (size_t i = 1; i < nu && st == AG_OK; i++) {
        if (sp[i].site != sp[open].site || sp[i].layer != sp[open].layer || sp[i].index != sp[open].index) {
            open = i;
            continue;
        }
        if (sp[i].b < sp[open].e) {
            size_t a = sp[i].item > sp[open].item ? sp[i].item : sp[open].item;
            size_t c = sp[i].item > sp[open].item ? sp[open].item : sp[i].item;
            st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu] clamps %s (layer %d, index %d) at positions that items[%zu] clamps too",
                           a, sp[i].site == AG_SITE_FEATURE ? "feature" : "unit", sp[i].layer, sp[i].index, c);
        }
        if (sp[i].e > sp[open].e) open = i;
    }
    free(sp);
    return st;
}

ag_status agi_interventions_check(const ag_model *m, const ag_transcoder *tc, const ag_intervention *items, size_t n,
                                  int T, int bos0, const char *fn) {
    const agi_config *c = &m->cfg;
    if (n && !items) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items is NULL with n_items = %zu", n);
    if (n > (size_t)INT32_MAX) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "n_items = %zu is too large", n);
    for (size_t i = 0; i < n; i++) {
        const ag_intervention *it = &items[i];
        if (it->kind != AG_INTERVENE_SET && it->kind != AG_INTERVENE_SCALE && it->kind != AG_INTERVENE_ADD)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].kind = %d is not AG_INTERVENE_SET (1), _SCALE (2) or _ADD (3)", i,
                             it->kind);
        int unit = is_unit_site(it->site), feat = it->site == AG_SITE_FEATURE;
        if (!unit && it->site != AG_SITE_RESID && it->site != AG_SITE_MID && it->site != AG_SITE_EMBED)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "items[%zu].site = %d is not AG_SITE_MLP (neurons), AG_SITE_FEATURE (transcoder features), "
                             "AG_SITE_RESID, AG_SITE_MID or AG_SITE_EMBED",
                             i, it->site);
        if (feat && !tc)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "items[%zu].site = AG_SITE_FEATURE needs a transcoder set (opts->transcoder is NULL)", i);
        if (!unit && it->kind != AG_INTERVENE_ADD)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].kind = %d: a residual site takes only AG_INTERVENE_ADD", i, it->kind);
        int max_layer = it->site == AG_SITE_RESID ? c->n_layers : feat ? tc->L - 1 : c->n_layers - 1;
        if (it->site != AG_SITE_EMBED && (it->layer < 0 || it->layer > max_layer))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].layer = %d is outside [0, %d]%s", i, it->layer, max_layer,
                             feat ? " (the transcoder's layers)" : "");
        if (it->position < 0 || it->position >= T)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].position = %d is outside [0, %d)", i, it->position, T);
        if (it->position_end != 0 && it->position_end != AG_POSITION_OPEN &&
            (it->position_end <= it->position || it->position_end > T))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "items[%zu].position_end = %d must be 0, AG_POSITION_OPEN (-1) or in (position, %d] = (%d, %d]", i,
                             it->position_end, T, it->position, T);
        if (feat && bos0 && it->position == 0 && (it->position_end == 0 || it->position_end == 1 || T == 1))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "items[%zu].position = 0 is the BOS position, which has no transcoder features (its MLP output is a "
                             "constant, as in graphs)",
                             i);
        if (it->site == AG_SITE_MLP && (it->index < 0 || it->index >= c->hidden_dim))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].index = %d is outside [0, %d) (hidden_dim)", i, it->index,
                             c->hidden_dim);
        if (feat && (it->index < 0 || it->index >= tc->F))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].index = %d is outside [0, %d) (the transcoder's n_features)", i,
                             it->index, tc->F);
        if (!unit && it->index != 0)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].index = %d must be 0 for a residual site", i, it->index);
        if (!isfinite(it->value))
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].value = %g is not finite", i, (double)it->value);
        if (it->reserved != 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].reserved = %d must be 0", i, it->reserved);
        if (unit && it->vector)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].vector must be NULL for a unit intervention", i);
        if (!unit) {
            if (!it->vector) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].vector is NULL (an ADD at a residual site needs dim = %d floats)", i, c->dim);
            for (int d = 0; d < c->dim; d++)
                if (!isfinite(it->vector[d]))
                    return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu].vector[%d] = %g is not finite", i, d, (double)it->vector[d]);
        }
    }
    return check_duplicates(items, n, T, fn);
}

/* The clean value of unit item `it` at position p (neurons: the trace's; features: fc's). */
static float clean_unit(const ag_intervention *it, const agi_acts *clean, const agi_tc_clean *fc, int Hd, int p) {
    if (it->site == AG_SITE_FEATURE)
        return fc->acts[((size_t)it->layer * fc->T + (size_t)p) * (size_t)fc->F + (size_t)it->index];
    return AGI_LROW(clean, n, it->layer, Hd)[(size_t)p * (size_t)Hd + (size_t)it->index];
}

static float clamped_value(const ag_intervention *it, float cv) {
    return it->kind == AG_INTERVENE_SET ? it->value : it->kind == AG_INTERVENE_SCALE ? it->value * cv : cv + it->value;
}

ag_status agi_interventions_edits(const ag_model *m, const ag_intervention *items, size_t n, const agi_acts *clean,
                                  const agi_tc_clean *fc, int bos0, int T, agi_edit **out, int *n_out, const char *fn) {
    int Hd = m->cfg.hidden_dim;
    *out = NULL;
    *n_out = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int b, e;
        item_range(&items[i], T, &b, &e);
        count += (clean && is_unit_site(items[i].site) && e > b) ? (size_t)(e - b) : 1;
    }
    if (count == 0) return AG_OK;
    if (count > (size_t)INT32_MAX) return agi_error(AG_ERR_OUT_OF_MEMORY, fn, "too many intervened positions");
    agi_edit *ed = agi_calloc(count, sizeof *ed, fn);
    if (!ed) return AG_ERR_OUT_OF_MEMORY;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const ag_intervention *it = &items[i];
        int b, e;
        item_range(it, T, &b, &e);
        agi_edit base;
        memset(&base, 0, sizeof base);
        base.layer = it->site == AG_SITE_EMBED ? 0 : it->layer;
        base.pos_begin = b;
        base.pos_end = e;
        if (!is_unit_site(it->site)) {
            base.kind = it->site == AG_SITE_MID ? AGI_EDIT_ADD_MID : AGI_EDIT_ADD_RESID;
            base.coef = it->value;
            base.vec = it->vector;
            ed[k++] = base;
            continue;
        }
        int feat = it->site == AG_SITE_FEATURE;
        base.kind = feat ? AGI_EDIT_CLAMP_FEATURE : AGI_EDIT_CLAMP;
        base.index = it->index;
        if (!clean) { /* relative to the current value (BOS is skipped by the MLP extension) */
            base.mul = it->kind == AG_INTERVENE_SET ? 0.0f : it->kind == AG_INTERVENE_SCALE ? it->value : 1.0f;
            base.add = it->kind == AG_INTERVENE_SCALE ? 0.0f : it->value;
            ed[k++] = base;
            continue;
        }
        if (feat && bos0 && b == 0) b = 1; /* no features at BOS */
        if (e <= b) {
            base.pos_begin = base.pos_end = b; /* empty range: a no-op edit */
            ed[k++] = base;
            continue;
        }
        for (int p = b; p < e; p++) { /* resolved against the clean value, one per position */
            agi_edit one = base;
            one.pos_begin = p;
            one.pos_end = p + 1;
            one.mul = 0.0f;
            one.add = clamped_value(it, clean_unit(it, clean, fc, Hd, p));
            ed[k++] = one;
        }
    }
    *out = ed;
    *n_out = (int)k;
    return AG_OK;
}

/* ---- the run ------------------------------------------------------------------------------ */

void agi_intervene_run(const ag_model *m, const agi_acts *clean, const agi_edit *edits, int n_edits,
                       unsigned freeze, int delta, agi_mlp_ext *mlp, agi_acts *work) {
    int L = m->cfg.n_layers, T = clean->T;
    /* the lowest block and earliest position an edit touches (an edit of resid.l acts on block l) */
    int l0 = L + 1, p0 = T;
    for (int i = 0; i < n_edits; i++) {
        const agi_edit *e = &edits[i];
        if (e->pos_end <= e->pos_begin) continue;
        if (e->layer < l0) l0 = e->layer;
        if (e->pos_begin < p0) p0 = e->pos_begin;
    }
    if (delta) memset(work->mem, 0, work->mem_floats * sizeof(float));
    else memcpy(work->mem, clean->mem, clean->mem_floats * sizeof(float));
    memcpy(work->tokens, clean->tokens, (size_t)T * sizeof *clean->tokens);
    if (l0 > L || p0 >= T) return; /* nothing to change */
    agi_fwd_ctl ctl = {clean, freeze, delta, edits, n_edits, mlp};
    agi_forward_ctl_from(m, work, &ctl, l0 > L ? L : l0, p0, T);
}

/* ---- public API --------------------------------------------------------------------------- */

void ag_intervention_result_free(ag_intervention_result *r) {
    if (!r) return;
    agi_acts_free(&r->full);
    agi_acts_free(&r->delta);
    free(r->item_unit);
    free(r->item_pos);
    free(r->previous);
    free(r->value);
    free(r->feat);
    free(r);
}

/* The features of every layer of the set in the run just made (r->full / r->delta filled, the
 * items' clamp values in r->value), into r->feat: full values, then changes. Per mode:
 *   LINEAR   the replacement model's own features (the run's changes, tr->acts): a = mult * pre
 *            with the trace's multipliers;
 *   REPLACE  the replacement model's own features (the run's values, tr->acts);
 *   DIRECT   what the frozen-multiplier features read: change = mult * (W_enc . change of the
 *            read point), from the exact delta run (they feed nothing: MLP outputs are frozen);
 *   REAL     the encoder (activation function included) on the run's read point; rows equal to
 *            the trace's bit for bit keep the trace's activations (change exactly 0).
 * Then every clamped (layer, position, feature) reports its clamped value; BOS rows are 0. */
static void run_features(ag_intervention_result *r, const ag_transcoder *tc, const agi_tc_clean *fc, const agi_tc_run *tr,
                         int tc_kind, const agi_acts *clean, const ag_intervention *items, size_t n_items, int bos0) {
    int L = tc->L, T = r->T, F = tc->F, D = tc->D;
    size_t LTF = (size_t)L * T * F, TF = (size_t)T * F;
    float *full = r->feat, *dl = r->feat + LTF;
    if (tc_kind == AGI_TC_LINEAR) {
        memcpy(dl, tr->acts, sizeof(float) * LTF);
        for (size_t q = 0; q < LTF; q++) full[q] = fc->acts[q] + dl[q];
    } else if (tc_kind == AGI_TC_REPLACE) {
        memcpy(full, tr->acts, sizeof(float) * LTF);
        for (size_t q = 0; q < LTF; q++) dl[q] = full[q] - fc->acts[q];
    } else if (tc_kind == AGI_TC_DIRECT) {
        for (int l = 0; l < L; l++) {
            float *d = dl + (size_t)l * TF;
            const float *mu = fc->mult + (size_t)l * TF;
            agi_linear(d, agi_tc_input(tc, &r->delta, l), tc->layers[l].W_enc, T, D, F, 0.0f); /* W_enc . dx */
            for (size_t q = 0; q < TF; q++) d[q] = mu[q] != 0.0f ? mu[q] * d[q] : 0.0f;
        }
        if (bos0)
            for (int l = 0; l < L; l++) memset(dl + (size_t)l * TF, 0, sizeof(float) * (size_t)F);
        for (size_t q = 0; q < LTF; q++) full[q] = fc->acts[q] + dl[q];
    } else { /* AGI_TC_REAL */
        for (int l = 0; l < L; l++) {
            float *a = full + (size_t)l * TF;
            const float *x = agi_tc_input(tc, &r->full, l), *xc = agi_tc_input(tc, clean, l);
            agi_tc_encode(tc, l, x, T, NULL, a);
            for (int p = 0; p < T; p++)
                if ((bos0 && p == 0) || memcmp(x + (size_t)p * D, xc + (size_t)p * D, sizeof(float) * (size_t)D) == 0)
                    memcpy(a + (size_t)p * F, fc->acts + (size_t)l * TF + (size_t)p * F, sizeof(float) * (size_t)F);
        }
        for (size_t q = 0; q < LTF; q++) dl[q] = full[q] - fc->acts[q];
    }
    for (size_t i = 0; i < n_items; i++) {
        if (items[i].site != AG_SITE_FEATURE) continue;
        int l = items[i].layer, f = items[i].index;
        for (int p = r->item_pos[2 * i]; p < r->item_pos[2 * i + 1]; p++) {
            float v = r->value[i * (size_t)T + (size_t)p];
            if (isnan(v)) continue; /* BOS */
            size_t at = (size_t)l * TF + (size_t)p * F + (size_t)f;
            full[at] = v;
            dl[at] = v - fc->acts[at];
        }
    }
}

ag_status ag_intervene(ag_intervention_result **out, const ag_trace *trace, const ag_intervention *items,
                       size_t n_items, const ag_intervene_options *opts) {
    static const char *const fn = "ag_intervene";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!trace) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "trace is NULL");
    ag_intervene_options o;
    ag_intervene_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st == AG_OK) st = check_options(&o, fn);
    if (st != AG_OK) return st;
    const ag_model *m = trace->model;
    const agi_acts *clean = &trace->acts;
    const agi_config *c = &m->cfg;
    const ag_transcoder *tc = o.transcoder;
    int T = clean->T, bos0 = agi_tc_bos0(m, clean->tokens);
    if (tc && (st = agi_tc_check_model(tc, m, fn, "opts->transcoder")) != AG_OK) return st;
    st = agi_interventions_check(m, tc, items, n_items, T, bos0, fn);
    if (st != AG_OK) return st;
    /* with a transcoder, LINEAR (and FREE + free_replacement) run its replacement model: the MLP
     * neurons are not run there */
    int tc_kind = !tc ? 0
                  : o.mode == AG_INTERVENE_DIRECT ? AGI_TC_DIRECT
                  : o.mode == AG_INTERVENE_LINEAR ? AGI_TC_LINEAR
                  : o.free_replacement            ? AGI_TC_REPLACE
                                                  : AGI_TC_REAL;
    if (tc_kind == AGI_TC_LINEAR || tc_kind == AGI_TC_REPLACE)
        for (size_t i = 0; i < n_items; i++)
            if (items[i].site == AG_SITE_MLP)
                return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                                 "items[%zu].site = AG_SITE_MLP: with opts->transcoder, %s runs the transcoder's replacement model, "
                                 "whose MLP neurons do not exist (intervene on features, or use DIRECT or FREE without free_replacement)",
                                 i, o.mode == AG_INTERVENE_LINEAR ? "LINEAR" : "FREE with free_replacement");
    agi_tc_clean fc;
    memset(&fc, 0, sizeof fc);
    agi_tc_run tr;
    memset(&tr, 0, sizeof tr);
    if (tc && (st = agi_tc_clean_make(&fc, tc, trace, fn)) != AG_OK) return st;
    agi_edit *edits = NULL;
    int n_edits = 0;
    st = agi_interventions_edits(m, items, n_items, clean, tc ? &fc : NULL, bos0, T, &edits, &n_edits, fn);
    if (st == AG_OK && tc) st = agi_tc_run_init(&tr, tc, &fc, tc_kind, o.freeze_gates, T, bos0, n_edits, fn);
    if (st != AG_OK) {
        free(edits);
        agi_tc_clean_free(&fc);
        return st;
    }

    ag_intervention_result *r = agi_calloc(1, sizeof *r, fn);
    if (!r) {
        free(edits);
        agi_tc_run_free(&tr);
        agi_tc_clean_free(&fc);
        return AG_ERR_OUT_OF_MEMORY;
    }
    r->model = m;
    r->mode = o.mode;
    r->n_items = n_items;
    r->T = T;
    size_t nv = (n_items ? n_items : 1) * (size_t)T;
    st = agi_acts_alloc(&r->full, c, 1, T, T, 1, fn);
    if (st == AG_OK) st = agi_acts_alloc(&r->delta, c, 1, T, T, 1, fn);
    if (st == AG_OK) {
        r->item_unit = agi_calloc(n_items ? n_items : 1, sizeof *r->item_unit, fn);
        r->item_pos = agi_calloc(2 * (n_items ? n_items : 1), sizeof *r->item_pos, fn);
        r->previous = agi_calloc(nv, sizeof *r->previous, fn);
        r->value = agi_calloc(nv, sizeof *r->value, fn);
        if (!r->item_unit || !r->item_pos || !r->previous || !r->value) st = AG_ERR_OUT_OF_MEMORY;
    }
    if (st == AG_OK && tc) { /* the features of the run (ag_intervention_result_features) */
        r->tc_L = tc->L;
        r->tc_F = tc->F;
        r->feat = agi_malloc(sizeof(float) * 2 * (size_t)tc->L * (size_t)T * (size_t)tc->F, fn);
        if (!r->feat) st = AG_ERR_OUT_OF_MEMORY;
    }
    if (st != AG_OK) {
        free(edits);
        agi_tc_run_free(&tr);
        agi_tc_clean_free(&fc);
        ag_intervention_result_free(r);
        return st;
    }

    unsigned freeze;
    int delta;
    agi_intervene_mode(&o, &freeze, &delta);
    agi_acts *run = delta ? &r->delta : &r->full, *other = delta ? &r->full : &r->delta;
    if (tc) agi_tc_run_reset(&tr, delta);
    agi_intervene_run(m, clean, edits, n_edits, freeze, delta, tc ? &tr.ext : NULL, run);
    free(edits);
    memcpy(other->tokens, clean->tokens, (size_t)T * sizeof *clean->tokens);
    size_t nf = clean->mem_floats;
    if (delta) /* frozen arrays stay 0 in the delta run, so full = clean + delta throughout */
        for (size_t i = 0; i < nf; i++) other->mem[i] = clean->mem[i] + run->mem[i];
    else
        for (size_t i = 0; i < nf; i++) other->mem[i] = run->mem[i] - clean->mem[i];

    for (size_t i = 0; i < n_items; i++) {
        const ag_intervention *it = &items[i];
        int b, e;
        item_range(it, T, &b, &e);
        r->item_pos[2 * i] = b;
        r->item_pos[2 * i + 1] = e;
        r->item_unit[i] = is_unit_site(it->site);
        for (int p = 0; p < T; p++) {
            size_t at = i * (size_t)T + (size_t)p;
            r->previous[at] = r->value[at] = NAN;
            if (!r->item_unit[i] || p < b || p >= e) continue;
            if (it->site == AG_SITE_FEATURE && bos0 && p == 0) continue; /* no features at BOS: NAN */
            float cv = clean_unit(it, clean, &fc, c->hidden_dim, p);
            r->previous[at] = cv;
            r->value[at] = clamped_value(it, cv);
        }
    }
    if (tc) run_features(r, tc, &fc, &tr, tc_kind, clean, items, n_items, bos0);
    agi_tc_run_free(&tr);
    agi_tc_clean_free(&fc);
    const float *lg = r->full.logits;
    for (size_t i = 0; i < (size_t)T * (size_t)c->vocab_size; i++)
        if (!isfinite(lg[i])) {
            ag_intervention_result_free(r);
            return agi_error(AG_ERR_NUMERIC, fn, "the intervened run's logit %zu at position %zu is not finite",
                             i % (size_t)c->vocab_size, i / (size_t)c->vocab_size);
        }
    agi_clear_error();
    *out = r;
    return AG_OK;
}

ag_status ag_intervention_result_logits(const ag_intervention_result *r, int32_t position, int32_t delta,
                                        const float **logits) {
    static const char *const fn = "ag_intervention_result_logits";
    if (!r || !logits) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !r ? "result" : "logits");
    int p = position == -1 ? r->T - 1 : position;
    if (p < 0 || p >= r->T) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "position = %d is outside [0, %d) (or -1 for the last)", position, r->T);
    const agi_acts *a = delta ? &r->delta : &r->full;
    *logits = a->logits + (size_t)p * (size_t)r->model->cfg.vocab_size;
    return AG_OK;
}

ag_status ag_intervention_result_tensor(const ag_intervention_result *r, ag_tensor_kind which, int32_t layer,
                                        int32_t delta, const float **data, int64_t shape[3], int32_t *ndim) {
    static const char *const fn = "ag_intervention_result_tensor";
    if (!r) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "result is NULL");
    ag_trace view; /* the run's buffers seen as a trace, to share ag_trace_tensor's table */
    view.model = r->model;
    view.acts = delta ? r->delta : r->full;
    ag_status st = ag_trace_tensor(&view, which, layer, data, shape, ndim);
    if (st != AG_OK) return agi_error(st, fn, "%s", ag_last_error());
    return AG_OK;
}

ag_status ag_intervention_result_unit(const ag_intervention_result *r, size_t item, int32_t position, float *previous,
                                      float *value) {
    static const char *const fn = "ag_intervention_result_unit";
    if (!r) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "result is NULL");
    if (item >= r->n_items) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "item = %zu is outside [0, %zu)", item, r->n_items);
    if (!r->item_unit[item]) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "items[%zu] is not a unit intervention", item);
    int b = r->item_pos[2 * item], e = r->item_pos[2 * item + 1];
    if (position < b || position >= e)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "position = %d is outside items[%zu]'s positions [%d, %d)", position, item, b, e);
    size_t at = item * (size_t)r->T + (size_t)position;
    if (previous) *previous = r->previous[at];
    if (value) *value = r->value[at];
    return AG_OK;
}

int32_t ag_intervention_result_mode(const ag_intervention_result *r) { return r ? r->mode : 0; }

ag_status ag_intervention_result_features(const ag_intervention_result *r, int32_t layer, int32_t delta, const float **data,
                                          int64_t shape[2]) {
    static const char *const fn = "ag_intervention_result_features";
    if (!r || !data) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !r ? "result" : "data");
    *data = NULL;
    if (!r->feat)
        return agi_error(AG_ERR_STATE, fn,
                         "the result was made without a transcoder set (ag_intervene_options.transcoder was NULL), so it has no "
                         "feature activations");
    if (layer < 0 || layer >= r->tc_L)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d) (the transcoder set's layers)", layer, r->tc_L);
    size_t TF = (size_t)r->T * (size_t)r->tc_F;
    *data = r->feat + (delta ? (size_t)r->tc_L * TF : 0) + (size_t)layer * TF;
    if (shape) {
        shape[0] = r->T;
        shape[1] = r->tc_F;
    }
    return AG_OK;
}
