/* Text generation (optionally steered by interventions) with a KV cache: the prompt in one chunk, then one position at a time,
 * through the same forward stages as a trace (attention patterns are kept only for the
 * current chunk). Sampling: greedy (temperature 0) or temperature + nucleus (top_p) with
 * llama2.c's xorshift generator, so a seed always gives the same text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/forward.h"
#include "engine/trace.h"
#include "graph/intervene.h"

ag_status ag_generate_options_init(ag_generate_options *opts, size_t struct_size) {
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_generate_options_init", "opts is NULL");
    if (struct_size < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, "ag_generate_options_init", "struct_size = %zu is too small", struct_size);
    ag_generate_options d;
    memset(&d, 0, sizeof d);
    d.max_new_tokens = 256;
    d.temperature = 0.0f;
    d.top_p = 1.0f;
    d.seed = 42;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
    opts->struct_size = struct_size;
    return AG_OK;
}

static uint32_t rng_u32(uint64_t *s) { /* xorshift* (llama2.c's random_u32) */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rng_f32(uint64_t *s) { return (float)(rng_u32(s) >> 8) / 16777216.0f; }

typedef struct prob_index {
    float p;
    int i;
} prob_index;

static int cmp_prob_desc(const void *a, const void *b) {
    const prob_index *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->i - y->i);
}

/* Pick the next token from logits[V]; `scratch` holds V prob_index entries. */
static int sample(const float *logits, int V, const ag_generate_options *o, uint64_t *rng, prob_index *scratch) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (o->temperature <= 0.0f) return best;
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        scratch[i].p = expf((logits[i] - logits[best]) / o->temperature);
        scratch[i].i = i;
        sum += scratch[i].p;
    }
    for (int i = 0; i < V; i++) scratch[i].p = (float)(scratch[i].p / sum);
    int n = V;
    if (o->top_p < 1.0f) {
        qsort(scratch, (size_t)V, sizeof *scratch, cmp_prob_desc);
        double cum = 0.0;
        for (n = 0; n < V;) {
            cum += scratch[n++].p;
            if (cum >= o->top_p) break;
        }
        double s2 = 0.0;
        for (int i = 0; i < n; i++) s2 += scratch[i].p;
        for (int i = 0; i < n; i++) scratch[i].p = (float)(scratch[i].p / s2);
    }
    float r = rng_f32(rng);
    double cdf = 0.0;
    for (int i = 0; i < n; i++) {
        cdf += scratch[i].p;
        if (r < cdf) return scratch[i].i;
    }
    return scratch[n - 1].i;
}

/* The prompt's checks, naming the arguments of ag_generate (prompt, n_prompt). */
/* ag_generate and ag_generate_steered: one loop; the interventions become forward edits
 * (relative to the current values: there is no clean run of the generated text). */
