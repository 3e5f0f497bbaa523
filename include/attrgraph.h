/*
 * attrgraph.h — attribution graphs for transformer language models.
 *
 * The one public header of libattrgraph. It depends on <stddef.h> and <stdint.h> only and
 * compiles as C99 (pedantic), C11 and C++.
 *
 * Data flows one way: file -> model -> trace -> method -> graph -> export.
 *
 * CONVENTIONS
 *  - Every fallible function returns an ag_status: AG_OK (0) or a negative error. The values
 *    are pinned forever; callers must treat unknown negative values as a generic failure.
 *  - On failure, ag_last_error() returns text naming the function and the offending file,
 *    argument or field. Decide success from the status, never from the text.
 *  - Creators take `T **out` and set *out = NULL on failure. `*_free(NULL)` is a no-op.
 *  - Options structs begin with `size_t struct_size` and are filled by ag_*_options_init().
 *    They are never passed by value. A NULL options pointer means "all defaults". A caller
 *    compiled against an older, shorter struct keeps working: the library reads only
 *    struct_size bytes and defaults the rest. A larger struct must have a zero tail.
 *  - Memory returned by the library is freed only by the matching ag_*_free function.
 *
 * THREAD SAFETY
 *  - Distinct handles may be used from different threads at the same time.
 *  - ag_model is immutable after loading and may be shared by any number of threads.
 *  - ag_trace is used by one thread at a time (it owns scratch memory).
 *  - The error text is per thread (thread-local); it is the library's only global state.
 *  - OpenBLAS's thread pool is process-global. attrgraph never changes its thread count;
 *    set OPENBLAS_NUM_THREADS (or call openblas_set_num_threads yourself) to control it.
 *
 * LIFETIMES
 *  - A trace borrows its model: free every trace before freeing the model.
 *  - Pointers returned by getters stay valid until their owner is freed.
 */
#ifndef ATTRGRAPH_H
#define ATTRGRAPH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Export and deprecation macros                                                            */
/* ---------------------------------------------------------------------------------------- */

#ifndef AG_API
#  if defined(_WIN32)
#    if defined(AG_BUILDING_LIBRARY)
#      define AG_API __declspec(dllexport)
#    elif defined(AG_SHARED)
#      define AG_API __declspec(dllimport)
#    else
#      define AG_API
#    endif
#  elif defined(__GNUC__) || defined(__clang__)
#    define AG_API __attribute__((visibility("default")))
#  else
#    define AG_API
#  endif
#endif

#ifndef AG_DEPRECATED
#  if defined(AG_NO_DEPRECATION_WARNINGS)
#    define AG_DEPRECATED(msg)
#  elif defined(__GNUC__) || defined(__clang__)
#    define AG_DEPRECATED(msg) __attribute__((deprecated(msg)))
#  elif defined(_MSC_VER)
#    define AG_DEPRECATED(msg) __declspec(deprecated(msg))
#  else
#    define AG_DEPRECATED(msg)
#  endif
#endif

/* ---------------------------------------------------------------------------------------- */
/* Version                                                                                  */
/* ---------------------------------------------------------------------------------------- */

#define AG_VERSION_MAJOR 0
#define AG_VERSION_MINOR 1
#define AG_VERSION_PATCH 0
#define AG_VERSION_NUMBER (AG_VERSION_MAJOR * 10000 + AG_VERSION_MINOR * 100 + AG_VERSION_PATCH)
#define AG_VERSION_STRING "0.1.0"
/** Equal to the shared library's SOVERSION (libattrgraph.so.AG_ABI_VERSION). */
#define AG_ABI_VERSION 0
/** True when the header is at least version maj.min.patch. */
#define AG_VERSION_CHECK(maj, min, patch) \
    (AG_VERSION_NUMBER >= ((maj) * 10000 + (min) * 100 + (patch)))

/** The library's version as MAJOR*10000 + MINOR*100 + PATCH (the header's may differ).
 *  Thread-safe, never fails. */
AG_API unsigned ag_version_number(void);
/** The library's version as "MAJOR.MINOR.PATCH"; static storage. Thread-safe, never fails. */
AG_API const char *ag_version_string(void);

/* ---------------------------------------------------------------------------------------- */
/* Status codes and errors                                                                  */
/* ---------------------------------------------------------------------------------------- */

/** Status codes. Values are pinned forever; new codes are only appended. */
typedef enum ag_status {
    AG_OK = 0,
    AG_ERR_INVALID_ARGUMENT = -1, /**< a bad argument (NULL, out of range, NaN, ...) */
    AG_ERR_OUT_OF_MEMORY = -2,    /**< an allocation failed or a size overflowed */
    AG_ERR_IO = -3,               /**< a file could not be opened, read, mapped or written */
    AG_ERR_FORMAT = -4,           /**< a file is corrupt, truncated or inconsistent */
    AG_ERR_UNSUPPORTED = -5,      /**< a valid file or request this version does not handle */
    AG_ERR_STATE = -6,            /**< a call made in the wrong order or on the wrong object */
    AG_ERR_VERSION = -7,          /**< struct_size or ABI mismatch */
    AG_ERR_NOT_FOUND = -8,        /**< no such node, token, feature or key */
    AG_ERR_BUFFER_TOO_SMALL = -9, /**< the caller's buffer is too small; the size is reported */
    AG_ERR_CANCELLED = -10,       /**< a progress callback asked to stop */
    AG_ERR_NUMERIC = -11,         /**< a NaN or infinity appeared */
    AG_ERR_INTERNAL = -12         /**< a bug in attrgraph; please report it */
} ag_status;

/** Static English text for a status code ("unknown status" for unknown values).
 *  Thread-safe, never fails. */
AG_API const char *ag_status_string(ag_status status);

/** The message of the last failed ag_* call on the calling thread, e.g.
 *  "ag_model_load: model.bin: header field n_layers = -3 must be positive".
 *  Owned by the library; valid until the next ag_* call on this thread. Empty string if
 *  no call on this thread has failed. Thread-local, never fails. */
AG_API const char *ag_last_error(void);

/** Free memory that an ag_* function documents as "free with ag_free". NULL is a no-op. */
AG_API void ag_free(void *ptr);

/* ---------------------------------------------------------------------------------------- */
/* Model                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/** Loaded weights, configuration and (optionally) a tokenizer. Immutable; thread-shareable. */
typedef struct ag_model ag_model;

/** File formats (ag_model_info.format). */
enum {
    AG_FORMAT_LLAMA2C = 1, /**< llama2.c legacy float32 checkpoint (.bin) */
    AG_FORMAT_GGUF = 2     /**< GGUF v3, F32/F16 tensors */
};

/** Architectures (ag_model_info.arch). */
enum { AG_ARCH_LLAMA = 1 };

/** Options for ag_model_load / ag_model_load_memory. Fill with ag_model_options_init. */
typedef struct ag_model_options {
    size_t struct_size;
    /** Path of a llama2.c tokenizer .bin to attach, or NULL. A GGUF file's own vocabulary
     *  is used when this is NULL; when both exist this one wins. Default NULL. */
    const char *tokenizer_path;
    /** RMSNorm epsilon for llama2.c files, which do not store it. Default 1e-5. GGUF files
     *  use their own metadata. */
    float rms_eps;
    /** RoPE base frequency for llama2.c files. Default 10000. */
    float rope_theta;
} ag_model_options;

/** Fill `opts` with defaults. `struct_size` is sizeof(*opts) as the caller compiled it.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). */
AG_API ag_status ag_model_options_init(ag_model_options *opts, size_t struct_size);
#define AG_MODEL_OPTIONS_INIT(o) ag_model_options_init(&(o), sizeof(o))

/** Load a model from a llama2.c .bin or a GGUF file (detected by content). The file is
 *  mapped read-only; float32 weights are used in place (no copy), float16 ones are
 *  converted once into memory owned by the model.
 *  Every header field, tensor shape, offset and size is validated against the file length.
 *  Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_IO (open/map), AG_ERR_FORMAT (corrupt file,
 *  message names the file and field), AG_ERR_UNSUPPORTED (architecture, dtype, version),
 *  AG_ERR_OUT_OF_MEMORY. *out is NULL on failure. Thread-safe. */
AG_API ag_status ag_model_load(ag_model **out, const char *path, const ag_model_options *opts);

/** Load a model from bytes in memory (same formats as ag_model_load). The bytes are
 *  borrowed when `copy` is 0 (they must outlive the model) and copied when it is 1.
 *  `name` is used in messages and metadata (may be NULL). Thread-safe. */
AG_API ag_status ag_model_load_memory(ag_model **out, const void *data, size_t size, int32_t copy,
                                      const char *name, const ag_model_options *opts);

/** Free a model and unmap its file. NULL is a no-op. Every trace of the model must have
 *  been freed before. */
AG_API void ag_model_free(ag_model *model);

/** Shapes and facts about a loaded model. The caller sets struct_size = sizeof(info). */
typedef struct ag_model_info {
    size_t struct_size;
    int32_t format;        /**< AG_FORMAT_* */
    int32_t arch;          /**< AG_ARCH_* */
    int32_t dim;           /**< residual width D */
    int32_t hidden_dim;    /**< MLP width (neurons per layer) */
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;
    int32_t vocab_size;
    int32_t seq_len;       /**< maximum context */
    int32_t shared_classifier; /**< 1 when the classifier is the token embedding */
    int32_t has_tokenizer; /**< 1 when a tokenizer is attached */
    int64_t n_params;      /**< weights only; a shared classifier counted once */
    float rms_eps;
    float rope_theta;
    int32_t bos_id;        /**< -1 when unknown */
    int32_t eos_id;        /**< -1 when unknown */
} ag_model_info;

/** Fill `info` (caller sets info->struct_size). Errors: AG_ERR_INVALID_ARGUMENT,
 *  AG_ERR_VERSION. Thread-safe. */
AG_API ag_status ag_model_get_info(const ag_model *model, ag_model_info *info);

/** The name of the model's file (or the memory name); owned by the model. */
AG_API const char *ag_model_name(const ag_model *model);

/* ---- tokenizer (attached to the model) ----------------------------------------------- */

/** Encode UTF-8 text with llama2.c's semantics: a dummy-prefix space when the text is
 *  non-empty, greedy merges by score, byte fallback <0xNN>, and BOS first when `add_bos`.
 *  Writes at most `cap` ids to `tokens` and the count to *n_out. When `cap` is too small
 *  returns AG_ERR_BUFFER_TOO_SMALL with *n_out = the count needed (tokens may be NULL
 *  with cap 0 to ask for the size). Errors: AG_ERR_STATE (no tokenizer attached),
 *  AG_ERR_INVALID_ARGUMENT, AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_tokenize(const ag_model *model, const char *text, int32_t add_bos,
                             int32_t *tokens, size_t cap, size_t *n_out);

/** The text of token `token` as it appears after token `prev` (llama2.c semantics: a
 *  piece after BOS loses its leading space, <0xNN> becomes the byte). Writes a
 *  NUL-terminated string into buf (cap bytes); *n_out (may be NULL) gets the length
 *  without the NUL. AG_ERR_BUFFER_TOO_SMALL when it does not fit (*n_out = length
 *  needed). Pass prev = -1 for "no previous token". Thread-safe. */
AG_API ag_status ag_token_decode(const ag_model *model, int32_t prev, int32_t token, char *buf,
                                 size_t cap, size_t *n_out);

/** The raw vocabulary piece of `token` (no post-processing; sentencepiece's U+2581 shown
 *  as a space) and its merge score. Borrowed pointer, owned by the model. Thread-safe. */
AG_API ag_status ag_token_piece(const ag_model *model, int32_t token, const char **piece,
                                float *score);

/* ---------------------------------------------------------------------------------------- */
/* Trace: one forward pass over a prompt, with everything the methods need cached          */
/* ---------------------------------------------------------------------------------------- */

/** One prompt's forward cache. Borrows the model. One thread at a time. */
typedef struct ag_trace ag_trace;

/** Options for ag_trace_create. */
typedef struct ag_trace_options {
    size_t struct_size;
    int32_t reserved; /**< must be 0 */
} ag_trace_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_trace_options_init(ag_trace_options *opts, size_t struct_size);
#define AG_TRACE_OPTIONS_INIT(o) ag_trace_options_init(&(o), sizeof(o))

