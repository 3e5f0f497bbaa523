/* AdamW, the learning-rate schedule, gradient clipping and checkpoints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/blob.h"
#include "train/train.h"

void agi_adamw_step(const agi_layout *lay, float *p, const float *g, float *m, float *v, int64_t step,
                    const agi_adamw *o) {
    double bc1 = 1.0 - pow((double)o->beta1, (double)step), bc2 = 1.0 - pow((double)o->beta2, (double)step);
    float b1 = o->beta1, b2 = o->beta2, lr = o->lr, eps = o->eps;
    float step_size = (float)(lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (int k = 0; k < lay->n_t; k++) {
        const agi_ptensor *t = &lay->t[k];
        float decay = t->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        float *pp = p + t->offset, *mm = m + t->offset, *vv = v + t->offset;
        const float *gg = g + t->offset;
        for (size_t i = 0; i < t->count; i++) {
            float gi = gg[i];
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            pp[i] = pp[i] * decay - step_size * mm[i] / (sqrtf(vv[i]) * inv_sqrt_bc2 + eps);
        }
    }
}

float agi_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double span = (double)(total - warmup);
    double progress = span > 0 ? (double)(step - warmup) / span : 1.0;
    return (float)(lr_min + 0.5 * (1.0 + cos(3.141592653589793 * progress)) * (lr_max - lr_min));
}

double agi_clip_grad(float *g, size_t n, double max_norm) {
    double norm = agi_grad_norm(g, n);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static void put_u32(FILE *f, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}
static void put_u64(FILE *f, uint64_t v) {
    put_u32(f, (uint32_t)v);
    put_u32(f, (uint32_t)(v >> 32));
}
static void put_f32s(FILE *f, const float *x, size_t n) {
    uint8_t buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int j = 0; j < 4; j++) buf[k++] = (uint8_t)(u >> (8 * j));
        if (k == sizeof buf) {
            fwrite(buf, 1, k, f);
            k = 0;
        }
    }
    if (k) fwrite(buf, 1, k, f);
}

ag_status agi_ckpt_save(const char *path, const agi_ckpt_header *h, const float *params, const float *m,
                        const float *v, const char *func) {
    size_t plen = strlen(path);
    char *tmp = agi_malloc(plen + 5, func);
    if (!tmp) return AG_ERR_OUT_OF_MEMORY;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ag_status st = agi_error(AG_ERR_IO, func, "%s: cannot open for writing: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    fwrite("AGTC", 1, 4, f);
    put_u32(f, 1);
    const agi_config *c = &h->cfg;
    uint32_t u[9] = {(uint32_t)c->dim,        (uint32_t)c->hidden_dim, (uint32_t)c->n_layers,
                     (uint32_t)c->n_heads,    (uint32_t)c->n_kv_heads, (uint32_t)c->vocab_size,
                     (uint32_t)c->seq_len,    (uint32_t)h->shared_classifier, (uint32_t)h->batch_size};
    for (int i = 0; i < 9; i++) put_u32(f, u[i]);
    put_u64(f, h->world_seed);
    put_u64(f, h->seed);
    put_u64(f, h->step);
    put_u64(f, h->total_steps);
    put_u64(f, h->n_params);
    put_f32s(f, &c->rms_eps, 1);
    put_f32s(f, &c->rope_theta, 1);
    put_f32s(f, params, (size_t)h->n_params);
    put_f32s(f, m, (size_t)h->n_params);
    put_f32s(f, v, (size_t)h->n_params);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    ag_status st = AG_OK;
    if (bad) st = agi_error(AG_ERR_IO, func, "%s: write failed", tmp);
    else if (rename(tmp, path) != 0) st = agi_error(AG_ERR_IO, func, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st != AG_OK) remove(tmp);
    free(tmp);
    return st;
}

ag_status agi_ckpt_load(const char *path, agi_ckpt_header *h, float *params, float *m, float *v, const char *func) {
    agi_blob b;
    ag_status st = agi_blob_map(&b, path, func);
    if (st != AG_OK) return st;
    agi_reader r = {b.data, b.size, 0, 0};
    const uint8_t *magic = agi_read_bytes(&r, 4);
    uint32_t version = agi_read_u32(&r);
    memset(h, 0, sizeof *h);
    if (!magic || memcmp(magic, "AGTC", 4) != 0 || version != 1) {
        agi_blob_release(&b);
        return agi_error(AG_ERR_FORMAT, func, "%s: not an attrgraph training checkpoint (magic \"AGTC\", version 1)", path);
    }
    uint32_t u[9];
    for (int i = 0; i < 9; i++) u[i] = agi_read_u32(&r);
    h->cfg.dim = (int)u[0];
    h->cfg.hidden_dim = (int)u[1];
    h->cfg.n_layers = (int)u[2];
    h->cfg.n_heads = (int)u[3];
    h->cfg.n_kv_heads = (int)u[4];
    h->cfg.vocab_size = (int)u[5];
    h->cfg.seq_len = (int)u[6];
    h->shared_classifier = (int)u[7];
    h->batch_size = (int)u[8];
    h->world_seed = agi_read_u64(&r);
    h->seed = agi_read_u64(&r);
    h->step = agi_read_u64(&r);
    h->total_steps = agi_read_u64(&r);
    h->n_params = agi_read_u64(&r);
    h->cfg.rms_eps = agi_read_f32(&r);
    h->cfg.rope_theta = agi_read_f32(&r);
    if (r.bad) {
        agi_blob_release(&b);
        return agi_error(AG_ERR_FORMAT, func, "%s: checkpoint header is cut off", path);
    }
    st = agi_config_validate(&h->cfg, func, path);
    if (st != AG_OK) {
        agi_blob_release(&b);
        return st;
    }
    uint64_t need;
    if (h->n_params == 0 || h->n_params > (uint64_t)1 << 34 || !agi_mul_u64(h->n_params, 12, &need) ||
        need != b.size - r.pos) {
        agi_blob_release(&b);
        return agi_error(AG_ERR_FORMAT, func, "%s: checkpoint holds %zu bytes of arrays, expected 3 x %llu float32", path,
                         b.size - r.pos, (unsigned long long)h->n_params);
    }
    float *dst[3] = {params, m, v};
    for (int a = 0; a < 3; a++) {
        if (!dst[a]) {
            r.pos += (size_t)h->n_params * 4;
            continue;
        }
        for (uint64_t i = 0; i < h->n_params; i++) dst[a][i] = agi_read_f32(&r);
    }
    agi_blob_release(&b);
    return AG_OK;
}
