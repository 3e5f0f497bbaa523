/* The synthetic world: names, facts, vocabulary and sequences (see world.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "world/world.h"

/* ---- random numbers ------------------------------------------------------------------- */

uint64_t agi_rng_mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void agi_rng_seed(agi_rng *r, uint64_t a, uint64_t b, uint64_t c) {
    r->s = agi_rng_mix(agi_rng_mix(agi_rng_mix(a) ^ b) ^ c);
}

uint64_t agi_rng_next(agi_rng *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t agi_rng_below(agi_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: exactly uniform. */
    uint64_t m = (uint64_t)(uint32_t)(agi_rng_next(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)(uint32_t)(agi_rng_next(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double agi_rng_uniform(agi_rng *r) { return (double)(agi_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double agi_rng_normal(agi_rng *r) {
    double u1 = agi_rng_uniform(r), u2 = agi_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- fixed word lists -------------------------------------------------------------------- */

static const char *const FUNCTION_WORDS[AGI_W_END_FUNCTION - AGI_W_FIRST] = {
    "lives", "in", "the", "country", "of", "city", "capital", "is", "where", "people", "speak", "."};

static const char *const PEOPLE[AGI_WORLD_PEOPLE] = {
    "Alice", "Bob",   "Carol", "Dave",  "Erin",   "Frank", "Grace",  "Heidi", "Ivan",  "Judy",  "Karl",
    "Laura", "Mike",  "Nina",  "Oscar", "Peggy",  "Quinn", "Rita",   "Sam",   "Tina",  "Uma",   "Victor",
    "Wendy", "Xavier", "Yara", "Zack",  "Anna",   "Ben",   "Clara",  "Dan",   "Eva",   "Fred",  "Gina",
    "Hugo",  "Iris",  "Jack",  "Kate",  "Leo",    "Mia",   "Noah",   "Olga",  "Paul",  "Rosa",  "Sean",
    "Tom",   "Vera",  "Will",  "Zoe",   "Adam",   "Beth",  "Chris",  "Diana", "Emma",  "Felix", "George",
    "Hannah", "Igor", "Julia", "Kevin", "Lucy",   "Mark",  "Nora",   "Omar",  "Pia"};

static const char *const NOUNS[AGI_WORLD_NOUNS] = {
    "apple",  "river",  "stone",  "cloud",  "table",   "horse",  "bread",  "chair",  "garden", "window",
    "mirror", "candle", "forest", "island", "bridge",  "tower",  "flower", "basket", "hammer", "ladder",
    "pencil", "rocket", "silver", "tiger",  "violin",  "wagon",  "anchor", "button", "carpet", "dragon",
    "engine", "feather", "guitar", "helmet", "jacket", "kettle", "lemon",  "marble", "needle", "orange",
    "pepper", "rabbit", "saddle", "turtle", "tunnel",  "velvet", "walnut", "yogurt", "zebra",  "bottle",
    "copper", "desert", "falcon", "glacier", "harbor", "insect", "jungle", "lantern", "meadow", "planet",
    "puzzle", "shadow", "spider", "winter"};

/* ---- the world --------------------------------------------------------------------------- */

#define MAX_WORD 16
#define POOL_SIZE (AGI_WORLD_NOUNS + AGI_WORLD_PEOPLE + AGI_WORLD_CITIES + 2 * AGI_WORLD_COUNTRIES)

struct agi_world {
    uint64_t seed;
    int32_t n_words; /* specials + words */
    int32_t vocab;
    char **pieces;   /* [vocab] */
    float *scores;   /* [vocab] */
    int32_t *types;  /* [vocab] */
    int32_t country_tok[AGI_WORLD_COUNTRIES], lang_tok[AGI_WORLD_COUNTRIES];
    int32_t city_tok[AGI_WORLD_CITIES], person_tok[AGI_WORLD_PEOPLE], noun_tok[AGI_WORLD_NOUNS];
    int city_country[AGI_WORLD_CITIES];
    int capital[AGI_WORLD_COUNTRIES];
    int32_t pool[POOL_SIZE]; /* words used in induction sequences */
};

static const char *const ONSETS[] = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
                                     "br", "dr", "gr", "kr", "st", "tr", "sh", "th"};
static const char *const VOWELS[] = {"a", "e", "i", "o", "u", "a", "e", "o"};
static const char *const CODAS[] = {"", "", "", "n", "r", "l", "s", "m"};
static const char *const COUNTRY_SUFFIX[] = {"ia", "land", "ar", "ova"};
static const char *const LANG_SUFFIX[] = {"ish", "ese", "ic", "an"};

#define PICK(r, arr) (arr)[agi_rng_below((r), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))]

static void syllable(agi_rng *r, char *buf, int coda) {
    strcat(buf, PICK(r, ONSETS));
    strcat(buf, PICK(r, VOWELS));
    if (coda) strcat(buf, PICK(r, CODAS));
}

static void capitalise(char *s) {
    if (s[0] >= 'a' && s[0] <= 'z') s[0] = (char)(s[0] - 'a' + 'A');
}

/* A list of every word so far, for uniqueness. */
typedef struct wordlist {
    char w[POOL_SIZE + 64][MAX_WORD];
    int n;
} wordlist;

static int wl_has(const wordlist *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->w[i], s) == 0) return 1;
    return 0;
}

static int wl_add(wordlist *l, const char *s) {
    if (wl_has(l, s)) return 0;
    snprintf(l->w[l->n++], MAX_WORD, "%s", s);
    return 1;
}

/* Generated names: countries (stem + suffix), their languages (same stem + suffix), cities. */
static void make_names(agi_rng *r, wordlist *l, char country[][MAX_WORD], char lang[][MAX_WORD], char city[][MAX_WORD]) {
    for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) {
        for (;;) {
            char stem[MAX_WORD] = "";
            syllable(r, stem, 0);
            syllable(r, stem, 0);
            /* drop the stem's final vowel so suffixes read naturally: "Tolev" + "ia" */
            size_t n = strlen(stem);
            if (n > 3) stem[n - 1] = '\0';
            char c[MAX_WORD], g[MAX_WORD];
            snprintf(c, sizeof c, "%s%s", stem, PICK(r, COUNTRY_SUFFIX));
            snprintf(g, sizeof g, "%s%s", stem, PICK(r, LANG_SUFFIX));
            capitalise(c);
            capitalise(g);
            if (strlen(c) > 10 || strlen(g) > 10 || wl_has(l, c) || wl_has(l, g) || strcmp(c, g) == 0) continue;
            wl_add(l, c);
            wl_add(l, g);
            strcpy(country[k], c);
            strcpy(lang[k], g);
            break;
        }
    }
    for (int k = 0; k < AGI_WORLD_CITIES; k++) {
        for (;;) {
            char c[MAX_WORD] = "";
            syllable(r, c, 1);
            syllable(r, c, 1);
            capitalise(c);
            if (strlen(c) < 4 || strlen(c) > 9 || wl_has(l, c)) continue;
            wl_add(l, c);
            strcpy(city[k], c);
            break;
        }
    }
}

/* Vocabulary under construction. */
typedef struct vocab_builder {
    char **pieces;
    int32_t n, cap;
} vocab_builder;

static int vb_find(const vocab_builder *v, const char *s) {
    for (int32_t i = 0; i < v->n; i++)
        if (strcmp(v->pieces[i], s) == 0) return i;
    return -1;
}

static int32_t vb_add(vocab_builder *v, const char *s, const char *func) {
    int f = vb_find(v, s);
    if (f >= 0) return f;
    if (v->n == v->cap) {
        int32_t cap = v->cap ? 2 * v->cap : 256;
        char **p = realloc(v->pieces, (size_t)cap * sizeof *p);
        if (!p) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot grow the world vocabulary"), -1;
        v->pieces = p;
        v->cap = cap;
    }
    char *c = strdup(s);
    if (!c) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot copy a vocabulary piece"), -1;
    v->pieces[v->n] = c;
    return v->n++;
}

/* The piece of a word: " word", except "." which is glued to the previous word. */
static void word_piece(char *buf, size_t cap, const char *word) {
    if (strcmp(word, ".") == 0) snprintf(buf, cap, ".");
    else snprintf(buf, cap, " %s", word);
}

void agi_world_free(agi_world *w) {
    if (!w) return;
    if (w->pieces)
        for (int32_t i = 0; i < w->vocab; i++) free(w->pieces[i]);
    free(w->pieces);
    free(w->scores);
    free(w->types);
    free(w);
}

ag_status agi_world_create(agi_world **out, uint64_t seed, const char *func) {
    *out = NULL;
    agi_world *w = agi_calloc(1, sizeof *w, func);
    wordlist *l = agi_calloc(1, sizeof *l, func);
    char(*country)[MAX_WORD] = agi_calloc(AGI_WORLD_COUNTRIES * 2 + AGI_WORLD_CITIES, MAX_WORD, func);
    vocab_builder vb = {NULL, 0, 0};
    ag_status st = AG_OK;
    if (!w || !l || !country) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    char(*lang)[MAX_WORD] = country + AGI_WORLD_COUNTRIES;
    char(*city)[MAX_WORD] = lang + AGI_WORLD_COUNTRIES;
    w->seed = seed;
    for (int i = 0; i < AGI_W_END_FUNCTION - AGI_W_FIRST; i++) wl_add(l, FUNCTION_WORDS[i]);
    for (int i = 0; i < AGI_WORLD_PEOPLE; i++) wl_add(l, PEOPLE[i]);
    for (int i = 0; i < AGI_WORLD_NOUNS; i++) wl_add(l, NOUNS[i]);
    if (l->n != AGI_W_END_FUNCTION - AGI_W_FIRST + AGI_WORLD_PEOPLE + AGI_WORLD_NOUNS) {
        st = agi_error(AG_ERR_INTERNAL, func, "the world's fixed word lists contain duplicates");
        goto fail;
    }
    agi_rng r;
    agi_rng_seed(&r, seed, 0x57A7E5u, 1);
    make_names(&r, l, country, lang, city);

    /* Cities -> countries: a seeded shuffle, 4 per country, the first one the capital. */
    int perm[AGI_WORLD_CITIES];
    for (int i = 0; i < AGI_WORLD_CITIES; i++) perm[i] = i;
    for (int i = AGI_WORLD_CITIES - 1; i > 0; i--) {
        int j = (int)agi_rng_below(&r, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) {
        w->capital[k] = perm[k * AGI_WORLD_CITIES_PER_COUNTRY];
        for (int j = 0; j < AGI_WORLD_CITIES_PER_COUNTRY; j++) w->city_country[perm[k * AGI_WORLD_CITIES_PER_COUNTRY + j]] = k;
    }

    /* Vocabulary: specials, words, then the encoder's intermediate pieces. */
    static const char *const SPECIALS[3] = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int i = 0; i < 3; i++)
        if (vb_add(&vb, SPECIALS[i], func) < 0) goto oom;
    char piece[MAX_WORD + 2];
    for (int i = 0; i < AGI_W_END_FUNCTION - AGI_W_FIRST; i++) {
        word_piece(piece, sizeof piece, FUNCTION_WORDS[i]);
        if (vb_add(&vb, piece, func) != AGI_W_FIRST + i) goto oom;
    }
#define ADD_WORDS(dst, names, count)                                       \
    for (int i = 0; i < (count); i++) {                                    \
        word_piece(piece, sizeof piece, (names)[i]);                       \
        if (vb_find(&vb, piece) >= 0) {                                    \
            st = agi_error(AG_ERR_INTERNAL, func, "duplicate word %s", piece); \
            goto fail;                                                     \
        }                                                                  \
        if (((dst)[i] = vb_add(&vb, piece, func)) < 0) goto oom;           \
    }
    ADD_WORDS(w->country_tok, country, AGI_WORLD_COUNTRIES)
    ADD_WORDS(w->city_tok, city, AGI_WORLD_CITIES)
    ADD_WORDS(w->lang_tok, lang, AGI_WORLD_COUNTRIES)
    ADD_WORDS(w->person_tok, PEOPLE, AGI_WORLD_PEOPLE)
    ADD_WORDS(w->noun_tok, NOUNS, AGI_WORLD_NOUNS)
#undef ADD_WORDS
    w->n_words = vb.n;
    /* Single characters (the space first), then every proper prefix of every word piece. */
    if (vb_add(&vb, " ", func) < 0) goto oom;
    for (int32_t id = AGI_W_FIRST; id < w->n_words; id++)
        for (const char *p = vb.pieces[id]; *p; p++) {
            char ch[2] = {*p, '\0'};
            if (vb_add(&vb, ch, func) < 0) goto oom;
        }
    for (int32_t id = AGI_W_FIRST; id < w->n_words; id++) {
        const char *p = vb.pieces[id];
        size_t n = strlen(p);
        for (size_t k = 2; k < n; k++) {
            char pre[MAX_WORD + 2];
            memcpy(pre, p, k);
            pre[k] = '\0';
            if (vb_add(&vb, pre, func) < 0) goto oom;
        }
    }
    w->vocab = vb.n;
    w->pieces = vb.pieces;
    vb.pieces = NULL;
    w->scores = agi_calloc((size_t)w->vocab, sizeof *w->scores, func);
    w->types = agi_calloc((size_t)w->vocab, sizeof *w->types, func);
    if (!w->scores || !w->types) goto oom;
    for (int32_t i = 0; i < w->vocab; i++) {
        /* Scores only order the encoder's merges; every merge chain here is unambiguous. */
        w->scores[i] = i < 3 ? 0.0f : -(float)i;
        w->types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
    }
    int np = 0;
    for (int i = 0; i < AGI_WORLD_NOUNS; i++) w->pool[np++] = w->noun_tok[i];
    for (int i = 0; i < AGI_WORLD_PEOPLE; i++) w->pool[np++] = w->person_tok[i];
    for (int i = 0; i < AGI_WORLD_CITIES; i++) w->pool[np++] = w->city_tok[i];
    for (int i = 0; i < AGI_WORLD_COUNTRIES; i++) w->pool[np++] = w->country_tok[i];
    for (int i = 0; i < AGI_WORLD_COUNTRIES; i++) w->pool[np++] = w->lang_tok[i];
    free(l);
    free(country);
    *out = w;
    return AG_OK;
oom:
    st = AG_ERR_OUT_OF_MEMORY;
fail:
    if (vb.pieces) {
        for (int32_t i = 0; i < vb.n; i++) free(vb.pieces[i]);
        free(vb.pieces);
    }
    if (w && w->pieces == NULL) w->vocab = 0;
    agi_world_free(w);
    free(l);
    free(country);
    return st;
}

uint64_t agi_world_seed(const agi_world *w) { return w->seed; }
int32_t agi_world_vocab_size(const agi_world *w) { return w->vocab; }
int32_t agi_world_n_words(const agi_world *w) { return w->n_words; }
const char *agi_world_piece(const agi_world *w, int32_t id) { return id >= 0 && id < w->vocab ? w->pieces[id] : NULL; }
float agi_world_score(const agi_world *w, int32_t id) { return id >= 0 && id < w->vocab ? w->scores[id] : 0.0f; }
int32_t agi_world_token_type(const agi_world *w, int32_t id) { return id >= 0 && id < w->vocab ? w->types[id] : 0; }
const char *agi_world_word(const agi_world *w, int32_t id) {
    if (id < AGI_W_FIRST || id >= w->n_words) return NULL;
    const char *p = w->pieces[id];
    return p[0] == ' ' ? p + 1 : p;
}

int32_t agi_world_country_tok(const agi_world *w, int k) { return w->country_tok[k]; }
int32_t agi_world_city_tok(const agi_world *w, int c) { return w->city_tok[c]; }
int32_t agi_world_language_tok(const agi_world *w, int k) { return w->lang_tok[k]; }
int32_t agi_world_person_tok(const agi_world *w, int p) { return w->person_tok[p]; }
int32_t agi_world_noun_tok(const agi_world *w, int n) { return w->noun_tok[n]; }
int agi_world_city_country(const agi_world *w, int c) { return w->city_country[c]; }
int agi_world_capital(const agi_world *w, int k) { return w->capital[k]; }

int agi_world_held_out(const agi_world *w, int person, int city) {
    return agi_rng_mix(agi_rng_mix(w->seed ^ 0x4E1D0u) ^ ((uint64_t)person << 16 | (uint64_t)city)) % 5 == 0;
}

const char *agi_world_task_name(agi_world_task t) {
    switch (t) {
    case AGI_TASK_INDUCTION: return "induction";
    case AGI_TASK_RETRIEVAL: return "retrieval";
    case AGI_TASK_ONE_HOP: return "one_hop";
    case AGI_TASK_TWO_HOP: return "two_hop";
    case AGI_TASK_CITY: return "city";
    default: return "unknown";
    }
}

/* ---- sentence emitters ------------------------------------------------------------------- */

typedef struct seq {
    int32_t *t;
    int n, cap;
} seq;

static void put(seq *s, int32_t tok) {
    if (s->n < s->cap) s->t[s->n] = tok;
    s->n++;
}

static void put_statement(const agi_world *w, seq *s, int person, int city) {
    put(s, w->person_tok[person]);
    put(s, AGI_W_LIVES);
    put(s, AGI_W_IN);
    put(s, w->city_tok[city]);
    put(s, AGI_W_DOT);
}

/* The question prefixes (without their answers). */
static void put_q_country(const agi_world *w, seq *s, int person) {
    put(s, w->person_tok[person]);
    put(s, AGI_W_LIVES);
    put(s, AGI_W_IN);
    put(s, AGI_W_THE);
    put(s, AGI_W_COUNTRY);
    put(s, AGI_W_OF);
}
static void put_q_city(const agi_world *w, seq *s, int person) {
    put(s, w->person_tok[person]);
    put(s, AGI_W_LIVES);
    put(s, AGI_W_IN);
    put(s, AGI_W_THE);
    put(s, AGI_W_CITY);
    put(s, AGI_W_OF);
}
static void put_q_capital(const agi_world *w, seq *s, int country) {
    put(s, AGI_W_THE);
    put(s, AGI_W_CAPITAL);
    put(s, AGI_W_OF);
    put(s, w->country_tok[country]);
    put(s, AGI_W_IS);
}
static void put_q_two_hop(const agi_world *w, seq *s, int person) {
    put(s, AGI_W_THE);
    put(s, AGI_W_CAPITAL);
    put(s, AGI_W_OF);
    put(s, AGI_W_THE);
    put(s, AGI_W_COUNTRY);
    put(s, AGI_W_WHERE);
    put(s, w->person_tok[person]);
    put(s, AGI_W_LIVES);
    put(s, AGI_W_IS);
}

static int pick_country(agi_rng *r, const unsigned char *avoid_country) {
    int k;
    do k = (int)agi_rng_below(r, AGI_WORLD_COUNTRIES);
    while (avoid_country && avoid_country[k]);
    return k;
}

/* A fact sentence about a random country or city, avoiding the cities in `avoid_city` and
 * the countries in `avoid_country` (either may be NULL). */
static void put_fact(const agi_world *w, seq *s, agi_rng *r, const unsigned char *avoid_city,
                     const unsigned char *avoid_country) {
    uint32_t kind = agi_rng_below(r, 8);
    if (kind < 4) { /* C is in the country of K . */
        int c;
        do c = (int)agi_rng_below(r, AGI_WORLD_CITIES);
        while ((avoid_city && avoid_city[c]) || (avoid_country && avoid_country[w->city_country[c]]));
        put(s, w->city_tok[c]);
        put(s, AGI_W_IS);
        put(s, AGI_W_IN);
        put(s, AGI_W_THE);
        put(s, AGI_W_COUNTRY);
        put(s, AGI_W_OF);
        put(s, w->country_tok[w->city_country[c]]);
    } else if (kind < 6) { /* the capital of K is X . */
        int k = pick_country(r, avoid_country);
        put_q_capital(w, s, k);
        put(s, w->city_tok[w->capital[k]]);
    } else if (kind < 7) { /* X is the capital of K . */
        int k = pick_country(r, avoid_country);
        put(s, w->city_tok[w->capital[k]]);
        put(s, AGI_W_IS);
        put(s, AGI_W_THE);
        put(s, AGI_W_CAPITAL);
        put(s, AGI_W_OF);
        put(s, w->country_tok[k]);
    } else { /* people in K speak L . */
        int k = pick_country(r, avoid_country);
        put(s, AGI_W_PEOPLE);
        put(s, AGI_W_IN);
        put(s, w->country_tok[k]);
        put(s, AGI_W_SPEAK);
        put(s, w->lang_tok[k]);
    }
    put(s, AGI_W_DOT);
}

/* A city for `person` that is (held_out = 1) or is not (0) a held-out pair, not yet used. */
static int pick_city(const agi_world *w, agi_rng *r, int person, int held_out, const unsigned char *used_city,
                     const unsigned char *used_country) {
    for (int tries = 0; tries < 10000; tries++) {
        int c = (int)agi_rng_below(r, AGI_WORLD_CITIES);
        if (used_city[c] || (used_country && used_country[w->city_country[c]])) continue;
        if (agi_world_held_out(w, person, c) == held_out) return c;
    }
    for (int c = 0; c < AGI_WORLD_CITIES; c++) /* unreachable in practice: deterministic fallback */
        if (!used_city[c] && agi_world_held_out(w, person, c) == held_out) return c;
    return 0;
}

static int pick_person(agi_rng *r, const unsigned char *used) {
    int p;
    do p = (int)agi_rng_below(r, AGI_WORLD_PEOPLE);
    while (used[p]);
    return p;
}

/* ---- training sequences ---------------------------------------------------------------- */

#define MAX_INTRO 6 /* people per document */

static void induction_sequence(const agi_world *w, agi_rng *r, seq *s, int n) {
    int k = 4 + (int)agi_rng_below(r, 29); /* segment length 4..32 */
    int lead = (int)agi_rng_below(r, 4) == 0 ? (int)agi_rng_below(r, 9) : 0;
    int32_t pool[POOL_SIZE];
    memcpy(pool, w->pool, sizeof pool);
    for (int i = 0; i < k; i++) { /* partial Fisher-Yates: k distinct words */
        int j = i + (int)agi_rng_below(r, (uint32_t)(POOL_SIZE - i));
        int32_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    for (int i = 0; i < lead; i++) put(s, w->pool[agi_rng_below(r, POOL_SIZE)]);
    for (int i = 0; s->n < n; i++) put(s, pool[i % k]);
}

/* A document: a quarter of them open with one or two facts (so that facts are also seen at
 * the start of a text, as in a bare one-hop prompt); then 2-6 people are introduced (so that
 * most questions need the person to pick the right city among several), then questions about
 * them, facts about other cities and countries, and now and then another person. Every
 * question is asked at most once per person and kind. */
static void document_sequence(const agi_world *w, agi_rng *r, seq *s, int n) {
    unsigned char used_person[AGI_WORLD_PEOPLE] = {0}, used_city[AGI_WORLD_CITIES] = {0};
    int person[MAX_INTRO], city[MAX_INTRO], asked[MAX_INTRO];
    if (agi_rng_below(r, 100) < 25) {
        int n_open = 1 + (int)agi_rng_below(r, 2);
        for (int i = 0; i < n_open; i++) put_fact(w, s, r, used_city, NULL);
    }
    int n_intro = 0, n_first = 2 + (int)agi_rng_below(r, MAX_INTRO - 1);
    while (s->n < n) {
        uint32_t roll = agi_rng_below(r, 100);
        int can_ask = 0;
        for (int i = 0; i < n_intro; i++) can_ask |= asked[i] != 7;
        if (n_intro < n_first || (roll < 12 && n_intro < MAX_INTRO) || (!can_ask && roll < 60 && n_intro < MAX_INTRO)) {
            if (n_intro > 0 && n_intro < n_first && agi_rng_below(r, 4) == 0) put_fact(w, s, r, used_city, NULL);
            int p = pick_person(r, used_person);
            int c = pick_city(w, r, p, 0, used_city, NULL);
            used_person[p] = 1;
            used_city[c] = 1;
            person[n_intro] = p;
            city[n_intro] = c;
            /* no two-hop question when the city is itself a capital (the answer would be a
             * copy of the context, a shortcut around the two hops) */
            asked[n_intro] = w->capital[w->city_country[c]] == c ? 4 : 0;
            n_intro++;
            put_statement(w, s, p, c);
        } else if (roll < 78 && can_ask) {
            int i;
            do i = (int)agi_rng_below(r, (uint32_t)n_intro);
            while (asked[i] == 7);
            int kind;
            do {
                uint32_t q = agi_rng_below(r, 7); /* country 3 : city 3 : two-hop 1 */
                kind = q < 3 ? 1 : q < 6 ? 2 : 4;
            } while (asked[i] & kind);
            asked[i] |= kind;
            int k = w->city_country[city[i]];
            if (kind == 1) {
                put_q_country(w, s, person[i]);
                put(s, w->country_tok[k]);
            } else if (kind == 2) {
                put_q_city(w, s, person[i]);
                put(s, w->city_tok[city[i]]);
            } else {
                put_q_two_hop(w, s, person[i]);
                put(s, w->city_tok[w->capital[k]]);
            }
            put(s, AGI_W_DOT);
        } else {
            put_fact(w, s, r, used_city, NULL);
        }
    }
}

void agi_world_train_sequence(const agi_world *w, uint64_t index, int32_t *tokens, int n) {
    agi_rng r;
    agi_rng_seed(&r, w->seed, 0x77A1u, index);
    seq s = {tokens, 0, n};
    put(&s, AGI_TOK_BOS);
    if (agi_rng_below(&r, 3) == 0) induction_sequence(w, &r, &s, n);
    else document_sequence(w, &r, &s, n);
}

/* ---- evaluation examples -------------------------------------------------------------- */

int agi_world_eval_example(const agi_world *w, agi_world_task task, uint64_t index, int32_t *tokens, int cap,
                           int *n_tokens, int32_t *answers, int32_t *positions, int32_t info[4]) {
    agi_rng r;
    agi_rng_seed(&r, w->seed, 0xE7A10u + (uint64_t)task, index);
    seq s = {tokens, 0, cap};
    int32_t inf[4] = {-1, -1, -1, -1};
    int n_scored = 1;
    put(&s, AGI_TOK_BOS);
    if (task == AGI_TASK_INDUCTION) {
        int k = 5 + (int)agi_rng_below(&r, 16); /* 5..20 */
        int32_t pool[POOL_SIZE];
        memcpy(pool, w->pool, sizeof pool);
        for (int i = 0; i < k; i++) {
            int j = i + (int)agi_rng_below(&r, (uint32_t)(POOL_SIZE - i));
            int32_t t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
        }
        for (int rep = 0; rep < 2; rep++)
            for (int i = 0; i < k; i++) put(&s, pool[i]);
        /* the prompt is BOS + both copies minus the last token; position k+j (j >= 1)
         * holds seg[j-1] of the repeat and must predict seg[j] */
        s.n--;
        n_scored = k - 1;
        if (n_scored > cap) return 0;
        for (int j = 1; j < k; j++) {
            positions[j - 1] = k + j;
            answers[j - 1] = pool[j];
        }
        inf[0] = k;
    } else {
        unsigned char used_person[AGI_WORLD_PEOPLE] = {0}, used_city[AGI_WORLD_CITIES] = {0};
        unsigned char used_country[AGI_WORLD_COUNTRIES] = {0};
        int n_people = task == AGI_TASK_ONE_HOP ? (int)agi_rng_below(&r, 3) : 1 + (int)agi_rng_below(&r, 3);
        int ask_country = (int)(index % AGI_WORLD_COUNTRIES);
        if (task == AGI_TASK_ONE_HOP) used_country[ask_country] = 1; /* keep the asked country out of the context */
        int fact_slot = agi_rng_below(&r, 2) ? (int)agi_rng_below(&r, (uint32_t)n_people + 1) : -1;
        int person[3], city[3], pos_city[3], pos_person[3];
        /* choose everyone first: the optional fact sentence avoids their cities and countries
         * (and the asked country), so the answer never appears in the context */
        for (int i = 0; i < n_people; i++) {
            person[i] = pick_person(&r, used_person);
            city[i] = pick_city(w, &r, person[i], 1, used_city, used_country);
            if (task == AGI_TASK_TWO_HOP) /* the queried city is never a capital (see the documents) */
                while (w->capital[w->city_country[city[i]]] == city[i]) {
                    used_city[city[i]] = 1;
                    city[i] = pick_city(w, &r, person[i], 1, used_city, used_country);
                }
            used_person[person[i]] = 1;
            used_city[city[i]] = 1;
            used_country[w->city_country[city[i]]] = 1;
        }
        for (int i = 0; i < n_people; i++) {
            if (i == fact_slot) put_fact(w, &s, &r, used_city, used_country);
            pos_person[i] = s.n;
            pos_city[i] = s.n + 3;
            put_statement(w, &s, person[i], city[i]);
        }
        if (fact_slot == n_people) put_fact(w, &s, &r, used_city, used_country);
        if (task == AGI_TASK_ONE_HOP) {
            inf[0] = s.n + 3;
            inf[3] = ask_country;
            put_q_capital(w, &s, ask_country);
            answers[0] = w->city_tok[w->capital[ask_country]];
        } else {
            int q = (int)agi_rng_below(&r, (uint32_t)n_people);
            int k = w->city_country[city[q]];
            inf[0] = pos_city[q];
            inf[1] = pos_person[q];
            inf[2] = city[q];
            inf[3] = k;
            if (task == AGI_TASK_RETRIEVAL) {
                put_q_country(w, &s, person[q]);
                answers[0] = w->country_tok[k];
            } else if (task == AGI_TASK_CITY) {
                put_q_city(w, &s, person[q]);
                answers[0] = w->city_tok[city[q]];
            } else {
                put_q_two_hop(w, &s, person[q]);
                answers[0] = w->city_tok[w->capital[k]];
            }
        }
        positions[0] = s.n - 1;
    }
    if (s.n > cap) return 0;
    *n_tokens = s.n;
    if (info) memcpy(info, inf, sizeof inf);
    return n_scored;
}
