/* The synthetic world of the built-in model (issue 5): a deterministic, seeded set of people,
 * cities, countries (each with a capital) and languages, the sentences that state its facts,
 * and the task sequences whose circuits we know in advance.
 *
 * Entities. 16 countries, 4 cities each (the first is the capital), one language per country,
 * 64 people, 64 common nouns. City, country and language names are made of random syllables
 * (seeded); people and nouns come from fixed lists. Every word is one token.
 *
 * Vocabulary (word level, llama2.c tokenizer semantics, see world_vocab below):
 *   0 <unk>, 1 BOS "\n<s>\n", 2 EOS "\n</s>\n", then one token per word (" lives", " Alice",
 *   "." ...), then the pieces the llama2.c encoder needs to build each word from characters
 *   (single characters and every prefix " W", " Wo", ... of every word). The model is trained
 *   on word tokens only; the extra pieces exist so that ag_tokenize turns text into them.
 *
 * Sentences (one token per word, "." ends a sentence):
 *   statement      P lives in C .
 *   city fact      C is in the country of K .
 *   capital fact   the capital of K is X .        X is the capital of K .
 *   language fact  people in K speak L .
 *   retrieval      P lives in the country of K .  (C only in the context, C -> K stored)
 *   city query     P lives in the city of C .
 *   two-hop        the capital of the country where P lives is X .
 *
 * Training sequences (T+1 tokens, BOS first) are either a document (a quarter open with one
 * or two facts; then 2-6 statements, then questions about those people - country : city :
 * two-hop = 3 : 3 : 1 - facts about other cities and countries, now and then another person;
 * 2/3 of the sequences) or an induction sequence (a run of 4-32 distinct random words,
 * sometimes after a few random words, repeated until the sequence is full; 1/3).
 *
 * Held-out split: a (person, city) pair is held out when a seeded hash of it is 0 mod 5.
 * Training documents only ever say "P lives in C" for pairs that are not held out; the
 * retrieval, city and two-hop evaluation prompts use held-out pairs only, so the model has
 * never seen any of the pairings it is asked about. Induction prompts use a separate random
 * stream (new random sequences). One-hop prompts ask about the stored facts themselves.
 *
 * Every sequence is a pure function of (world seed, stream, index): training step s reads
 * sequences s*B .. s*B+B-1, so a run can resume from any step with the same data. */
#ifndef AGI_WORLD_H
#define AGI_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "attrgraph.h"

#define AGI_WORLD_COUNTRIES 16
#define AGI_WORLD_CITIES_PER_COUNTRY 4
#define AGI_WORLD_CITIES (AGI_WORLD_COUNTRIES * AGI_WORLD_CITIES_PER_COUNTRY)
#define AGI_WORLD_PEOPLE 64
#define AGI_WORLD_NOUNS 64

/* Function words, in token order starting at AGI_W_FIRST. */
enum {
    AGI_TOK_UNK = 0,
    AGI_TOK_BOS = 1,
    AGI_TOK_EOS = 2,
    AGI_W_FIRST = 3,
    AGI_W_LIVES = AGI_W_FIRST, /* " lives" */
    AGI_W_IN,                  /* " in" */
    AGI_W_THE,                 /* " the" */
    AGI_W_COUNTRY,             /* " country" */
    AGI_W_OF,                  /* " of" */
    AGI_W_CITY,                /* " city" */
    AGI_W_CAPITAL,             /* " capital" */
    AGI_W_IS,                  /* " is" */
    AGI_W_WHERE,               /* " where" */
    AGI_W_PEOPLE,              /* " people" */
    AGI_W_SPEAK,               /* " speak" */
    AGI_W_DOT,                 /* "." */
    AGI_W_END_FUNCTION
};

/* Evaluation tasks. */
typedef enum agi_world_task {
    AGI_TASK_INDUCTION = 0, /* BOS w1..wk w1..wk: predict w2..wk of the repeat */
    AGI_TASK_RETRIEVAL = 1, /* statements + "P lives in the country of" -> country of P's city */
    AGI_TASK_ONE_HOP = 2,   /* [statements +] "the capital of K is" -> capital of K */
    AGI_TASK_TWO_HOP = 3,   /* statements + "the capital of the country where P lives is" */
    AGI_TASK_CITY = 4,      /* statements + "P lives in the city of" -> P's city */
    AGI_TASK_COUNT = 5
} agi_world_task;

