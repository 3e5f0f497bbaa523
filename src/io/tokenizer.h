/* The sentencepiece-style BPE tokenizer of llama2.c, built either from a llama2.c
 * tokenizer .bin or from a GGUF vocabulary (tokenizer.ggml.tokens/scores). Pieces are
 * stored with sentencepiece's U+2581 replaced by a plain space, as llama2.c does. */
#ifndef AGI_TOKENIZER_H
#define AGI_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "attrgraph.h"

typedef struct agi_tokenizer agi_tokenizer;

/* Parse a llama2.c tokenizer .bin (int32 max_token_length, then n_vocab x {f32 score,
 * i32 len, len bytes}); the count is the model's vocab size. `name` is used in messages. */
ag_status agi_tokenizer_from_bin(agi_tokenizer **out, const uint8_t *data, size_t size,
                                 int32_t n_vocab, const char *name, const char *func);

/* Build from a vocabulary: pieces[i] (len[i] bytes, may contain U+2581 which becomes a
 * space) and scores[i]. Copies everything. bos/eos may be -1. */
ag_status agi_tokenizer_from_vocab(agi_tokenizer **out, int32_t n_vocab,
                                   const char *const *pieces, const size_t *lens,
                                   const float *scores, int32_t bos, int32_t eos,
                                   const char *func);

void agi_tokenizer_free(agi_tokenizer *t);

int32_t agi_tokenizer_n_vocab(const agi_tokenizer *t);
int32_t agi_tokenizer_bos(const agi_tokenizer *t);
int32_t agi_tokenizer_eos(const agi_tokenizer *t);

/* Encode (llama2.c semantics): optional BOS, dummy-prefix space for non-empty text, code
 * points looked up as pieces, byte fallback <0xNN>, then greedy merges by highest score.
 * Writes up to cap ids; *n_out = count (or count needed with AG_ERR_BUFFER_TOO_SMALL). */
ag_status agi_tokenizer_encode(const agi_tokenizer *t, const char *text, int add_bos,
                               int32_t *tokens, size_t cap, size_t *n_out, const char *func);

/* The decoded text of `token` after `prev` (-1 = none): a piece after BOS drops its
 * leading space; <0xNN> pieces become the raw byte. Returns a pointer to either the
 * stored piece or `scratch` (>= 2 bytes) and its length in *len. NULL if out of range. */
const char *agi_tokenizer_decode(const agi_tokenizer *t, int32_t prev, int32_t token,
                                 char scratch[2], size_t *len);

/* The raw stored piece (space for U+2581) and score; NULL if out of range. */
const char *agi_tokenizer_piece(const agi_tokenizer *t, int32_t token, float *score);

#endif