/** Run the model over tokens[0..n_tokens) in one pass (every matmul one BLAS call over all
 *  positions) and keep residuals, norm scales, attention patterns, q/k/v, MLP inputs,
 *  gate/up pre-activations, neurons and logits. The tokens are used as given (prepend BOS
 *  yourself, or use ag_tokenize with add_bos=1).
 *  Errors: AG_ERR_INVALID_ARGUMENT (n_tokens 0 or above the model's seq_len, a token id
 *  outside [0, vocab)), AG_ERR_OUT_OF_MEMORY, AG_ERR_NUMERIC (non-finite logits).
 *  Thread-safe with respect to the model; the new trace belongs to the caller. */
AG_API ag_status ag_trace_create(ag_trace **out, const ag_model *model, const int32_t *tokens,
                                 size_t n_tokens, const ag_trace_options *opts);

/** Free a trace. NULL is a no-op. */
AG_API void ag_trace_free(ag_trace *trace);

/** Number of positions T of the trace. */
AG_API size_t ag_trace_n_tokens(const ag_trace *trace);
/** The trace's tokens (T ids, borrowed). */
AG_API const int32_t *ag_trace_tokens(const ag_trace *trace);
/** The model the trace borrows. */
AG_API const ag_model *ag_trace_model(const ag_trace *trace);

/** Tensors a trace keeps (ag_trace_tensor's `which`). Shapes use T positions, D = dim,
 *  KV = n_kv_heads*head_dim, Hd = hidden_dim, H = n_heads, V = vocab. `layer` selects the
 *  block (0..n_layers-1) except where noted. */
typedef enum ag_tensor_kind {
    AG_TENSOR_RESID = 0,        /**< [T][D] input of block `layer`; layer = n_layers: final residual */
    AG_TENSOR_MID = 1,          /**< [T][D] residual after the attention of block `layer` */
    AG_TENSOR_ATTN_NORM_SCALE = 2, /**< [T] r_att = 1/sqrt(mean(x^2)+eps) */
    AG_TENSOR_ATTN_IN = 3,      /**< [T][D] RMSNorm(x) * g_att */
    AG_TENSOR_Q = 4,            /**< [T][D] queries after RoPE */
    AG_TENSOR_K = 5,            /**< [T][KV] keys after RoPE */
    AG_TENSOR_V = 6,            /**< [T][KV] values */
    AG_TENSOR_ATTN_PATTERN = 7, /**< [H][T][T] softmax probabilities (query, key); 0 above the diagonal */
    AG_TENSOR_ATTN_HEADS = 8,   /**< [T][D] per-head attention outputs (before W_O), heads concatenated */
    AG_TENSOR_FFN_NORM_SCALE = 9, /**< [T] r_ffn */
    AG_TENSOR_MLP_IN = 10,      /**< [T][D] u = RMSNorm(x_mid) * g_ffn */
    AG_TENSOR_GATE = 11,        /**< [T][Hd] W1 u (pre-activation) */
    AG_TENSOR_UP = 12,          /**< [T][Hd] W3 u */
    AG_TENSOR_NEURONS = 13,     /**< [T][Hd] n = silu(W1 u) * (W3 u) */
    AG_TENSOR_MLP_OUT = 14,     /**< [T][D] W2 n */
    AG_TENSOR_FINAL_NORM_SCALE = 15, /**< [T] r_fin (layer ignored) */
    AG_TENSOR_FINAL_OUT = 16,   /**< [T][D] RMSNorm(x_L) * g_final (layer ignored) */
    AG_TENSOR_LOGITS = 17       /**< [T][V] (layer ignored) */
} ag_tensor_kind;

/** Borrow one cached tensor. *data points into the trace (row-major, float32, valid until
 *  the trace is freed); shape[0..*ndim) receives the dimensions (at most 3).
 *  Errors: AG_ERR_INVALID_ARGUMENT (unknown kind, layer out of range). */
AG_API ag_status ag_trace_tensor(const ag_trace *trace, ag_tensor_kind which, int32_t layer,
                                 const float **data, int64_t shape[3], int32_t *ndim);

/* ---------------------------------------------------------------------------------------- */
/* Generation                                                                               */
/* ---------------------------------------------------------------------------------------- */

typedef struct ag_generate_options {
    size_t struct_size;
    int32_t max_new_tokens; /**< number of new tokens (default 256); stops early at BOS/EOS
                                 or at the model's seq_len */
    float temperature;      /**< 0 = greedy (default 0) */
    float top_p;            /**< nucleus sampling cut, in (0,1]; 1 = off (default 1) */
    uint64_t seed;          /**< sampling seed (default 42); same seed, same text */
    /** ag_generate_steered: the transcoder set of AG_SITE_FEATURE items (borrowed for the call;
     *  default NULL; ignored by ag_generate). It must fit the model and, when it records one, have
     *  been loaded for it (see INTERVENTIONS). */
    const struct ag_transcoder *transcoder;
} ag_generate_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_generate_options_init(ag_generate_options *opts, size_t struct_size);
#define AG_GENERATE_OPTIONS_INIT(o) ag_generate_options_init(&(o), sizeof(o))

/** Continue `prompt` (n_prompt >= 1 ids) with up to max_new_tokens new ids, using a KV
 *  cache. Writes the new ids (not the prompt) to out_tokens (cap entries) and their count
 *  to *n_out; AG_ERR_BUFFER_TOO_SMALL if cap < max_new_tokens. Deterministic for a given
 *  seed and OpenBLAS thread count. Errors: AG_ERR_INVALID_ARGUMENT. Thread-safe w.r.t. the
 *  model (it allocates its own state). */
AG_API ag_status ag_generate(const ag_model *model, const int32_t *prompt, size_t n_prompt,
                             const ag_generate_options *opts, int32_t *out_tokens, size_t cap,
                             size_t *n_out);

/* ==== ATTRIBUTION METHODS (issue: backward engine) ======================================= */
/*
 * "How much of target f is due to quantity z?" at a *site* z of a traced prompt (DESIGN §1.3).
 *
 * Sites (ag_attribute_options.site_kind + site_layer; text form for ag_site_parse):
 *   AG_SITE_EMBED  "embed"   [T][D]      the token embeddings x_0 (same tensor as resid.0)
 *   AG_SITE_RESID  "resid.L" [T][D]      input of block L; L = n_layers: the final residual
 *   AG_SITE_MID    "mid.L"   [T][D]      residual after the attention of block L
 *   AG_SITE_MLP    "mlp.L"   [T][Hd]     the MLP neurons n = silu(W1 u) * (W3 u) of block L
 *   AG_SITE_ATTN   "attn.L"  [T][H][hs]  per-head attention outputs of block L (before W_O)
 *   AG_SITE_FEATURE "feature.L" [T][F]    the features of block L of a transcoder set: an
 *                                         intervention site only (ag_intervene), not an
 *                                         attribution or target site
 *
 * Methods:
 *   AG_METHOD_GRADIENT  gradient g = df/dz at the input; attributions = g * z (gradient x
 *                       activation). One backward pass over the trace's cached forward.
 *   AG_METHOD_IG        integrated gradients: (z - z') * integral_0^1 df/dz(z' + a (z - z')) da,
 *                       z' a baseline; the integral by a quadrature rule (AG_QUAD_*). All nodes
 *                       of a round go through one batched forward and one batched backward.
 *                       Completeness: sum(attributions) = f(z) - f(z'); the error is reported.
 *   AG_METHOD_PATH      the same integral along the piecewise-linear path through `waypoints`
 *                       (first = start, last = end), or, without waypoints, the average of
 *                       straight-line IG over `n_baselines` baselines. With two waypoints
 *                       (baseline, input) it equals AG_METHOD_IG.
 *   AG_METHOD_DECOMPOSITION  the frozen local replacement model (DESIGN §1.2); available when
 *                       the library was built with it (else AG_ERR_UNSUPPORTED).
 *
 * A baseline replaces the site at every position; everything upstream of the site keeps the
 * traced values (for attn.L and mlp.L the residual stream that skips the site too).
 */

/** Attribution methods (ag_attribute_options.method). Values pinned. */
enum {
    AG_METHOD_GRADIENT = 1,
    AG_METHOD_IG = 2,
    AG_METHOD_PATH = 3,
    AG_METHOD_DECOMPOSITION = 4
};

/** Sites (ag_attribute_options.site_kind, target_site_kind). Values pinned. */
enum {
    AG_SITE_EMBED = 1, /**< token embeddings [T][D]; layer ignored */
    AG_SITE_RESID = 2, /**< input of block `layer` [T][D], layer in [0, n_layers] */
    AG_SITE_MID = 3,   /**< after the attention of block `layer` [T][D] */
    AG_SITE_MLP = 4,   /**< neurons of block `layer` [T][Hd] */
    AG_SITE_ATTN = 5,  /**< per-head outputs of block `layer` [T][H][hs] */
    AG_SITE_FEATURE = 6 /**< "feature.L": the features of a transcoder set's block `layer`:
                             interventions only (ag_intervention.site; see INTERVENTIONS), not an
                             attribution site */
};

/** Targets f (ag_attribute_options.target_kind). Values pinned. The logit-based kinds read
 *  the logits at target_position; token -1 means the top logit there. */
enum {
    AG_TARGET_LOGIT = 1,          /**< logit of target_token (default) */
    AG_TARGET_DEMEANED_LOGIT = 2, /**< logit of target_token minus the mean logit over the vocabulary */
    AG_TARGET_LOGPROB = 3,        /**< log softmax of target_token */
    AG_TARGET_PROB = 4,           /**< softmax probability of target_token */
    AG_TARGET_LOGIT_DIFF = 5,     /**< logit(target_token) - logit(target_token_b) */
    AG_TARGET_DIRECTION = 6,      /**< target_direction . z_t[target_position], z_t the site
                                       (target_site_kind, target_layer) */
    AG_TARGET_UNIT = 7            /**< z_t[target_position][target_index], e.g. a neuron of
                                       mlp.target_layer (target_site_kind AG_SITE_MLP) */
};

/** Quadrature rules for AG_METHOD_IG / AG_METHOD_PATH (ag_attribute_options.quadrature). */
enum {
    AG_QUAD_RIEMANN = 1,        /**< midpoint rule: nodes (i + 1/2)/n, weights 1/n */
    AG_QUAD_TRAPEZOID = 2,      /**< nodes i/(n-1) (n >= 2), weights 1/(n-1), halved at the ends;
                                     the weights sum to exactly 1 in double */
    AG_QUAD_GAUSS_LEGENDRE = 3, /**< n-node Gauss-Legendre on [0,1] (default, n = 32) */
    AG_QUAD_ADAPTIVE = 4        /**< panels of `steps`-node Gauss-Legendre (default 8); f is also
                                     evaluated at every panel end, so each panel knows its exact
                                     completeness residual; the panels with the largest residuals
                                     are split, round after round (all new nodes of a round in one
                                     batch), until the sum of |residuals| is at most
                                     tolerance * |f(z) - f(z')| or max_evaluations is reached.
                                     Panels at alpha = 0 are split geometrically and panels
                                     spanning a large ratio in ln(alpha): a zero baseline at a
                                     residual site has features on every scale near 0 */
};

/** Baselines z' (ag_attribute_options.baseline_kind). */
enum {
    AG_BASELINE_ZERO = 1,   /**< z' = 0 at every position (default) */
    AG_BASELINE_MEAN = 2,   /**< the site's values when every token embedding is replaced by the
                                 mean embedding (at embed/resid.0: the mean embedding itself) */
    AG_BASELINE_TOKENS = 3, /**< the site's values for another token sequence of the same length:
                                 baseline_tokens, n_baselines sequences of T ids back to back */
    AG_BASELINE_VALUES = 4  /**< baseline_values: n_baselines site-shaped arrays back to back */
};

