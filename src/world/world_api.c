/* The public face of the synthetic world: prompts as text, and greedy evaluation. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/forward.h"
#include "world/world.h"

/* Join the pieces of tokens[0..n) into malloc'ed text (the first piece loses its space). */
static char *join(const agi_world *w, const int32_t *tok, int n, const char *func) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(agi_world_piece(w, tok[i]));
    char *s = agi_malloc(len, func);
    if (!s) return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const char *p = agi_world_piece(w, tok[i]);
        if (o == 0 && p[0] == ' ') p++;
        size_t k = strlen(p);
        memcpy(s + o, p, k);
        o += k;
    }
    s[o] = '\0';
    return s;
}

#define EVAL_CAP 128

ag_status ag_world_prompt(uint64_t seed, ag_world_task task, uint64_t index, char **text, char **answer) {
    static const char *const fn = "ag_world_prompt";
    if (text) *text = NULL;
    if (answer) *answer = NULL;
    if ((int)task < 0 || task >= AG_WORLD_N_TASKS)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "task = %d is not an ag_world_task", (int)task);
    agi_world *w;
    ag_status st = agi_world_create(&w, seed, fn);
    if (st != AG_OK) return st;
    int32_t tok[EVAL_CAP], ans[EVAL_CAP], pos[EVAL_CAP];
    int n = 0;
    int k = agi_world_eval_example(w, (agi_world_task)task, index, tok, EVAL_CAP, &n, ans, pos, NULL);
    char *t = NULL, *a = NULL;
    if (k <= 0) {
        st = agi_error(AG_ERR_INTERNAL, fn, "example does not fit %d tokens", EVAL_CAP);
        goto done;
    }
    if (text && !(t = join(w, tok + 1, n - 1, fn))) st = AG_ERR_OUT_OF_MEMORY;
    if (st == AG_OK && answer && !(a = join(w, ans, k, fn))) st = AG_ERR_OUT_OF_MEMORY;
done:
    if (st == AG_OK) {
        if (text) *text = t;
        if (answer) *answer = a;
        agi_clear_error();
    } else {
        free(t);
        free(a);
    }
    agi_world_free(w);
    return st;
}

ag_status ag_world_training_text(uint64_t seed, uint64_t index, int32_t n_tokens, char **text) {
    static const char *const fn = "ag_world_training_text";
    if (!text) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "text is NULL");
    *text = NULL;
    if (n_tokens < 1 || n_tokens > 1 << 20)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "n_tokens = %d must be in [1, 2^20]", n_tokens);
    agi_world *w;
    ag_status st = agi_world_create(&w, seed, fn);
    if (st != AG_OK) return st;
    int32_t *tok = agi_malloc((size_t)n_tokens * sizeof *tok, fn);
    if (!tok) {
        agi_world_free(w);
        return AG_ERR_OUT_OF_MEMORY;
    }
    agi_world_train_sequence(w, index, tok, n_tokens);
    *text = join(w, tok + 1, n_tokens - 1, fn);
    st = *text ? AG_OK : AG_ERR_OUT_OF_MEMORY;
    free(tok);
    agi_world_free(w);
    if (st == AG_OK) agi_clear_error();
    return st;
}

/* ---- evaluation --------------------------------------------------------------------------- */

ag_status agi_world_check_vocab(const ag_model *m, const agi_world *w, const char *func) {
    if (m->cfg.vocab_size != agi_world_vocab_size(w))
        return agi_error(AG_ERR_UNSUPPORTED, func, "%s has %d tokens, the world of seed %llu has %d: not a world model",
                         m->name, m->cfg.vocab_size, (unsigned long long)agi_world_seed(w), agi_world_vocab_size(w));
    if (m->tok)
        for (int32_t i = 0; i < m->cfg.vocab_size; i++) {
            const char *p = agi_tokenizer_piece(m->tok, i, NULL);
            if (!p || strcmp(p, agi_world_piece(w, i)) != 0)
                return agi_error(AG_ERR_UNSUPPORTED, func, "%s: token %d is \"%s\", the world of seed %llu has \"%s\"",
                                 m->name, i, p ? p : "", (unsigned long long)agi_world_seed(w), agi_world_piece(w, i));
        }
    return AG_OK;
}

