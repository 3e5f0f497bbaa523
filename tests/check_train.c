/* The training engine (src/train):
 *  - the gradient of the cross-entropy with respect to every weight (embedding, RMSNorm gains,
 *    q/k/v/o with GQA, SwiGLU MLP, final norm, classifier; tied and untied) against central
 *    finite differences of the independent double-precision oracle tests/support/naive_llama;
 *  - AdamW against a scalar double reference, the schedule, clipping;
 *  - a few steps reduce the loss; two runs with the same seed give identical weights; a run
 *    stopped and resumed from its checkpoint equals the uninterrupted run;
 *  - option validation. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attrgraph.h"
#include "model/model.h"
#include "naive_llama.h"
#include "scratch_dir.h"
#include "train/train.h"
#include "world/world.h"
#include "suite_run.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- the oracle: naive_llama over a double copy of the parameters ---------------------- */

typedef struct oracle {
    nl_model *m;
    double **ptr; /* [n_params] where each parameter lives inside m */
    const int32_t *inputs, *targets;
    int B, T;
} oracle;

static oracle *oracle_new(const agi_layout *lay, const float *p) {
    const agi_config *c = &lay->cfg;
    size_t D = (size_t)c->dim, KV = (size_t)c->kv_dim, Hd = (size_t)c->hidden_dim, V = (size_t)c->vocab_size,
           L = (size_t)c->n_layers;
    oracle *o = calloc(1, sizeof *o);
    nl_model *m = calloc(1, sizeof *m);
    o->m = m;
    m->c.dim = c->dim;
    m->c.hidden_dim = c->hidden_dim;
    m->c.n_layers = c->n_layers;
    m->c.n_heads = c->n_heads;
    m->c.n_kv_heads = c->n_kv_heads;
    m->c.vocab_size = c->vocab_size;
    m->c.seq_len = c->seq_len;
    m->c.head_dim = c->head_dim;
    m->c.kv_dim = c->kv_dim;
    m->c.shared_classifier = lay->shared_classifier;
    m->c.rms_eps = c->rms_eps;
    m->c.rope_theta = c->rope_theta;
    m->emb = malloc(V * D * sizeof(double));
    m->rms_att = malloc(L * D * sizeof(double));
    m->wq = malloc(L * D * D * sizeof(double));
    m->wk = malloc(L * KV * D * sizeof(double));
    m->wv = malloc(L * KV * D * sizeof(double));
    m->wo = malloc(L * D * D * sizeof(double));
    m->rms_ffn = malloc(L * D * sizeof(double));
    m->w1 = malloc(L * Hd * D * sizeof(double));
    m->w2 = malloc(L * D * Hd * sizeof(double));
    m->w3 = malloc(L * Hd * D * sizeof(double));
    m->rms_final = malloc(D * sizeof(double));
    m->wcls = lay->shared_classifier ? m->emb : malloc(V * D * sizeof(double));
    o->ptr = malloc(lay->n_params * sizeof *o->ptr);
    int k = 0;
#define MAP(dst, cnt)                                                    \
    do {                                                                   \
        const agi_ptensor *t = &lay->t[k++];                               \
        ck_assert_int_eq(t->count, (cnt));                                 \
        for (size_t i = 0; i < t->count; i++) {                            \
            (dst)[i] = p[t->offset + i];                                   \
            o->ptr[t->offset + i] = &(dst)[i];                             \
        }                                                                  \
    } while (0)
    MAP(m->emb, V * D);
    for (size_t l = 0; l < L; l++) {
        MAP(m->rms_att + l * D, D);
        MAP(m->wq + l * D * D, D * D);
        MAP(m->wk + l * KV * D, KV * D);
        MAP(m->wv + l * KV * D, KV * D);
        MAP(m->wo + l * D * D, D * D);
        MAP(m->rms_ffn + l * D, D);
        MAP(m->w1 + l * Hd * D, Hd * D);
        MAP(m->w2 + l * D * Hd, D * Hd);
        MAP(m->w3 + l * Hd * D, Hd * D);
    }
    MAP(m->rms_final, D);
    if (!lay->shared_classifier) MAP(m->wcls, V * D);
#undef MAP
    ck_assert_int_eq(k, lay->n_t);
    return o;
}

