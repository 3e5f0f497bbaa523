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
} ag_generate_options;

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

/* ==== GRAPH (issue: decomposition graphs) ================================================ */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTRGRAPH_H */
