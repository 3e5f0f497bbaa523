/* The sentencepiece-style BPE tokenizer of llama2.c (karpathy/llama2.c run.c `encode` and
 * `decode`), built from a llama2.c tokenizer .bin or from a GGUF vocabulary.
 *
 * Storage: every piece lives in one arena, NUL-terminated (so ag_token_piece can hand out a
 * C string), with its exact byte length kept beside it (pieces may contain NUL bytes; all
 * comparisons are length-aware). A sorted index (qsort) over the pieces serves lookups.
 *
 * Encoding follows run.c step by step:
 *   1. BOS first when asked (it takes part in the merges, as in run.c);
 *   2. the dummy-prefix piece " " when the text is non-empty;
 *   3. the text is cut into groups of one lead byte plus up to three continuation bytes
 *      (run.c's UTF-8 walk, including its handling of stray continuation bytes); a group
 *      found in the vocabulary becomes its id, otherwise each byte becomes the id of the
 *      piece "<0xNN>" (looked up, not assumed to be byte + 3);
 *   4. repeatedly merge the adjacent pair whose concatenation is a piece with the highest
 *      score (> -1e10, the first pair on ties) until no pair merges.
 * Step 4 is run.c's O(n^2) loop computed with a priority queue keyed by (score, position)
 * over a linked list of symbols: the pair chosen at each step is the same (positions keep
 * their order, stale queue entries are discarded by version stamps), so the result is
 * identical while long texts cost O(n log n).
 *
 * Where run.c has undefined or buggy behaviour we choose: a missing " " piece falls back to
 * the byte piece <0x20>; a missing <0xNN> piece falls back to the unknown-token id (the id of
 * "<unk>", else 0); duplicate pieces resolve to the lowest id. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/blob.h"
#include "io/tokenizer.h"

typedef struct agi_tok_index {
    uint32_t off; /* arena offset of the piece */
    uint32_t len;
    int32_t id;
} agi_tok_index;

struct agi_tokenizer {
    int32_t n_vocab;
    int32_t bos, eos, unk;
    char *arena;            /* all pieces, each followed by a NUL */
    uint32_t *off;          /* [n_vocab] offset of piece i in arena */
    uint32_t *len;          /* [n_vocab] byte length of piece i */
    float *scores;          /* [n_vocab] */
    agi_tok_index *sorted;  /* [n_vocab] sorted by (bytes, length, id) */
    size_t max_len;         /* longest piece in bytes */
    int32_t byte_id[256];   /* id of "<0xNN>", or unk when the vocabulary lacks it */
};

/* Pieces larger than this (in total) are refused: offsets are 32-bit. */
#define AGI_TOK_ARENA_MAX ((size_t)UINT32_MAX - 1)

static const char *piece_ptr(const agi_tokenizer *t, int32_t id) { return t->arena + t->off[id]; }

/* Lexicographic byte order, shorter first on a common prefix. */
static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb) {
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

/* qsort has no context argument: the arena is passed through a thread-local pointer that
 * is set only for the duration of the sort. */
static _Thread_local const char *agi_sort_arena;

static int index_cmp(const void *pa, const void *pb) {
    const agi_tok_index *a = pa, *b = pb;
    int c = bytes_cmp(agi_sort_arena + a->off, a->len, agi_sort_arena + b->off, b->len);
    if (c != 0) return c;
    return a->id < b->id ? -1 : a->id > b->id ? 1 : 0;
}

/* The id of the piece equal to s[0..n), the lowest id among duplicates; -1 if absent. */
static int32_t lookup(const agi_tokenizer *t, const char *s, size_t n) {
    size_t lo = 0, hi = (size_t)t->n_vocab; /* lower bound in [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const agi_tok_index *e = &t->sorted[mid];
        if (bytes_cmp(t->arena + e->off, e->len, s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < (size_t)t->n_vocab) {
        const agi_tok_index *e = &t->sorted[lo];
        if (e->len == n && (n == 0 || memcmp(t->arena + e->off, s, n) == 0)) return e->id;
    }
    return -1;
}

void agi_tokenizer_free(agi_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->sorted);
    free(t);
}

/* Allocate a tokenizer for n pieces totalling `arena_bytes` bytes (NULs included). */
static ag_status tok_alloc(agi_tokenizer **out, int32_t n, size_t arena_bytes, const char *func) {
    agi_tokenizer *t = agi_calloc(1, sizeof *t, func);
    if (!t) return AG_ERR_OUT_OF_MEMORY;
    t->n_vocab = n;
    t->bos = t->eos = -1;
    t->arena = agi_malloc(arena_bytes, func);
    t->off = agi_calloc((size_t)n, sizeof *t->off, func);
    t->len = agi_calloc((size_t)n, sizeof *t->len, func);
    t->scores = agi_calloc((size_t)n, sizeof *t->scores, func);
    t->sorted = agi_calloc((size_t)n, sizeof *t->sorted, func);
    if (!t->arena || !t->off || !t->len || !t->scores || !t->sorted) {
        agi_tokenizer_free(t);
        return AG_ERR_OUT_OF_MEMORY;
    }
    *out = t;
    return AG_OK;
}

/* Build the sorted index and the byte-fallback table once all pieces are in place. */
static void tok_finish(agi_tokenizer *t) {
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->sorted[i].off = t->off[i];
        t->sorted[i].len = t->len[i];
        t->sorted[i].id = i;
        if (t->len[i] > t->max_len) t->max_len = t->len[i];
    }
    agi_sort_arena = t->arena;
    qsort(t->sorted, (size_t)t->n_vocab, sizeof *t->sorted, index_cmp);
    agi_sort_arena = NULL;
    int32_t unk = lookup(t, "<unk>", 5);
    t->unk = unk >= 0 ? unk : 0;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", (unsigned)b);
        int32_t id = lookup(t, name, 6);
        t->byte_id[b] = id >= 0 ? id : t->unk;
    }
}

