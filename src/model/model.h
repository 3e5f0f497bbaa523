/* The in-memory model: configuration, weight pointers (into the mapped file, or into
 * converted float32 copies owned by the model) and the attached tokenizer.
 * Weight layout is llama2.c's: matrices [out][in], row-major, so y = W x. */
#ifndef AGI_MODEL_H
#define AGI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "attrgraph.h"
#include "io/blob.h"
#include "io/tokenizer.h"

typedef struct agi_config {
    int dim;        /* D */
    int hidden_dim; /* Hd */
    int n_layers;   /* L */
    int n_heads;    /* H */
    int n_kv_heads;
    int head_dim;   /* D / H */
    int kv_dim;     /* n_kv_heads * head_dim */
    int vocab_size; /* V */
    int seq_len;
    float rms_eps;
    float rope_theta;
} agi_config;

/* Per-layer weight pointers (llama2.c names, GGUF names in comments). */
typedef struct agi_layer_weights {
    const float *rms_att; /* [D]        attn_norm   */
    const float *wq;      /* [D][D]     attn_q      */
    const float *wk;      /* [KV][D]    attn_k      */
    const float *wv;      /* [KV][D]    attn_v      */
    const float *wo;      /* [D][D]     attn_output */
    const float *rms_ffn; /* [D]        ffn_norm    */
    const float *w1;      /* [Hd][D]    ffn_gate    */
    const float *w2;      /* [D][Hd]    ffn_down    */
    const float *w3;      /* [Hd][D]    ffn_up      */
} agi_layer_weights;

typedef struct agi_weights {
    const float *token_embedding; /* [V][D] */
    agi_layer_weights *layers;    /* [L] */
    const float *rms_final;       /* [D] */
    const float *wcls;            /* [V][D] (== token_embedding when shared) */
    int shared_classifier;
} agi_weights;

struct ag_model {
    char *name;          /* file path or memory name */
    int32_t format;      /* AG_FORMAT_* */
    agi_config cfg;
    agi_weights w;
    agi_blob blob;       /* the file's bytes (mapped, borrowed or copied) */
    float **owned;       /* float32 tensors converted from other dtypes */
    size_t n_owned;
    agi_tokenizer *tok;  /* NULL when no tokenizer is attached */
    int32_t bos_id, eos_id;
};

/* Validate a configuration read from file `file`; fills head_dim/kv_dim. */
ag_status agi_config_validate(agi_config *cfg, const char *func, const char *file);

/* Format readers: fill model->cfg, model->w (pointing into model->blob) and, for GGUF,
 * model->tok. */
ag_status agi_llama2c_read(ag_model *model, const ag_model_options *opts);
ag_status agi_gguf_read(ag_model *model, const ag_model_options *opts);

/* Keep a float32 array owned by the model (freed with it). Takes ownership of `p`. */
ag_status agi_model_own(ag_model *model, float *p);

/* A 64-bit fingerprint of what the model computes: its shape (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size) and, of every weight tensor (embedding, per-layer norms and
 * matrices, final norm, classifier), up to AGI_FINGERPRINT_SAMPLES evenly spaced values (the
 * first and the last included; every value of a smaller tensor), hashed by their bit patterns.
 * Independent of the file format and of where the weights live: the same weights loaded twice,
 * or from a .bin and from its F32 GGUF conversion, give the same fingerprint; models trained
 * apart differ in (almost) every weight and so in the fingerprint. Touches at most
 * (9 L + 3) x AGI_FINGERPRINT_SAMPLES floats; no allocation; thread-safe. Used to tell
 * whether a transcoder set was loaded for a given model (graph/intervene_tc.c). */
#define AGI_FINGERPRINT_SAMPLES 1024
uint64_t agi_model_fingerprint(const ag_model *model);

#endif