static void oracle_free(oracle *o) {
    nl_free(o->m);
    free(o->ptr);
    free(o);
}

/* Mean cross-entropy over scored targets, in double. */
static double oracle_loss(oracle *o) {
    int V = o->m->c.vocab_size, T = o->T;
    double *logits = malloc(sizeof(double) * (size_t)T * (size_t)V);
    double loss = 0;
    int n = 0;
    for (int b = 0; b < o->B; b++) {
        ck_assert_int_eq(nl_forward_i32(o->m, o->inputs + (size_t)b * T, T, logits, NULL), 0);
        for (int p = 0; p < T; p++) {
            int32_t tgt = o->targets[b * T + p];
            if (tgt < 0) continue;
            const double *row = logits + (size_t)p * V;
            double mx = row[0];
            for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
            double s = 0;
            for (int v = 0; v < V; v++) s += exp(row[v] - mx);
            loss += log(s) + mx - row[tgt];
            n++;
        }
    }
    free(logits);
    return n ? loss / n : 0.0;
}

static void grad_check(int shared, int n_kv_heads) {
    agi_config c;
    memset(&c, 0, sizeof c);
    c.dim = 8;
    c.hidden_dim = 12;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = n_kv_heads;
    c.vocab_size = 13;
    c.seq_len = 8;
    c.rms_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    ck_assert_int_eq(agi_config_validate(&c, "test", "test"), AG_OK);
    int B = 2, T = 6;
    agi_trainer *t;
    ck_assert_int_eq(agi_trainer_create(&t, &c, shared, B, T, "test"), AG_OK);
    /* large random weights so every nonlinearity matters */
    for (int k = 0; k < t->lay.n_t; k++) {
        const agi_ptensor *pt = &t->lay.t[k];
        for (size_t i = 0; i < pt->count; i++)
            t->params[pt->offset + i] = pt->decay ? (float)(0.8 * (urand() - 0.5)) : (float)(0.7 + 0.6 * urand());
    }
    int32_t inputs[12], targets[12];
    for (int i = 0; i < B * T; i++) {
        inputs[i] = (int32_t)(urand() * c.vocab_size);
        targets[i] = i % 5 == 3 ? -1 : (int32_t)(urand() * c.vocab_size); /* some rows unscored */
    }
    double loss = agi_trainer_loss(t, inputs, targets, 1);
    oracle *o = oracle_new(&t->lay, t->params);
    o->inputs = inputs;
    o->targets = targets;
    o->B = B;
    o->T = T;
    double ref = oracle_loss(o);
    ck_assert_msg(fabs(loss - ref) < 1e-5 * fabs(ref), "loss %.9g vs oracle %.9g", loss, ref);
    /* the loss-only call gives the same value and leaves the gradient alone */
    float g0 = t->grads[0];
    ck_assert(agi_trainer_loss(t, inputs, targets, 0) == loss);
    ck_assert(t->grads[0] == g0);

    const double h = 1e-5;
    for (int k = 0; k < t->lay.n_t; k++) {
        const agi_ptensor *pt = &t->lay.t[k];
        double max_fd = 0, max_err = 0;
        size_t worst = 0;
        for (size_t i = 0; i < pt->count; i++) {
            double *x = o->ptr[pt->offset + i], x0 = *x;
            *x = x0 + h;
            double fp = oracle_loss(o);
            *x = x0 - h;
            double fm = oracle_loss(o);
            *x = x0;
            double fd = (fp - fm) / (2 * h), g = t->grads[pt->offset + i];
            max_fd = fmax(max_fd, fabs(fd));
            if (fabs(g - fd) > max_err) {
                max_err = fabs(g - fd);
                worst = i;
            }
        }
        ck_assert_msg(max_fd > 1e-6, "%s: no gradient at all", pt->name);
        ck_assert_msg(max_err <= 2e-5 * max_fd + 1e-8, "shared %d kv %d: %s: max |grad - fd| = %.3g (at %zu) vs max |fd| %.3g",
                      shared, n_kv_heads, pt->name, max_err, worst, max_fd);
    }
    oracle_free(o);
    agi_trainer_free(t);
}