/** Options of ag_attribute. Fill with ag_attribute_options_init; fields only appended. */
typedef struct ag_attribute_options {
    size_t struct_size;
    int32_t method;            /**< AG_METHOD_* (default AG_METHOD_GRADIENT) */
    int32_t site_kind;         /**< AG_SITE_* (default AG_SITE_EMBED) */
    int32_t site_layer;        /**< block of the site (ignored for embed; default 0) */
    int32_t target_kind;       /**< AG_TARGET_* (default AG_TARGET_LOGIT) */
    int32_t target_token;      /**< vocabulary id, or -1 (default) for the top logit at target_position */
    int32_t target_token_b;    /**< second token of AG_TARGET_LOGIT_DIFF (required there) */
    int32_t target_position;   /**< position of the target, or -1 (default) for the last one */
    int32_t target_site_kind;  /**< site of AG_TARGET_DIRECTION / AG_TARGET_UNIT; 0 (default):
                                    AG_SITE_RESID for DIRECTION, AG_SITE_MLP for UNIT. It must
                                    not lie upstream of the attribution site */
    int32_t target_layer;      /**< its block (default 0) */
    int32_t target_index;      /**< AG_TARGET_UNIT: coordinate within a position's row */
    const float *target_direction; /**< AG_TARGET_DIRECTION: one row's width floats (borrowed) */
    int32_t steps;             /**< quadrature nodes (0 = default: 32; adaptive: nodes per panel, 8) */
    int32_t quadrature;        /**< AG_QUAD_* (default AG_QUAD_GAUSS_LEGENDRE) */
    int32_t baseline_kind;     /**< AG_BASELINE_* (default AG_BASELINE_ZERO) */
    int32_t n_baselines;       /**< baselines in baseline_tokens / baseline_values (default 1;
                                    > 1 averages IG over them) */
    const int32_t *baseline_tokens; /**< AG_BASELINE_TOKENS: n_baselines * T ids (borrowed) */
    const float *baseline_values;   /**< AG_BASELINE_VALUES: n_baselines * site size floats */
    const float *waypoints;    /**< AG_METHOD_PATH: n_waypoints site-shaped arrays back to back */
    int32_t n_waypoints;       /**< 0 (path = straight lines from the baselines) or >= 2 */
    int32_t batch_size;        /**< quadrature nodes per batched forward/backward (0 = automatic:
                                    as many as fit in about 256 MiB of activations, at most 64).
                                    Results agree across batch sizes to float rounding (so the
                                    adaptive rule may split a borderline panel differently) */
    double tolerance;          /**< AG_QUAD_ADAPTIVE: relative completeness tolerance (default 1e-3) */
    int32_t max_evaluations;   /**< AG_QUAD_ADAPTIVE: budget of gradient evaluations (default 8192);
                                    at the budget the result is returned with its error */
    /** Called after every batch with the fraction done in [0,1]; a nonzero return cancels
     *  (AG_ERR_CANCELLED). May be NULL. Called on the calling thread. */
    int (*progress)(double fraction, void *user_data);
    void *user_data;
} ag_attribute_options;

/** Fill `opts` with defaults. Errors: AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION
 *  (struct_size too small). Thread-safe. */
AG_API ag_status ag_attribute_options_init(ag_attribute_options *opts, size_t struct_size);
#define AG_ATTRIBUTE_OPTIONS_INIT(o) ag_attribute_options_init(&(o), sizeof(o))

/** The result of ag_attribute. Owns its arrays; independent of the trace once made. */
typedef struct ag_attribution ag_attribution;

/** Attribute the target to the site with the chosen method (see the section comment).
 *  `opts` NULL means all defaults (gradient of the top logit at the last position w.r.t. the
 *  embeddings). The trace is only read.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, unknown enum value, layer/position/token/index out of
 *  range, a target upstream of the site, a bad rule/step count, missing baseline or
 *  direction data; the message names the field), AG_ERR_UNSUPPORTED (decomposition not built
 *  in), AG_ERR_OUT_OF_MEMORY, AG_ERR_NUMERIC (a NaN or infinity in a target or gradient),
 *  AG_ERR_CANCELLED (the progress callback). *out is NULL on failure.
 *  Threads: the trace's rule (one thread at a time); the model may be shared. */
AG_API ag_status ag_attribute(const ag_trace *trace, const ag_attribute_options *opts, ag_attribution **out);

/** Free a result. NULL is a no-op. */
AG_API void ag_attribution_free(ag_attribution *attr);

/** The shape of the site: [T][D], [T][Hd] or [T][H][hs]. shape[0..*ndim) is filled (at most
 *  3 entries). Errors: AG_ERR_INVALID_ARGUMENT (NULL). */
AG_API ag_status ag_attribution_shape(const ag_attribution *attr, int64_t shape[3], int32_t *ndim);
/** The number of floats of the site (the product of the shape); 0 for NULL. */
AG_API size_t ag_attribution_size(const ag_attribution *attr);
/** Attributions, row-major in the shape above (borrowed, valid until ag_attribution_free).
 *  gradient: gradient x activation; ig/path: the integrals. NULL for NULL. */
AG_API const float *ag_attribution_values(const ag_attribution *attr);
/** Gradient method: df/dz at the input. IG with one baseline: the path-averaged gradient
 *  integral_0^1 df/dz(z' + a (z - z')) da. NULL otherwise (path, several baselines). */
AG_API const float *ag_attribution_gradient(const ag_attribution *attr);
/** f at the input (path: at the last waypoint). NAN for NULL. */
AG_API double ag_attribution_target_value(const ag_attribution *attr);
/** f at the baseline (mean over baselines; path: at the first waypoint); gradient: NAN. */
AG_API double ag_attribution_baseline_value(const ag_attribution *attr);
/** The sum of the attributions (accumulated in double). */
AG_API double ag_attribution_sum(const ag_attribution *attr);
/** Signed completeness error sum - (target_value - baseline_value); gradient: NAN. */
AG_API double ag_attribution_completeness_error(const ag_attribution *attr);
/** Number of points at which the model's gradient was evaluated (one forward and one
 *  backward pass of the sequence each; the gradient method: 1). The forward passes giving
 *  f at panel ends and baselines are not counted. */
AG_API int64_t ag_attribution_evaluations(const ag_attribution *attr);
/** The target as resolved (default token filled in): kind, token (-1 where none applies),
 *  position. Any pointer may be NULL. Errors: AG_ERR_INVALID_ARGUMENT (attr NULL). */
AG_API ag_status ag_attribution_target(const ag_attribution *attr, int32_t *kind, int32_t *token,
                                       int32_t *position);

/** Work done by one ag_attribute call (for benchmarks and progress reports). */
typedef struct ag_attribution_stats {
    size_t struct_size;        /**< set by the caller: sizeof(ag_attribution_stats) */
    int64_t evaluations;       /**< as ag_attribution_evaluations */
    int64_t forward_sequences; /**< sequences run forward: nodes, panel ends, baselines */
    int32_t rounds;            /**< batched forward/backward rounds */
    int32_t batch_size;        /**< largest batch of sequences used */
    double forward_seconds;    /**< wall time in forward passes (incl. target values) */
    double backward_seconds;   /**< wall time in backward passes */
    double total_seconds;      /**< wall time of the whole call */
    double forward_flops;      /**< matmul FLOPs of the forward passes (multiply-add = 2) */
    double backward_flops;     /**< matmul FLOPs of the backward passes */
} ag_attribution_stats;

/** Fill `out` (caller sets out->struct_size). Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_VERSION. */
AG_API ag_status ag_attribution_get_stats(const ag_attribution *attr, ag_attribution_stats *out);

/** Parse a site name ("embed", "resid.2", "mid.0", "mlp.1", "attn.3", "feature.4") into kind
 *  and layer (layer 0 for embed): the names of the site table above, lower case, layer a
 *  decimal number of at most 6 digits. Only the syntax is checked (layers against a model in
 *  ag_attribute / ag_intervene; "feature.L" is AG_SITE_FEATURE, which ag_attribute refuses).
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, not a site name). Thread-safe. */
AG_API ag_status ag_site_parse(const char *text, int32_t *kind, int32_t *layer);
/** Write the name of a site ("mlp.1", "feature.2"; the inverse of ag_site_parse) into buf (cap
 *  bytes, NUL-terminated); *n_out (may be NULL) gets the length. AG_ERR_BUFFER_TOO_SMALL when it
 *  does not fit (*n_out = the length needed), AG_ERR_INVALID_ARGUMENT for an unknown kind or a
 *  negative layer. Thread-safe. */
AG_API ag_status ag_site_name(int32_t kind, int32_t layer, char *buf, size_t cap, size_t *n_out);

/* ==== GRAPH (issue: decomposition graphs) ================================================ */
/*
 * An attribution graph (DESIGN §1.2, §1.4): nodes are the token embeddings, units (MLP
 * neurons of every layer at every position, basis AG_BASIS_NEURONS), one error node per
 * (layer, position) and the logit targets; an edge A[t,s] is the *direct* effect of source s
 * on target t in the local replacement model (norm scales, attention patterns and SwiGLU gate
 * factors frozen at the trace's values; attention passes information through its OV path
 * only; every MLP output held fixed because it is decomposed into its own unit and error
 * nodes). So every target's incoming edges sum exactly to its value (a unit's value is
 * n_i = silu(gate_i)·(W3_i·u) with the gate frozen; a logit's is the demeaned logit read
 * through the frozen final norm), up to float32 rounding.
 *
 * Building: the logit rows first, then unit rows greedily by estimated influence until
 * max_feature_nodes units are expanded (selection refreshed every update_interval batches);
 * units that were never expanded are not nodes: their contribution is folded into the error
 * node of their (layer, position), so the scores stay honest. Rows are computed batch_size
 * targets at a time by one batched frozen VJP (one GEMM per op per layer) and stored
 * sparsely (exact zeros dropped); no dense N x N matrix is ever formed.
 *
 * Pruning (circuit-tracer's rule, on the sparse rows): influence I = w·(Ā + Ā² + ...) with
 * Ā = |A| row-normalised and w the logit weights (an exact finite series: the graph is a
 * DAG); keep the nodes covering node_threshold of the total influence (embeddings and logits
 * always kept), the edges covering edge_threshold of the edge scores Ā'[t,s]·(I'_t + w_t)
 * recomputed on the kept nodes, then drop units and errors left without a kept outgoing
 * edge and units without a kept incoming edge, until nothing changes. Thresholds are found
 * by selection, not by sorting every edge. A threshold of 1 keeps every node / edge with a
 * positive score; 0 keeps only the top one (ties kept).
 *
 * Node order (indices 0 .. n_nodes-1): units sorted by (layer, position, index), then the
 * error nodes (layer-major: layer*T + position), then the T embeddings, then the logits.
 * Node ids (as in the viewer JSON): "{layer}_{index}_{pos}" units, "{layer}_-1_{pos}" errors,
 * "E_{token}_{pos}" embeddings, "{n_layers+1}_{token}_{pos}" logits (explicit logit
 * differences and custom directions get virtual ids vocab_size + k, k their target index).
 *
 * THREADS: ag_graph is immutable once built; every getter and writer may be called from any
 * number of threads at once. ag_graph_build reads the trace (the trace's one-thread rule
 * applies during the build). ag_graph_expand_node reads the graph's trace again: the trace
 * must still be alive, and must not be used by a mutating call while it runs.
 */

/** A built attribution graph. Immutable; thread-safe to read. Borrows its trace only for
 *  ag_graph_expand_node (everything else is copied). */
typedef struct ag_graph ag_graph;

/** Unit bases (ag_graph_options.basis). */
enum {
    AG_BASIS_NEURONS = 1,    /**< MLP neurons (exact: no reconstruction error) */
    AG_BASIS_TRANSCODERS = 2 /**< transcoder features (ag_graph_options.transcoders): feature
                                  nodes, error nodes = MLP output − reconstruction, CLT features
                                  writing to every later layer; biases are constants
                                  (ag_graph_node_constant) */
};

/** Node kinds (ag_node_info.kind). */
enum {
    AG_NODE_UNIT = 1,      /**< a neuron (or feature) of `layer` at `position`, coordinate `index` */
    AG_NODE_ERROR = 2,     /**< MLP output of (layer, position) not accounted for by unit nodes */
    AG_NODE_EMBEDDING = 3, /**< the token embedding at `position` */
    AG_NODE_LOGIT = 4      /**< a logit target at the last position */
};

/** Explicit logit targets (ag_graph_target.kind). All read the final norm's output at the
 *  last position. */
enum {
    AG_GRAPH_TARGET_TOKEN = 1,      /**< the demeaned logit of `token`; weight default: its probability */
    AG_GRAPH_TARGET_LOGIT_DIFF = 2, /**< logit(token) - logit(token_b); weight default 1 */
    AG_GRAPH_TARGET_DIRECTION = 3   /**< direction · final_norm_output (a [dim] vector in the
                                         space of the classifier rows); weight default 1 */
};

/** One explicit logit target. */
typedef struct ag_graph_target {
    int32_t kind;            /**< AG_GRAPH_TARGET_* */
    int32_t token;           /**< TOKEN / LOGIT_DIFF: vocabulary id */
    int32_t token_b;         /**< LOGIT_DIFF: the subtracted token */
    int32_t reserved;        /**< must be 0 */
    const float *direction;  /**< DIRECTION: dim floats (borrowed during the build) */
    double weight;           /**< its weight w in the influence; <= 0: the default above */
    const char *label;       /**< optional text for the node's label (copied); NULL: automatic */
} ag_graph_target;

