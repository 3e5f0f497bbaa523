/* The attribution graph's internal representation and the pieces of the builder.
 *
 *   targets.c   logit targets (default salient choice, explicit tokens, differences, directions)
 *   basis.c     the unit basis interface (neurons now; transcoders plug in later)
 *   build.c     ranking pass (greedy expansion) and the exact rows, into sparse storage
 *   prune.c     influence series, thresholds by selection, pruning, scores
 *   query.c     the public getters, node ids, edge queries, lazy expansion
 *
 * Node order: [units (sorted by layer, pos, index) | errors (l*T + p) | embeddings (p) |
 * logits (k)]. Edges are stored once, as CSR rows over targets (columns = source nodes,
 * sorted ascending, exact zeros dropped), plus a CSC index for outgoing-edge queries. */
#ifndef AGI_GRAPH_H
#define AGI_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/frozen.h"
#include "model/model.h"

/* ---- the unit basis --------------------------------------------------------------------
 * A basis says which units exist at (layer, position), what each writes into the MLP output
 * as a source (value * decoder vector) and what it reads as a target (a direction at x^mid
 * of its layer, and its value). The neuron basis is exact (no reconstruction error); a
 * transcoder basis adds the reconstruction error to the error nodes. */
typedef struct agi_basis {
    const char *name; /* "neurons" */
    int32_t id;       /* AG_BASIS_* */
    /* Decoder matrix of layer l as y = dec · x: [D][ld] with column i = unit i's decoder. */
    const float *(*decoder)(const struct agi_basis *b, const ag_trace *tr, int l, int *ld);
    /* Activations of layer l: [T][n_per_pos] (the source scale; the target's value). */
    const float *(*acts)(const struct agi_basis *b, const ag_trace *tr, int l);
    /* Read direction of unit i of layer l at position p (width D, read at x_l^mid[p]). */
    void (*read_dir)(const struct agi_basis *b, const ag_trace *tr, int l, int p, int i, float *d);
    /* Reconstruction error of (l, p) beyond the units (width D), or NULL when exactly zero. */
    const float *(*recon_error)(const struct agi_basis *b, const ag_trace *tr, int l, int p);
    /* ---- optional (zero / NULL for the neuron basis; transcoders, issue #6) ---- */
    int32_t n_units;     /* units per (layer, position); 0: hidden_dim */
    int32_t sparse;      /* 1: only units with a nonzero activation can be nodes */
    int32_t cross_layer; /* 1: units of layer l write into MLP outputs l .. l + n_out(l) - 1 */
    int (*n_out)(const struct agi_basis *b, int l);
    /* Decoder of layer-l units into MLP output l + o (o >= 1), laid out as decoder(). */
    const float *(*cross_decoder)(const struct agi_basis *b, const ag_trace *tr, int l, int o, int *ld);
    /* A target unit's value (default: its activation). */
    double (*target_value)(const struct agi_basis *b, const ag_trace *tr, int l, int p, int i);
    /* A constant vector written into MLP output (l, p) (biases, skip terms), or NULL: no node;
     * its contribution to each target is kept as the target's constant (ag_graph_node_constant). */
    const float *(*constant)(const struct agi_basis *b, const ag_trace *tr, int l, int p);
    /* Label of unit i of layer l ("" when none), owned by the basis. */
    const char *(*label)(const struct agi_basis *b, int l, int i);
    /* Frees a per-graph instance (NULL for the static bases). */
    void (*release)(struct agi_basis *b);
} agi_basis;

const agi_basis *agi_basis_get(int32_t id);
/* A transcoder basis for one trace (basis_transcoder.c); freed by its release function. */
ag_status agi_basis_transcoder_create(agi_basis **out, const ag_transcoder *tc, const ag_trace *tr, const char *func);
static inline int agi_basis_n_out(const agi_basis *b, int l) { return b->n_out ? b->n_out(b, l) : 1; }

/* ---- logit targets ------------------------------------------------------------------- */
typedef struct agi_logit_target {
    int32_t kind;     /* AG_GRAPH_TARGET_* */
    int32_t token;    /* vocabulary id or -1 */
    int32_t token_b;  /* LOGIT_DIFF: the subtracted token; -1 otherwise */
    int32_t vid;      /* id in node ids: token, or vocab_size + k for virtual targets */
    double prob;      /* softmax probability of the token (0 for virtual) */
    double weight;    /* w in the influence */
    double value;     /* the target's value: w · xfin[last] */
    float *wvec;      /* [D] direction in the final norm's output space */
    char *label;      /* 'Output "tok" (p=0.123)' or the user's */
} agi_logit_target;

/* Resolve opts' targets (or the default salient set) for the trace. Fills *out (malloc'ed
 * array, free with agi_targets_free) and *n. */
ag_status agi_targets_resolve(const ag_trace *tr, const ag_graph_options *o, agi_logit_target **out, int *n,
                              const char *func);
void agi_targets_free(agi_logit_target *t, int n);