START_TEST(test_weight_gradients) {
    grad_check(0, 1); /* GQA, untied classifier */
    grad_check(1, 2); /* tied classifier (its gradient adds into the embedding's) */
}
END_TEST

/* ---- optimiser ------------------------------------------------------------------------------ */

START_TEST(test_adamw_schedule_clip) {
    agi_config c;
    memset(&c, 0, sizeof c);
    c.dim = 4;
    c.hidden_dim = 4;
    c.n_layers = 1;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.vocab_size = 5;
    c.seq_len = 4;
    c.rms_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    ck_assert_int_eq(agi_config_validate(&c, "test", "test"), AG_OK);
    agi_layout lay;
    ck_assert_int_eq(agi_layout_init(&lay, &c, 0, "test"), AG_OK);
    size_t n = lay.n_params;
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
    double *pd = malloc(n * 8), *md = calloc(n, 8), *vd = calloc(n, 8);
    for (size_t i = 0; i < n; i++) pd[i] = p[i] = (float)(urand() - 0.5);
    agi_adamw o = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
    for (int step = 1; step <= 5; step++) {
        for (size_t i = 0; i < n; i++) g[i] = (float)(urand() - 0.5) * (float)step;
        agi_adamw_step(&lay, p, g, m, v, step, &o);
        for (int k = 0; k < lay.n_t; k++) {
            const agi_ptensor *t = &lay.t[k];
            for (size_t i = t->offset; i < t->offset + t->count; i++) {
                double gi = g[i];
                md[i] = 0.9 * md[i] + 0.1 * gi;
                vd[i] = 0.95 * vd[i] + 0.05 * gi * gi;
                double mh = md[i] / (1 - pow(0.9, step)), vh = vd[i] / (1 - pow(0.95, step));
                if (t->decay) pd[i] *= 1 - 1e-2 * 0.1;
                pd[i] -= 1e-2 * mh / (sqrt(vh) + 1e-8);
            }
        }
    }
    for (size_t i = 0; i < n; i++) ck_assert_msg(fabs(p[i] - pd[i]) < 1e-6, "param %zu: %g vs %g", i, p[i], pd[i]);
    /* gains (decay 0) are not decayed: a zero gradient leaves them where they are */
    memset(g, 0, n * 4);
    memset(m, 0, n * 4);
    memset(v, 0, n * 4);
    float gain = p[lay.t[1].offset], mat = p[lay.t[2].offset];
    agi_adamw_step(&lay, p, g, m, v, 1, &o);
    ck_assert(p[lay.t[1].offset] == gain);
    ck_assert(fabsf(p[lay.t[2].offset] - mat * (1 - 1e-3f)) < 1e-7f);

    /* schedule: linear warm-up to the peak, cosine to the minimum */
    ck_assert(fabsf(agi_lr_schedule(0, 10, 100, 1.0f, 0.1f) - 0.1f) < 1e-7f);
    ck_assert(fabsf(agi_lr_schedule(9, 10, 100, 1.0f, 0.1f) - 1.0f) < 1e-7f);
    ck_assert(fabsf(agi_lr_schedule(10, 10, 100, 1.0f, 0.1f) - 1.0f) < 1e-7f);
    ck_assert(fabsf(agi_lr_schedule(55, 10, 100, 1.0f, 0.1f) - 0.55f) < 1e-6f);
    ck_assert(fabsf(agi_lr_schedule(100, 10, 100, 1.0f, 0.1f) - 0.1f) < 1e-7f);
    for (int s = 10; s < 100; s++) ck_assert(agi_lr_schedule(s + 1, 10, 100, 1, 0.1f) <= agi_lr_schedule(s, 10, 100, 1, 0.1f));

    /* clipping */
    for (size_t i = 0; i < n; i++) g[i] = 1.0f;
    double norm = agi_clip_grad(g, n, 2.0);
    ck_assert(fabs(norm - sqrt((double)n)) < 1e-9);
    ck_assert(fabs(agi_grad_norm(g, n) - 2.0) < 1e-5);
    ck_assert(fabs(agi_clip_grad(g, n, 10.0) - agi_grad_norm(g, n)) < 1e-12); /* below the cap: untouched */
    free(p);
    free(g);
    free(m);
    free(v);
    free(pd);
    free(md);
    free(vd);
    agi_layout_free(&lay);
}
END_TEST