ag_status ag_world_evaluate(const ag_model *m, uint64_t seed, int32_t n_per_task, ag_world_eval *out) {
    static const char *const fn = "ag_world_evaluate";
    if (!m || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !m ? "model" : "out");
    ag_status st = agi_check_struct_size(out->struct_size, sizeof(ag_world_eval), fn, "out");
    if (st != AG_OK) return st;
    if (n_per_task < 1 || n_per_task > 1000000)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "n_per_task = %d must be in [1, 1000000]", n_per_task);
    agi_world *w;
    st = agi_world_create(&w, seed, fn);
    if (st != AG_OK) return st;
    st = agi_world_check_vocab(m, w, fn);
    if (st != AG_OK) {
        agi_world_free(w);
        return st;
    }
    /* Examples are padded to T and run B at a time: with causal attention, the padding after
     * a prompt cannot change the logits at the prompt's positions. */
    const int B = n_per_task < 32 ? n_per_task : 32;
    int T = m->cfg.seq_len < 64 ? m->cfg.seq_len : 64;
    agi_acts a;
    st = agi_acts_alloc(&a, &m->cfg, B, T, T, 1, fn);
    int32_t *ans = agi_malloc(sizeof(int32_t) * (size_t)B * EVAL_CAP * 2, fn);
    if (st != AG_OK || !ans) {
        if (st == AG_OK) agi_acts_free(&a);
        free(ans);
        agi_world_free(w);
        return AG_ERR_OUT_OF_MEMORY;
    }
    int32_t *pos = ans + (size_t)B * EVAL_CAP;
    int k_of[32];
    ag_world_eval r;
    memset(&r, 0, sizeof r);
    int V = m->cfg.vocab_size;
    for (int task = 0; task < AG_WORLD_N_TASKS && st == AG_OK; task++) {
        for (int32_t i0 = 0; i0 < n_per_task; i0 += B) {
            int nb = n_per_task - i0 < B ? n_per_task - i0 : B;
            for (int b = 0; b < B; b++) {
                int32_t *row = a.tokens + (size_t)b * T;
                int n = 0;
                k_of[b] = 0;
                for (int p = 0; p < T; p++) row[p] = AGI_TOK_EOS; /* padding */
                if (b >= nb) continue;
                int32_t buf[EVAL_CAP];
                int k = agi_world_eval_example(w, (agi_world_task)task, (uint64_t)(i0 + b), buf, EVAL_CAP, &n,
                                               ans + (size_t)b * EVAL_CAP, pos + (size_t)b * EVAL_CAP, NULL);
                if (k <= 0 || n > T) {
                    st = agi_error(AG_ERR_UNSUPPORTED, fn, "%s: a %s prompt of %d tokens exceeds the context of %d", m->name,
                                   agi_world_task_name((agi_world_task)task), n, T);
                    break;
                }
                memcpy(row, buf, sizeof(int32_t) * (size_t)n);
                k_of[b] = k;
            }
            if (st != AG_OK) break;
            agi_forward(m, &a, 0, T);
            for (int b = 0; b < nb; b++) {
                r.n_prompts[task]++;
                for (int j = 0; j < k_of[b]; j++) {
                    const float *lg = a.logits + ((size_t)b * T + (size_t)pos[(size_t)b * EVAL_CAP + j]) * (size_t)V;
                    int best = 0;
                    for (int v = 1; v < V; v++)
                        if (lg[v] > lg[best]) best = v;
                    r.n_scored[task]++;
                    r.n_correct[task] += best == ans[(size_t)b * EVAL_CAP + j];
                }
            }
        }
        r.accuracy[task] = r.n_scored[task] ? (double)r.n_correct[task] / r.n_scored[task] : 0.0;
    }
    agi_acts_free(&a);
    free(ans);
    agi_world_free(w);
    if (st != AG_OK) return st;
    r.struct_size = out->struct_size;
    memcpy(out, &r, sizeof r);
    agi_clear_error();
    return AG_OK;
}