/* ---- the graph -------------------------------------------------------------------------- */
struct ag_graph {
    const ag_trace *trace; /* borrowed: only ag_graph_expand_node reads it again */
    const agi_basis *basis;
    char *model_name;
    int32_t method;
    int32_t ig_steps;      /* AG_METHOD_IG: midpoint nodes */
    int L, T, D, V, n_per_pos;
    int32_t *tokens;       /* [T] */
    char **pieces;         /* [T] decoded prompt pieces */
    double node_threshold, edge_threshold, logit_prob;
    int32_t max_logits, max_feature_nodes, batch_size;

    int64_t n_units, n_errors, n_embed, n_logits, n_nodes;
    int64_t n_candidates;
    int32_t *unit_l, *unit_p, *unit_i; /* [n_units] */
    float *unit_act;                   /* [n_units] */
    agi_logit_target *logits;          /* [n_logits] */
    int64_t *lp_start;     /* [L*T + 1] unit nodes of (l, p) are [lp_start[l*T+p], lp_start[l*T+p+1]) */
    float *vs;             /* [n_units][D] each unit's written vector act * decoder column */
    float *err;            /* [L*T][D] error vectors (folded units + reconstruction error) */
    uint8_t *has_err;      /* [L*T] 1 where the error vector is not exactly zero */

    /* CSR rows over targets */
    int64_t *row_ptr;      /* [n_nodes + 1] */
    int32_t *col;          /* [nnz] source node */
    float *w;              /* [nnz] A[row, col] */
    int64_t nnz;
    /* CSC index: the edges out of each source */
    int64_t *col_ptr;      /* [n_nodes + 1] */
    int64_t *col_edge;     /* [nnz] edge position in the CSR arrays */
    int32_t *col_row;      /* [nnz] its target node */

    double *value;         /* [n_nodes] row targets' values, NAN otherwise */
    double *constant;      /* [n_nodes] contributions of the basis's constants to each row target */
    double *infl;          /* [n_nodes] I (unpruned) */
    double *cum;           /* [n_nodes] cumulative influence rank fraction */
    uint8_t *node_kept;    /* [n_nodes] */
    uint8_t *edge_kept;    /* [nnz] */
    int64_t n_kept_nodes, n_kept_edges;

    double replacement, completeness, completeness_units;
    double t_rank, t_rows, t_prune, t_total, flops;
    int64_t rows_computed;
};

static inline int64_t agi_g_error_node(const ag_graph *g, int l, int p) { return g->n_units + (int64_t)l * g->T + p; }
static inline int64_t agi_g_embed_node(const ag_graph *g, int p) { return g->n_units + g->n_errors + p; }
static inline int64_t agi_g_logit_node(const ag_graph *g, int k) { return g->n_units + g->n_errors + g->n_embed + k; }

/* Node kind of index i (AG_NODE_*). */
int agi_g_kind(const ag_graph *g, int64_t i);
/* Index of unit (l, p, idx) among the unit nodes, or -1. */
int64_t agi_g_find_unit(const ag_graph *g, int l, int p, int idx);

/* ---- pruning and scores (prune.c) ----------------------------------------------------- */

/* Influence I = w·(Ā + Ā² + ...) over the CSR rows, Ā = |A| row-normalised over the edges
 * with mask (NULL: all) and nodes with node_mask (NULL: all). w has n entries. Returns 0, or
 * -1 when the series does not terminate within n + 1 terms (not a DAG). */
int agi_influence(int64_t n, const int64_t *row_ptr, const int32_t *col, const float *w, const uint8_t *edge_mask,
                  const double *weights, double *I);
/* circuit-tracer's find_threshold by selection (weighted quickselect, O(n) expected): the
 * score s_k of the first k (in descending order) whose cumulative share reaches `threshold`.
 * Only positive scores count; threshold >= 1: the smallest positive score. Returns +INF when
 * no score is positive. `scratch` holds n doubles. */
double agi_find_threshold(const double *scores, int64_t n, double threshold, double *scratch);
/* Prune g (fills infl, cum, node_kept, edge_kept, counts and scores). */
ag_status agi_graph_prune(ag_graph *g, const char *func);

/* ---- building (build.c) --------------------------------------------------------------- */
/* The `gradient` edge method's reverse pass (gradient_edges.c): the real model's Jacobian with
 * every MLP output held fixed, same callback contract as agi_frozen_vjp (targets sorted by
 * layer, highest first; t_idx: unit index, or logit number for layer-L targets). */
ag_status agi_gradient_vjp(const ag_graph *g, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                           const int *t_idx, agi_frozen_cb cb, void *user, double *flops, const char *func);
/* The `ig` edge method (gradient_edges.c): the same Jacobian averaged over the inputs
 * alpha · embeddings, alpha on g->ig_steps midpoint nodes (the sources' vectors stay the
 * traced ones: the path starts at zero, where every activation is zero). */
ag_status agi_ig_vjp(const ag_graph *g, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                     const int *t_idx, agi_frozen_cb cb, void *user, double *flops, const char *func);
ag_status agi_graph_build(ag_graph *g, const ag_trace *tr, const ag_graph_options *o, const char *func);

/* The exact incoming row of the unit (l, p, i) into caller arrays (src nodes, weights);
 * *n_out = count. Sources are g's nodes. Used by ag_graph_expand_node. */
ag_status agi_graph_expand_row(const ag_graph *g, int l, int p, int i, int32_t **cols, float **ws, int64_t *n_out,
                               double *value, const char *func);

#endif
