/* GGUF (v2 and v3) reader for architecture "llama": header, metadata, tensor infos, then
 * weights mapped in place (F32) or converted once into model-owned float32 (F16).
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count; then
 * kv_count x {string key, u32 value type, value}; then tensor_count x {string name,
 * u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type, u64 offset}; then padding to
 * general.alignment (default 32) and the data section, where each offset is relative to its
 * start. A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
 *
 * Every count, length and offset is checked against the bytes that remain before it is
 * used, in 64-bit overflow-safe arithmetic, and every failure names the file and the header
 * field, key or tensor involved.
 *
 * Weight layout: GGUF lists dims innermost first, so a tensor with ne = [in, out] is the
 * row-major [out][in] matrix llama2.c uses (y = W x) without any copy. RoPE order: we assume
 * llama2.c's adjacent-pair RoPE, which is what ggml's "normal" RoPE mode computes and what
 * llama.cpp's convert-llama2c-to-ggml writes (our fixture, see ../shared/models/README.md):
 * Q/K are NOT un-permuted. GGUF files converted from Hugging Face checkpoints by
 * convert_hf_to_gguf.py have their Q/K rows permuted *into* this order as well, so the same
 * reading applies to them. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/blob.h"
#include "io/tokenizer.h"
#include "model/model.h"

static const char *const FN = "ag_model_load";

#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_DEPTH 8
#define NAME_SHOWN 96 /* at most this many bytes of a key or tensor name in messages */

enum {
    GT_U8 = 0, GT_I8 = 1, GT_U16 = 2, GT_I16 = 3, GT_U32 = 4, GT_I32 = 5, GT_F32 = 6,
    GT_BOOL = 7, GT_STRING = 8, GT_ARRAY = 9, GT_U64 = 10, GT_I64 = 11, GT_F64 = 12
};

static const char *value_type_name(uint32_t t) {
    static const char *const n[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                    "bool",  "string", "array", "uint64", "int64",  "float64"};
    return t < sizeof n / sizeof n[0] ? n[t] : "unknown";
}

/* Size of a fixed-size value type, 0 for string/array/unknown. */
static uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case GT_U8: case GT_I8: case GT_BOOL: return 1;
    case GT_U16: case GT_I16: return 2;
    case GT_U32: case GT_I32: case GT_F32: return 4;
    case GT_U64: case GT_I64: case GT_F64: return 8;
    default: return 0;
    }
}

static const char *ggml_type_name(uint32_t t) {
    switch (t) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 6: return "Q5_0";
    case 7: return "Q5_1";
    case 8: return "Q8_0";
    case 9: return "Q8_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K";
    case 12: return "Q4_K";
    case 13: return "Q5_K";
    case 14: return "Q6_K";
    case 15: return "Q8_K";
    case 24: return "I8";
    case 25: return "I16";
    case 26: return "I32";
    case 27: return "I64";
    case 28: return "F64";
    case 30: return "BF16";
    default: return "unknown";
    }
}

typedef struct gstr {
    const char *p;
    size_t n;
} gstr;