typedef struct agi_world agi_world;

/* Build the world of `seed` (names, facts, vocabulary). */
ag_status agi_world_create(agi_world **out, uint64_t seed, const char *func);
void agi_world_free(agi_world *w);

uint64_t agi_world_seed(const agi_world *w);

/* ---- vocabulary ------------------------------------------------------------------------- */

int32_t agi_world_vocab_size(const agi_world *w);
/* Number of word tokens (ids [0, n_words) are specials and words; the rest are pieces). */
int32_t agi_world_n_words(const agi_world *w);
/* Piece of token id (NUL-terminated; a leading space stands for sentencepiece's U+2581). */
const char *agi_world_piece(const agi_world *w, int32_t id);
float agi_world_score(const agi_world *w, int32_t id);
/* GGUF token type: 1 normal, 2 unknown, 3 control. */
int32_t agi_world_token_type(const agi_world *w, int32_t id);
/* The word of a token without its leading space ("Alice"), or NULL. */
const char *agi_world_word(const agi_world *w, int32_t id);

/* ---- entities (token ids) --------------------------------------------------------------- */

int32_t agi_world_country_tok(const agi_world *w, int country);
int32_t agi_world_city_tok(const agi_world *w, int city);
int32_t agi_world_language_tok(const agi_world *w, int country);
int32_t agi_world_person_tok(const agi_world *w, int person);
int32_t agi_world_noun_tok(const agi_world *w, int noun);
int agi_world_city_country(const agi_world *w, int city);    /* country index of a city */
int agi_world_capital(const agi_world *w, int country);       /* city index of its capital */
/* 1 when the pair (person, city) is held out of training. */
int agi_world_held_out(const agi_world *w, int person, int city);

/* ---- sequences ------------------------------------------------------------------------- */

/* Training sequence `index`: exactly n tokens (BOS first). */
void agi_world_train_sequence(const agi_world *w, uint64_t index, int32_t *tokens, int n);

/* One evaluation example of `task` (index selects it; a pure function of seed, task, index).
 * tokens: the prompt (BOS first), at most cap ids; *n_tokens its length.
 * answers/positions: for every scored prediction, the expected next token after the prompt
 * prefix ending at positions[i] (the model's logits at row positions[i] must put answers[i]
 * on top). Retrieval/one-hop/two-hop/city have one scored prediction, at the last position;
 * induction scores every predictable token of the repeat (up to `cap` of them).
 * info (may be NULL): for the circuit tests, the positions that matter:
 *   retrieval/two-hop/city: info[0] = position of the queried person's city in the context,
 *                           info[1] = position of that person's statement subject,
 *                           info[2] = the city index, info[3] = the country index;
 *   one-hop: info[0] = position of the country token, info[3] = the country index;
 *   induction: info[0] = segment length k (copy 1 at positions 1..k, copy 2 at k+1..2k).
 * Returns the number of scored predictions (>= 1), or 0 when cap is too small. */
int agi_world_eval_example(const agi_world *w, agi_world_task task, uint64_t index, int32_t *tokens,
                           int cap, int *n_tokens, int32_t *answers, int32_t *positions, int32_t info[4]);

const char *agi_world_task_name(agi_world_task task);

/* AG_OK when model m uses this world's vocabulary (same size; same pieces when m has a
 * tokenizer), else AG_ERR_UNSUPPORTED with a message. */
ag_status agi_world_check_vocab(const ag_model *m, const agi_world *w, const char *func);

/* ---- deterministic random numbers (shared by world and training) -------------------------- */

typedef struct agi_rng {
    uint64_t s;
} agi_rng;

uint64_t agi_rng_mix(uint64_t x); /* splitmix64 finaliser */
void agi_rng_seed(agi_rng *r, uint64_t a, uint64_t b, uint64_t c);
uint64_t agi_rng_next(agi_rng *r);
uint32_t agi_rng_below(agi_rng *r, uint32_t n); /* uniform in [0, n), n >= 1 */
double agi_rng_uniform(agi_rng *r);             /* [0, 1) */
double agi_rng_normal(agi_rng *r);              /* N(0, 1), Box-Muller */

#endif
