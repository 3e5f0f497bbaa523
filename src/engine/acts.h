/* Activation buffers of B sequences of T positions, owned in one place (llm.c style).
 * Rows are sequence-major: row (b*T + p). Per-layer arrays are [L][B*T][width].
 * Attention patterns are either kept for every layer and query row ([L][B][H][T][T]) or,
 * for generation, one layer's rows of the current chunk ([B][H][att_rows][T]). */
#ifndef AGI_ACTS_H
#define AGI_ACTS_H

#include <stddef.h>
#include "model/model.h"

typedef struct agi_acts {
    int B, T;         /* sequences, positions per sequence */
    int keep_att;     /* 1: att for every layer and query row */
    int att_rows;     /* stored query rows per (layer, b, h): T when kept */
    int want_logits;  /* 1: logits for every row */
    int32_t *tokens;  /* [B*T] */
    float *x;         /* [L+1][BT][D] input residual of each block; x[L] = final residual */
    float *xmid;      /* [L][BT][D]   after attention */
    float *r_att;     /* [L][BT] */
    float *a;         /* [L][BT][D]   RMSNorm(x)*g_att */
    float *q;         /* [L][BT][D]   after RoPE */
    float *k;         /* [L][BT][KV]  after RoPE */
    float *v;         /* [L][BT][KV] */
    float *att;       /* see above */
    float *heads;     /* [L][BT][D]   per-head outputs before W_O */
    float *r_ffn;     /* [L][BT] */
    float *u;         /* [L][BT][D]   RMSNorm(xmid)*g_ffn */
    float *gate;      /* [L][BT][Hd]  W1 u */
    float *up;        /* [L][BT][Hd]  W3 u */
    float *n;         /* [L][BT][Hd]  silu(gate)*up */
    float *mlp_out;   /* [L][BT][D]   W2 n */
    float *r_fin;     /* [BT] */
    float *xfin;      /* [BT][D] RMSNorm(x_L)*g_final */
    float *logits;    /* [BT][V] when want_logits, else NULL */
    float *mem;       /* one allocation backs every float array */
    size_t mem_floats;
} agi_acts;

/* Allocate for B sequences of T positions. att_rows = T keeps every pattern; a smaller
 * value stores one layer's patterns for chunks of at most att_rows query rows. */
ag_status agi_acts_alloc(agi_acts *a, const agi_config *c, int B, int T, int att_rows,
                         int want_logits, const char *func);
void agi_acts_free(agi_acts *a);

/* Pointers to layer l's row 0 of each per-layer array. */
#define AGI_LROW(a, arr, l, width) ((a)->arr + (size_t)(l) * (size_t)(a)->B * (size_t)(a)->T * (size_t)(width))
/* Attention pattern of (layer l, sequence b, head h): att_rows x T matrix. */
float *agi_acts_att(const agi_acts *a, const agi_config *c, int l, int b, int h);

#endif