static ag_status generate(const ag_model *m, const int32_t *prompt, size_t n_prompt, const ag_intervention *items,
                          size_t n_items, const ag_generate_options *opts, int32_t *out_tokens, size_t cap,
                          size_t *n_out, const char *fn) {
    if (!m || !n_out || (!out_tokens && cap))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : !n_out ? "n_out" : "out_tokens");
    *n_out = 0;
    ag_generate_options o;
    ag_generate_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.max_new_tokens < 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->max_new_tokens = %d is negative", o.max_new_tokens);
    if (!(o.temperature >= 0.0f) || !isfinite(o.temperature))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->temperature = %g must be finite and >= 0", (double)o.temperature);
    if (!(o.top_p > 0.0f && o.top_p <= 1.0f))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->top_p = %g must be in (0, 1]", (double)o.top_p);
    st = agi_check_tokens(m, prompt, n_prompt, fn, "prompt", "n_prompt", "generation needs at least one prompt token");
    if (st != AG_OK) return st;
    /* the transcoder of AG_SITE_FEATURE items (ag_generate_steered only): the real model, a
     * clamped feature adds (new - current activation) x its decoder rows */
    const ag_transcoder *tc = items ? o.transcoder : NULL;
    if (tc && (st = agi_tc_check_model(tc, m, fn, "opts->transcoder")) != AG_OK) return st;
    int bos0 = agi_tc_bos0(m, prompt);
    st = agi_interventions_check(m, tc, items, n_items, m->cfg.seq_len, bos0, fn);
    if (st != AG_OK) return st;
    if (cap < (size_t)o.max_new_tokens) {
        *n_out = (size_t)o.max_new_tokens;
        return agi_error(AG_ERR_BUFFER_TOO_SMALL, fn, "cap = %zu is smaller than max_new_tokens = %d", cap, o.max_new_tokens);
    }
    const agi_config *c = &m->cfg;
    size_t total = n_prompt + (size_t)o.max_new_tokens;
    int T = total > (size_t)c->seq_len ? c->seq_len : (int)total;
    agi_edit *edits = NULL;
    int n_edits = 0;
    st = agi_interventions_edits(m, items, n_items, NULL, NULL, bos0, T, &edits, &n_edits, fn);
    if (st != AG_OK) return st;
    agi_tc_run tr;
    memset(&tr, 0, sizeof tr);
    int any_feature = 0;
    for (int i = 0; i < n_edits; i++) any_feature |= edits[i].kind == AGI_EDIT_CLAMP_FEATURE;
    if (any_feature && (st = agi_tc_run_init(&tr, tc, NULL, AGI_TC_REAL, 0, T, bos0, n_edits, fn)) != AG_OK) {
        free(edits);
        return st;
    }
    agi_fwd_ctl ctl = {NULL, 0u, 0, edits, n_edits, any_feature ? &tr.ext : NULL};
    agi_acts a;
    st = agi_acts_alloc(&a, c, 1, T, (int)n_prompt, 1, fn);
    if (st != AG_OK) {
        free(edits);
        agi_tc_run_free(&tr);
        return st;
    }
    prob_index *scratch = agi_calloc((size_t)c->vocab_size, sizeof *scratch, fn);
    if (!scratch) {
        free(edits);
        agi_tc_run_free(&tr);
        agi_acts_free(&a);
        return AG_ERR_OUT_OF_MEMORY;
    }
    memcpy(a.tokens, prompt, n_prompt * sizeof *prompt);
    uint64_t rng = o.seed ? o.seed : 0x9E3779B97F4A7C15ull; /* xorshift needs a non-zero state */
    int p0 = 0, p1 = (int)n_prompt;
    size_t produced = 0;
    /* the token sampled from positions [0, p1) takes position p1: prompt + new <= seq_len */
    while (produced < (size_t)o.max_new_tokens && p1 < T) {
        agi_forward_ctl(m, &a, n_edits ? &ctl : NULL, p0, p1);
        const float *lg = a.logits + (size_t)(p1 - 1) * (size_t)c->vocab_size;
        int next = sample(lg, c->vocab_size, &o, &rng, scratch);
        if (next == m->bos_id || next == m->eos_id || (m->bos_id < 0 && next == 1)) break;
        out_tokens[produced++] = next;
        a.tokens[p1] = next;
        p0 = p1;
        p1 = p1 + 1;
    }
    free(scratch);
    free(edits);
    agi_tc_run_free(&tr);
    agi_acts_free(&a);
    *n_out = produced;
    agi_clear_error();
    return AG_OK;
}

ag_status ag_generate(const ag_model *m, const int32_t *prompt, size_t n_prompt, const ag_generate_options *opts,
                      int32_t *out_tokens, size_t cap, size_t *n_out) {
    return generate(m, prompt, n_prompt, NULL, 0, opts, out_tokens, cap, n_out, "ag_generate");
}

ag_status ag_generate_steered(const ag_model *m, const int32_t *prompt, size_t n_prompt, const ag_intervention *items,
                              size_t n_items, const ag_generate_options *opts, int32_t *out_tokens, size_t cap,
                              size_t *n_out) {
    return generate(m, prompt, n_prompt, items, n_items, opts, out_tokens, cap, n_out, "ag_generate_steered");
}