ag_status agi_tokenizer_from_bin(agi_tokenizer **out, const uint8_t *data, size_t size,
                                 int32_t n_vocab, const char *name, const char *func) {
    *out = NULL;
    if (!name) name = "<tokenizer>";
    if (n_vocab <= 0)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s: vocabulary size %d must be positive", name, n_vocab);
    if (!data && size) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s: data is NULL", name);
    agi_reader r = {data, size, 0, 0};
    int32_t max_token_length = agi_read_i32(&r);
    if (r.bad)
        return agi_error(AG_ERR_FORMAT, func, "%s: header field max_token_length is cut off: the file has %zu bytes, needs 4",
                         name, size);
    if (max_token_length < 0)
        return agi_error(AG_ERR_FORMAT, func, "%s: header field max_token_length = %d is negative", name, max_token_length);

    /* Pass 1: validate every record and measure the arena. Each record takes at least 8
     * bytes, so the loop ends (with an error) once the bytes run out. */
    size_t arena = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        size_t at = r.pos;
        float score = agi_read_f32(&r);
        if (r.bad)
            return agi_error(AG_ERR_FORMAT, func, "%s: token %d: score is cut off at byte %zu (file has %zu bytes, vocab_size %d)",
                             name, i, at, size, n_vocab);
        if (isnan(score)) return agi_error(AG_ERR_FORMAT, func, "%s: token %d: score is NaN", name, i);
        at = r.pos;
        int32_t len = agi_read_i32(&r);
        if (r.bad)
            return agi_error(AG_ERR_FORMAT, func, "%s: token %d: length is cut off at byte %zu (file has %zu bytes, vocab_size %d)",
                             name, i, at, size, n_vocab);
        if (len < 0) return agi_error(AG_ERR_FORMAT, func, "%s: token %d: length %d is negative", name, i, len);
        if (len > max_token_length)
            return agi_error(AG_ERR_FORMAT, func, "%s: token %d: length %d exceeds max_token_length %d", name, i, len,
                             max_token_length);
        if ((size_t)len > size - r.pos)
            return agi_error(AG_ERR_FORMAT, func, "%s: token %d: length %d exceeds the %zu bytes left in the file (vocab_size %d)",
                             name, i, len, size - r.pos, n_vocab);
        r.pos += (size_t)len;
        arena += (size_t)len + 1; /* cannot overflow: bounded by size + n_vocab */
    }
    /* Bytes after the last token are ignored, as llama2.c does. */
    if (arena > AGI_TOK_ARENA_MAX)
        return agi_error(AG_ERR_UNSUPPORTED, func, "%s: the pieces total %zu bytes, more than this version supports", name, arena);

    agi_tokenizer *t;
    ag_status st = tok_alloc(&t, n_vocab, arena, func);
    if (st != AG_OK) return st;
    r.pos = 4;
    size_t o = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        t->scores[i] = agi_read_f32(&r);
        int32_t len = agi_read_i32(&r);
        const uint8_t *p = agi_read_bytes(&r, (size_t)len);
        t->off[i] = (uint32_t)o;
        t->len[i] = (uint32_t)len;
        if (len) memcpy(t->arena + o, p, (size_t)len);
        t->arena[o + (size_t)len] = '\0';
        o += (size_t)len + 1;
    }
    if (n_vocab > 2) { /* llama2.c's convention: 1 = BOS, 2 = EOS */
        t->bos = 1;
        t->eos = 2;
    }
    tok_finish(t);
    *out = t;
    return AG_OK;
}

