/* Transcoders (DESIGN §1.6, issue #6): per-layer (PLT) and cross-layer (CLT) sets that read
 * the MLP input of each block and write its MLP output.
 *
 *   tc_core.c    the handle, initialisation, encode / decode, trace helpers, getters
 *   tc_io.c      safetensors in the circuit-tracer layout (read F32/F16/BF16, write F32),
 *                config.yaml, labels.json
 *   tc_corpus.c  token windows from a UTF-8 text file or sampled from the model (seeded),
 *                and batched activation collection (forward passes over B windows at once)
 *   tc_train.c   training (Adam, sparsity penalty or TopK, dead features, schedule, checkpoints)
 *   tc_eval.c    evaluation (FVU, L0, dead fraction, replacement-model loss) and feature labels
 *
 * Math of layer l (x = the read-point input of block l: u = RMSNorm(x_mid)·g_ffn, or x_mid):
 *   pre_l  = x · W_enc_l^T + b_enc_l                        [n][F]
 *   a_l    = act(pre_l)      ReLU max(0, pre); JumpReLU pre·[pre > θ]; TopK: the k largest
 *                            of pre kept (then ReLU), the rest 0
 *   recon_l = Σ_{l' ≤ l, l - l' < n_out(l')} a_l' · W_dec_l'[:, l - l', :] + b_dec_l + W_skip_l x
 * n_out(l) = 1 for a PLT, L - l for a CLT (a layer-l feature writes to MLP outputs l..L-1).
 * Storage (float32, row-major): W_enc [F][D], b_enc [F], threshold [F] (JumpReLU), W_dec
 * [F][n_out][D], b_dec [D], W_skip [D][D] as y = W_skip x (PLT orientation; a CLT file stores
 * the transpose, converted on read and write). */
#ifndef AGI_TRANSCODER_H
#define AGI_TRANSCODER_H

#include <stddef.h>
#include <stdint.h>

#include "attrgraph.h"
#include "engine/acts.h"
#include "io/blob.h"

typedef struct agi_tc_layer {
    float *W_enc;     /* [F][D] */
    float *b_enc;     /* [F] */
    float *threshold; /* [F] (JumpReLU) or NULL */
    float *W_dec;     /* [F][n_out][D] */
    float *b_dec;     /* [D] */
    float *W_skip;    /* [D][D] (y = W_skip x) or NULL */
} agi_tc_layer;

/* Feature statistics and labels (tc_eval.c), one per feature of every layer. */
typedef struct agi_tc_labels {
    char **text;      /* [L*F] short label (clerp), never NULL entries once built */
    double *density;  /* [L*F] fraction of tokens on which the feature is active */
    char *json;       /* the whole labels.json text as written / read (owned) */
} agi_tc_labels;

struct ag_transcoder {
    int32_t kind;       /* AG_TRANSCODER_PER_LAYER / _CROSS_LAYER */
    int32_t activation; /* AG_ACTIVATION_* */
    int32_t read_point; /* AG_READ_* */
    int L, D, F, k;     /* k: TopK */
    int has_skip;
    agi_tc_layer *layers; /* [L] */
    agi_tc_labels labels; /* text == NULL: none */
    char *model_name;     /* recorded model (metadata; may be NULL) */
    /* The model the set was loaded (ag_transcoder_load with a model) or trained for: its
     * agi_model_fingerprint and name (for messages). has_model = 0: not recorded (loaded without
     * a model, or built in memory), and only shapes can be checked. ag_transcoder_save writes
     * model_fp to the files (AGI_TC_FP_KEY); ag_transcoder_load with a model refuses files whose
     * fingerprint is another model's. */
    int has_model;
    uint64_t model_fp;
    char *model_for;
    /* Loaded without a model from files that record a fingerprint: that fingerprint, kept only
     * so that ag_transcoder_save writes it again (not checked where the set is used). */
    int has_file_fp;
    uint64_t file_fp;
};

/* The fingerprint's key in every layer file's safetensors __metadata__ (and in config.yaml,
 * without the prefix): 16 lower-case hex digits. */
#define AGI_TC_FP_KEY "attrgraph.model_fingerprint"
#define AGI_TC_FP_YAML_KEY "model_fingerprint"

/* Record `m` as the model the set was loaded or trained for (fingerprint and name). */
ag_status agi_tc_record_model(ag_transcoder *tc, const ag_model *m, const char *func);

/* When the set records the model it was loaded or trained for (has_model), that model's
 * fingerprint must equal m's; else AG_ERR_INVALID_ARGUMENT naming `what` (e.g.
 * "opts->transcoders"), both models and both fingerprints. Shapes are not checked here. */
ag_status agi_tc_check_fingerprint(const ag_transcoder *tc, const ag_model *m, const char *func, const char *what);

/* A set that fits the model (layer count, width) and passes agi_tc_check_fingerprint; else
 * AG_ERR_INVALID_ARGUMENT naming `what` (e.g. "opts->transcoder", "the set"). */
ag_status agi_tc_check_model(const ag_transcoder *tc, const ag_model *m, const char *func, const char *what);

/* 1 when position 0 of `tokens` holds BOS (no transcoder features there, as in graphs). */
int agi_tc_bos0(const ag_model *m, const int32_t *tokens);

static inline int agi_tc_n_out(const ag_transcoder *tc, int l) {
    return tc->kind == AG_TRANSCODER_CROSS_LAYER ? tc->L - l : 1;
}