/** Options of ag_graph_build. Fill with ag_graph_options_init; fields only appended. */
typedef struct ag_graph_options {
    size_t struct_size;
    int32_t method;            /**< edge method: AG_METHOD_DECOMPOSITION (default; exact
                                    direct effects in the frozen model, rows sum to the
                                    values), AG_METHOD_GRADIENT (attribution patching: the
                                    real model's Jacobian, MLP outputs still held fixed, so
                                    first-order direct effects; about L/2 times the cost) or
                                    AG_METHOD_IG (path-averaged edges: the same Jacobian
                                    averaged over the inputs alpha·embeddings, alpha on
                                    ig_steps midpoint nodes of [0,1], times the source's
                                    vector, as in EAP-IG; ig_steps times the gradient's cost).
                                    Gradient and ig: neuron basis only */
    int32_t basis;             /**< AG_BASIS_NEURONS (default) */
    int32_t max_feature_nodes; /**< units to expand (rows to compute) at most; default 7500;
                                    0 = every unit of every layer and position */
    int32_t max_logits;        /**< default logit targets: at most this many (default 10) */
    double logit_prob;         /**< ... until their cumulative probability reaches this (0.95) */
    double node_threshold;     /**< pruning, in [0,1] (default 0.8) */
    double edge_threshold;     /**< pruning, in [0,1] (default 0.98) */
    int32_t batch_size;        /**< targets per batched VJP (default 256) */
    int32_t update_interval;   /**< re-rank the units every this many batches (default 4) */
    const ag_graph_target *targets; /**< explicit logit targets (borrowed), or NULL: default */
    int32_t n_targets;         /**< their count */
    /** Progress and cancellation: called between batches with a phase name ("rank",
     *  "rows", "prune") and the fraction of that phase done in [0,1]; a nonzero return stops
     *  the build with AG_ERR_CANCELLED (nothing leaks). May be NULL. Called on the building
     *  thread. */
    int (*progress)(const char *phase, double done, void *user_data);
    void *user_data;
    /** AG_BASIS_TRANSCODERS: the transcoder set (see TRANSCODERS below; copied what is needed,
     *  not borrowed after the build). Default NULL. */
    const struct ag_transcoder *transcoders;
    /** AG_METHOD_IG: midpoint-rule nodes of the path (default 16); ignored otherwise. */
    int32_t ig_steps;
} ag_graph_options;

/** Fill `opts` with defaults. Errors: AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION.
 *  Thread-safe. */
AG_API ag_status ag_graph_options_init(ag_graph_options *opts, size_t struct_size);
#define AG_GRAPH_OPTIONS_INIT(o) ag_graph_options_init(&(o), sizeof(o))

/** Build the attribution graph of a trace (see the section comment), prune it and compute
 *  its scores. `opts` NULL means all defaults.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL; a threshold outside [0,1]; logit_prob outside
 *  (0,1]; max_logits, batch_size or update_interval < 1; max_feature_nodes < 0; a target
 *  token outside the vocabulary; a missing direction; an unknown enum value; the message
 *  names the field; AG_BASIS_TRANSCODERS without opts->transcoders, with a set of another
 *  shape, or with a set loaded or trained for another model than the trace's (its weights'
 *  fingerprint differs; see ag_transcoder_load; a set loaded without a model or built in
 *  memory is shape-checked only); ig_steps < 1), AG_ERR_UNSUPPORTED (AG_METHOD_GRADIENT or AG_METHOD_IG with transcoders),
 *  AG_ERR_OUT_OF_MEMORY,
 *  AG_ERR_NUMERIC (a non-finite edge), AG_ERR_CANCELLED. *out is NULL on failure.
 *  Threads: reads the trace (its one-thread rule applies); OpenBLAS may use its threads. */
AG_API ag_status ag_graph_build(ag_graph **out, const ag_trace *trace, const ag_graph_options *opts);

/** Free a graph. NULL is a no-op. */
AG_API void ag_graph_free(ag_graph *graph);

/** Facts and scores of a graph. The caller sets struct_size = sizeof(info). */
typedef struct ag_graph_info {
    size_t struct_size;
    int32_t method, basis;
    int32_t n_layers, n_positions;
    int64_t n_nodes;             /**< every node (units + errors + embeddings + logits) */
    int64_t n_units;             /**< unit nodes (= units expanded) */
    int64_t n_unit_candidates;   /**< units the basis has (n_layers x T x hidden for neurons) */
    int64_t n_errors, n_embeddings, n_logits;
    int64_t n_edges;             /**< stored (nonzero) edges of the unpruned graph */
    int64_t n_kept_nodes, n_kept_edges; /**< after pruning */
    double node_threshold, edge_threshold;
    double replacement_score;    /**< influence reaching embeddings / (embeddings + errors) */
    double completeness_score;   /**< influence-weighted non-error input share, all nodes */
    double completeness_score_units_only; /**< the same over unit and logit nodes only */
    double seconds_rank, seconds_rows, seconds_prune, seconds_total; /**< build phases */
    double flops;                /**< matmul FLOPs of the build (multiply-add = 2) */
    int64_t rows_computed;       /**< target rows run through the VJP (ranking + final) */
} ag_graph_info;

/** Fill `info` (caller sets info->struct_size). Errors: AG_ERR_INVALID_ARGUMENT,
 *  AG_ERR_VERSION. Thread-safe. */
AG_API ag_status ag_graph_get_info(const ag_graph *graph, ag_graph_info *info);

/** Number of nodes (0 for NULL). Thread-safe. */
AG_API size_t ag_graph_n_nodes(const ag_graph *graph);

/** One node. The caller sets struct_size = sizeof(ag_node_info). */
typedef struct ag_node_info {
    size_t struct_size;
    int32_t kind;       /**< AG_NODE_* */
    int32_t layer;      /**< units/errors: block; embeddings: -1; logits: n_layers + 1 */
    int32_t position;
    int32_t index;      /**< units: neuron index; errors: -1; embeddings: position;
                             logits: vocabulary id (or virtual id) */
    int32_t token;      /**< embeddings: the input token; logits: the vocabulary id (-1 for
                             virtual targets); others -1 */
    int32_t kept;       /**< 1 when the node survived pruning */
    double activation;  /**< units: n_i; logits: the target's value; errors/embeddings: NAN */
    double value;       /**< a target's value (the sum of its incoming edges); NAN for
                             sources without a row */
    double influence;   /**< cumulative influence rank fraction (smallest = most influential) */
    double influence_raw; /**< I from the influence series (unpruned graph) */
    double weight;      /**< logits: the target's weight (probability); others 0 */
    char id[48];        /**< the node id (see the section comment), NUL-terminated */
    const char *label;  /**< logits: 'Output "tok" (p=0.123)'; embeddings: the token's
                             piece; others "". Owned by the graph */
} ag_node_info;

/** Fill `out` for node `index` (caller sets out->struct_size). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_NOT_FOUND (index out of range), AG_ERR_VERSION.
 *  Thread-safe. */
AG_API ag_status ag_graph_node_info(const ag_graph *graph, size_t index, ag_node_info *out);

/** Index of the node with id `id` ("3_17_5", "2_-1_4", "E_403_1", "6_432_4").
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, malformed id), AG_ERR_NOT_FOUND. Thread-safe. */
AG_API ag_status ag_graph_find_node(const ag_graph *graph, const char *id, size_t *index);

/** One edge: source -> target with A[target, source] = weight. */
typedef struct ag_edge {
    int64_t source;  /**< node index */
    int64_t target;  /**< node index */
    double weight;   /**< signed raw direct effect */
    int32_t kept;    /**< 1 when the edge survived pruning */
    int32_t reserved;
} ag_edge;

/** Edge directions and filters (flags of ag_graph_node_edges). */
enum {
    AG_EDGES_IN = 0,       /**< edges into the node (its row: its sources) */
    AG_EDGES_OUT = 1,      /**< edges out of the node (its column: its targets) */
    AG_EDGES_KEPT_ONLY = 2 /**< or-ed in: only edges that survived pruning */
};

/** The edges into or out of node `index`, sorted by |weight| (largest first; ties by node
 *  index), at most top_k of them (0 = all). Writes them to buf (cap entries) and the count
 *  to *n_out; AG_ERR_BUFFER_TOO_SMALL with *n_out = the count needed when cap is too small
 *  (buf may be NULL with cap 0 to ask). Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_NOT_FOUND.
 *  Thread-safe. */
AG_API ag_status ag_graph_node_edges(const ag_graph *graph, size_t index, int32_t flags, size_t top_k,
                                     ag_edge *buf, size_t cap, size_t *n_out);

/** Lazy expansion: compute the incoming edges of the unit (layer, position, index) of the
 *  unpruned graph, whether or not it is a node (a unit that was never expanded is folded
 *  into its error node; this gives its row without adding it). Sources are the graph's
 *  nodes (units of lower layers, error nodes, embeddings); with the decomposition method the
 *  edges sum to the unit's value (plus its constant, transcoders), written to *value (may be
 *  NULL); with AG_METHOD_GRADIENT they are its gradient edges. Sorted and truncated as ag_graph_node_edges
 *  (edge.target = -1 when the unit is not a node, kept = 0). The graph is not modified:
 *  the row goes to the caller's buffer, so concurrent readers are safe.
 *  Needs the trace the graph was built from (alive, not being mutated).
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, out of range), AG_ERR_BUFFER_TOO_SMALL,
 *  AG_ERR_OUT_OF_MEMORY, AG_ERR_NUMERIC.
 *  Thread-safe (allocates its own workspace). */
AG_API ag_status ag_graph_expand_node(const ag_graph *graph, int32_t layer, int32_t position, int32_t index,
                                      size_t top_k, ag_edge *buf, size_t cap, size_t *n_out, double *value);

/** Options of the graph writers. Fill with ag_export_options_init. */
typedef struct ag_export_options {
    size_t struct_size;
    const char *slug;        /**< metadata.slug (default "attrgraph") */
    const char *prompt;      /**< metadata.prompt (default: the decoded prompt tokens) */
    const char *scan;        /**< metadata.scan (default: the model file's base name) */
    int32_t include_timings; /**< 1 (default): metadata.attrgraph.timings holds the build's
                                  seconds; 0: omitted, so two builds give the same bytes */
    int32_t pruned;          /**< 1 (default): kept nodes and edges only; 0: everything */
} ag_export_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_export_options_init(ag_export_options *opts, size_t struct_size);
#define AG_EXPORT_OPTIONS_INIT(o) ag_export_options_init(&(o), sizeof(o))

/** The attribution-graph viewer JSON (DESIGN §4: {metadata, qParams, nodes, links}), written
 *  to `path`. Deterministic: the same graph and options give the same bytes.
 *  Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_IO, AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_graph_write_json(const ag_graph *graph, const char *path, const ag_export_options *opts);
/** The same JSON in memory: *out (NUL-terminated, free with ag_free), its length in *len
 *  (may be NULL). Thread-safe. */
AG_API ag_status ag_graph_json(const ag_graph *graph, const ag_export_options *opts, char **out, size_t *len);
/** Graphviz DOT: layers as ranks (embeddings at the bottom, logits at the top), edges
 *  coloured by sign (blue positive, red negative) with width by |weight|. Deterministic.
 *  Errors as ag_graph_write_json. Thread-safe. */
AG_API ag_status ag_graph_write_dot(const ag_graph *graph, const char *path, const ag_export_options *opts);
/** The same DOT in memory (free with ag_free). Thread-safe. */
AG_API ag_status ag_graph_dot(const ag_graph *graph, const ag_export_options *opts, char **out, size_t *len);
/** The interactive viewer of the graph: one self-contained HTML file (inline CSS and
 *  JavaScript; no network, no server; opens from file://) holding the same JSON as
 *  ag_graph_json with `opts`: tokens along x, layers along y, pruning and link-weight
 *  sliders, side panel, search, pins and supernodes saved in qParams (see
 *  ag_viewer_write_html). Deterministic. Errors as ag_graph_write_json. Thread-safe. */
