/* The synthetic world (src/world), its word-level tokenizer and the model writers
 * (src/io/gguf_write.c):
 *  - the world is a pure function of its seed; facts are consistent; the held-out split holds
 *    (training never states a held-out person-city pairing, evaluation only asks about them);
 *  - its vocabulary, written into a GGUF, loads through ag_model_load and round-trips every
 *    word, sentence and training sequence through ag_tokenize / ag_token_decode;
 *  - ag_model_save writes GGUF and llama2.c files that load back bit-identical (stories260K,
 *    and a world model), and the tokenizer .bin round-trips. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attrgraph.h"
#include "io/gguf_write.h"
#include "model/model.h"
#include "naive_llama.h"
#include "scratch_dir.h"
#include "train/train.h"
#include "world/world.h"
#include "suite_run.h"

/* A world model with random weights (so that writers have something to write). */
static ag_model *random_world_model(const agi_world *w, int shared) {
    agi_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16;
    c.hidden_dim = 24;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = agi_world_vocab_size(w);
    c.seq_len = 64;
    c.rms_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    ck_assert_int_eq(agi_config_validate(&c, "test", "test"), AG_OK);
    agi_layout lay;
    ck_assert_int_eq(agi_layout_init(&lay, &c, shared, "test"), AG_OK);
    float *p = malloc(lay.n_params * sizeof *p);
    agi_params_init(&lay, p, 7);
    for (size_t i = 0; i < lay.n_params; i++) p[i] += 0.01f * (float)((i * 2654435761u) % 97) / 97.0f; /* gains != 1 */
    ag_model *view;
    ck_assert_int_eq(agi_model_view(&view, &lay, p, "random world model", "test"), AG_OK);
    int32_t V = c.vocab_size;
    const char **pieces = malloc((size_t)V * sizeof *pieces);
    size_t *lens = malloc((size_t)V * sizeof *lens);
    float *scores = malloc((size_t)V * sizeof *scores);
    for (int32_t i = 0; i < V; i++) {
        pieces[i] = agi_world_piece(w, i);
        lens[i] = strlen(pieces[i]);
        scores[i] = agi_world_score(w, i);
    }
    ck_assert_int_eq(agi_tokenizer_from_vocab(&view->tok, V, pieces, lens, scores, 1, 2, "test"), AG_OK);
    view->bos_id = 1;
    view->eos_id = 2;
    /* serialise and load back, so the model owns its bytes */
    agi_gguf_w *gw;
    ck_assert_int_eq(agi_model_to_gguf(view, NULL, 0, &gw, "test"), AG_OK);
    uint8_t *bytes;
    size_t size;
    ck_assert_int_eq(agi_gguf_w_to_memory(gw, &bytes, &size), AG_OK);
    ag_model *m;
    ck_assert_msg(ag_model_load_memory(&m, bytes, size, 1, "world.gguf", NULL) == AG_OK, "%s", ag_last_error());
    /* same weights bit for bit */
    ck_assert_int_eq(memcmp(m->w.token_embedding, p, lay.t[0].count * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(m->w.layers[1].w2, view->w.layers[1].w2, (size_t)c.dim * c.hidden_dim * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(m->w.wcls, view->w.wcls, (size_t)V * c.dim * sizeof(float)), 0);
    ck_assert_int_eq(m->w.shared_classifier, shared);
    free(bytes);
    agi_gguf_w_free(gw);
    ag_model_free(view);
    agi_layout_free(&lay);
    free(p);
    free(pieces);
    free(lens);
    free(scores);
    return m;
}

START_TEST(test_world_deterministic) {
    agi_world *a, *b, *c;
    ck_assert_int_eq(agi_world_create(&a, 1, "test"), AG_OK);
    ck_assert_int_eq(agi_world_create(&b, 1, "test"), AG_OK);
    ck_assert_int_eq(agi_world_create(&c, 2, "test"), AG_OK);
    ck_assert_int_eq(agi_world_vocab_size(a), agi_world_vocab_size(b));
    for (int32_t i = 0; i < agi_world_vocab_size(a); i++) ck_assert_str_eq(agi_world_piece(a, i), agi_world_piece(b, i));
    int same = 0;
    for (int k = 0; k < AGI_WORLD_CITIES; k++)
        same += strcmp(agi_world_word(a, agi_world_city_tok(a, k)), agi_world_word(c, agi_world_city_tok(c, k))) == 0;
    ck_assert_int_lt(same, 4); /* another seed, another world */
    int32_t s1[65], s2[65];
    for (uint64_t i = 0; i < 50; i++) {
        agi_world_train_sequence(a, i, s1, 65);
        agi_world_train_sequence(b, i, s2, 65);
        ck_assert_int_eq(memcmp(s1, s2, sizeof s1), 0);
        ck_assert_int_eq(s1[0], AGI_TOK_BOS);
        for (int p = 1; p < 65; p++) ck_assert(s1[p] >= AGI_W_FIRST && s1[p] < agi_world_n_words(a));
    }
    /* Pieces are unique; the specials come first. */
    ck_assert_str_eq(agi_world_piece(a, 0), "<unk>");
    ck_assert_str_eq(agi_world_piece(a, 1), "\n<s>\n");
    ck_assert_str_eq(agi_world_piece(a, AGI_W_LIVES), " lives");
    ck_assert_str_eq(agi_world_piece(a, AGI_W_DOT), ".");
    for (int32_t i = 0; i < agi_world_vocab_size(a); i++)
        for (int32_t j = i + 1; j < agi_world_vocab_size(a); j++) ck_assert_str_ne(agi_world_piece(a, i), agi_world_piece(a, j));
    agi_world_free(a);
    agi_world_free(b);
    agi_world_free(c);
}
END_TEST

/* Facts: 4 cities per country, the capital one of them; documents agree with the facts. */
START_TEST(test_world_facts_and_split) {
    agi_world *w;
    ck_assert_int_eq(agi_world_create(&w, 1, "test"), AG_OK);
    int per[AGI_WORLD_COUNTRIES] = {0};
    for (int c = 0; c < AGI_WORLD_CITIES; c++) per[agi_world_city_country(w, c)]++;
    for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) {
        ck_assert_int_eq(per[k], AGI_WORLD_CITIES_PER_COUNTRY);
        ck_assert_int_eq(agi_world_city_country(w, agi_world_capital(w, k)), k);
    }
    /* token -> entity maps */
    int city_of_tok[4096], country_of_tok[4096], person_of_tok[4096];
    for (int i = 0; i < 4096; i++) city_of_tok[i] = country_of_tok[i] = person_of_tok[i] = -1;
    for (int c = 0; c < AGI_WORLD_CITIES; c++) city_of_tok[agi_world_city_tok(w, c)] = c;
    for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) country_of_tok[agi_world_country_tok(w, k)] = k;
    for (int p = 0; p < AGI_WORLD_PEOPLE; p++) person_of_tok[agi_world_person_tok(w, p)] = p;
    int held = 0;
    for (int p = 0; p < AGI_WORLD_PEOPLE; p++)
        for (int c = 0; c < AGI_WORLD_CITIES; c++) held += agi_world_held_out(w, p, c);
    ck_assert_int_gt(held, AGI_WORLD_PEOPLE * AGI_WORLD_CITIES / 8);
    ck_assert_int_lt(held, AGI_WORLD_PEOPLE * AGI_WORLD_CITIES / 3);

    int n_seq = ag_test_under_valgrind() ? 200 : 4000, n_statements = 0, n_questions = 0, n_facts = 0;
    int32_t s[65];
    for (int i = 0; i < n_seq; i++) {
        agi_world_train_sequence(w, (uint64_t)i, s, 65);
        int lives_in[AGI_WORLD_PEOPLE];
        for (int p = 0; p < AGI_WORLD_PEOPLE; p++) lives_in[p] = -1;
        for (int p = 1; p + 4 < 65; p++) {
            int who = person_of_tok[s[p]];
            /* statement: P lives in C . */
            if (who >= 0 && s[p + 1] == AGI_W_LIVES && s[p + 2] == AGI_W_IN && city_of_tok[s[p + 3]] >= 0 && s[p + 4] == AGI_W_DOT &&
                (p == 1 || s[p - 1] == AGI_W_DOT)) {
                int c = city_of_tok[s[p + 3]];
                ck_assert_msg(!agi_world_held_out(w, who, c), "sequence %d states a held-out pairing", i);
                ck_assert_int_eq(lives_in[who], -1);
                lives_in[who] = c;
                n_statements++;
            }
            /* question: P lives in the country of K . */
            if (who >= 0 && p + 6 < 65 && s[p + 3] == AGI_W_THE && s[p + 4] == AGI_W_COUNTRY && (p == 1 || s[p - 1] == AGI_W_DOT)) {
                ck_assert_int_ge(lives_in[who], 0); /* asked only after being introduced */
                ck_assert_int_eq(country_of_tok[s[p + 6]], agi_world_city_country(w, lives_in[who]));
                n_questions++;
            }
            /* fact: C is in the country of K . */
            int c = city_of_tok[s[p]];
            if (c >= 0 && p + 6 < 65 && s[p + 1] == AGI_W_IS && s[p + 2] == AGI_W_IN) {
                ck_assert_int_eq(country_of_tok[s[p + 6]], agi_world_city_country(w, c));
                n_facts++;
            }
        }
    }
    ck_assert_int_gt(n_statements, n_seq / 2);
    ck_assert_int_gt(n_questions, n_seq / 8);
    ck_assert_int_gt(n_facts, n_seq / 8);

    /* evaluation prompts: held-out pairings only; the answer follows from the world */
    for (int task = 0; task < AGI_TASK_COUNT; task++)
        for (uint64_t i = 0; i < 200; i++) {
            int32_t tok[128], ans[128], pos[128], info[4];
            int n = 0;
            int k = agi_world_eval_example(w, (agi_world_task)task, i, tok, 128, &n, ans, pos, info);
            ck_assert_int_ge(k, 1);
            ck_assert_int_le(n, 64);
            ck_assert_int_eq(tok[0], AGI_TOK_BOS);
            for (int j = 0; j < k; j++) ck_assert(pos[j] >= 0 && pos[j] < n);
            if (task == AGI_TASK_INDUCTION) {
                int seg = info[0];
                ck_assert_int_eq(k, seg - 1);
                for (int j = 0; j < k; j++) ck_assert_int_eq(ans[j], tok[pos[j] - seg + 1]);
                continue;
            }
            ck_assert_int_eq(pos[0], n - 1);
            for (int p = 1; p + 3 < n; p++) {
                int who = person_of_tok[tok[p]];
                if (who >= 0 && tok[p + 1] == AGI_W_LIVES && tok[p + 2] == AGI_W_IN && city_of_tok[tok[p + 3]] >= 0)
                    ck_assert(agi_world_held_out(w, who, city_of_tok[tok[p + 3]]));
            }
            if (task == AGI_TASK_ONE_HOP) {
                ck_assert_int_eq(country_of_tok[tok[info[0]]], info[3]);
                ck_assert_int_eq(ans[0], agi_world_city_tok(w, agi_world_capital(w, info[3])));
                continue;
            }
            ck_assert_int_eq(city_of_tok[tok[info[0]]], info[2]);
            ck_assert_int_eq(tok[info[1]], tok[n - (task == AGI_TASK_TWO_HOP ? 3 : 6)]); /* the asked person */
            ck_assert_int_eq(agi_world_city_country(w, info[2]), info[3]);
            if (task == AGI_TASK_RETRIEVAL) ck_assert_int_eq(ans[0], agi_world_country_tok(w, info[3]));
            if (task == AGI_TASK_CITY) ck_assert_int_eq(ans[0], agi_world_city_tok(w, info[2]));
            if (task == AGI_TASK_TWO_HOP) {
                ck_assert_int_eq(ans[0], agi_world_city_tok(w, agi_world_capital(w, info[3])));
                ck_assert_int_ne(info[2], agi_world_capital(w, info[3])); /* no copy shortcut */
                for (int p = 1; p < n; p++) ck_assert_int_ne(country_of_tok[tok[p]], info[3]); /* latent */
            }
        }
    agi_world_free(w);
}
END_TEST