/* ---- training runs ------------------------------------------------------------------------ */

typedef struct losses {
    float v[64];
    int n, stop_at;
} losses;

static int record(const ag_train_progress *p, void *u) {
    losses *l = u;
    if (l->n < 64) l->v[l->n++] = p->loss;
    ck_assert(p->step >= 1 && p->step <= p->total_steps);
    ck_assert(p->tokens_per_second >= 0 && isfinite(p->loss) && p->grad_norm > 0);
    return l->stop_at && p->step == l->stop_at;
}

static void tiny_options(ag_train_options *o) {
    ck_assert_int_eq(AG_TRAIN_OPTIONS_INIT(*o), AG_OK);
    o->dim = 16;
    o->hidden_dim = 32;
    o->n_layers = 1;
    o->n_heads = 2;
    o->n_kv_heads = 1;
    o->seq_len = 16;
    o->batch_size = 4;
    o->steps = 6;
    o->warmup_steps = 2;
    o->learning_rate = 1e-2f;
    o->progress_every = 1;
}

static int same_model(const ag_model *a, const ag_model *b) {
    return a->blob.size == b->blob.size && memcmp(a->blob.data, b->blob.data, a->blob.size) == 0;
}

START_TEST(test_loss_decreases) {
    ag_train_options o;
    tiny_options(&o);
    o.steps = ag_test_under_valgrind() ? 12 : 40;
    o.warmup_steps = 4;
    losses l = {{0}, 0, 0};
    o.progress = record;
    o.user_data = &l;
    ag_model *m;
    ck_assert_msg(ag_train(&m, &o) == AG_OK, "%s", ag_last_error());
    ck_assert_int_eq(l.n, (int)o.steps);
    double first = l.v[0], last = 0;
    for (int i = l.n - 3; i < l.n; i++) last += l.v[i] / 3;
    double drop = ag_test_under_valgrind() ? 0.5 : 1.0; /* 12 steps under valgrind, 40 otherwise */
    ck_assert_msg(first > 6.0 && last < first - drop, "loss %g -> %g", first, last);
    ag_model_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.dim, 16);
    ck_assert_int_eq(info.n_kv_heads, 1);
    ck_assert_int_eq(info.seq_len, 16);
    ck_assert_int_eq(info.has_tokenizer, 1);
    ag_model_free(m);
}
END_TEST