AG_API ag_status ag_graph_write_html(const ag_graph *graph, const char *path, const ag_export_options *opts);
/** The interactive viewer for any graph JSON in the viewer schema (DESIGN §4; also the JSON
 *  of circuit-tracer and Neuronpedia), written to `path` as one self-contained HTML file:
 *  inline CSS and JavaScript, no network, no server, opens from file://. `json` (len bytes,
 *  UTF-8) must be an object with "nodes" and "links" arrays; it is embedded byte for byte
 *  except '<' '>' '&' U+2028 U+2029, written as \u escapes. `title` (may be NULL:
 *  "attrgraph: " + metadata.prompt or slug) is HTML-escaped. Deterministic: the same
 *  arguments give the same bytes. The JSON is checked before `path` is touched; a failed
 *  write removes the file.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_FORMAT (not JSON, or no nodes/links
 *  arrays; the message says which), AG_ERR_IO, AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_viewer_write_html(const char *path, const char *json, size_t len, const char *title);


/* ==== INTERVENTIONS ==== */
/*
 * Test what a graph claims against the model (DESIGN §1.5): set, scale or shift units, add
 * vectors to the residual stream, and rerun the model from a trace in one of three modes.
 *
 * An intervention on a unit is a clamp: the unit keeps the given value (SCALE: k x its clean
 * value; ADD: clean value + c) whatever its inputs become. A vector added to a residual site is
 * added on top of whatever flows there.
 *
 * Modes (ag_intervene_options.mode):
 *   AG_INTERVENE_DIRECT  norm scales, attention patterns, SwiGLU gate factors and every MLP
 *                        output frozen at the trace's values (plus the clamped units' changes):
 *                        a change reaches each target only through the residual stream and the
 *                        frozen attention (OV). Changes of units and logits equal the graph's
 *                        adjacency columns (direct effects).
 *   AG_INTERVENE_LINEAR  the local replacement model run forward: norm scales, patterns and gate
 *                        factors frozen, units recomputed, n_i = silu(gate_i)_clean * (W3_i . u):
 *                        changes follow every path, so they equal the graph's total effects.
 *   AG_INTERVENE_FREE    the real model reruns downstream. Attention patterns, norm scales and
 *                        gate factors may each be frozen (freeze_attention, freeze_norms,
 *                        freeze_gates); with all three frozen it is the LINEAR mode computed as
 *                        a plain forward.
 * DIRECT and LINEAR are exactly affine given the frozen values, so they propagate the change
 * itself (not clean + change): their deltas (ag_intervention_result_tensor with delta = 1) are
 * free of float32 cancellation. In DIRECT and LINEAR a unit's reported value is its
 * pre-activation under the frozen gate, silu(gate_clean) * up (what a graph calls the unit's
 * value as a target); in FREE it is the unit's value.
 *
 * Units: site AG_SITE_MLP = the MLP neurons of block `layer` (index < hidden_dim); site
 * AG_SITE_FEATURE = feature `index` (< n_features) of block `layer` of the transcoder set in
 * ag_intervene_options.transcoder (ag_generate_options.transcoder for steered generation),
 * which must fit the trace's model: same layer count and width, and, when the set records the
 * model it was loaded or trained for (ag_transcoder_load with a model, ag_transcoder_train), that
 * model: its weights' fingerprint (shape and a sample of every weight tensor; the same weights
 * loaded twice, or as .bin and F32 GGUF, match) must equal the trace's model's. A set of another
 * shape or loaded for another model is AG_ERR_INVALID_ARGUMENT naming opts->transcoder; a set
 * loaded without a model (or built in memory) is only shape-checked. A feature acts through its
 * decoder rows, as in circuit-tracer: clamped from its current activation a to a', it adds
 * (a' - a) x W_dec[index][o] to the MLP output of block layer + o for every block it writes
 * (o = 0 only for a per-layer set; every later block for a cross-layer set). Its clean value
 * (previous, SCALE, ADD) is its activation on the trace. Per mode:
 *   DIRECT  a = the clean activation (every MLP output frozen): a fixed vector per block, so
 *           changes equal a transcoder graph's adjacency columns (feature targets' values are
 *           W_enc . x at the read point, computable from the MLP_IN or MID tensor deltas).
 *   LINEAR  with a transcoder set the local replacement model is the transcoder's: from the
 *           lowest intervened block on, every MLP output is sum_s a_s W_dec[s -> l] plus the
 *           rest of the trace's MLP output (reconstruction error, b_dec and the skip term,
 *           held at their trace values: a graph's error nodes and constants), with every
 *           feature recomputed from the read point under its frozen multiplier a/pre (1 for an
 *           active feature, 0 for an inactive one). Changes equal a transcoder graph's path
 *           sums. A set thus changes LINEAR even without feature items. The MLP neurons are not
 *           run (their tensors keep the trace's values), so AG_SITE_MLP items are rejected.
 *   FREE    free_replacement = 0 (default): the real model; a clamped feature's current
 *           activation a is the encoder's (activation function included) on the run's
 *           read-point input, and (a' - a) x W_dec is added to the real MLP outputs
 *           (circuit-tracer's feature_intervention). free_replacement = 1: the transcoder's
 *           replacement model of LINEAR with features through their activation function
 *           (freeze_gates: through their frozen multipliers instead), so with
 *           freeze_attention, freeze_norms and freeze_gates it equals LINEAR; AG_SITE_MLP items
 *           are rejected.
 * Position 0 holding BOS has no features (as in graphs): its MLP output is never replaced, a
 * feature item whose range covers it skips it, and a feature item at position 0 alone is
 * AG_ERR_INVALID_ARGUMENT.
 */

/** What an intervention does (ag_intervention.kind). Values pinned. */
enum {
    AG_INTERVENE_SET = 1,   /**< clamp a unit to `value` */
    AG_INTERVENE_SCALE = 2, /**< clamp a unit to value x its clean value (0 ablates) */
    AG_INTERVENE_ADD = 3    /**< unit: clamp to clean value + value; residual site (AG_SITE_RESID,
                                 AG_SITE_MID, AG_SITE_EMBED = resid.0): add value x vector */
};

/** Modes (ag_intervene_options.mode). Values pinned. */
enum {
    AG_INTERVENE_DIRECT = 1,
    AG_INTERVENE_LINEAR = 2,
    AG_INTERVENE_FREE = 3
};

/** ag_intervention.position_end: every position from `position` on (generated tokens too). */
#define AG_POSITION_OPEN (-1)

/** One intervention. A plain struct (arrays of it are passed); zero `position_end` and
 *  `reserved`, and set `vector` NULL unless it is used. */
typedef struct ag_intervention {
    int32_t kind;         /**< AG_INTERVENE_SET, _SCALE or _ADD */
    int32_t site;         /**< AG_SITE_MLP (a neuron), AG_SITE_FEATURE (a transcoder feature),
                               AG_SITE_RESID, AG_SITE_MID or AG_SITE_EMBED */
    int32_t layer;        /**< block, 0..n_layers-1; AG_SITE_RESID also n_layers (final residual);
                               ignored for AG_SITE_EMBED */
    int32_t position;     /**< first position, 0..T-1 (ag_generate_steered: 0..seq_len-1) */
    int32_t position_end; /**< one past the last position; 0 = `position` only; AG_POSITION_OPEN =
                               every later position, including generated ones */
    int32_t index;        /**< unit index (AG_SITE_MLP: 0..hidden_dim-1; AG_SITE_FEATURE:
                               0..n_features-1); 0 for residual sites */
    float value;          /**< SET: the value; SCALE: the factor; ADD: the amount (finite) */
    int32_t reserved;     /**< must be 0 */
    const float *vector;  /**< ADD at a residual site: dim finite floats (borrowed for the call);
                               NULL otherwise */
} ag_intervention;

/** Options of ag_intervene. Fill with ag_intervene_options_init; fields only appended. */
typedef struct ag_intervene_options {
    size_t struct_size;
    int32_t mode;             /**< AG_INTERVENE_* (default AG_INTERVENE_FREE) */
    int32_t freeze_attention; /**< FREE: 1 = attention patterns at the trace's values (default 0) */
    int32_t freeze_norms;     /**< FREE: 1 = RMSNorm scales at the trace's values (default 0) */
    int32_t freeze_gates;     /**< FREE: 1 = SwiGLU factors silu(gate) at the trace's values (default 0);
                                   with free_replacement: the features' multipliers a/pre */
    /** The transcoder set of AG_SITE_FEATURE items and of the replacement model of LINEAR and
     *  FREE + free_replacement (see the section comment). Borrowed for the call; default NULL. */
    const struct ag_transcoder *transcoder;
    /** FREE with a transcoder: 0 (default) the real model, 1 the transcoder's replacement model
     *  (needs `transcoder`; ignored by DIRECT and LINEAR). */
    int32_t free_replacement;
} ag_intervene_options;

/** Fill `opts` with defaults. Errors: AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION
 *  (struct_size too small). Thread-safe. */
AG_API ag_status ag_intervene_options_init(ag_intervene_options *opts, size_t struct_size);
#define AG_INTERVENE_OPTIONS_INIT(o) ag_intervene_options_init(&(o), sizeof(o))

/** The activations and logits of an intervened run. Owns its arrays and is independent of the
 *  trace once made, but borrows the trace's model (free it before the model). Read-only after
 *  creation: getters may be called from several threads. */
typedef struct ag_intervention_result ag_intervention_result;

/** Rerun the trace's prompt with `items[0..n_items)` applied, in the mode of `opts` (NULL =
 *  defaults: FREE, nothing frozen). n_items may be 0 (the result equals the trace). Positions
 *  before the earliest intervened one, and blocks below the lowest intervened layer, keep the
 *  trace's values (causality); everything else is recomputed.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL trace/out, items NULL with n_items > 0, a bad field;
 *  the message names it, e.g. "items[2].layer = 9 is outside [0, 5)": unknown kind/site/mode,
 *  layer, position, position_end or index out of range (a feature's index against the set's
 *  n_features), a non-finite value or vector entry, a missing or unexpected vector, nonzero
 *  reserved, two clamps of one unit at one position; AG_SITE_FEATURE without
 *  opts->transcoder, a set that does not fit the model or was loaded for another model (see the
 *  section comment), a feature item at the BOS position alone, AG_SITE_MLP items where the
 *  transcoder replaces the MLPs, free_replacement without a transcoder),
 *  AG_ERR_OUT_OF_MEMORY, AG_ERR_NUMERIC (non-finite logits). *out is NULL on failure. With a
 *  transcoder set the result also holds the run's feature activations
 *  (ag_intervention_result_features). The items, their vectors and the set are borrowed for the
 *  call only.
 *  Threads: reads the trace (the trace's one-thread rule applies); the model and the set may be
 *  shared. */
AG_API ag_status ag_intervene(ag_intervention_result **out, const ag_trace *trace, const ag_intervention *items,
                              size_t n_items, const ag_intervene_options *opts);

/** Free a result and every array its getters returned. NULL is a no-op. Not while another
 *  thread reads the result. */
AG_API void ag_intervention_result_free(ag_intervention_result *result);

/** The run's logits at `position` (-1 = the last): vocab_size floats, borrowed until the result
 *  is freed. With delta = 1: their change from the trace (exact propagation in DIRECT/LINEAR).
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, position out of range). Thread-safe. */
AG_API ag_status ag_intervention_result_logits(const ag_intervention_result *result, int32_t position,
                                               int32_t delta, const float **logits);

/** Any tensor of the run, with the kinds and shapes of ag_trace_tensor, or (delta = 1) its
 *  change from the trace. Frozen quantities are the trace's (their change 0): with attention
 *  frozen (DIRECT, LINEAR, FREE + freeze_attention) the patterns and also q and k, which frozen
 *  attention does not read; with gates frozen the gate pre-activations; with norms frozen the
 *  norm scales. Borrowed until the result is freed. Errors: as ag_trace_tensor. Thread-safe.
 *  Transcoder features: ag_intervention_result_features. */
AG_API ag_status ag_intervention_result_tensor(const ag_intervention_result *result, ag_tensor_kind which,
                                               int32_t layer, int32_t delta, const float **data,
                                               int64_t shape[3], int32_t *ndim);

/** For unit intervention `item` (an index into the items given to ag_intervene) at `position`
 *  (inside its range): the unit's value in the trace (*previous) and the value it was clamped
 *  to (*value). Either pointer may be NULL. Errors: AG_ERR_INVALID_ARGUMENT (NULL result, item
 *  out of range or not a unit intervention, position outside its range). A feature item at a
 *  BOS position 0 reports NAN for both (no features there). Thread-safe. */
AG_API ag_status ag_intervention_result_unit(const ag_intervention_result *result, size_t item,
                                             int32_t position, float *previous, float *value);

/** The mode the result was computed in (AG_INTERVENE_*), 0 for NULL. Thread-safe. */
AG_API int32_t ag_intervention_result_mode(const ag_intervention_result *result);