/* The world's vocabulary in a GGUF: loads through ag_model_load, and text round-trips. */
START_TEST(test_world_tokenizer_roundtrip) {
    agi_world *w;
    ck_assert_int_eq(agi_world_create(&w, 1, "test"), AG_OK);
    ag_model *m = random_world_model(w, 0);
    const char *path = ag_test_scratch_path("world.gguf");
    ck_assert_int_eq(ag_model_save(m, path, AG_FORMAT_GGUF), AG_OK);
    ag_model_free(m);
    ck_assert_msg(ag_model_load(&m, path, NULL) == AG_OK, "%s", ag_last_error());
    ag_model_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.format, AG_FORMAT_GGUF);
    ck_assert_int_eq(info.has_tokenizer, 1);
    ck_assert_int_eq(info.vocab_size, agi_world_vocab_size(w));
    ck_assert_int_eq(info.bos_id, 1);
    ck_assert_int_eq(info.eos_id, 2);
    ck_assert_int_eq(info.shared_classifier, 0);
    /* every word encodes to its own token and decodes back */
    for (int32_t id = AGI_W_FIRST; id < agi_world_n_words(w); id++) {
        char text[64];
        snprintf(text, sizeof text, "%s", agi_world_word(w, id));
        int32_t toks[16];
        size_t n;
        ck_assert_int_eq(ag_tokenize(m, text, 1, toks, 16, &n), AG_OK);
        if (id == AGI_W_DOT) { /* "." alone: the dummy space stays a piece of its own */
            ck_assert_int_eq(n, 3);
            ck_assert_int_eq(toks[2], AGI_W_DOT);
            continue;
        }
        ck_assert_msg(n == 2 && toks[0] == 1 && toks[1] == id, "\"%s\" -> %zu tokens", text, n);
        char buf[64];
        ck_assert_int_eq(ag_token_decode(m, 1, id, buf, sizeof buf, NULL), AG_OK);
        ck_assert_str_eq(buf, text);
    }
    /* training sequences and evaluation prompts: text -> tokens gives the same ids */
    for (uint64_t i = 0; i < 100; i++) {
        int32_t s[65], t2[80];
        size_t n;
        agi_world_train_sequence(w, i, s, 65);
        char *text;
        ck_assert_int_eq(ag_world_training_text(1, i, 65, &text), AG_OK);
        ck_assert_int_eq(ag_tokenize(m, text, 1, t2, 80, &n), AG_OK);
        ck_assert_msg(n == 65 && memcmp(s, t2, sizeof s) == 0, "sequence %llu: \"%s\" does not round-trip",
                      (unsigned long long)i, text);
        /* decoding gives the text back */
        size_t o = 0;
        char back[1024];
        for (size_t k = 1; k < n; k++) {
            size_t len;
            ck_assert_int_eq(ag_token_decode(m, t2[k - 1], t2[k], back + o, sizeof back - o, &len), AG_OK);
            o += len;
        }
        ck_assert_str_eq(back, text);
        ag_free(text);
    }
    for (int task = 0; task < AG_WORLD_N_TASKS; task++) {
        char *text, *answer;
        ck_assert_int_eq(ag_world_prompt(1, (ag_world_task)task, 3, &text, &answer), AG_OK);
        int32_t tok[128], t2[128], ans[128], pos[128];
        int n = 0;
        agi_world_eval_example(w, (agi_world_task)task, 3, tok, 128, &n, ans, pos, NULL);
        size_t n2;
        ck_assert_int_eq(ag_tokenize(m, text, 1, t2, 128, &n2), AG_OK);
        ck_assert_int_eq((int)n2, n);
        ck_assert_int_eq(memcmp(tok, t2, sizeof(int32_t) * (size_t)n), 0);
        ck_assert_int_ge(strlen(answer), 2);
        ag_free(text);
        ag_free(answer);
    }
    ck_assert_int_eq(ag_world_prompt(1, (ag_world_task)9, 0, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    /* another world's model is refused by the evaluator */
    ag_world_eval e;
    e.struct_size = sizeof e;
    ck_assert_int_eq(ag_world_evaluate(m, 2, 4, &e), AG_ERR_UNSUPPORTED);
    ck_assert_int_eq(ag_world_evaluate(m, 1, 4, &e), AG_OK); /* random weights: any accuracy */
    ck_assert_int_eq(e.n_prompts[AG_WORLD_RETRIEVAL], 4);
    ag_model_free(m);
    unlink(path);
    agi_world_free(w);
}
END_TEST

/* Logits of two models on the same tokens are identical. */
static void same_logits(const ag_model *a, const ag_model *b, const int32_t *tok, size_t n) {
    ag_trace *ta, *tb;
    ck_assert_int_eq(ag_trace_create(&ta, a, tok, n, NULL), AG_OK);
    ck_assert_int_eq(ag_trace_create(&tb, b, tok, n, NULL), AG_OK);
    const float *la, *lb;
    int64_t sa[3], sb[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(ta, AG_TENSOR_LOGITS, 0, &la, sa, &nd), AG_OK);
    ck_assert_int_eq(ag_trace_tensor(tb, AG_TENSOR_LOGITS, 0, &lb, sb, &nd), AG_OK);
    ck_assert_int_eq(memcmp(la, lb, sizeof(float) * (size_t)(sa[0] * sa[1])), 0);
    ag_trace_free(ta);
    ag_trace_free(tb);
}

/* ag_model_save on a real model: GGUF and llama2.c files load back bit-identical, tokenizer
 * included; the saved GGUF matches the independently converted fixture's weights. */
START_TEST(test_save_stories) {
    ag_model_options o;
    AG_MODEL_OPTIONS_INIT(o);
    o.tokenizer_path = ag_test_fixture("models/tok512.bin");
    ag_model *m, *g, *b, *ref;
    ck_assert_msg(ag_model_load(&m, ag_test_fixture("models/stories260K.bin"), &o) == AG_OK, "%s", ag_last_error());
    const char *pg = ag_test_scratch_path("s.gguf"), *pb = ag_test_scratch_path("s.bin"), *pt = ag_test_scratch_path("t.bin");
    ck_assert_int_eq(ag_model_save(m, pg, AG_FORMAT_GGUF), AG_OK);
    ck_assert_int_eq(ag_model_save(m, pb, AG_FORMAT_LLAMA2C), AG_OK);
    ck_assert_int_eq(ag_model_save_tokenizer(m, pt), AG_OK);
    ck_assert_msg(ag_model_load(&g, pg, NULL) == AG_OK, "%s", ag_last_error());
    ag_model_options o2;
    AG_MODEL_OPTIONS_INIT(o2);
    o2.tokenizer_path = pt;
    ck_assert_msg(ag_model_load(&b, pb, &o2) == AG_OK, "%s", ag_last_error());
    ck_assert_msg(ag_model_load(&ref, ag_test_fixture("models/stories260K.gguf"), NULL) == AG_OK, "%s", ag_last_error());
    const agi_config *c = &m->cfg;
    size_t VD = (size_t)c->vocab_size * c->dim;
    ck_assert_int_eq(memcmp(g->w.token_embedding, m->w.token_embedding, VD * 4), 0);
    ck_assert_int_eq(memcmp(b->w.token_embedding, m->w.token_embedding, VD * 4), 0);
    ck_assert_int_eq(memcmp(ref->w.token_embedding, g->w.token_embedding, VD * 4), 0);
    for (int l = 0; l < c->n_layers; l++) {
        ck_assert_int_eq(memcmp(g->w.layers[l].wq, ref->w.layers[l].wq, (size_t)c->dim * c->dim * 4), 0);
        ck_assert_int_eq(memcmp(g->w.layers[l].w3, m->w.layers[l].w3, (size_t)c->dim * c->hidden_dim * 4), 0);
        ck_assert_int_eq(memcmp(b->w.layers[l].rms_ffn, m->w.layers[l].rms_ffn, (size_t)c->dim * 4), 0);
    }
    ck_assert_int_eq(g->w.shared_classifier, 1);
    ck_assert_int_eq(b->w.shared_classifier, 1);
    /* The llama2.c file is byte-identical to the fixture except inside the legacy RoPE tables
     * (unused by every reader; PyTorch's float32 cos/sin differ from libm's in the last bit). */
    FILE *f1 = fopen(pb, "rb"), *f2 = fopen(ag_test_fixture("models/stories260K.bin"), "rb");
    ck_assert(f1 && f2);
    long D = c->dim, Hd = c->hidden_dim, L = c->n_layers, KV = c->kv_dim, V = c->vocab_size;
    long rope0 = 28 + 4 * (V * D + L * (2 * D + 2 * D * D + 2 * KV * D + 3 * D * Hd) + D);
    long rope1 = rope0 + 4L * c->seq_len * c->head_dim;
    int d1, d2;
    long at = 0, n_diff = 0;
    do {
        d1 = fgetc(f1);
        d2 = fgetc(f2);
        if (d1 != d2 && (at < rope0 || at >= rope1)) n_diff++;
        at++;
    } while (d1 != EOF || d2 != EOF);
    fclose(f1);
    fclose(f2);
    ck_assert_msg(n_diff == 0, "the written llama2.c file differs from stories260K.bin in %ld bytes", n_diff);
    /* tokenizers: same pieces and scores, same encoding */
    for (int32_t i = 0; i < c->vocab_size; i++) {
        const char *p1, *p2, *p3;
        float s1, s2, s3;
        ck_assert_int_eq(ag_token_piece(m, i, &p1, &s1), AG_OK);
        ck_assert_int_eq(ag_token_piece(g, i, &p2, &s2), AG_OK);
        ck_assert_int_eq(ag_token_piece(b, i, &p3, &s3), AG_OK);
        ck_assert_str_eq(p1, p2);
        ck_assert_str_eq(p1, p3);
        ck_assert(s1 == s2 && s1 == s3);
    }
    const char *text = "Once upon a time, there was a little girl named Lily.";
    int32_t t1[64], t2[64];
    size_t n1, n2;
    ck_assert_int_eq(ag_tokenize(m, text, 1, t1, 64, &n1), AG_OK);
    ck_assert_int_eq(ag_tokenize(g, text, 1, t2, 64, &n2), AG_OK);
    ck_assert_int_eq(n1, n2);
    ck_assert_int_eq(memcmp(t1, t2, n1 * sizeof(int32_t)), 0);
    same_logits(m, g, t1, n1);
    same_logits(m, b, t1, n1);
    ck_assert_int_eq(ag_model_save(m, pg, 99), AG_ERR_UNSUPPORTED);
    ck_assert_int_eq(ag_model_save(NULL, pg, AG_FORMAT_GGUF), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_model_save(m, "/nonexistent-dir/x.gguf", AG_FORMAT_GGUF), AG_ERR_IO);
    ag_model_free(m);
    ag_model_free(g);
    ag_model_free(b);
    ag_model_free(ref);
    unlink(pg);
    unlink(pb);
    unlink(pt);
}
END_TEST

/* An untied world model written as llama2.c + tokenizer .bin, and read by the independent
 * oracle: the oracle's logits match the library's. */
START_TEST(test_world_model_llama2c_oracle) {
    agi_world *w;
    ck_assert_int_eq(agi_world_create(&w, 1, "test"), AG_OK);
    for (int shared = 0; shared < 2; shared++) {
        ag_model *m = random_world_model(w, shared);
        const char *pb = ag_test_scratch_path("w.bin");
        ck_assert_int_eq(ag_model_save(m, pb, AG_FORMAT_LLAMA2C), AG_OK);
        nl_model *nm = nl_load_bin(pb);
        ck_assert_ptr_nonnull(nm);
        int32_t tok[65];
        agi_world_train_sequence(w, 5, tok, 65);
        int T = 20;
        double *ref = malloc(sizeof(double) * (size_t)T * (size_t)nm->c.vocab_size);
        ck_assert_int_eq(nl_forward_i32(nm, tok, T, ref, NULL), 0);
        ag_trace *tr;
        ck_assert_int_eq(ag_trace_create(&tr, m, tok, (size_t)T, NULL), AG_OK);
        const float *lg;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
        double err = ag_rel_err_fd(lg, ref, (size_t)T * (size_t)nm->c.vocab_size);
        ck_assert_msg(err < 1e-4, "shared %d: relative logit error %g", shared, err);
        ag_trace_free(tr);
        free(ref);
        nl_free(nm);
        ag_model_free(m);
        unlink(pb);
    }
    agi_world_free(w);
}
END_TEST

START_TEST(test_rng) {
    agi_rng r;
    agi_rng_seed(&r, 1, 2, 3);
    double s = 0, s2 = 0;
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        double x = agi_rng_normal(&r);
        s += x;
        s2 += x * x;
        counts[agi_rng_below(&r, 7)]++;
    }
    ck_assert(fabs(s / 70000) < 0.02 && fabs(s2 / 70000 - 1) < 0.03);
    for (int k = 0; k < 7; k++) ck_assert(counts[k] > 9500 && counts[k] < 10500);
    agi_rng a, b;
    agi_rng_seed(&a, 5, 0, 0);
    agi_rng_seed(&b, 5, 0, 0);
    for (int i = 0; i < 100; i++) ck_assert(agi_rng_next(&a) == agi_rng_next(&b));
}
END_TEST

static Suite *world_suite(void) {
    Suite *s = suite_create("world");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_world_deterministic);
    tcase_add_test(tc, test_world_facts_and_split);
    tcase_add_test(tc, test_world_tokenizer_roundtrip);
    tcase_add_test(tc, test_save_stories);
    tcase_add_test(tc, test_world_model_llama2c_oracle);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (ag_test_scratch_create("world") != 0) return EXIT_FAILURE;
    int failed = ag_test_run_suite(world_suite(), CK_NORMAL);
    ag_test_scratch_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