static int gstr_eq(gstr s, const char *lit) {
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Printable length of a name in messages (capped; "%.*s" also stops at a NUL). */
static int shown(gstr s) { return s.n > NAME_SHOWN ? NAME_SHOWN : (int)s.n; }

/* ---- metadata keys we read ------------------------------------------------------------- */

enum { KIND_INT, KIND_FLOAT, KIND_STR, KIND_STR_ARRAY, KIND_F32_ARRAY };

enum {
    K_ARCH, K_ALIGN, K_EMB, K_FF, K_BLOCKS, K_HEADS, K_KV_HEADS, K_CTX, K_EPS, K_THETA,
    K_ROPE_DIM, K_VOCAB, K_TOK_MODEL, K_TOKENS, K_SCORES, K_BOS, K_EOS, K_COUNT
};

static const struct {
    const char *name;
    int kind;
} KEYS[K_COUNT] = {
    [K_ARCH] = {"general.architecture", KIND_STR},
    [K_ALIGN] = {"general.alignment", KIND_INT},
    [K_EMB] = {"llama.embedding_length", KIND_INT},
    [K_FF] = {"llama.feed_forward_length", KIND_INT},
    [K_BLOCKS] = {"llama.block_count", KIND_INT},
    [K_HEADS] = {"llama.attention.head_count", KIND_INT},
    [K_KV_HEADS] = {"llama.attention.head_count_kv", KIND_INT},
    [K_CTX] = {"llama.context_length", KIND_INT},
    [K_EPS] = {"llama.attention.layer_norm_rms_epsilon", KIND_FLOAT},
    [K_THETA] = {"llama.rope.freq_base", KIND_FLOAT},
    [K_ROPE_DIM] = {"llama.rope.dimension_count", KIND_INT},
    [K_VOCAB] = {"llama.vocab_size", KIND_INT},
    [K_TOK_MODEL] = {"tokenizer.ggml.model", KIND_STR},
    [K_TOKENS] = {"tokenizer.ggml.tokens", KIND_STR_ARRAY},
    [K_SCORES] = {"tokenizer.ggml.scores", KIND_F32_ARRAY},
    [K_BOS] = {"tokenizer.ggml.bos_token_id", KIND_INT},
    [K_EOS] = {"tokenizer.ggml.eos_token_id", KIND_INT},
};

typedef struct gkv {
    int found;
    int64_t i;      /* KIND_INT (uint64 values above INT64_MAX are clamped to INT64_MAX) */
    double f;       /* KIND_FLOAT */
    gstr s;         /* KIND_STR */
    uint64_t count; /* arrays: element count */
    size_t pos;     /* arrays: offset of the first element */
} gkv;

/* ---- tensors ----------------------------------------------------------------------------- */

typedef struct gtensor {
    gstr name;
    uint32_t n_dims;
    uint64_t ne[4]; /* padded with 1 */
    uint32_t type;
    uint64_t offset;
} gtensor;

/* Slots of the tensors we use: 0 token_embd, 1 output_norm, 2 output, then 9 per layer. */
enum { S_EMBD, S_NORM, S_OUTPUT, S_GLOBAL };
enum { L_ATTN_NORM, L_Q, L_K, L_V, L_O, L_FFN_NORM, L_GATE, L_DOWN, L_UP, L_PER_LAYER };
static const char *const LAYER_NAMES[L_PER_LAYER] = {"attn_norm", "attn_q", "attn_k",
                                                    "attn_v", "attn_output", "ffn_norm",
                                                    "ffn_gate", "ffn_down", "ffn_up"};
static const char *const GLOBAL_NAMES[S_GLOBAL] = {"token_embd", "output_norm", "output"};

typedef struct gguf_ctx {
    ag_model *m;
    const char *file;
    agi_reader r;
    uint32_t version;
    gkv kv[K_COUNT];
    gtensor *tensors;
    uint64_t n_tensors;
} gguf_ctx;

/* Report the reader running off the end while reading `what`. */
static ag_status cut_off(gguf_ctx *g, const char *what) {
    return agi_error(AG_ERR_FORMAT, FN, "%s: %s is cut off: the file ends at byte %zu", g->file, what, g->r.size);
}

/* Read a GGUF string. `what` names it in messages ("key 3", "tensor 7 name", ...). */
static ag_status read_string(gguf_ctx *g, gstr *s, const char *what, gstr ctx_name) {
    size_t at = g->r.pos;
    uint64_t n = agi_read_u64(&g->r);
    if (g->r.bad) {
        if (ctx_name.p)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: %s length is cut off at byte %zu", g->file,
                             shown(ctx_name), ctx_name.p, what, at);
        return agi_error(AG_ERR_FORMAT, FN, "%s: %s length is cut off at byte %zu", g->file, what, at);
    }
    size_t left = g->r.size - g->r.pos;
    if (n > left) {
        if (ctx_name.p)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: %s length %llu exceeds the %zu bytes left", g->file,
                             shown(ctx_name), ctx_name.p, what, (unsigned long long)n, left);
        return agi_error(AG_ERR_FORMAT, FN, "%s: %s length %llu exceeds the %zu bytes left", g->file, what,
                         (unsigned long long)n, left);
    }
    s->p = (const char *)agi_read_bytes(&g->r, (size_t)n);
    s->n = (size_t)n;
    return AG_OK;
}

