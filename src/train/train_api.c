/* ag_train: the training loop over the synthetic world, with progress, checkpoints and the
 * GGUF output (see train.h for the engine and attrgraph.h for the contract). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "io/gguf_write.h"
#include "io/tokenizer.h"
#include "train/train.h"
#include "world/world.h"

static const char *const FN = "ag_train";

ag_status ag_train_options_init(ag_train_options *opts, size_t struct_size) {
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_train_options_init", "opts is NULL");
    if (struct_size < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, "ag_train_options_init", "struct_size = %zu is too small", struct_size);
    ag_train_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.world_seed = AG_BUILTIN_WORLD_SEED;
    d.dim = 96;
    d.hidden_dim = 256;
    d.n_layers = 4;
    d.n_heads = 8;
    d.n_kv_heads = 8;
    d.seq_len = 64;
    d.shared_classifier = 0;
    d.seed = 1;
    d.batch_size = 32;
    d.steps = 4000;
    d.warmup_steps = 100;
    d.learning_rate = 2e-3f;
    d.min_learning_rate = 1e-4f;
    d.weight_decay = 0.1f;
    d.beta1 = 0.9f;
    d.beta2 = 0.95f;
    d.adam_eps = 1e-8f;
    d.grad_clip = 1.0f;
    d.progress_every = 10;
    size_t n = struct_size < sizeof d ? struct_size : sizeof d;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, n);
    opts->struct_size = struct_size;
    return AG_OK;
}

static ag_status check_options(const ag_train_options *o) {
#define RANGE(f, lo, hi)                                                                                 \
    if (!((o->f) >= (lo) && (o->f) <= (hi)))                                                             \
        return agi_error(AG_ERR_INVALID_ARGUMENT, FN, "opts->" #f " = %g must be in [%g, %g]", (double)(o->f), \
                         (double)(lo), (double)(hi));
    RANGE(dim, 2, 4096)
    RANGE(hidden_dim, 1, 16384)
    RANGE(n_layers, 1, 64)
    RANGE(n_heads, 1, 256)
    RANGE(n_kv_heads, 1, 256)
    RANGE(seq_len, 2, 4096)
    RANGE(shared_classifier, 0, 1)
    RANGE(batch_size, 1, 65536)
    RANGE(steps, 1, 1e9)
    RANGE(warmup_steps, 0, 1e9)
    RANGE(learning_rate, 0, 10)
    RANGE(min_learning_rate, 0, 10)
    RANGE(weight_decay, 0, 10)
    RANGE(beta1, 0, 0.999999)
    RANGE(beta2, 0, 0.999999)
    RANGE(adam_eps, 0, 1)
    RANGE(grad_clip, 0, 1e9)
    RANGE(checkpoint_every, 0, 1e12)
    RANGE(progress_every, 0, 1e12)
#undef RANGE
    if (o->dim % o->n_heads || (o->dim / o->n_heads) % 2 || o->n_heads % o->n_kv_heads)
        return agi_error(AG_ERR_INVALID_ARGUMENT, FN,
                         "dim = %d, n_heads = %d, n_kv_heads = %d: dim/n_heads must be even and n_heads a multiple of n_kv_heads",
                         o->dim, o->n_heads, o->n_kv_heads);
    return AG_OK;
}

/* The trained weights as GGUF bytes, with the world's tokenizer and the run's metadata. */
static ag_status to_gguf(const agi_trainer *t, const agi_world *w, const ag_train_options *o, int64_t steps_done,
                         uint8_t **bytes, size_t *size) {
    ag_model *view;
    ag_status st = agi_model_view(&view, &t->lay, t->params, "attrgraph world model", FN);
    if (st != AG_OK) return st;
    int32_t V = agi_world_vocab_size(w);
    const char **pieces = agi_calloc((size_t)V, sizeof *pieces, FN);
    size_t *lens = agi_calloc((size_t)V, sizeof *lens, FN);
    float *scores = agi_calloc((size_t)V, sizeof *scores, FN);
    agi_gguf_w *gw = NULL;
    if (!pieces || !lens || !scores) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int32_t i = 0; i < V; i++) {
        pieces[i] = agi_world_piece(w, i);
        lens[i] = strlen(pieces[i]);
        scores[i] = agi_world_score(w, i);
    }
    st = agi_tokenizer_from_vocab(&view->tok, V, pieces, lens, scores, AGI_TOK_BOS, AGI_TOK_EOS, FN);
    if (st != AG_OK) goto done;
    view->bos_id = AGI_TOK_BOS;
    view->eos_id = AGI_TOK_EOS;
    char v[9][64];
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)o->world_seed);
    snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)o->seed);
    snprintf(v[2], sizeof v[2], "%lld", (long long)steps_done);
    snprintf(v[3], sizeof v[3], "%d", o->batch_size);
    snprintf(v[4], sizeof v[4], "%.9g", (double)o->learning_rate);
    snprintf(v[5], sizeof v[5], "%.9g", (double)o->min_learning_rate);
    snprintf(v[6], sizeof v[6], "%lld", (long long)o->warmup_steps);
    snprintf(v[7], sizeof v[7], "%.9g", (double)o->weight_decay);
    snprintf(v[8], sizeof v[8], "%.9g", (double)o->grad_clip);
    const char *kv[] = {"general.name", "attrgraph world model",
                        "attrgraph.world.seed", v[0],
                        "attrgraph.train.seed", v[1],
                        "attrgraph.train.steps", v[2],
                        "attrgraph.train.batch_size", v[3],
                        "attrgraph.train.learning_rate", v[4],
                        "attrgraph.train.min_learning_rate", v[5],
                        "attrgraph.train.warmup_steps", v[6],
                        "attrgraph.train.weight_decay", v[7],
                        "attrgraph.train.grad_clip", v[8],
                        "attrgraph.train.command", o->command ? o->command : ""};
    size_t n_kv = sizeof kv / sizeof kv[0] / 2 - (o->command ? 0 : 1);
    st = agi_model_to_gguf(view, kv, n_kv, &gw, FN);
    if (st == AG_OK) st = agi_gguf_w_to_memory(gw, bytes, size);