START_TEST(test_deterministic_and_resume) {
    ag_train_options o;
    tiny_options(&o);
    ag_model *a, *b, *c;
    const char *out = ag_test_scratch_path("a.gguf");
    o.output_path = out;
    o.command = "attrgraph train --test";
    ck_assert_msg(ag_train(&a, &o) == AG_OK, "%s", ag_last_error());
    o.output_path = NULL;
    o.command = NULL;
    ck_assert_msg(ag_train(&b, &o) == AG_OK, "%s", ag_last_error());
    /* identical weights (compare the tensors: the files differ in the recorded command) */
    ag_model *f;
    ck_assert_int_eq(ag_model_load(&f, out, NULL), AG_OK);
    size_t VD = (size_t)a->cfg.vocab_size * a->cfg.dim;
    ck_assert_int_eq(memcmp(a->w.token_embedding, b->w.token_embedding, VD * 4), 0);
    ck_assert_int_eq(memcmp(a->w.wcls, b->w.wcls, VD * 4), 0);
    ck_assert_int_eq(memcmp(a->w.layers[0].w2, b->w.layers[0].w2, 16 * 32 * 4), 0);
    ck_assert_int_eq(memcmp(f->w.layers[0].wq, b->w.layers[0].wq, 16 * 16 * 4), 0);
    ag_model_free(f);
    unlink(out);
    /* another seed, other weights */
    o.seed = 2;
    ck_assert_int_eq(ag_train(&c, &o), AG_OK);
    ck_assert_int_ne(memcmp(c->w.token_embedding, b->w.token_embedding, VD * 4), 0);
    ag_model_free(c);
    o.seed = 1;

    /* stop at step 3 (checkpoint written), resume to step 6: the same as straight through */
    const char *ck = ag_test_scratch_path("run.agtc");
    losses l = {{0}, 0, 3};
    o.checkpoint_path = ck;
    o.checkpoint_every = 3;
    o.progress = record;
    o.user_data = &l;
    ck_assert_int_eq(ag_train(&c, &o), AG_ERR_CANCELLED);
    ck_assert_ptr_null(c);
    agi_ckpt_header h;
    ck_assert_int_eq(agi_ckpt_load(ck, &h, NULL, NULL, NULL, "test"), AG_OK);
    ck_assert_int_eq(h.step, 3);
    ck_assert_int_eq(h.batch_size, 4);
    o.resume_path = ck;
    o.progress = NULL;
    ck_assert_msg(ag_train(&c, &o) == AG_OK, "%s", ag_last_error());
    ck_assert_msg(same_model(b, c), "the resumed run differs from the uninterrupted one");
    ck_assert_int_eq(agi_ckpt_load(ck, &h, NULL, NULL, NULL, "test"), AG_OK);
    ck_assert_int_eq(h.step, 6); /* the final checkpoint */
    ag_model_free(c);
    /* a checkpoint from another configuration is refused */
    o.dim = 32;
    ck_assert_int_eq(ag_train(&c, &o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "run.agtc"));
    o.dim = 16;
    o.steps = 2; /* the checkpoint is past the end */
    ck_assert_int_eq(ag_train(&c, &o), AG_ERR_INVALID_ARGUMENT);
    /* a corrupt checkpoint */
    FILE *fp = fopen(ck, "r+b");
    ck_assert_ptr_nonnull(fp);
    fputs("XXXX", fp);
    fclose(fp);
    o.steps = 6;
    ck_assert_int_eq(ag_train(&c, &o), AG_ERR_FORMAT);
    unlink(ck);
    ck_assert_int_eq(ag_train(&c, &o), AG_ERR_IO);
    ag_model_free(a);
    ag_model_free(b);
}
END_TEST

START_TEST(test_options) {
    ag_train_options o;
    tiny_options(&o);
    ag_model *m = (ag_model *)&o;
    ck_assert_int_eq(ag_train(NULL, &o), AG_ERR_INVALID_ARGUMENT); /* nowhere to put the result */
    o.dim = 15;
    ck_assert_int_eq(ag_train(&m, &o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "n_heads"));
    tiny_options(&o);
    o.n_kv_heads = 3;
    ck_assert_int_eq(ag_train(&m, &o), AG_ERR_INVALID_ARGUMENT);
    tiny_options(&o);
    o.learning_rate = NAN;
    ck_assert_int_eq(ag_train(&m, &o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "learning_rate"));
    tiny_options(&o);
    o.output_path = "/nonexistent-dir/model.gguf";
    o.steps = 1;
    ck_assert_int_eq(ag_train(NULL, &o), AG_ERR_IO);
    /* defaults are the built-in model's recipe */
    ck_assert_int_eq(AG_TRAIN_OPTIONS_INIT(o), AG_OK);
    ck_assert_int_eq(o.world_seed, AG_BUILTIN_WORLD_SEED);
    ck_assert_int_eq(ag_train_options_init(NULL, sizeof o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_train_options_init(&o, 4), AG_ERR_VERSION);
    /* an older, shorter struct keeps working */
    ag_train_options small;
    ck_assert_int_eq(ag_train_options_init(&small, offsetof(ag_train_options, output_path)), AG_OK);
    ck_assert_int_eq(small.dim, 96);
}
END_TEST

static Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_weight_gradients);
    tcase_add_test(tc, test_adamw_schedule_clip);
    tcase_add_test(tc, test_loss_decreases);
    tcase_add_test(tc, test_deterministic_and_resume);
    tcase_add_test(tc, test_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (ag_test_scratch_create("train") != 0) return EXIT_FAILURE;
    int failed = ag_test_run_suite(train_suite(), CK_NORMAL);
    ag_test_scratch_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