ag_status agi_tokenizer_from_vocab(agi_tokenizer **out, int32_t n_vocab,
                                   const char *const *pieces, const size_t *lens,
                                   const float *scores, int32_t bos, int32_t eos,
                                   const char *func) {
    *out = NULL;
    if (n_vocab <= 0) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "vocabulary size %d must be positive", n_vocab);
    if (!pieces || !lens) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "vocabulary pieces are NULL");
    if (bos < -1 || bos >= n_vocab || eos < -1 || eos >= n_vocab)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "bos = %d / eos = %d outside [-1, %d)", bos, eos, n_vocab);
    size_t arena = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (!pieces[i] && lens[i]) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "token %d: piece is NULL", i);
        if (scores && isnan(scores[i])) return agi_error(AG_ERR_FORMAT, func, "token %d: score is NaN", i);
        if (lens[i] > AGI_TOK_ARENA_MAX - arena - 1)
            return agi_error(AG_ERR_UNSUPPORTED, func, "token %d: the pieces are larger than this version supports", i);
        arena += lens[i] + 1; /* U+2581 -> ' ' only shrinks */
    }
    agi_tokenizer *t;
    ag_status st = tok_alloc(&t, n_vocab, arena, func);
    if (st != AG_OK) return st;
    size_t o = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const unsigned char *p = (const unsigned char *)pieces[i];
        size_t n = lens[i], start = o;
        for (size_t k = 0; k < n;) {
            if (k + 2 < n && p[k] == 0xE2 && p[k + 1] == 0x96 && p[k + 2] == 0x81) {
                t->arena[o++] = ' ';
                k += 3;
            } else {
                t->arena[o++] = (char)p[k++];
            }
        }
        t->arena[o++] = '\0';
        t->off[i] = (uint32_t)start;
        t->len[i] = (uint32_t)(o - 1 - start);
        t->scores[i] = scores ? scores[i] : 0.0f;
    }
    t->bos = bos;
    t->eos = eos;
    tok_finish(t);
    *out = t;
    return AG_OK;
}