/* Skip one value of type `type` belonging to key `key`. */
static ag_status skip_value(gguf_ctx *g, uint32_t type, gstr key, int depth) {
    uint64_t sz = scalar_size(type);
    if (sz) {
        if (!agi_read_bytes(&g->r, (size_t)sz))
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: %s value is cut off: the file ends at byte %zu", g->file,
                             shown(key), key.p, value_type_name(type), g->r.size);
        return AG_OK;
    }
    if (type == GT_STRING) {
        gstr s;
        return read_string(g, &s, "string", key);
    }
    if (type != GT_ARRAY)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: unknown value type %u", g->file, shown(key), key.p, type);
    if (depth >= GGUF_MAX_DEPTH)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: arrays nested deeper than %d", g->file, shown(key), key.p,
                         GGUF_MAX_DEPTH);
    uint32_t et = agi_read_u32(&g->r);
    uint64_t n = agi_read_u64(&g->r);
    if (g->r.bad)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: array header is cut off: the file ends at byte %zu", g->file,
                         shown(key), key.p, g->r.size);
    size_t left = g->r.size - g->r.pos;
    uint64_t esz = scalar_size(et);
    uint64_t min_el = esz ? esz : et == GT_STRING ? 8 : et == GT_ARRAY ? 12 : 0;
    if (min_el == 0)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: unknown array element type %u", g->file, shown(key), key.p, et);
    if (n > left / min_el)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: array length %llu of %s exceeds the %zu bytes left", g->file,
                         shown(key), key.p, (unsigned long long)n, value_type_name(et), left);
    if (esz) {
        agi_read_bytes(&g->r, (size_t)(n * esz)); /* fits: checked above */
        return AG_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        ag_status st = skip_value(g, et, key, depth + 1);
        if (st != AG_OK) return st;
    }
    return AG_OK;
}

static int is_int_type(uint32_t t) {
    return t == GT_U8 || t == GT_I8 || t == GT_U16 || t == GT_I16 || t == GT_U32 || t == GT_I32 || t == GT_U64 ||
           t == GT_I64;
}

/* Read an integer value of any integer type (the bytes are known to be there). */
static int64_t read_int(agi_reader *r, uint32_t t) {
    const uint8_t *p = agi_read_bytes(r, (size_t)scalar_size(t));
    uint64_t u = 0;
    for (uint64_t k = scalar_size(t); k-- > 0;) u = u << 8 | p[k];
    switch (t) {
    case GT_I8: return (int8_t)(uint8_t)u;
    case GT_I16: return (int16_t)(uint16_t)u;
    case GT_I32: return (int32_t)(uint32_t)u;
    case GT_I64: {
        int64_t v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    case GT_U64: return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    default: return (int64_t)u;
    }
}

/* Parse the value of a key we use, after checking its type. */
static ag_status read_known(gguf_ctx *g, int k, uint32_t type, gstr key) {
    gkv *v = &g->kv[k];
    if (v->found)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %s appears more than once", g->file, KEYS[k].name);
    v->found = 1;
    switch (KEYS[k].kind) {
    case KIND_INT:
        if (!is_int_type(type))
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s has type %s, expected an integer", g->file, KEYS[k].name,
                             value_type_name(type));
        if (g->r.size - g->r.pos < scalar_size(type)) return cut_off(g, KEYS[k].name);
        v->i = read_int(&g->r, type);
        return AG_OK;
    case KIND_FLOAT:
        if (type == GT_F32) {
            float f = agi_read_f32(&g->r);
            if (g->r.bad) return cut_off(g, KEYS[k].name);
            v->f = f;
        } else if (type == GT_F64) {
            uint64_t u = agi_read_u64(&g->r);
            if (g->r.bad) return cut_off(g, KEYS[k].name);
            memcpy(&v->f, &u, sizeof v->f);
        } else {
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s has type %s, expected float32", g->file, KEYS[k].name,
                             value_type_name(type));
        }
        return AG_OK;
    case KIND_STR:
        if (type != GT_STRING)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s has type %s, expected string", g->file, KEYS[k].name,
                             value_type_name(type));
        return read_string(g, &v->s, "string", key);
    default: { /* arrays */
        uint32_t want = KEYS[k].kind == KIND_STR_ARRAY ? GT_STRING : GT_F32;
        if (type != GT_ARRAY)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s has type %s, expected an array of %s", g->file, KEYS[k].name,
                             value_type_name(type), value_type_name(want));
        size_t at = g->r.pos;
        uint32_t et = agi_read_u32(&g->r);
        v->count = agi_read_u64(&g->r);
        if (g->r.bad) return cut_off(g, KEYS[k].name);
        if (et != want)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s is an array of %s, expected %s", g->file, KEYS[k].name,
                             value_type_name(et), value_type_name(want));
        v->pos = g->r.pos;
        g->r.pos = at; /* let the generic walker check the elements */
        return skip_value(g, GT_ARRAY, key, 0);
    }
    }
}

/* ---- tensor helpers ---------------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        float f = (float)mant * 5.9604644775390625e-8f; /* subnormal (or zero): mant * 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31) bits = sign | 0x7F800000u | (mant << 13);
    else bits = sign | ((exp + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Name of slot `slot` for messages, into buf. */
