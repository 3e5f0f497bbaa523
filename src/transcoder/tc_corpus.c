/* Corpora for training, evaluating and labelling transcoders: token windows that start with
 * BOS, from a UTF-8 text file or sampled from the model itself (seeded), and the batched
 * forward pass over windows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/forward.h"
#include "model/model.h"
#include "transcoder/transcoder.h"

void agi_tc_corpus_free(agi_tc_corpus *c) {
    free(c->tok);
    free(c->len);
    memset(c, 0, sizeof *c);
}

/* Append one window (tokens[0..n), n <= ctx) to the corpus, growing it. */
static int push_window(agi_tc_corpus *c, int *cap, const int32_t *t, int n) {
    if (c->n_seq == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        int32_t *nt = realloc(c->tok, sizeof(int32_t) * (size_t)nc * (size_t)c->ctx);
        if (!nt) return -1;
        c->tok = nt;
        int32_t *nl = realloc(c->len, sizeof(int32_t) * (size_t)nc);
        if (!nl) return -1;
        c->len = nl;
        *cap = nc;
    }
    int32_t *w = c->tok + (size_t)c->n_seq * (size_t)c->ctx;
    memcpy(w, t, sizeof(int32_t) * (size_t)n);
    for (int i = n; i < c->ctx; i++) w[i] = 0; /* padding, never scored */
    c->len[c->n_seq++] = n;
    return 0;
}

ag_status agi_tc_corpus_make(agi_tc_corpus *c, const ag_model *m, const char *path, int64_t n_tokens, int ctx,
                             float temperature, uint64_t seed, const char *func) {
    memset(c, 0, sizeof *c);
    if (ctx < 2 || ctx > m->cfg.seq_len)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "context = %d must be in [2, %d] (the model's seq_len)", ctx, m->cfg.seq_len);
    int bos = m->bos_id >= 0 ? m->bos_id : 1;
    c->ctx = ctx;
    int cap = 0;
    int64_t have = 0;
    int32_t *buf = agi_malloc(sizeof(int32_t) * (size_t)ctx, func);
    if (!buf) return AG_ERR_OUT_OF_MEMORY;
    ag_status st = AG_OK;
    if (!path) {
        /* stories sampled from BOS, one window each */
        ag_generate_options go;
        ag_generate_options_init(&go, sizeof go);
        go.max_new_tokens = ctx - 1;
        go.temperature = temperature;
        for (uint64_t s = 0; have < n_tokens; s++) {
            uint64_t z = seed * 0x9E3779B97F4A7C15ull + s;
            go.seed = agi_tc_rng(&z) | 1u;
            size_t n_new = 0;
            buf[0] = bos;
            st = ag_generate(m, buf, 1, &go, buf + 1, (size_t)ctx - 1, &n_new);
            if (st != AG_OK) break;
            if (n_new < 1) continue;
            if (push_window(c, &cap, buf, 1 + (int)n_new)) {
                st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot grow the corpus");
                break;
            }
            have += (int64_t)n_new + 1;
        }
    } else {
        if (!m->tok) {
            free(buf);
            return agi_error(AG_ERR_STATE, func, "a text corpus needs a tokenizer attached to the model");
        }
        FILE *f = fopen(path, "rb");
        if (!f) {
            free(buf);
            return agi_error(AG_ERR_IO, func, "%s: cannot open: %s", path, strerror(errno));
        }
        /* documents = blank-line separated paragraphs; each tokenized with BOS and cut into
         * windows of ctx tokens (BOS, then ctx - 1 tokens of the document) */
        size_t dcap = 4096, dn = 0, tcap = 0;
        char *doc = malloc(dcap);
        int32_t *toks = NULL;
        char *line = NULL;
        size_t lcap = 0;
        int eof = 0;
        while (st == AG_OK && doc && !eof && (n_tokens <= 0 || have < n_tokens)) {
            ssize_t r = getline(&line, &lcap, f);
            int blank = r <= 0 || strspn(line, " \t\r\n") == (size_t)r;
            if (r < 0) eof = 1;
            if (!blank) {
                if (dn + (size_t)r + 1 > dcap) {
                    while (dn + (size_t)r + 1 > dcap) dcap *= 2;
                    char *nd = realloc(doc, dcap);
                    if (!nd) {
                        st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory reading %s", path);
                        break;
                    }
                    doc = nd;
                }
                memcpy(doc + dn, line, (size_t)r);
                dn += (size_t)r;
                continue;
            }
            if (dn == 0) continue;
            while (dn > 0 && (doc[dn - 1] == '\n' || doc[dn - 1] == '\r')) dn--;
            doc[dn] = '\0';
            dn = 0;
            size_t nt = 0;
            st = ag_tokenize(m, doc, 1, toks, tcap, &nt);
            if (st == AG_ERR_BUFFER_TOO_SMALL) {
                int32_t *ntk = realloc(toks, sizeof(int32_t) * nt);
                if (!ntk) {
                    st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory tokenizing %s", path);
                    break;
                }
                toks = ntk;
                tcap = nt;
                st = ag_tokenize(m, doc, 1, toks, tcap, &nt);
            }
            if (st != AG_OK) break;
            for (size_t at = 1; at < nt && (n_tokens <= 0 || have < n_tokens); at += (size_t)ctx - 1) {
                size_t take = nt - at < (size_t)ctx - 1 ? nt - at : (size_t)ctx - 1;
                buf[0] = bos;
                memcpy(buf + 1, toks + at, sizeof(int32_t) * take);
                if (push_window(c, &cap, buf, 1 + (int)take)) {
                    st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot grow the corpus");
                    break;
                }
                have += (int64_t)take + 1;
            }
        }
        if (!doc && st == AG_OK) st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory reading %s", path);
        free(doc);
        free(toks);
        free(line);
        fclose(f);
        if (st == AG_OK && c->n_seq == 0) st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s: no text", path);
    }
    free(buf);
    if (st != AG_OK) agi_tc_corpus_free(c);
    return st;
}

void agi_tc_forward_windows(const ag_model *m, agi_acts *a, const agi_tc_corpus *c, int s0, int B) {
    int T = a->T;
    for (int b = 0; b < a->B; b++) {
        int32_t *dst = a->tokens + (size_t)b * T;
        if (b < B) memcpy(dst, c->tok + (size_t)(s0 + b) * c->ctx, sizeof(int32_t) * (size_t)T);
        else memset(dst, 0, sizeof(int32_t) * (size_t)T);
    }
    agi_forward(m, a, 0, T);
}
