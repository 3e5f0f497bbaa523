/* Sizing and allocation of activation buffers. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/acts.h"

ag_status agi_acts_alloc(agi_acts *a, const agi_config *c, int B, int T, int att_rows,
                         int want_logits, const char *func) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->att_rows = att_rows;
    a->keep_att = att_rows == T;
    a->want_logits = want_logits;
    size_t BT = (size_t)B * (size_t)T, L = (size_t)c->n_layers, D = (size_t)c->dim;
    size_t KV = (size_t)c->kv_dim, Hd = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t H = (size_t)c->n_heads;
    /* sizes in floats; each product is checked */
    size_t sz[18], total = 0;
    size_t att_layers = a->keep_att ? L : 1;
    int ok = 1;
    size_t t;
    ok &= agi_mul_size(L + 1, BT * D, &sz[0]);            /* x */
    ok &= agi_mul_size(L, BT * D, &sz[1]);                /* xmid */
    ok &= agi_mul_size(L, BT, &sz[2]);                    /* r_att */
    ok &= agi_mul_size(L, BT * D, &sz[3]);                /* a */
    ok &= agi_mul_size(L, BT * D, &sz[4]);                /* q */
    ok &= agi_mul_size(L, BT * KV, &sz[5]);               /* k */
    ok &= agi_mul_size(L, BT * KV, &sz[6]);               /* v */
    ok &= agi_mul_size(att_layers * (size_t)B * H, (size_t)att_rows, &t) && agi_mul_size(t, (size_t)T, &sz[7]);
    ok &= agi_mul_size(L, BT * D, &sz[8]);                /* heads */
    ok &= agi_mul_size(L, BT, &sz[9]);                    /* r_ffn */
    ok &= agi_mul_size(L, BT * D, &sz[10]);               /* u */
    ok &= agi_mul_size(L, BT * Hd, &sz[11]);              /* gate */
    ok &= agi_mul_size(L, BT * Hd, &sz[12]);              /* up */
    ok &= agi_mul_size(L, BT * Hd, &sz[13]);              /* n */
    ok &= agi_mul_size(L, BT * D, &sz[14]);               /* mlp_out */
    sz[15] = BT;                                          /* r_fin */
    ok &= agi_mul_size(BT, D, &sz[16]);                   /* xfin */
    ok &= want_logits ? agi_mul_size(BT, V, &sz[17]) : (sz[17] = 0, 1);
    for (int i = 0; i < 18 && ok; i++) ok &= agi_add_size(total, sz[i], &total);
    if (!ok) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "activation buffers for %d x %d positions overflow size_t", B, T);
    a->mem = agi_calloc(total, sizeof(float), func);
    a->tokens = agi_calloc(BT, sizeof(int32_t), func);
    if (!a->mem || !a->tokens) {
        agi_acts_free(a);
        return AG_ERR_OUT_OF_MEMORY;
    }
    a->mem_floats = total;
    float *p = a->mem;
    float **dst[18] = {&a->x, &a->xmid, &a->r_att, &a->a, &a->q, &a->k, &a->v, &a->att, &a->heads,
                       &a->r_ffn, &a->u, &a->gate, &a->up, &a->n, &a->mlp_out, &a->r_fin, &a->xfin, &a->logits};
    for (int i = 0; i < 18; i++) {
        *dst[i] = sz[i] ? p : NULL;
        p += sz[i];
    }
    return AG_OK;
}

void agi_acts_free(agi_acts *a) {
    free(a->mem);
    free(a->tokens);
    memset(a, 0, sizeof *a);
}

float *agi_acts_att(const agi_acts *a, const agi_config *c, int l, int b, int h) {
    size_t per_head = (size_t)a->att_rows * (size_t)a->T;
    size_t layer = a->keep_att ? (size_t)l : 0;
    return a->att + ((layer * (size_t)a->B + (size_t)b) * (size_t)c->n_heads + (size_t)h) * per_head;
}
