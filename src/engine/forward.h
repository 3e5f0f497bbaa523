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

/* ---- controlled forward: freezing and edits (interventions, DESIGN §1.2 and §1.5) ----------
 *
 * The same stages, consulting a control descriptor. With ctl == NULL every *_ctl stage is
 * exactly the plain stage above (the plain stages are these with ctl == NULL).
 *
 * Freezing takes quantities from ctl->clean (a B = 1 forward of the same T positions with every
 * pattern kept, i.e. a trace's acts) instead of recomputing them:
 *   AGI_FREEZE_NORMS    r_att, r_ffn, r_fin            (the norm is then linear: x * r * g)
 *   AGI_FREEZE_ATTN     attention patterns P           (heads_h = P_h · v_h; q, k not computed)
 *   AGI_FREEZE_GATES    the SwiGLU factor silu(gate)   (n = silu(gate_clean) * (W3 u); W1 unused)
 *   AGI_FREEZE_MLP_OUT  every MLP output at its clean value plus the clamped units' changes
 *                       (clamped value - clean value) * W2[:, i]; n still holds the units'
 *                       values as targets (silu(gate_clean) * up), it is just not propagated.
 * AGI_FREEZE_LINEAR = the local replacement model; AGI_FREEZE_DIRECT = it with MLP outputs held.
 *
 * Delta runs (ctl->delta = 1, needs AGI_FREEZE_LINEAR): the run's buffers hold differences from
 * ctl->clean. With those freezes the model is affine and reproduces `clean` exactly at zero
 * change, so propagating differences with the same (linear) stages is exact and avoids the
 * cancellation of (clean + change) - clean in float32. Frozen arrays (r_*, att, gate, q, k) are
 * not written in a delta run; the embedding stage must not be used (start from x[l0] = 0).
 *
 * Edits (applied for positions in [pos_begin, pos_end) inside the stage's [p0, p1)):
 *   AGI_EDIT_CLAMP     unit n[layer][p][index] := mul * current + add, right after the unit is
 *                      computed (current = its value as computed in this run; mul = 0 gives a
 *                      fixed value). Units of block `layer`; applied in agi_forward_ctl_mlp_neurons.
 *   AGI_EDIT_ADD_RESID x[layer][p] += coef * vec (layer 0..L; applied at the start of
 *                      agi_forward_ctl_from when layer == l0, else at the end of mlp_out(layer-1)).
 *   AGI_EDIT_ADD_MID   xmid[layer][p] += coef * vec (end of agi_forward_ctl_attn_out).
 *   AGI_EDIT_CLAMP_FEATURE  a transcoder feature (layer = its encoder block, index = the
 *                      feature, mul/add as for AGI_EDIT_CLAMP): ignored by these stages, applied
 *                      by the MLP extension below (graph/intervene_tc.c).
 * In a delta run a clamp's mul/add still refer to full values (the stage converts), and added
 * vectors are added to the difference (they are changes already).
 * Edits and freezing need B = 1 (rows = positions). Clamps must not repeat a (layer, p, index).
 *
 * MLP extension (ctl->mlp, NULL = none; transcoder features): with ext->replace = 1 the MLP of
 * every block run is replaced: agi_forward_ctl_mlp_neurons computes only r_ffn and u (gate, up
 * and n keep whatever the buffers hold), and agi_forward_ctl_mlp_out lets ext->out write the
 * MLP output. With replace = 0 ext->out is called after the MLP output is computed (plain or
 * frozen) to add to it. Either way before the output joins the residual stream; `mo` is layer
 * l's mlp_out base (rows = positions), only rows [p0, p1) are touched. */
enum {
    AGI_FREEZE_NORMS = 1u << 0,
    AGI_FREEZE_ATTN = 1u << 1,
    AGI_FREEZE_GATES = 1u << 2,
    AGI_FREEZE_MLP_OUT = 1u << 3,
    AGI_FREEZE_LINEAR = AGI_FREEZE_NORMS | AGI_FREEZE_ATTN | AGI_FREEZE_GATES,
    AGI_FREEZE_DIRECT = AGI_FREEZE_LINEAR | AGI_FREEZE_MLP_OUT
};

enum { AGI_EDIT_CLAMP = 1, AGI_EDIT_ADD_RESID = 2, AGI_EDIT_ADD_MID = 3, AGI_EDIT_CLAMP_FEATURE = 4 };

typedef struct agi_edit {
    int kind;               /* AGI_EDIT_* */
    int layer;
    int pos_begin, pos_end; /* positions [pos_begin, pos_end) */
    int index;              /* clamp: unit index */
    float mul, add;         /* clamp: new = mul * current + add */
    float coef;             /* add: x += coef * vec */
    const float *vec;       /* add: D floats */
} agi_edit;

struct agi_fwd_ctl;
typedef struct agi_mlp_ext {
    int replace; /* 1: ext->out writes every MLP output; 0: it adds to the computed one */
    void (*out)(struct agi_mlp_ext *ext, const ag_model *m, agi_acts *a, const struct agi_fwd_ctl *ctl, int l, int p0,
                int p1, float *mo);
} agi_mlp_ext;

typedef struct agi_fwd_ctl {
    const agi_acts *clean;  /* frozen values; required when freeze != 0 or delta */
    unsigned freeze;        /* AGI_FREEZE_* */
    int delta;              /* 1: buffers hold differences from clean */
    const agi_edit *edits;
    int n_edits;
    agi_mlp_ext *mlp;       /* MLP extension or NULL */
} agi_fwd_ctl;

void agi_forward_ctl_attn_heads(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1);
void agi_forward_ctl_attn_out(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1);
void agi_forward_ctl_mlp_neurons(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1);
void agi_forward_ctl_mlp_out(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1);
void agi_forward_ctl_final(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int p0, int p1);
/* Residual edits of x[l0], then blocks [l0, L) and the final stage. */
void agi_forward_ctl_from(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l0, int p0, int p1);
/* Embedding (never in a delta run) and agi_forward_ctl_from(0). */
void agi_forward_ctl(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int p0, int p1);

#endif