int32_t agi_tokenizer_n_vocab(const agi_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t agi_tokenizer_bos(const agi_tokenizer *t) { return t ? t->bos : -1; }
int32_t agi_tokenizer_eos(const agi_tokenizer *t) { return t ? t->eos : -1; }

const char *agi_tokenizer_piece(const agi_tokenizer *t, int32_t token, float *score) {
    if (!t || token < 0 || token >= t->n_vocab) return NULL;
    if (score) *score = t->scores[token];
    return piece_ptr(t, token);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

const char *agi_tokenizer_decode(const agi_tokenizer *t, int32_t prev, int32_t token,
                                 char scratch[2], size_t *len) {
    if (!t || token < 0 || token >= t->n_vocab) return NULL;
    const char *p = piece_ptr(t, token);
    size_t n = t->len[token];
    /* After BOS, sentencepiece's decoder drops the leading space (llama2.c PR #89). */
    if (t->bos >= 0 && prev == t->bos && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    /* A raw-byte piece "<0xNN>" becomes that byte. */
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
        int hi = hex_value(p[3]), lo = hex_value(p[4]);
        if (hi >= 0 && lo >= 0) {
            scratch[0] = (char)(unsigned char)(hi * 16 + lo);
            scratch[1] = '\0';
            *len = 1;
            return scratch;
        }
    }
    *len = n;
    return p;
}

/* ---- encoding -------------------------------------------------------------------------- */

typedef struct agi_merge {
    float score;
    int32_t id;       /* the merged piece */
    uint32_t left;    /* symbol slots */
    uint32_t right;
    uint32_t vleft;   /* their versions when the entry was made */
    uint32_t vright;
} agi_merge;

typedef struct agi_sym {
    int32_t id;
    uint32_t prev, next; /* UINT32_MAX = none */
    uint32_t ver;
    int alive;
} agi_sym;

#define AGI_NONE UINT32_MAX

/* a goes before b: higher score, then the leftmost position (run.c's first-on-ties). */
static int merge_before(const agi_merge *a, const agi_merge *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(agi_merge *h, size_t *n, agi_merge e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&e, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static agi_merge heap_pop(agi_merge *h, size_t *n) {
    agi_merge top = h[0];
    agi_merge last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_before(&h[c + 1], &h[c])) c++;
        if (!merge_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Queue the pair (a, b) if their concatenation is a piece that run.c would merge. */
static void try_pair(const agi_tokenizer *t, const agi_sym *s, uint32_t a, uint32_t b, char *buf,
                     agi_merge *heap, size_t *nheap) {
    if (a == AGI_NONE || b == AGI_NONE) return;
    size_t na = t->len[s[a].id], nb = t->len[s[b].id];
    memcpy(buf, piece_ptr(t, s[a].id), na);
    memcpy(buf + na, piece_ptr(t, s[b].id), nb);
    int32_t id = lookup(t, buf, na + nb);
    if (id < 0 || !(t->scores[id] > -1e10f)) return; /* run.c: best_score starts at -1e10 */
    agi_merge e = {t->scores[id], id, a, b, s[a].ver, s[b].ver};
    heap_push(heap, nheap, e);
}

ag_status agi_tokenizer_encode(const agi_tokenizer *t, const char *text, int add_bos,
                               int32_t *tokens, size_t cap, size_t *n_out, const char *func) {
    if (!t || !text || !n_out || (!tokens && cap))
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s is NULL",
                         !t ? "tokenizer" : !text ? "text" : !n_out ? "n_out" : "tokens");
    if (add_bos && t->bos < 0)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "add_bos is set but the vocabulary has no BOS token");
    size_t tl = strlen(text);
    /* At most: BOS, the dummy prefix, one id per byte. Slots are 32-bit indices. */
    size_t max_syms;
    if (!agi_add_size(tl, 2, &max_syms) || max_syms >= AGI_NONE / 4)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "text of %zu bytes is too long to tokenize", tl);
    size_t heap_cap = 3 * max_syms; /* n-1 initial pairs + at most 2 per merge */
    size_t buf_len;
    if (!agi_mul_size(t->max_len, 2, &buf_len) || !agi_add_size(buf_len, 8, &buf_len))
        return agi_error(AG_ERR_OUT_OF_MEMORY, func, "piece buffer size overflows");
    agi_sym *s = agi_calloc(max_syms, sizeof *s, func);
    agi_merge *heap = agi_calloc(heap_cap, sizeof *heap, func);
    char *buf = agi_malloc(buf_len, func);
    if (!s || !heap || !buf) {
        free(s);
        free(heap);
        free(buf);
        return AG_ERR_OUT_OF_MEMORY;
    }

    size_t n = 0;
#define AGI_PUSH(tokid) (s[n].id = (tokid), n++)
    if (add_bos) AGI_PUSH(t->bos);
    if (tl > 0) {
        int32_t sp = lookup(t, " ", 1);
        AGI_PUSH(sp >= 0 ? sp : t->byte_id[' ']);
    }
    /* run.c's walk: a group is a lead byte plus up to 3 continuation bytes. */
    const unsigned char *c = (const unsigned char *)text;
    size_t group = 0;
    unsigned char g[4];
    for (size_t i = 0; i < tl; i++) {
        if ((c[i] & 0xC0) != 0x80) group = 0;
        g[group++] = c[i];
        if ((c[i + 1] & 0xC0) == 0x80 && group < 4) continue;
        int32_t id = lookup(t, (const char *)g, group);
        if (id >= 0) {
            AGI_PUSH(id);
        } else {
            for (size_t k = 0; k < group; k++) AGI_PUSH(t->byte_id[g[k]]);
        }
        group = 0;
    }
#undef AGI_PUSH

    /* Greedy merges: the best-scoring adjacent pair first, the leftmost on ties. */
    for (size_t i = 0; i < n; i++) {
        s[i].prev = i == 0 ? AGI_NONE : (uint32_t)(i - 1);
        s[i].next = i + 1 == n ? AGI_NONE : (uint32_t)(i + 1);
        s[i].alive = 1;
        s[i].ver = 0;
    }
    size_t nheap = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, s, (uint32_t)i, (uint32_t)(i + 1), buf, heap, &nheap);
    size_t count = n;
    while (nheap > 0) {
        agi_merge e = heap_pop(heap, &nheap);
        agi_sym *a = &s[e.left], *b = &s[e.right];
        if (!a->alive || !b->alive || a->next != e.right || a->ver != e.vleft || b->ver != e.vright) continue;
        a->id = e.id;
        a->ver++;
        b->alive = 0;
        a->next = b->next;
        if (b->next != AGI_NONE) s[b->next].prev = e.left;
        count--;
        try_pair(t, s, a->prev, e.left, buf, heap, &nheap);
        try_pair(t, s, e.left, a->next, buf, heap, &nheap);
    }

    *n_out = count;
    ag_status st = AG_OK;
    if (count > cap) {
        st = agi_error(AG_ERR_BUFFER_TOO_SMALL, func, "the text needs %zu tokens, the buffer holds %zu", count, cap);
    } else {
        size_t k = 0;
        for (uint32_t i = n ? 0 : AGI_NONE; i != AGI_NONE; i = s[i].next) tokens[k++] = s[i].id;
    }
    free(s);
    free(heap);
    free(buf);
    return st;
}