/** The activations of the features of block `layer` of the transcoder set given to ag_intervene
 *  (ag_intervene_options.transcoder) in this run: [T][n_features] floats, row-major (position,
 *  feature), or with delta = 1 their change from the trace (whose activations are those of
 *  ag_transcoder_trace, except 0 at a BOS position 0). shape (may be NULL) receives
 *  {T, n_features}. Per mode:
 *    DIRECT  the frozen-multiplier activations mult x (W_enc . x + b_enc), mult = a / pre at the
 *            trace (1 for an active feature, 0 for an inactive one; a TopK set keeps its top k),
 *            x the run's read point: the change is mult x (W_enc . change of x), read from the
 *            exact delta run. They feed nothing (every MLP output is frozen): they are what the
 *            features would read, as DIRECT's neuron tensors are.
 *    LINEAR  the same formula, and here they are the activations the replacement model ran with.
 *    FREE    free_replacement = 0: the encoder, activation function included, on the real run's
 *            read point (positions and blocks the run did not change keep the trace's values
 *            exactly); free_replacement = 1: the replacement model's activations (through the
 *            activation function, or with freeze_gates mult x pre).
 *  In every mode a clamped feature reports the value it was clamped to (at the positions of its
 *  item; see ag_intervention_result_unit), and position 0 holding BOS reports 0 (no features).
 *  Cost and ownership: computed by ag_intervene whenever a set is given (one encoder GEMM per
 *  block in DIRECT and FREE; LINEAR and free_replacement keep the run's own) and kept in the
 *  result: 2 x n_layers x T x n_features floats. Borrowed until the result is freed.
 *  Errors: AG_ERR_INVALID_ARGUMENT (result or data NULL, layer outside [0, n_layers)),
 *  AG_ERR_STATE (the result was made without a transcoder set). Thread-safe. */
AG_API ag_status ag_intervention_result_features(const ag_intervention_result *result, int32_t layer, int32_t delta,
                                                 const float **data, int64_t shape[2]);

/** ag_generate with interventions: the real model (FREE mode, nothing frozen) with a KV cache,
 *  `items` applied at their positions of the growing sequence (prompt, then generated tokens;
 *  position_end = AG_POSITION_OPEN keeps intervening on every generated token). Because there is
 *  no clean run of the generated text, SCALE and unit ADD are relative to the unit's value as
 *  computed in this run at that position (for a single intervention on the prompt that is its
 *  clean value). Transcoder features (AG_SITE_FEATURE, the set in opts->transcoder) act as in
 *  ag_intervene's FREE mode without free_replacement: (a' - a) x W_dec added to the real MLP
 *  outputs, a the feature's activation in this run; no features at a BOS position 0. With
 *  n_items = 0 the output equals ag_generate's. Same arguments, stopping rules and sampling as
 *  ag_generate. Errors: those of ag_generate and of ag_intervene's items (positions checked
 *  against the model's seq_len), and a set that does not fit `model` or was loaded for another
 *  model (as ag_intervene). Thread-safe w.r.t. the model and the set. */
AG_API ag_status ag_generate_steered(const ag_model *model, const int32_t *prompt, size_t n_prompt,
                                     const ag_intervention *items, size_t n_items,
                                     const ag_generate_options *opts, int32_t *out_tokens, size_t cap,
                                     size_t *n_out);

/* ---- validation: the graph's predictions against measured interventions ---------------------
 *
 * ag_graph_validate ablates the graph's most influential source nodes (units: set to 0;
 * embeddings and error nodes: their vector subtracted at the residual stream) one at a time,
 * and any caller-chosen groups of nodes together, and compares the change of one logit target
 * (any logit node: a token's demeaned logit, a logit difference or a custom direction, i.e.
 * w . final-norm output at the last position, as the graph defines it) with two predictions:
 *   predicted_direct = -(sum of the edges from the ablated nodes to the target): the direct effect;
 *   predicted_total  = the sum over every path of the unpruned graph (a forward sweep over the
 *                      graph's rows in layer order: a unit's change is the sum of its incoming
 *                      edges times its sources' relative changes; ablated nodes stay ablated).
 * Measured in each requested mode: DIRECT (equals predicted_direct), LINEAR (equals
 * predicted_total; units that are not graph nodes are held at their trace values, as the
 * graph's error nodes hold them), FREE (the real model) and FREE with frozen attention.
 * A transcoder graph (AG_BASIS_TRANSCODERS) needs the set it was built with
 * (ag_validate_options.transcoder): its feature nodes are ablated as AG_SITE_FEATURE items
 * (-a x W_dec into every block the feature writes), LINEAR runs the transcoder's replacement
 * model (ag_intervene's LINEAR with the set; features that are not nodes held), and FREE the
 * real model (ag_intervene's FREE without free_replacement).
 */

/** Modes measured by ag_graph_validate (ag_validate_options.modes, or-ed). Values pinned. */
enum {
    AG_VALIDATE_DIRECT = 1,
    AG_VALIDATE_LINEAR = 2,
    AG_VALIDATE_FREE = 4,                  /**< the real model, attention free */
    AG_VALIDATE_FREE_FROZEN_ATTENTION = 8, /**< the real model, attention patterns frozen */
    AG_VALIDATE_ALL = 15
};

/** Options of ag_graph_validate. Fill with ag_validate_options_init; fields only appended. */
typedef struct ag_validate_options {
    size_t struct_size;
    int32_t top_k;              /**< source nodes to ablate one by one, by influence (default 20; 0: none) */
    int32_t modes;              /**< AG_VALIDATE_* or-ed (default AG_VALIDATE_ALL) */
    int64_t target;             /**< node index of a logit node (a token, a logit difference or a
                                     direction); -1 (default): the one with the largest weight
                                     (the first of equals) */
    int32_t include_errors;     /**< 1 (default): error nodes may be among the top-k */
    int32_t include_embeddings; /**< 1 (default): embedding nodes may be among the top-k */
    const int64_t *group_nodes; /**< groups ablated together: node indices, groups back to back (borrowed) */
    const int32_t *group_sizes; /**< [n_groups] sizes (each >= 1) */
    int32_t n_groups;           /**< default 0 */
    /** A transcoder graph: the set it was built with (required; borrowed for the call; checked
     *  against the graph's shape and feature activations, and against the trace's model when the
     *  set records the model it was loaded for). Ignored for neuron graphs. Default NULL. */
    const struct ag_transcoder *transcoder;
} ag_validate_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_validate_options_init(ag_validate_options *opts, size_t struct_size);
#define AG_VALIDATE_OPTIONS_INIT(o) ag_validate_options_init(&(o), sizeof(o))

/** A validation report. Owns its data; independent of the graph and trace once made. Read-only:
 *  getters may be called from several threads. */
typedef struct ag_validation ag_validation;

/** Validate `graph` against the model on `trace`, the trace it was built from (checked: same
 *  positions and tokens). Runs 1 + (top_k + n_groups) x (modes) interventions.
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL; top_k < 0; modes outside AG_VALIDATE_ALL; target
 *  not a logit node; a group node out of range, a logit node, or a group size < 1; a trace
 *  that does not match the graph; a transcoder graph without opts->transcoder, or with a set
 *  of another shape, loaded for another model (as ag_intervene), or whose activations on the
 *  trace differ from the graph's; the message names the field), AG_ERR_UNSUPPORTED (a basis neither neurons nor transcoders),
 *  AG_ERR_OUT_OF_MEMORY. *out is NULL on failure.
 *  Threads: reads the trace (its one-thread rule applies); the graph may be shared. */
AG_API ag_status ag_graph_validate(ag_validation **out, const ag_graph *graph, const ag_trace *trace,
                                   const ag_validate_options *opts);

/** Free a report. NULL is a no-op. */
AG_API void ag_validation_free(ag_validation *validation);

/** Number of rows: the ablated nodes (most influential first), then the groups. 0 for NULL. */
AG_API size_t ag_validation_n_rows(const ag_validation *validation);

/** One row of a report. The caller sets struct_size = sizeof(ag_validation_row). */
typedef struct ag_validation_row {
    size_t struct_size;
    int64_t node;               /**< the ablated node's index; -1 for a group row */
    int32_t group;              /**< the group's index; -1 for a node row */
    int32_t reserved;
    double activation;          /**< units: the activation removed; NAN otherwise and for groups */
    double influence;           /**< the node's influence I (unpruned); NAN for groups */
    double predicted_direct;    /**< see the section comment */
    double predicted_total;
    double measured_direct;     /**< the target's change in each mode; NAN when not measured */
    double measured_linear;
    double measured_free;
    double measured_free_frozen_attention;
} ag_validation_row;

/** Fill `out` for row `i` (caller sets out->struct_size). Errors: AG_ERR_INVALID_ARGUMENT
 *  (NULL, i out of range), AG_ERR_VERSION. Thread-safe. */
AG_API ag_status ag_validation_get_row(const ag_validation *validation, size_t i, ag_validation_row *out);

/** Agreement of one mode's measurements with one prediction over every row. */
typedef struct ag_validation_stats {
    size_t struct_size;
    int32_t mode;            /**< AG_VALIDATE_* (one bit) */
    int32_t versus_total;    /**< 0: against predicted_direct; 1: against predicted_total */
    int64_t n;               /**< rows compared */
    double pearson;          /**< correlation of measured with predicted (NAN when constant) */
    double spearman;         /**< rank correlation (average ranks for ties) */
    double sign_agreement;   /**< share of rows with |predicted| > 1e-6 max|predicted| whose signs agree */
    double rel_error;        /**< max |measured - predicted| / max |predicted| */
    double median_rel_error; /**< median of |measured - predicted| / max(|predicted|, 1e-3 max|predicted|) */
} ag_validation_stats;

/** Fill `out` for `mode` (one AG_VALIDATE_* bit that was measured) against predicted_total
 *  (versus_total = 1) or predicted_direct (0). Errors: AG_ERR_INVALID_ARGUMENT (NULL, a mode
 *  not measured), AG_ERR_VERSION. Thread-safe. */
AG_API ag_status ag_validation_get_stats(const ag_validation *validation, int32_t mode, int32_t versus_total,
                                         ag_validation_stats *out);

/** The report as JSON (free *out with ag_free; *len may be NULL):
 *  {"target":{"node","id","kind","token","token_b","value"},"modes":[names],
 *   "nodes":[{"node","id","kind","layer","position","index","activation","influence",
 *             "predicted_direct","predicted_total","measured":{mode: change}}],
 *   "groups":[{"nodes":[ids],"predicted_direct","predicted_total","measured":{...}}],
 *   "summary":{mode:{"vs_direct":{stats},"vs_total":{stats}}}}
 *  with target kind "token", "logit_diff" or "direction" (token and token_b -1 when they do
 *  not apply), mode names "direct", "linear", "free", "free_frozen_attention" and stats
 *  {"n","pearson","spearman","sign_agreement","rel_error","median_rel_error"}.
 *  Deterministic. Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_validation_json(const ag_validation *validation, char **out, size_t *len);

/* ==== TRAINING AND THE BUILT-IN MODEL ==== */

/* ---- the built-in model ------------------------------------------------------------------ */

/** The world seed of the built-in model (pass it to the ag_world_* functions). */
#define AG_BUILTIN_WORLD_SEED 1u

/** Load the model compiled into the library: a small Llama trained by `attrgraph train` on the
 *  synthetic world (ag_world_*), with its word-level tokenizer; the CLI's default model. The
 *  model borrows the library's static bytes (no file, no copy of the float32 weights).
 *  Errors: AG_ERR_NOT_FOUND (the library was built without it: CMake AG_BUILTIN_MODEL=OFF or no
 *  models/builtin.gguf at configure time), AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_model_load_builtin(ag_model **out);

/* ---- writing models ------------------------------------------------------------------------ */

/** Write `model` to `path`: AG_FORMAT_GGUF (GGUF v3, F32 tensors, the tokenizer embedded
 *  when one is attached) or AG_FORMAT_LLAMA2C (legacy .bin; write the tokenizer separately
 *  with ag_model_save_tokenizer). Loading the file gives the same weights bit for bit.
 *  Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_UNSUPPORTED (format), AG_ERR_IO, AG_ERR_OUT_OF_MEMORY. */
AG_API ag_status ag_model_save(const ag_model *model, const char *path, int32_t format);

/** Write the attached tokenizer as a llama2.c tokenizer .bin. Errors: AG_ERR_STATE (no
 *  tokenizer), AG_ERR_INVALID_ARGUMENT, AG_ERR_IO, AG_ERR_OUT_OF_MEMORY. */
AG_API ag_status ag_model_save_tokenizer(const ag_model *model, const char *path);