/* Allocate an empty (zeroed) set; threshold / W_skip allocated when requested. */
ag_status agi_tc_alloc(ag_transcoder **out, int32_t kind, int32_t activation, int32_t read_point, int L, int D, int F,
                       int k, int has_threshold, int has_skip, const char *func);

/* pre[n][F] = x W_enc^T + b_enc and a[n][F] = act(pre) (pre may equal NULL: scratch inside a,
 * i.e. a is computed in place). */
void agi_tc_encode(const ag_transcoder *tc, int l, const float *x, int n, float *pre, float *a);
/* The activation function applied to pre[n][F] into a (may alias pre). */
void agi_tc_activate(const ag_transcoder *tc, int l, const float *pre, int n, float *a);
/* out[n][D] (+)= reconstruction of MLP output `l` from acts: acts[l'] = activations of layer
 * l' ([n][F] each, NULL entries for layers not needed) and the read-point input x of layer l
 * (skip; may be NULL when there is no skip). beta 0 overwrites, 1 adds. */
void agi_tc_decode(const ag_transcoder *tc, int l, const float *const *acts, const float *x, int n, float *out,
                   float beta);

/* Read-point input of block l for acts with rows [B*T][D]. */
const float *agi_tc_input(const ag_transcoder *tc, const agi_acts *a, int l);

/* ---- safetensors (tc_io.c) ----------------------------------------------------------------- */

typedef struct agi_st_tensor {
    char *name;
    int dtype; /* AGI_ST_* */
    int ndim;
    int64_t shape[4];
    const uint8_t *data; /* into the file's bytes */
    size_t nbytes;
} agi_st_tensor;

enum { AGI_ST_F32 = 1, AGI_ST_F16 = 2, AGI_ST_BF16 = 3, AGI_ST_F64 = 4, AGI_ST_I64 = 5, AGI_ST_I32 = 6 };

typedef struct agi_st_file {
    char *path;
    agi_blob blob; /* the file's bytes (mapped) when read from a file */
    agi_st_tensor *t;
    int n;
    char **meta_keys, **meta_vals; /* __metadata__ */
    int n_meta;
} agi_st_file;

/* Parse a safetensors file held in memory (the bytes are borrowed: they must outlive f).
 * Every problem is AG_ERR_FORMAT naming the file and field (AG_ERR_UNSUPPORTED for a known
 * safetensors dtype attrgraph does not convert). */
ag_status agi_st_parse(agi_st_file *f, const char *path, const uint8_t *data, size_t size, const char *func);
ag_status agi_st_read(agi_st_file *f, const char *path, const char *func);
void agi_st_free(agi_st_file *f);
const agi_st_tensor *agi_st_find(const agi_st_file *f, const char *name);
const char *agi_st_meta(const agi_st_file *f, const char *key);
/* Convert a tensor to float32 (F32/F16/BF16/F64/I64/I32) into dst (numel floats). */
void agi_st_to_f32(const agi_st_tensor *t, float *dst);
int64_t agi_st_numel(const agi_st_tensor *t);

/* Writer: tensors (float32 only) + string metadata, in the order given. */
typedef struct agi_st_out {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} agi_st_out;
ag_status agi_st_write(const char *path, const agi_st_out *t, int n, const char *const *meta_kv, int n_meta,
                       const char *func);

/* Half-precision helpers (exposed for tests and the writer of test fixtures). */
float agi_f16_to_f32(uint16_t h);
float agi_bf16_to_f32(uint16_t h);
uint16_t agi_f32_to_f16(float f);
uint16_t agi_f32_to_bf16(float f);

/* ---- corpus and activation collection (tc_corpus.c) --------------------------------------- */

typedef struct agi_tc_corpus {
    int32_t *tok; /* [n_seq][ctx], every window starts with BOS */
    int n_seq, ctx;
    int32_t *len; /* [n_seq] valid tokens of each window (the rest is padding, never scored) */
} agi_tc_corpus;

/* Windows of `ctx` tokens: from the UTF-8 text file `path` (documents = blank-line separated
 * paragraphs, each starting with BOS, packed into windows), or, when path is NULL, stories
 * sampled from the model (from BOS, temperature, seed) until n_tokens tokens exist. */
ag_status agi_tc_corpus_make(agi_tc_corpus *c, const ag_model *m, const char *path, int64_t n_tokens, int ctx,
                             float temperature, uint64_t seed, const char *func);
void agi_tc_corpus_free(agi_tc_corpus *c);

/* The model's forward over windows [s0, s0+B) of a corpus into acts (B sequences of ctx). */
void agi_tc_forward_windows(const ag_model *m, agi_acts *a, const agi_tc_corpus *c, int s0, int B);

/* A tiny deterministic RNG (splitmix64). */
static inline uint64_t agi_tc_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double agi_tc_uniform(uint64_t *s) { return (double)(agi_tc_rng(s) >> 11) * (1.0 / 9007199254740992.0); }
double agi_tc_normal(uint64_t *s);

/* ---- training core (tc_train.c), also used by tests on planted data ------------------------- */

/* A batch source: fill x[n][D] (inputs) and y[n][D] (targets) for every layer l in [0, L):
 * x + l*n*D and y + l*n*D. Return 0, or a negative ag_status to stop. */
typedef int (*agi_tc_source_fn)(void *user, float *x, float *y, int n);

ag_status agi_tc_train_core(ag_transcoder *tc, agi_tc_source_fn src, void *user, const ag_transcoder_train_options *o,
                            const char *func);

#endif