static const char *slot_name(int slot, char *buf, size_t cap) {
    if (slot < S_GLOBAL) snprintf(buf, cap, "%s.weight", GLOBAL_NAMES[slot]);
    else snprintf(buf, cap, "blk.%d.%s.weight", (slot - S_GLOBAL) / L_PER_LAYER, LAYER_NAMES[(slot - S_GLOBAL) % L_PER_LAYER]);
    return buf;
}

/* Map a tensor name to its slot: -1 not ours (ignored), -2 a layer index out of range. */
static int name_slot(gstr name, int n_layers, long *layer_out) {
    static const char suffix[] = ".weight";
    size_t ns = sizeof suffix - 1;
    if (name.n <= ns || memcmp(name.p + name.n - ns, suffix, ns) != 0) return -1;
    gstr base = {name.p, name.n - ns};
    for (int s = 0; s < S_GLOBAL; s++)
        if (gstr_eq(base, GLOBAL_NAMES[s])) return s;
    if (base.n < 6 || memcmp(base.p, "blk.", 4) != 0) return -1;
    size_t i = 4;
    long layer = 0;
    int digits = 0;
    while (i < base.n && base.p[i] >= '0' && base.p[i] <= '9' && digits < 9) {
        layer = layer * 10 + (base.p[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || i >= base.n || base.p[i] != '.') return -1;
    gstr rest = {base.p + i + 1, base.n - i - 1};
    for (int k = 0; k < L_PER_LAYER; k++) {
        if (gstr_eq(rest, LAYER_NAMES[k])) {
            *layer_out = layer;
            if (layer >= n_layers) return -2;
            return S_GLOBAL + (int)layer * L_PER_LAYER + k;
        }
    }
    return -1;
}

static void format_shape(char *buf, size_t cap, const uint64_t *ne, uint32_t n_dims) {
    /* Row-major order (outermost first), as llama2.c writes shapes: [rows x cols]. */
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (uint32_t d = n_dims; d-- > 0;) {
        if (o >= cap) break;
        o += (size_t)snprintf(buf + o, cap - o, "%llu%s", (unsigned long long)ne[d], d ? " x " : "");
    }
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Validate tensor t against the expected shape (ne order, innermost first) and return its
 * float32 data: in place when F32 and aligned, otherwise a converted copy owned by m. */
static ag_status load_tensor(gguf_ctx *g, const gtensor *t, const char *tname, const uint64_t *want,
                             uint32_t want_dims, size_t data_start, uint64_t alignment, const float **out) {
    if (t->type != 0 && t->type != 1)
        return agi_error(AG_ERR_UNSUPPORTED, FN, "%s: tensor %s has type %u (%s); only F32 (0) and F16 (1) are supported",
                         g->file, tname, t->type, ggml_type_name(t->type));
    uint64_t w4[4] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < want_dims; d++) w4[d] = want[d];
    if (memcmp(w4, t->ne, sizeof w4) != 0) {
        char got[128], exp[128];
        format_shape(got, sizeof got, t->ne, t->n_dims);
        format_shape(exp, sizeof exp, want, want_dims);
        return agi_error(AG_ERR_FORMAT, FN, "%s: tensor %s: shape %s does not match expected %s", g->file, tname, got, exp);
    }
    uint64_t n = 1;
    for (int d = 0; d < 4; d++)
        if (!agi_mul_u64(n, t->ne[d], &n))
            return agi_error(AG_ERR_FORMAT, FN, "%s: tensor %s: element count overflows", g->file, tname);
    uint64_t esz = t->type == 0 ? 4 : 2, bytes;
    if (!agi_mul_u64(n, esz, &bytes))
        return agi_error(AG_ERR_FORMAT, FN, "%s: tensor %s: byte size overflows", g->file, tname);
    if (t->offset % alignment != 0)
        return agi_error(AG_ERR_FORMAT, FN, "%s: tensor %s: offset %llu is not a multiple of the alignment %llu", g->file,
                         tname, (unsigned long long)t->offset, (unsigned long long)alignment);
    uint64_t data_size = (uint64_t)(g->r.size - data_start);
    if (t->offset > data_size || bytes > data_size - t->offset)
        return agi_error(AG_ERR_FORMAT, FN,
                         "%s: tensor %s: offset %llu + %llu bytes runs past the end of the data section (%llu bytes from file offset %zu)",
                         g->file, tname, (unsigned long long)t->offset, (unsigned long long)bytes,
                         (unsigned long long)data_size, data_start);
    const uint8_t *p = g->r.data + data_start + (size_t)t->offset;
    if (t->type == 0 && (uintptr_t)p % _Alignof(float) == 0) {
        *out = (const float *)(const void *)p;
        return AG_OK;
    }
    float *f = agi_malloc((size_t)bytes / esz * sizeof(float), FN);
    if (!f) return AG_ERR_OUT_OF_MEMORY;
    if (t->type == 0) {
        memcpy(f, p, (size_t)bytes); /* unaligned F32 (borrowed memory or small alignment) */
    } else {
        for (size_t i = 0; i < (size_t)n; i++) f[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    }
    ag_status st = agi_model_own(g->m, f); /* frees f on failure */
    if (st != AG_OK) return st;
    *out = f;
    return AG_OK;
}

/* Check that an integer key holds a value in [lo, hi] and store it. */
static ag_status int_key(gguf_ctx *g, int k, int required, int64_t dflt, int64_t lo, int64_t hi, int *out) {
    if (!g->kv[k].found) {
        if (required) return agi_error(AG_ERR_FORMAT, FN, "%s: required key %s is missing", g->file, KEYS[k].name);
        *out = (int)dflt;
        return AG_OK;
    }
    int64_t v = g->kv[k].i;
    if (v < lo || v > hi)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key %s = %lld must be in [%lld, %lld]", g->file, KEYS[k].name, (long long)v,
                         (long long)lo, (long long)hi);
    *out = (int)v;
    return AG_OK;
}

/* Build the tokenizer from tokenizer.ggml.tokens/scores (already structurally checked). */
static ag_status build_tokenizer(gguf_ctx *g, int32_t n_vocab) {
    const gkv *tk = &g->kv[K_TOKENS], *sc = &g->kv[K_SCORES];
    if (sc->found && sc->count != tk->count)
        return agi_error(AG_ERR_FORMAT, FN, "%s: key tokenizer.ggml.scores has %llu entries but tokenizer.ggml.tokens has %llu",
                         g->file, (unsigned long long)sc->count, (unsigned long long)tk->count);
    int32_t bos = n_vocab > 2 ? 1 : -1, eos = n_vocab > 2 ? 2 : -1; /* llama's SPM defaults */
    const int ids[2] = {K_BOS, K_EOS};
    int32_t *dst[2] = {&bos, &eos};
    for (int i = 0; i < 2; i++) {
        const gkv *v = &g->kv[ids[i]];
        if (!v->found) continue;
        if (v->i == -1 || v->i == (int64_t)UINT32_MAX) *dst[i] = -1; /* "none" */
        else if (v->i < 0 || v->i >= n_vocab)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %s = %lld is outside [0, %d)", g->file, KEYS[ids[i]].name,
                             (long long)v->i, n_vocab);
        else *dst[i] = (int32_t)v->i;
    }
    const char **pieces = agi_calloc((size_t)n_vocab, sizeof *pieces, FN);
    size_t *lens = agi_calloc((size_t)n_vocab, sizeof *lens, FN);
    float *scores = sc->found ? agi_calloc((size_t)n_vocab, sizeof *scores, FN) : NULL;
    ag_status st = AG_OK;
    if (!pieces || !lens || (sc->found && !scores)) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    agi_reader r = {g->r.data, g->r.size, tk->pos, 0};
    for (int32_t i = 0; i < n_vocab; i++) { /* lengths were validated by skip_value */
        uint64_t n = agi_read_u64(&r);
        pieces[i] = (const char *)agi_read_bytes(&r, (size_t)n);
        lens[i] = (size_t)n;
    }
    if (scores) {
        r.pos = sc->pos;
        for (int32_t i = 0; i < n_vocab; i++) {
            scores[i] = agi_read_f32(&r);
            if (isnan(scores[i])) {
                st = agi_error(AG_ERR_FORMAT, FN, "%s: key tokenizer.ggml.scores: entry %d is NaN", g->file, i);
                goto done;
            }
        }
    }
    if (r.bad) {
        st = agi_error(AG_ERR_INTERNAL, FN, "%s: tokenizer arrays changed size after validation", g->file);
        goto done;
    }
    st = agi_tokenizer_from_vocab(&g->m->tok, n_vocab, pieces, lens, scores, bos, eos, FN);
done:
    free(pieces);
    free(lens);
    free(scores);
    return st;
}

ag_status agi_gguf_read(ag_model *m, const ag_model_options *o) {
    (void)o; /* GGUF files carry their own eps and RoPE base */
    gguf_ctx g;
    memset(&g, 0, sizeof g);
    g.m = m;
    g.file = m->name;
    g.r.data = m->blob.data;
    g.r.size = m->blob.size;
    int *slots = NULL;
    ag_status st = AG_OK;
    const gstr none = {NULL, 0};

    /* ---- header ---- */
    const uint8_t *magic = agi_read_bytes(&g.r, 4);
    if (!magic || memcmp(magic, "GGUF", 4) != 0)
        return agi_error(AG_ERR_FORMAT, FN, "%s: header field magic is not \"GGUF\"", g.file);
    g.version = agi_read_u32(&g.r);
    if (g.r.bad) return cut_off(&g, "header field version");
    if (g.version == 1)
        return agi_error(AG_ERR_UNSUPPORTED, FN, "%s: header field version = 1: GGUF v1 is not supported (v2 and v3 are)", g.file);
    if (g.version >= 0x01000000u && (g.version & 0xFFFFu) == 0)
        return agi_error(AG_ERR_UNSUPPORTED, FN, "%s: header field version = 0x%08x looks big-endian; only little-endian GGUF is supported",
                         g.file, g.version);
    if (g.version != 2 && g.version != 3)
        return agi_error(g.version == 0 ? AG_ERR_FORMAT : AG_ERR_UNSUPPORTED, FN,
                         "%s: header field version = %u is not supported (v2 and v3 are)", g.file, g.version);
    uint64_t n_tensors = agi_read_u64(&g.r);
    uint64_t n_kv = agi_read_u64(&g.r);
    if (g.r.bad) return cut_off(&g, "header field tensor_count/kv_count");
    size_t left = g.r.size - g.r.pos;
    /* Minimal sizes: a kv is key length (8) + type (4) + 1 byte; a tensor info is name
     * length (8) + n_dims (4) + one dim (8) + type (4) + offset (8). */
    if (n_kv > GGUF_MAX_KV || n_kv > left / 13)
        return agi_error(AG_ERR_FORMAT, FN, "%s: header field kv_count = %llu is too large for a file of %zu bytes", g.file,
                         (unsigned long long)n_kv, g.r.size);
    if (n_tensors > GGUF_MAX_TENSORS || n_tensors > left / 32)
        return agi_error(AG_ERR_FORMAT, FN, "%s: header field tensor_count = %llu is too large for a file of %zu bytes", g.file,
                         (unsigned long long)n_tensors, g.r.size);

    /* ---- metadata ---- */
    for (uint64_t i = 0; i < n_kv; i++) {
        char what[48];
        snprintf(what, sizeof what, "key %llu name", (unsigned long long)i);
        gstr key;
        st = read_string(&g, &key, what, none);
        if (st != AG_OK) return st;
        uint32_t type = agi_read_u32(&g.r);
        if (g.r.bad)
            return agi_error(AG_ERR_FORMAT, FN, "%s: key %.*s: value type is cut off: the file ends at byte %zu", g.file,
                             shown(key), key.p, g.r.size);
        int k = -1;
        for (int j = 0; j < K_COUNT; j++)
            if (gstr_eq(key, KEYS[j].name)) k = j;
        st = k >= 0 ? read_known(&g, k, type, key) : skip_value(&g, type, key, 0);
        if (st != AG_OK) return st;
    }

    /* ---- tensor infos ---- */
    g.n_tensors = n_tensors;
    g.tensors = agi_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g.tensors, FN);
    if (!g.tensors) return AG_ERR_OUT_OF_MEMORY;
    for (uint64_t i = 0; i < n_tensors; i++) {
        gtensor *t = &g.tensors[i];
        char what[48];
        snprintf(what, sizeof what, "tensor %llu name", (unsigned long long)i);
        st = read_string(&g, &t->name, what, none);
        if (st != AG_OK) goto done;
        t->n_dims = agi_read_u32(&g.r);
        if (g.r.bad) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %.*s: n_dims is cut off", g.file, shown(t->name), t->name.p);
            goto done;
        }
        if (t->n_dims < 1 || t->n_dims > 4) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %.*s: n_dims = %u must be in [1, 4]", g.file, shown(t->name),
                           t->name.p, t->n_dims);
            goto done;
        }
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) t->ne[d] = agi_read_u64(&g.r);
        t->type = agi_read_u32(&g.r);
        t->offset = agi_read_u64(&g.r);
        if (g.r.bad) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %.*s: dims/type/offset are cut off: the file ends at byte %zu",
                           g.file, shown(t->name), t->name.p, g.r.size);
            goto done;
        }
    }

    /* ---- architecture, alignment, data section ---- */
    if (!g.kv[K_ARCH].found) {
        st = agi_error(AG_ERR_FORMAT, FN, "%s: required key general.architecture is missing", g.file);
        goto done;
    }
    if (!gstr_eq(g.kv[K_ARCH].s, "llama")) {
        st = agi_error(AG_ERR_UNSUPPORTED, FN, "%s: key general.architecture = \"%.*s\" is not supported (only \"llama\")",
                       g.file, shown(g.kv[K_ARCH].s), g.kv[K_ARCH].s.p);
        goto done;
    }
    uint64_t alignment = 32;
    if (g.kv[K_ALIGN].found) {
        int64_t a = g.kv[K_ALIGN].i;
        if (a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: key general.alignment = %lld must be a power of two", g.file, (long long)a);
            goto done;
        }
        alignment = (uint64_t)a;
    }
    size_t data_start = g.r.pos;
    if (data_start % alignment) {
        uint64_t pad = alignment - data_start % alignment;
        if (pad > g.r.size - data_start) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: data section (aligned to %llu) starts past the end of the file (%zu bytes)",
                           g.file, (unsigned long long)alignment, g.r.size);
            goto done;
        }
        data_start += (size_t)pad;
    }

    /* ---- configuration ---- */
    agi_config *c = &m->cfg;
    memset(c, 0, sizeof *c);
    const int64_t IMAX = INT32_MAX;
    if ((st = int_key(&g, K_EMB, 1, 0, 1, IMAX, &c->dim)) != AG_OK ||
        (st = int_key(&g, K_FF, 1, 0, 1, IMAX, &c->hidden_dim)) != AG_OK ||
        (st = int_key(&g, K_BLOCKS, 1, 0, 1, IMAX, &c->n_layers)) != AG_OK ||
        (st = int_key(&g, K_HEADS, 1, 0, 1, IMAX, &c->n_heads)) != AG_OK ||
        (st = int_key(&g, K_KV_HEADS, 0, c->n_heads, 1, IMAX, &c->n_kv_heads)) != AG_OK ||
        (st = int_key(&g, K_CTX, 1, 0, 1, IMAX, &c->seq_len)) != AG_OK)
        goto done;
    c->rms_eps = g.kv[K_EPS].found ? (float)g.kv[K_EPS].f : 1e-5f;
    c->rope_theta = g.kv[K_THETA].found ? (float)g.kv[K_THETA].f : 10000.0f;
    if (g.kv[K_EPS].found && !(g.kv[K_EPS].f > 0.0 && g.kv[K_EPS].f <= 1.0)) {
        st = agi_error(AG_ERR_FORMAT, FN, "%s: key %s = %g must be in (0, 1]", g.file, KEYS[K_EPS].name, g.kv[K_EPS].f);
        goto done;
    }
    if (g.kv[K_THETA].found && !(g.kv[K_THETA].f > 1.0 && g.kv[K_THETA].f < 1e30)) {
        st = agi_error(AG_ERR_FORMAT, FN, "%s: key %s = %g must be finite and > 1", g.file, KEYS[K_THETA].name,
                       g.kv[K_THETA].f);
        goto done;
    }

    /* Vocabulary size: the token list's length, else token_embd's row count. */
    const gtensor *embd = NULL;
    for (uint64_t i = 0; i < n_tensors; i++)
        if (gstr_eq(g.tensors[i].name, "token_embd.weight")) embd = &g.tensors[i];
    if (g.kv[K_TOKENS].found) {
        if (g.kv[K_TOKENS].count == 0 || g.kv[K_TOKENS].count > (uint64_t)INT32_MAX) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: key tokenizer.ggml.tokens has %llu entries", g.file,
                           (unsigned long long)g.kv[K_TOKENS].count);
            goto done;
        }
        c->vocab_size = (int)g.kv[K_TOKENS].count;
        if (embd && embd->ne[1] != (uint64_t)c->vocab_size) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor token_embd.weight has %llu rows but key tokenizer.ggml.tokens has %d entries",
                           g.file, (unsigned long long)embd->ne[1], c->vocab_size);
            goto done;
        }
    } else if (embd) {
        if (embd->ne[1] == 0 || embd->ne[1] > (uint64_t)INT32_MAX) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor token_embd.weight has %llu rows", g.file,
                           (unsigned long long)embd->ne[1]);
            goto done;
        }
        c->vocab_size = (int)embd->ne[1];
    } else {
        st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor token_embd.weight is missing", g.file);
        goto done;
    }
    if (g.kv[K_VOCAB].found && g.kv[K_VOCAB].i != c->vocab_size) {
        st = agi_error(AG_ERR_FORMAT, FN, "%s: key llama.vocab_size = %lld does not match the %d-token vocabulary", g.file,
                       (long long)g.kv[K_VOCAB].i, c->vocab_size);
        goto done;
    }
    st = agi_config_validate(c, FN, g.file);
    if (st != AG_OK) goto done;
    if (g.kv[K_ROPE_DIM].found && g.kv[K_ROPE_DIM].i != c->head_dim) {
        st = agi_error(AG_ERR_UNSUPPORTED, FN, "%s: key llama.rope.dimension_count = %lld: partial RoPE (head size %d) is not supported",
                       g.file, (long long)g.kv[K_ROPE_DIM].i, c->head_dim);
        goto done;
    }

    /* ---- tensors ---- */
    size_t n_slots = S_GLOBAL + (size_t)c->n_layers * L_PER_LAYER;
    slots = agi_calloc(n_slots, sizeof *slots, FN);
    if (!slots) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t s = 0; s < n_slots; s++) slots[s] = -1;
    for (uint64_t i = 0; i < n_tensors; i++) {
        const gtensor *t = &g.tensors[i];
        long layer = -1;
        int s = name_slot(t->name, c->n_layers, &layer);
        if (s == -2) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %.*s: layer %ld is outside [0, %d) (llama.block_count)", g.file,
                           shown(t->name), t->name.p, layer, c->n_layers);
            goto done;
        }
        if (s < 0) continue; /* not a tensor we use */
        if (slots[s] >= 0) {
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %.*s appears more than once", g.file, shown(t->name), t->name.p);
            goto done;
        }
        slots[s] = (int)i;
    }
    const uint64_t D = (uint64_t)c->dim, V = (uint64_t)c->vocab_size, KV = (uint64_t)c->kv_dim,
                   Hd = (uint64_t)c->hidden_dim;
    agi_weights *w = &m->w;
    w->layers = agi_calloc((size_t)c->n_layers, sizeof *w->layers, FN);
    if (!w->layers) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t s = 0; s < n_slots; s++) {
        char tname[64];
        slot_name((int)s, tname, sizeof tname);
        if (slots[s] < 0) {
            if (s == S_OUTPUT) continue; /* optional: the classifier is the embedding */
            st = agi_error(AG_ERR_FORMAT, FN, "%s: tensor %s is missing", g.file, tname);
            goto done;
        }
        uint64_t want[2];
        uint32_t nd = 2;
        const float **dst = NULL;
        if (s < S_GLOBAL) {
            if (s == S_NORM) {
                want[0] = D;
                nd = 1;
                dst = &w->rms_final;
            } else {
                want[0] = D;
                want[1] = V;
                dst = s == S_EMBD ? &w->token_embedding : &w->wcls;
            }
        } else {
            agi_layer_weights *lw = &w->layers[(s - S_GLOBAL) / L_PER_LAYER];
            switch ((s - S_GLOBAL) % L_PER_LAYER) {
            case L_ATTN_NORM: want[0] = D; nd = 1; dst = &lw->rms_att; break;
            case L_Q: want[0] = D; want[1] = D; dst = &lw->wq; break;
            case L_K: want[0] = D; want[1] = KV; dst = &lw->wk; break;
            case L_V: want[0] = D; want[1] = KV; dst = &lw->wv; break;
            case L_O: want[0] = D; want[1] = D; dst = &lw->wo; break;
            case L_FFN_NORM: want[0] = D; nd = 1; dst = &lw->rms_ffn; break;
            case L_GATE: want[0] = D; want[1] = Hd; dst = &lw->w1; break;
            case L_DOWN: want[0] = Hd; want[1] = D; dst = &lw->w2; break;
            default: want[0] = D; want[1] = Hd; dst = &lw->w3; break;
            }
        }
        st = load_tensor(&g, &g.tensors[slots[s]], tname, want, nd, data_start, alignment, dst);
        if (st != AG_OK) goto done;
    }
    if (slots[S_OUTPUT] >= 0) {
        w->shared_classifier = 0; /* explicit `output`, even when it equals token_embd */
    } else {
        w->wcls = w->token_embedding;
        w->shared_classifier = 1;
    }

    /* ---- tokenizer: only for sentencepiece ("llama") vocabularies ---- */
    if (g.kv[K_TOKENS].found && (!g.kv[K_TOK_MODEL].found || gstr_eq(g.kv[K_TOK_MODEL].s, "llama"))) {
        st = build_tokenizer(&g, c->vocab_size);
        if (st != AG_OK) goto done;
    }
    m->format = AG_FORMAT_GGUF;

done:
    free(slots);
    free(g.tensors);
    return st;
}