/* ---- the synthetic world ------------------------------------------------------------------- */
/* A deterministic, seeded world of people, cities, countries (each with a capital) and
 * languages; sentences state its facts ("Alice lives in Merin.", "Merin is in the country of
 * Tolevia.", "the capital of Tolevia is Dasko."). The built-in model is trained on it, so the
 * circuits behind these tasks are known in advance: */
typedef enum ag_world_task {
    AG_WORLD_INDUCTION = 0, /**< a run of random words repeated: predict the repeat */
    AG_WORLD_RETRIEVAL = 1, /**< "P lives in C. ... P lives in the country of" -> C's country
                                 (C only in the context, the city->country fact in the weights) */
    AG_WORLD_ONE_HOP = 2,   /**< "the capital of K is" -> K's capital (a stored fact) */
    AG_WORLD_TWO_HOP = 3,   /**< "P lives in C. ... the capital of the country where P lives is"
                                 -> the capital (the country never in the prompt) */
    AG_WORLD_CITY = 4       /**< "P lives in C. ... P lives in the city of" -> C (retrieval only) */
} ag_world_task;
#define AG_WORLD_N_TASKS 5

/** Held-out prompt `index` of `task` in the world of `world_seed`, as text (no BOS), and the
 *  expected next word (for induction: the whole expected repeat, words separated by spaces).
 *  Retrieval, two-hop and city prompts only use person-city pairings that training never
 *  shows; induction prompts are new random sequences. *text and *answer (either may be NULL)
 *  are NUL-terminated, free with ag_free. Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_OUT_OF_MEMORY.
 *  Thread-safe. */
AG_API ag_status ag_world_prompt(uint64_t world_seed, ag_world_task task, uint64_t index, char **text,
                                 char **answer);

/** Training sequence `index` of the world of `world_seed`, as text (free with ag_free).
 *  Training step s of a batch of B reads sequences s*B .. s*B+B-1. */
AG_API ag_status ag_world_training_text(uint64_t world_seed, uint64_t index, int32_t n_tokens, char **text);

/** Greedy accuracy of a model on held-out prompts of every task (the caller sets
 *  struct_size). For induction every predictable token of the repeat is scored; the other
 *  tasks score the one answer token. */
typedef struct ag_world_eval {
    size_t struct_size;
    int32_t n_prompts[AG_WORLD_N_TASKS];
    int32_t n_scored[AG_WORLD_N_TASKS];
    int32_t n_correct[AG_WORLD_N_TASKS];
    double accuracy[AG_WORLD_N_TASKS]; /**< n_correct / n_scored */
} ag_world_eval;

/** Evaluate `model` on `n_per_task` prompts of each task (indices 0..n-1). The model must use
 *  the world's vocabulary. Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_VERSION,
 *  AG_ERR_UNSUPPORTED (another vocabulary), AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_world_evaluate(const ag_model *model, uint64_t world_seed, int32_t n_per_task,
                                   ag_world_eval *out);

/* ---- training ------------------------------------------------------------------------------ */

/** What a progress callback sees (struct_size first, new fields appended). */
typedef struct ag_train_progress {
    size_t struct_size;
    int64_t step;             /**< optimiser steps done */
    int64_t total_steps;
    float loss;               /**< mean cross-entropy of the last step's batch */
    float loss_avg;           /**< exponential moving average of loss (0.95) */
    float learning_rate;      /**< of the last step */
    float grad_norm;          /**< global gradient norm of the last step, before clipping */
    double tokens_per_second; /**< since the run (or resume) started */
    double elapsed_seconds;
} ag_train_progress;

/** Progress callback: return non-zero to stop (ag_train then returns AG_ERR_CANCELLED). */
typedef int (*ag_train_progress_fn)(const ag_train_progress *progress, void *user_data);

/** Options for ag_train. Fill with ag_train_options_init; defaults reproduce the built-in
 *  model (see README "The built-in model"). */
typedef struct ag_train_options {
    size_t struct_size;
    /* corpus */
    uint64_t world_seed;       /**< the synthetic world (default AG_BUILTIN_WORLD_SEED) */
    /* architecture (Llama: RMSNorm eps 1e-5, RoPE base 10000) */
    int32_t dim;               /**< default 96 */
    int32_t hidden_dim;        /**< default 256 */
    int32_t n_layers;          /**< default 4 */
    int32_t n_heads;           /**< default 8 */
    int32_t n_kv_heads;        /**< default 8 */
    int32_t seq_len;           /**< training context, default 64 */
    int32_t shared_classifier; /**< 1: the classifier is the embedding (default 0) */
    /* optimisation: AdamW, linear warm-up then cosine decay, global-norm clipping */
    uint64_t seed;             /**< initialisation seed (default 1) */
    int32_t batch_size;        /**< sequences per step (default 32) */
    int64_t steps;             /**< default 4000 */
    int64_t warmup_steps;      /**< default 100 */
    float learning_rate;       /**< peak, default 2e-3 */
    float min_learning_rate;   /**< end of the cosine, default 1e-4 */
    float weight_decay;        /**< decoupled, matrices only (not RMSNorm gains), default 0.1 */
    float beta1, beta2;        /**< default 0.9, 0.95 */
    float adam_eps;            /**< default 1e-8 */
    float grad_clip;           /**< max global gradient norm, 0 = off (default 1) */
    /* files */
    const char *output_path;     /**< write the trained model here as GGUF (or NULL) */
    const char *command;         /**< recorded in the GGUF as attrgraph.train.command (or NULL) */
    const char *checkpoint_path; /**< write a checkpoint here every checkpoint_every steps and at the end */
    int64_t checkpoint_every;    /**< default 0 = only at the end (when checkpoint_path is set) */
    const char *resume_path;     /**< continue from this checkpoint (same architecture, world,
                                      seed and batch size); the result equals an uninterrupted run */
    /* progress */
    ag_train_progress_fn progress; /**< called every progress_every steps and at the end (or NULL) */
    void *user_data;
    int64_t progress_every;        /**< default 10 */
} ag_train_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_train_options_init(ag_train_options *opts, size_t struct_size);
#define AG_TRAIN_OPTIONS_INIT(o) ag_train_options_init(&(o), sizeof(o))

/** Train a Llama model on the synthetic world from scratch (or from opts->resume_path). Every
 *  matmul of the forward and backward passes is one BLAS call over batch x positions rows.
 *  Deterministic: the same options and OpenBLAS thread count give the same weights bit for bit
 *  (attrgraph never changes the thread count). The trained model is written to
 *  opts->output_path when set and returned in *out when out is non-NULL (at least one of them
 *  is required). Errors: AG_ERR_INVALID_ARGUMENT (option out of range), AG_ERR_IO,
 *  AG_ERR_FORMAT (resume file), AG_ERR_NUMERIC (the loss became non-finite),
 *  AG_ERR_CANCELLED, AG_ERR_OUT_OF_MEMORY. */
AG_API ag_status ag_train(ag_model **out, const ag_train_options *opts);

/* ==== TRANSCODERS ==== */
/*
 * Transcoders (DESIGN §1.6): sparse feature sets that read the MLP input of every block and
 * write its MLP output, so attribution graphs can be built on interpretable features
 * (ag_graph_options.basis = AG_BASIS_TRANSCODERS, .transcoders = the set).
 *
 *   pre_l  = W_enc_l · x_l + b_enc_l            x_l = the read point of block l (AG_READ_*)
 *   a_l    = act(pre_l)                          ReLU, JumpReLU (threshold θ), or TopK (k)
 *   recon_l = Σ_{l' ≤ l} W_dec_{l'→l} · a_l' + b_dec_l (+ W_skip_l · x_l)
 * A per-layer transcoder (PLT) has only l' = l; a cross-layer transcoder (CLT) lets a layer-l'
 * feature write to every MLP output l ≥ l'. The error of (l, p) is mlp_out − recon.
 *
 * Files: the circuit-tracer layout in safetensors, one directory per set.
 *   PLT: layer_{l}.safetensors with W_enc [F, D], W_dec [F, D], b_enc [F], b_dec [D],
 *        optional activation_function.threshold [F] (JumpReLU), W_skip [D, D] (x · W_skipᵀ), k.
 *   CLT: W_enc_{l}.safetensors with W_enc_{l} [F, D], b_enc_{l} [F], b_dec_{l} [D], optional
 *        threshold_{l} [F] and W_skip_{l} [D, D] (applied as x · W_skip_{l}), and
 *        W_dec_{l}.safetensors with W_dec_{l} [F, L−l, D].
 *   Optional config.yaml (model_kind, feature_input_hook, activation, k) and labels.json.
 * Reading accepts F32, F16 and BF16 tensors (converted to float32); writing uses F32 and puts
 * attrgraph's settings in each file's __metadata__ too, among them the fingerprint of the
 * model the set was made for ("attrgraph.model_fingerprint", 16 hex digits; also
 * `model_fingerprint` in config.yaml), checked by ag_transcoder_load. Files without it
 * (circuit-tracer's) are only shape-checked.
 *
 * THREADS: a set is immutable after loading or training except for ag_transcoder_label, which
 * attaches labels (do not call it while other threads use the set); everything else may be
 * called from several threads at once.
 */

/** A transcoder set for every layer of one model. */
typedef struct ag_transcoder ag_transcoder;

/** Kinds (ag_transcoder_info.kind, options). Values pinned. */
enum { AG_TRANSCODER_PER_LAYER = 1, AG_TRANSCODER_CROSS_LAYER = 2 };
/** Activation functions. Values pinned. */
enum { AG_ACTIVATION_RELU = 1, AG_ACTIVATION_JUMPRELU = 2, AG_ACTIVATION_TOPK = 3 };
/** Read points: the normalised MLP input u = RMSNorm(x_mid)·g_ffn (AG_TENSOR_MLP_IN), or the
 *  pre-norm residual after attention x_mid (AG_TENSOR_MID). Values pinned. */
enum { AG_READ_MLP_IN = 1, AG_READ_RESID_MID = 2 };

/** Options of ag_transcoder_load. */
typedef struct ag_transcoder_load_options {
    size_t struct_size;
    int32_t read_point; /**< 0 (default): from the files' metadata or config.yaml, else
                             AG_READ_MLP_IN for a PLT and AG_READ_RESID_MID for a CLT */
} ag_transcoder_load_options;
/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_transcoder_load_options_init(ag_transcoder_load_options *opts, size_t struct_size);

/** Load a set from directory `path` (PLT or CLT detected by its files). With `model`
 *  non-NULL every shape is checked against it (layer count, width); when the files record the
 *  model the set was made for (the fingerprint ag_transcoder_save writes: a set trained, or
 *  loaded with a model, before it was saved), that fingerprint must be `model`'s (the same
 *  weights loaded again, or as .bin and its F32 GGUF, match; other weights of the same shape do
 *  not: AG_ERR_FORMAT naming the directory, "the set was made for another model", and both
 *  fingerprints); files without one (circuit-tracer's) are accepted as before. The set then
 *  records that it was loaded for `model` (a fingerprint of its weights, not the pointer: the
 *  model may be freed and loaded again): ag_intervene, ag_generate_steered, ag_graph_validate,
 *  ag_graph_build, ag_transcoder_trace, ag_transcoder_evaluate and ag_transcoder_label then
 *  refuse it with another model of the same shape. With `model` NULL nothing is checked or
 *  recorded (only shapes are checked where the set is used: the way to use a set with other
 *  weights deliberately); a fingerprint read from the files is still written again by
 *  ag_transcoder_save. Errors:
 *  AG_ERR_INVALID_ARGUMENT, AG_ERR_IO, AG_ERR_NOT_FOUND (no layer files), AG_ERR_FORMAT (a bad
 *  file: truncated header, header not a JSON object, unknown dtype, offsets past the end, a
 *  missing tensor, a shape that disagrees with the other files or with the model, a malformed
 *  fingerprint or one of another model; the message names the file or directory and the
 *  field), AG_ERR_UNSUPPORTED, AG_ERR_OUT_OF_MEMORY. *out is NULL on failure. Thread-safe. */
AG_API ag_status ag_transcoder_load(ag_transcoder **out, const char *path, const ag_model *model,
                                    const ag_transcoder_load_options *opts);

/** Write the set to directory `path` (created if needed; existing layer files are replaced)
 *  in the layout above (F32), with config.yaml and, when labels are attached, labels.json.
 *  Loading the directory gives the same tensors bit for bit. The fingerprint of the model the
 *  set was trained or loaded for (or, for a set loaded with a NULL model, the one its files
 *  recorded) goes into every layer file's __metadata__ ("attrgraph.model_fingerprint") and
 *  config.yaml (`model_fingerprint`), so that ag_transcoder_load refuses the directory for
 *  another model; a set built in memory, or loaded without a model from files without one,
 *  writes none. Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_IO, AG_ERR_OUT_OF_MEMORY. Thread-safe. */