done:
    agi_gguf_w_free(gw);
    free(pieces);
    free(lens);
    free(scores);
    ag_model_free(view);
    return st;
}

ag_status ag_train(ag_model **out, const ag_train_options *opts) {
    if (out) *out = NULL;
    ag_train_options o;
    ag_train_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, FN, "opts");
    if (st != AG_OK) return st;
    if (!out && !o.output_path)
        return agi_error(AG_ERR_INVALID_ARGUMENT, FN, "nothing to return: out is NULL and opts->output_path is NULL");
    st = check_options(&o);
    if (st != AG_OK) return st;

    agi_world *w = NULL;
    agi_trainer *t = NULL;
    float *m = NULL, *v = NULL;
    int32_t *seqs = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    st = agi_world_create(&w, o.world_seed, FN);
    if (st != AG_OK) return st;
    agi_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = o.dim;
    cfg.hidden_dim = o.hidden_dim;
    cfg.n_layers = o.n_layers;
    cfg.n_heads = o.n_heads;
    cfg.n_kv_heads = o.n_kv_heads;
    cfg.vocab_size = agi_world_vocab_size(w);
    cfg.seq_len = o.seq_len;
    cfg.rms_eps = 1e-5f;
    cfg.rope_theta = 10000.0f;
    st = agi_config_validate(&cfg, FN, "opts");
    if (st != AG_OK) goto done;
    int B = o.batch_size, T = o.seq_len;
    st = agi_trainer_create(&t, &cfg, o.shared_classifier, B, T, FN);
    if (st != AG_OK) goto done;
    size_t n = t->lay.n_params;
    m = agi_calloc(n, sizeof *m, FN);
    v = agi_calloc(n, sizeof *v, FN);
    seqs = agi_malloc(sizeof(int32_t) * (size_t)B * (size_t)(T + 1) + 2 * sizeof(int32_t) * (size_t)B * (size_t)T, FN);
    if (!m || !v || !seqs) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int32_t *inputs = seqs + (size_t)B * (size_t)(T + 1), *targets = inputs + (size_t)B * (size_t)T;

    int64_t step0 = 0;
    if (o.resume_path) {
        agi_ckpt_header h;
        st = agi_ckpt_load(o.resume_path, &h, NULL, NULL, NULL, FN);
        if (st != AG_OK) goto done;
        if (h.cfg.dim != cfg.dim || h.cfg.hidden_dim != cfg.hidden_dim || h.cfg.n_layers != cfg.n_layers ||
            h.cfg.n_heads != cfg.n_heads || h.cfg.n_kv_heads != cfg.n_kv_heads || h.cfg.vocab_size != cfg.vocab_size ||
            h.cfg.seq_len != cfg.seq_len || h.shared_classifier != o.shared_classifier || h.batch_size != B ||
            h.world_seed != o.world_seed || h.seed != o.seed || h.n_params != n) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, FN,
                           "%s was made with another architecture, world seed, seed or batch size than these options",
                           o.resume_path);
            goto done;
        }
        if ((int64_t)h.step > o.steps) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, FN, "%s is at step %llu, past opts->steps = %lld", o.resume_path,
                           (unsigned long long)h.step, (long long)o.steps);
            goto done;
        }
        st = agi_ckpt_load(o.resume_path, &h, t->params, m, v, FN);
        if (st != AG_OK) goto done;
        step0 = (int64_t)h.step;
    } else {
        agi_params_init(&t->lay, t->params, o.seed);
    }

    agi_adamw opt = {o.learning_rate, o.beta1, o.beta2, o.adam_eps, o.weight_decay};
    double t_start = agi_now_seconds();
    double loss_avg = -1.0;
    ag_train_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.struct_size = sizeof pr;
    pr.total_steps = o.steps;
    agi_ckpt_header ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = cfg;
    ck.shared_classifier = o.shared_classifier;
    ck.batch_size = B;
    ck.world_seed = o.world_seed;
    ck.seed = o.seed;
    ck.total_steps = (uint64_t)o.steps;
    ck.n_params = n;
    for (int64_t step = step0; step < o.steps; step++) {
        for (int b = 0; b < B; b++) {
            int32_t *s = seqs + (size_t)b * (size_t)(T + 1);
            agi_world_train_sequence(w, (uint64_t)step * (uint64_t)B + (uint64_t)b, s, T + 1);
            memcpy(inputs + (size_t)b * T, s, sizeof(int32_t) * (size_t)T);
            memcpy(targets + (size_t)b * T, s + 1, sizeof(int32_t) * (size_t)T);
        }
        double loss = agi_trainer_loss(t, inputs, targets, 1);
        if (!isfinite(loss)) {
            st = agi_error(AG_ERR_NUMERIC, FN, "the loss became %g at step %lld", loss, (long long)step);
            goto done;
        }
        double norm = agi_clip_grad(t->grads, n, o.grad_clip);
        if (!isfinite(norm)) {
            st = agi_error(AG_ERR_NUMERIC, FN, "the gradient norm became %g at step %lld", norm, (long long)step);
            goto done;
        }
        opt.lr = agi_lr_schedule(step, o.warmup_steps, o.steps, o.learning_rate, o.min_learning_rate);
        agi_adamw_step(&t->lay, t->params, t->grads, m, v, step + 1, &opt);
        loss_avg = loss_avg < 0 ? loss : 0.95 * loss_avg + 0.05 * loss;
        int64_t done_steps = step + 1;
        if (o.checkpoint_path && o.checkpoint_every > 0 && done_steps % o.checkpoint_every == 0 && done_steps < o.steps) {
            ck.step = (uint64_t)done_steps;
            st = agi_ckpt_save(o.checkpoint_path, &ck, t->params, m, v, FN);
            if (st != AG_OK) goto done;
        }
        if (o.progress && ((o.progress_every > 0 && done_steps % o.progress_every == 0) || done_steps == o.steps)) {
            double el = agi_now_seconds() - t_start;
            pr.step = done_steps;
            pr.loss = (float)loss;
            pr.loss_avg = (float)loss_avg;
            pr.learning_rate = opt.lr;
            pr.grad_norm = (float)norm;
            pr.elapsed_seconds = el;
            pr.tokens_per_second = el > 0 ? (double)(done_steps - step0) * B * T / el : 0.0;
            if (o.progress(&pr, o.user_data)) {
                st = agi_error(AG_ERR_CANCELLED, FN, "cancelled by the progress callback at step %lld", (long long)done_steps);
                goto done;
            }
        }
    }
    if (o.checkpoint_path) {
        ck.step = (uint64_t)o.steps;
        st = agi_ckpt_save(o.checkpoint_path, &ck, t->params, m, v, FN);
        if (st != AG_OK) goto done;
    }
    st = to_gguf(t, w, &o, o.steps, &bytes, &size);
    if (st != AG_OK) goto done;
    if (o.output_path) {
        FILE *f = fopen(o.output_path, "wb");
        if (!f) {
            st = agi_error(AG_ERR_IO, FN, "%s: cannot open for writing", o.output_path);
            goto done;
        }
        int bad = fwrite(bytes, 1, size, f) != size;
        if (fclose(f) != 0) bad = 1;
        if (bad) {
            st = agi_error(AG_ERR_IO, FN, "%s: write failed", o.output_path);
            goto done;
        }
    }
    if (out) {
        st = ag_model_load_memory(out, bytes, size, 1, o.output_path ? o.output_path : "attrgraph world model", NULL);
        if (st != AG_OK) goto done;
    }
    agi_clear_error();
done:
    free(bytes);
    free(seqs);
    free(m);
    free(v);
    agi_trainer_free(t);
    agi_world_free(w);
    return st;
}
