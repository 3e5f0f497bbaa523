/* The Llama forward pass over activation buffers, split at the sites that methods read
 * and override (so a method can replace a site's values and run the rest):
 *
 *   embed -> for each block l: attn_heads -> attn_out -> mlp_neurons -> mlp_out -> final
 *
 * Every stage processes positions [p0, p1) of all B sequences; each matmul is one GEMM
 * over those rows. p0 > 0 (incremental decoding with the KV cache in acts) needs B = 1;
 * with B > 1 the range must be the whole [0, T). */
#ifndef AGI_FORWARD_H
#define AGI_FORWARD_H

#include "engine/acts.h"

void agi_forward_embed(const ag_model *m, agi_acts *a, int p0, int p1);          /* x[0] = E[tok] */
void agi_forward_attn_heads(const ag_model *m, agi_acts *a, int l, int p0, int p1); /* r_att,a,q,k,v,att,heads */
void agi_forward_attn_out(const ag_model *m, agi_acts *a, int l, int p0, int p1);   /* xmid = x + Wo heads */
void agi_forward_mlp_neurons(const ag_model *m, agi_acts *a, int l, int p0, int p1); /* r_ffn,u,gate,up,n */
void agi_forward_mlp_out(const ag_model *m, agi_acts *a, int l, int p0, int p1);   /* mlp_out, x[l+1] */
void agi_forward_final(const ag_model *m, agi_acts *a, int p0, int p1);            /* r_fin, xfin, logits */

/* Blocks [l0, L) and the final norm/logits, from x[l0] already in place. */
void agi_forward_from(const ag_model *m, agi_acts *a, int l0, int p0, int p1);
/* The whole pass from a->tokens. */
void agi_forward(const ag_model *m, agi_acts *a, int p0, int p1);

/* First row and row count of positions [p0, p1) (see the B = 1 rule above). */
void agi_forward_rows(const agi_acts *a, int p0, int p1, size_t *r0, int *n_rows);

#endif