AG_API ag_status ag_transcoder_save(const ag_transcoder *tc, const char *path);

/** Free a set. NULL is a no-op. */
AG_API void ag_transcoder_free(ag_transcoder *tc);

/** Facts about a set. The caller sets struct_size = sizeof(info). */
typedef struct ag_transcoder_info {
    size_t struct_size;
    int32_t kind;       /**< AG_TRANSCODER_* */
    int32_t activation; /**< AG_ACTIVATION_* */
    int32_t read_point; /**< AG_READ_* */
    int32_t n_layers;
    int32_t d_model;
    int32_t n_features; /**< features per layer (d_tc) */
    int32_t k;          /**< TopK: features kept per token; 0 otherwise */
    int32_t has_skip;   /**< 1 with W_skip */
    int32_t has_labels; /**< 1 when feature labels are attached */
} ag_transcoder_info;
/** Fill `info` (caller sets info->struct_size). Errors: AG_ERR_INVALID_ARGUMENT (NULL),
 *  AG_ERR_VERSION. Thread-safe. */
AG_API ag_status ag_transcoder_get_info(const ag_transcoder *tc, ag_transcoder_info *info);

/** Borrow one tensor of layer `layer` as float32: "W_enc" [F][D], "b_enc" [F], "threshold" [F],
 *  "W_dec" [F][D] (PLT) or [F][L−layer][D] (CLT), "b_dec" [D], "W_skip" [D][D] (y = W_skip·x).
 *  Valid until the set is freed. Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_NOT_FOUND (no such
 *  tensor, e.g. no threshold). Thread-safe. */
AG_API ag_status ag_transcoder_tensor(const ag_transcoder *tc, int32_t layer, const char *name, const float **data,
                                      int64_t shape[3], int32_t *ndim);

/** Encode n rows x[n][D] (the read-point input of block `layer`): acts[n][F] = act(pre) and,
 *  when `pre` is non-NULL, pre[n][F] = W_enc·x + b_enc. One GEMM. Thread-safe. */
AG_API ag_status ag_transcoder_encode(const ag_transcoder *tc, int32_t layer, const float *x, size_t n, float *acts,
                                      float *pre);

/** Reconstruct the MLP output of block `layer` for n rows: out[n][D]. `acts` holds the
 *  activations of the writing layers back to back: a PLT [n][F] of `layer`; a CLT
 *  [layer+1][n][F] of layers 0..layer. `x` is the read-point input of `layer` ([n][D]; used by
 *  the skip connection, may be NULL without one). Thread-safe. */
AG_API ag_status ag_transcoder_decode(const ag_transcoder *tc, int32_t layer, const float *acts, const float *x,
                                      size_t n, float *out);

/** On a trace: the features of block `layer` at every position, acts[T][F] (may be NULL), and
 *  the reconstruction recon[T][D] and error = mlp_out − recon (each may be NULL).
 *  Errors: AG_ERR_INVALID_ARGUMENT (NULL, layer out of range, a trace of another shape, or a
 *  set loaded or trained for another model than the trace's: see ag_transcoder_load). */
AG_API ag_status ag_transcoder_trace(const ag_transcoder *tc, const ag_trace *trace, int32_t layer, float *acts,
                                     float *recon, float *error);

/** The label of feature `feature` of block `layer` (NULL-terminated, owned by the set), or
 *  AG_ERR_NOT_FOUND when no labels are attached. Thread-safe. */
AG_API ag_status ag_transcoder_feature_label(const ag_transcoder *tc, int32_t layer, int32_t feature,
                                             const char **label);

/* ---- training ---------------------------------------------------------------------------- */

/** What a training progress callback sees (struct_size first, fields appended). The metrics are
 *  averages over the layers and over the steps since the previous report. */
typedef struct ag_transcoder_progress {
    size_t struct_size;
    const char *phase;        /**< "corpus", "collect", "train" */
    int64_t step, total_steps;
    float loss;               /**< reconstruction + sparsity term */
    float mse;                /**< mean squared error per token (normalised units) */
    float fvu;                /**< fraction of variance unexplained */
    float l0;                 /**< active features per token and layer */
    float dead_fraction;      /**< features that have not fired for dead_steps steps */
    float learning_rate;
    float sparsity_coefficient; /**< the L1 weight in force (after its warm-up) */
    double tokens_seen;
    double elapsed_seconds;
} ag_transcoder_progress;

/** Return non-zero to stop (AG_ERR_CANCELLED). */
typedef int (*ag_transcoder_progress_fn)(const ag_transcoder_progress *progress, void *user_data);

/** Options of ag_transcoder_train. Fill with ag_transcoder_train_options_init. */
typedef struct ag_transcoder_train_options {
    size_t struct_size;
    /* the set */
    int32_t kind;             /**< AG_TRANSCODER_PER_LAYER (default) or _CROSS_LAYER */
    int32_t activation;       /**< AG_ACTIVATION_RELU (default; L1 penalty) or _TOPK (no penalty);
                                   JumpReLU sets are loaded, not trained */
    int32_t read_point;       /**< AG_READ_MLP_IN (default) */
    int32_t n_features;       /**< features per layer (default 1024) */
    int32_t k;                /**< TopK: features per token (default 16) */
    int32_t skip;             /**< 1: learn a skip connection W_skip (default 0) */
    /* the corpus */
    const char *corpus_path;  /**< UTF-8 text; NULL (default): text sampled from the model */
    int64_t corpus_tokens;    /**< tokens to sample, or to read at most from corpus_path (<= 0: the
                                   whole file) (default 400000) */
    float temperature;        /**< sampling temperature (default 1) */
    int32_t context;          /**< window length in tokens, BOS first (default 128) */
    int32_t skip_bos;         /**< 1 (default): the BOS position is not a training example */
    int64_t buffer_tokens;    /**< activation buffer, shuffled, refilled by halves (default 65536) */
    uint64_t seed;            /**< corpus, initialisation, shuffling (default 1) */
    /* optimisation: Adam, linear warm-up, constant, linear decay over the last decay_fraction */
    int64_t steps;            /**< default 3000 */
    int32_t batch_size;       /**< tokens per step (default 2048) */
    float learning_rate;      /**< default 2e-3 */
    int64_t warmup_steps;     /**< default 100 */
    float decay_fraction;     /**< default 0.2 */
    float beta1, beta2;       /**< default 0.9, 0.999 */
    float sparsity_coefficient; /**< λ of λ·Σ_i a_i·‖W_dec,i‖ on normalised data (default 3) */
    float sparsity_warmup_fraction; /**< λ ramps up linearly over this share of steps (default 0.05) */
    /* dead features */
    int64_t dead_steps;       /**< a feature silent for this many steps is dead (default 500) */
    int64_t resample_every;   /**< resample dead features every this many steps (default 500; 0: never) */
    float resample_until;     /**< ... during this share of training (default 0.6) */
    /* checkpoints */
    const char *checkpoint_path; /**< directory written every checkpoint_every steps and at the end */
    int64_t checkpoint_every;    /**< default 0: only at the end (when checkpoint_path is set) */
    const char *resume_path;     /**< continue from this checkpoint (same options): the result equals an
                                      uninterrupted run bit for bit */
    /* progress */
    ag_transcoder_progress_fn progress;
    void *user_data;
    int64_t progress_every;   /**< default 50 */
} ag_transcoder_train_options;

/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_transcoder_train_options_init(ag_transcoder_train_options *opts, size_t struct_size);
#define AG_TRANSCODER_TRAIN_OPTIONS_INIT(o) ag_transcoder_train_options_init(&(o), sizeof(o))

/** Train a set for `model` (recorded as the set's model, as by ag_transcoder_load) on
 *  activations of the model over the corpus: the read-point inputs and MLP outputs of every
 *  block are collected by batched forward passes into a bounded shuffled buffer; every layer is
 *  trained on the same tokens. All heavy math is GEMMs.
 *  Deterministic: the same options and OpenBLAS thread count give the same set bit for bit.
 *  Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_STATE (a text corpus without tokenizer), AG_ERR_IO,
 *  AG_ERR_FORMAT (resume file), AG_ERR_NUMERIC, AG_ERR_CANCELLED, AG_ERR_OUT_OF_MEMORY.
 *  *out is NULL on failure. */
AG_API ag_status ag_transcoder_train(ag_transcoder **out, const ag_model *model,
                                     const ag_transcoder_train_options *opts);

/* ---- evaluation and labels ------------------------------------------------------------------ */

/** Options of ag_transcoder_evaluate and ag_transcoder_label (the held-out text). */
typedef struct ag_transcoder_eval_options {
    size_t struct_size;
    const char *corpus_path; /**< UTF-8 text; NULL (default): sampled from the model */
    int64_t n_tokens;        /**< tokens to sample / use (default 65536) */
    int32_t context;         /**< window length (default 128) */
    float temperature;       /**< default 1 */
    uint64_t seed;           /**< default 12345 (not a training seed: held out) */
    int32_t top_contexts;    /**< labels: top-activating contexts kept per feature (default 8) */
    int32_t top_tokens;      /**< labels: output tokens per feature (default 5) */
    ag_transcoder_progress_fn progress;
    void *user_data;
} ag_transcoder_eval_options;
/** Fill `opts` with defaults (struct_size = the caller's sizeof). Errors:
 *  AG_ERR_INVALID_ARGUMENT (NULL), AG_ERR_VERSION (struct_size too small). Thread-safe. */
AG_API ag_status ag_transcoder_eval_options_init(ag_transcoder_eval_options *opts, size_t struct_size);
#define AG_TRANSCODER_EVAL_OPTIONS_INIT(o) ag_transcoder_eval_options_init(&(o), sizeof(o))

/** Per-layer statistics (a plain struct: arrays of it are filled). */
typedef struct ag_transcoder_layer_stats {
    double fvu;           /**< Σ‖y − ŷ‖² / Σ‖y − ȳ‖² over the scored tokens */
    double mse;           /**< mean ‖y − ŷ‖² per token */
    double l0;            /**< mean active features per token */
    double dead_fraction; /**< features never active on the held-out text */
    int64_t n_tokens;
} ag_transcoder_layer_stats;

/** Summary of an evaluation. The caller sets struct_size. */
typedef struct ag_transcoder_eval {
    size_t struct_size;
    int64_t n_tokens;          /**< scored tokens (next-token predictions) */
    double loss_model;         /**< mean next-token cross-entropy of the real model */
    double loss_replacement;   /**< ... with every MLP output replaced by its reconstruction */
    double loss_zero_ablation; /**< ... with every MLP output zero (a reference) */
    double loss_recovered;     /**< (zero − replacement) / (zero − model) */
    double mean_fvu, mean_l0, mean_dead_fraction;
} ag_transcoder_eval;

/** Evaluate on held-out text: layers[n_layers] per-layer stats (may be NULL) and the summary.
 *  Errors: AG_ERR_INVALID_ARGUMENT (shapes of the set and model disagree, or the set was loaded
 *  or trained for another model: see ag_transcoder_load), AG_ERR_VERSION,
 *  AG_ERR_STATE, AG_ERR_IO, AG_ERR_CANCELLED, AG_ERR_OUT_OF_MEMORY. */
AG_API ag_status ag_transcoder_evaluate(const ag_transcoder *tc, const ag_model *model,
                                        const ag_transcoder_eval_options *opts, ag_transcoder_layer_stats *layers,
                                        ag_transcoder_eval *summary);

/** Label every feature: its top-activating contexts on the text and the top output tokens of
 *  its decoder direction through the unembedding (W_cls · (g_final ⊙ Σ decoder rows)). The
 *  labels are attached to the set (written by ag_transcoder_save as labels.json, used as node
 *  labels by graphs). Not thread-safe on `tc`. Errors as ag_transcoder_evaluate. */
AG_API ag_status ag_transcoder_label(ag_transcoder *tc, const ag_model *model, const ag_transcoder_eval_options *opts);

/** Contributions of constants (transcoder biases b_dec and skip terms) to the value of graph
 *  node `index`: value = Σ incoming edges + *constant (0 for neuron graphs and for nodes
 *  without incoming edges). Errors: AG_ERR_INVALID_ARGUMENT, AG_ERR_NOT_FOUND. Thread-safe. */
AG_API ag_status ag_graph_node_constant(const ag_graph *graph, size_t index, double *constant);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTRGRAPH_H */
