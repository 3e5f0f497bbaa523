/* Every op's backward (src/engine/ops.c) against central finite differences of an
 * independent double-precision forward written here from the math (not the library's
 * forward), on random small shapes, for the full VJP and for the `frozen` variants of the
 * local replacement model (DESIGN §1.2). Also: backward functions accumulate (+=).
 *
 * Scheme for an op y = F(x): draw x and a cotangent w, let f(x) = sum(w ⊙ F(x)) in double,
 * compare the library's VJP (float, fed the library's forward caches) with
 * (f(x + h e_i) - f(x - h e_i)) / 2h for every input coordinate. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops.h"
#include "suite_run.h"

/* ---- tiny deterministic RNG ------------------------------------------------------------ */

static uint64_t rng_state = 0x1234567ull;
static double urand(void) { /* uniform [0,1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float srand_f(double a) { return (float)(a * (2.0 * urand() - 1.0)); }
static void fill(float *x, size_t n, double a) {
    for (size_t i = 0; i < n; i++) x[i] = srand_f(a);
}
static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static double rel_err(const float *got, const double *want, size_t n) {
    double mx = 1e-30, err = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, isfinite(got[i]) ? fabs(got[i] - want[i]) : INFINITY);
    return err / mx;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}
static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* Central differences of a scalar function of x (x restored). */
typedef double (*scalar_fn)(void *ctx, const double *x);
static void fd_grad(scalar_fn f, void *ctx, double *x, size_t n, double h, double *g) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = f(ctx, x);
        x[i] = x0 - h;
        double fm = f(ctx, x);
        x[i] = x0;
        g[i] = (fp - fm) / (2.0 * h);
    }
}

/* ---- independent double forwards ------------------------------------------------------- */

/* RMSNorm of each row; r_fixed (if non-NULL) replaces the computed scale. */
static void d_rmsnorm(double *out, const double *x, const double *g, int N, int D, double eps, const double *r_fixed) {
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += x[n * D + i] * x[n * D + i];
        double r = r_fixed ? r_fixed[n] : 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++) out[n * D + i] = x[n * D + i] * r * g[i];
    }
}

/* RoPE as a complex multiplication of pair (x[2i], x[2i+1]) by e^{i·pos·theta^(-2i/hs)}. */
static void d_rope(double *y, const double *x, int N, int nh, int hs, int pos0, int rps, double theta) {
    for (int n = 0; n < N; n++) {
        int pos = pos0 + n % rps;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < hs; i += 2) {
                double w = pos / pow(theta, (double)i / hs);
                const double *p = x + (size_t)n * nh * hs + h * hs + i;
                double *o = y + (size_t)n * nh * hs + h * hs + i;
                o[0] = p[0] * cos(w) - p[1] * sin(w);
                o[1] = p[0] * sin(w) + p[1] * cos(w);
            }
    }
}

/* Causal GQA attention over T positions; P_fixed [H][T][T] (if non-NULL) replaces softmax. */
static void d_attention(double *out, const double *q, const double *k, const double *v, int T, int H, int KVH, int hs,
                        const double *P_fixed) {
    int D = H * hs, KV = KVH * hs;
    double *p = malloc(sizeof(double) * (size_t)T);
    for (int h = 0; h < H; h++) {
        int kh = h * KVH / H;
        for (int t = 0; t < T; t++) {
            double mx = -INFINITY;
            for (int s = 0; s <= t; s++) {
                double dot = 0;
                for (int i = 0; i < hs; i++) dot += q[t * D + h * hs + i] * k[s * KV + kh * hs + i];
                p[s] = dot / sqrt((double)hs);
                if (p[s] > mx) mx = p[s];
            }
            double sum = 0;
            for (int s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - mx));
            for (int s = 0; s <= t; s++) p[s] = P_fixed ? P_fixed[((size_t)h * T + t) * T + s] : p[s] / sum;
            for (int i = 0; i < hs; i++) {
                double acc = 0;
                for (int s = 0; s <= t; s++) acc += p[s] * v[s * KV + kh * hs + i];
                out[t * D + h * hs + i] = acc;
            }
        }
    }
    free(p);
}

static double d_silu(double x) { return x / (1.0 + exp(-x)); }

/* ---- RMSNorm --------------------------------------------------------------------------- */

typedef struct rms_ctx {
    int N, D;
    double eps;
    const double *g, *w, *r_fixed;
    double *tmp;
} rms_ctx;

static double rms_f(void *vc, const double *x) {
    rms_ctx *c = vc;
    d_rmsnorm(c->tmp, x, c->g, c->N, c->D, c->eps, c->r_fixed);
    double s = 0;
    for (int i = 0; i < c->N * c->D; i++) s += c->w[i] * c->tmp[i];
    return s;
}

static void check_rmsnorm(int N, int D, double xscale, int frozen) {
    float eps = 1e-5f;
    size_t n = (size_t)N * D;
    float *x = malloc(n * 4), *g = malloc((size_t)D * 4), *w = malloc(n * 4), *out = malloc(n * 4);
    float *r = malloc((size_t)N * 4), *dx = malloc(n * 4), *pre = malloc(n * 4);
    fill(x, n, xscale);
    for (int i = 0; i < D; i++) g[i] = 0.5f + (float)urand();
    fill(w, n, 1.0);
    fill(pre, n, 1.0);
    memcpy(dx, pre, n * 4);
    agi_rmsnorm_forward(out, r, x, g, N, D, eps);
    agi_rmsnorm_backward(dx, w, frozen ? NULL : x, g, r, N, D, frozen);
    for (size_t i = 0; i < n; i++) dx[i] -= pre[i]; /* accumulation: dx = pre + VJP */
    double *xd = to_d(x, n), *gd = to_d(g, (size_t)D), *wd = to_d(w, n), *rd = to_d(r, (size_t)N);
    double *fd = malloc(n * 8), *tmp = malloc(n * 8);
    if (frozen) /* the scale held at its traced value, in double from x itself */
        for (int i = 0; i < N; i++) {
            double ss = 0;
            for (int j = 0; j < D; j++) ss += xd[i * D + j] * xd[i * D + j];
            rd[i] = 1.0 / sqrt(ss / D + eps);
        }
    rms_ctx c = {N, D, eps, gd, wd, frozen ? rd : NULL, tmp};
    fd_grad(rms_f, &c, xd, n, 1e-5 * xscale, fd);
    double e = rel_err(dx, fd, n);
    ck_assert_msg(e < 2e-4, "rmsnorm N=%d D=%d scale=%g frozen=%d: rel err %g", N, D, xscale, frozen, e);
    free(x), free(g), free(w), free(out), free(r), free(dx), free(pre);
    free(xd), free(gd), free(wd), free(rd), free(fd), free(tmp);
}

START_TEST(test_rmsnorm_backward) {
    check_rmsnorm(3, 8, 1.0, 0);
    check_rmsnorm(5, 17, 3.0, 0);
    check_rmsnorm(4, 16, 1e-2, 0); /* small x: near (not in) the eps regime, r ~ 1/sqrt(eps) scale matters */
    check_rmsnorm(3, 8, 1.0, 1);
    check_rmsnorm(6, 12, 2.0, 1);
}
END_TEST

/* The full VJP must differ from the frozen one (a test that could not tell them apart would
 * let a frozen path pass for the real one). */
START_TEST(test_rmsnorm_frozen_differs) {
    int N = 2, D = 6;
    float x[12], g[6], w[12], out[12], r[2], a[12] = {0}, b[12] = {0};
    fill(x, 12, 1.0);
    fill(w, 12, 1.0);
    for (int i = 0; i < D; i++) g[i] = 1.0f;
    agi_rmsnorm_forward(out, r, x, g, N, D, 1e-5f);
    agi_rmsnorm_backward(a, w, x, g, r, N, D, 0);
    agi_rmsnorm_backward(b, w, x, g, r, N, D, 1);
    double d = 0;
    for (int i = 0; i < 12; i++) d = fmax(d, fabs(a[i] - b[i]));
    ck_assert_msg(d > 1e-3, "frozen and full RMSNorm VJPs coincide (%g)", d);
}
END_TEST

/* ---- RoPE ------------------------------------------------------------------------------ */

typedef struct rope_ctx {
    int N, nh, hs, pos0, rps;
    double theta;
    const double *w;
    double *tmp;
} rope_ctx;

static double rope_f(void *vc, const double *x) {
    rope_ctx *c = vc;
    d_rope(c->tmp, x, c->N, c->nh, c->hs, c->pos0, c->rps, c->theta);
    double s = 0;
    for (int i = 0; i < c->N * c->nh * c->hs; i++) s += c->w[i] * c->tmp[i];
    return s;
}

static void check_rope(int N, int nh, int hs, int pos0, int rps) {
    size_t n = (size_t)N * nh * hs;
    float *w = malloc(n * 4), *dx = malloc(n * 4);
    fill(w, n, 1.0);
    memcpy(dx, w, n * 4);
    agi_rope_backward(dx, N, nh, hs, pos0, rps, 10000.0f);
    double *xd = calloc(n, 8), *wd = to_d(w, n), *fd = malloc(n * 8), *tmp = malloc(n * 8);
    for (size_t i = 0; i < n; i++) xd[i] = srand_f(1.0);
    rope_ctx c = {N, nh, hs, pos0, rps, 10000.0, wd, tmp};
    fd_grad(rope_f, &c, xd, n, 1e-4, fd);
    double e = rel_err(dx, fd, n);
    ck_assert_msg(e < 1e-5, "rope N=%d nh=%d hs=%d pos0=%d rps=%d: rel err %g", N, nh, hs, pos0, rps, e);
    free(w), free(dx), free(xd), free(wd), free(fd), free(tmp);
}

START_TEST(test_rope_backward) {
    check_rope(5, 2, 8, 0, 5);
    check_rope(6, 3, 4, 0, 3);   /* two sequences of 3 rows (B = 2) */
    check_rope(4, 1, 16, 7, 4);  /* positions 7..10 */
    check_rope(150, 2, 4, 0, 150); /* more positions than the on-stack angle table */
}
END_TEST

/* RoPE forward then backward is the identity (R^T R = I). */
START_TEST(test_rope_roundtrip) {
    int N = 9, nh = 2, hs = 8;
    float x[144], y[144];
    fill(x, 144, 1.0);
    memcpy(y, x, sizeof x);
    agi_rope_forward(y, N, nh, hs, 3, 9, 10000.0f);
    agi_rope_backward(y, N, nh, hs, 3, 9, 10000.0f);
    ck_assert_msg(max_diff(x, y, 144) < 1e-5, "R^T R x != x");
}
END_TEST

/* ---- attention ------------------------------------------------------------------------- */

typedef struct att_ctx {
    int T, H, KVH, hs, which; /* which: 0 q, 1 k, 2 v */
    double *q, *k, *v;
    const double *w, *P_fixed;
    double *tmp;
} att_ctx;

static double att_f(void *vc, const double *x) {
    att_ctx *c = vc;
    const double *q = c->which == 0 ? x : c->q, *k = c->which == 1 ? x : c->k, *v = c->which == 2 ? x : c->v;
    d_attention(c->tmp, q, k, v, c->T, c->H, c->KVH, c->hs, c->P_fixed);
    double s = 0;
    for (int i = 0; i < c->T * c->H * c->hs; i++) s += c->w[i] * c->tmp[i];
    return s;
}

static void check_attention(int T, int H, int KVH, int hs, int frozen) {
    int D = H * hs, KV = KVH * hs;
    size_t nq = (size_t)T * D, nk = (size_t)T * KV;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *w = malloc(nq * 4), *out = malloc(nq * 4);
    float *att = malloc(sizeof(float) * (size_t)H * T * T), *scratch = malloc(sizeof(float) * (size_t)T * T);
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    fill(q, nq, 1.5);
    fill(k, nk, 1.5);
    fill(v, nk, 1.0);
    fill(w, nq, 1.0);
    agi_attention_forward(out, att, q, k, v, 0, T, H, KVH, hs, T, T);
    /* pre-fill to check accumulation: dq, dk, dv start at 1 */
    for (size_t i = 0; i < nq; i++) dq[i] = 1.0f;
    for (size_t i = 0; i < nk; i++) dk[i] = dv[i] = 1.0f;
    agi_attention_backward(frozen ? NULL : dq, frozen ? NULL : dk, dv, w, att, q, k, v, T, H, KVH, hs, frozen,
                           frozen ? NULL : scratch);
    for (size_t i = 0; i < nq; i++) dq[i] -= 1.0f;
    for (size_t i = 0; i < nk; i++) dk[i] -= 1.0f, dv[i] -= 1.0f;
    double *qd = to_d(q, nq), *kd = to_d(k, nk), *vd = to_d(v, nk), *wd = to_d(w, nq), *tmp = malloc(nq * 8);
    double *Pd = NULL;
    if (frozen) { /* the pattern, in double, from q and k */
        Pd = calloc((size_t)H * T * T, 8);
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                double mx = -INFINITY, sum = 0, *row = Pd + ((size_t)h * T + t) * T;
                for (int s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int i = 0; i < hs; i++) dot += qd[t * D + h * hs + i] * kd[s * KV + (h * KVH / H) * hs + i];
                    row[s] = dot / sqrt((double)hs);
                    mx = fmax(mx, row[s]);
                }
                for (int s = 0; s <= t; s++) sum += (row[s] = exp(row[s] - mx));
                for (int s = 0; s <= t; s++) row[s] /= sum;
            }
    }
    att_ctx c = {T, H, KVH, hs, 0, qd, kd, vd, wd, Pd, tmp};
    double *fd = malloc(nq * 8);
    const float *got[3] = {dq, dk, dv};
    double *xs[3] = {qd, kd, vd};
    size_t ns[3] = {nq, nk, nk};
    for (int which = 0; which < 3; which++) {
        c.which = which;
        fd_grad(att_f, &c, xs[which], ns[which], 1e-5, fd);
        double e = rel_err(got[which], fd, ns[which]);
        double mx = 0;
        for (size_t i = 0; i < ns[which]; i++) mx = fmax(mx, fabs(fd[i]));
        if (frozen && which < 2) { /* the frozen pattern passes nothing to q, k */
            ck_assert_msg(mx == 0.0, "frozen attention: FD wrt %c not zero", "qkv"[which]);
            ck_assert_msg(max_abs(got[which], ns[which]) == 0.0, "frozen attention touched d%c", "qkv"[which]);
            continue;
        }
        if (T == 1 && which < 2) { /* one key: softmax is constant 1 */
            ck_assert_msg(mx < 1e-9 && max_abs(got[which], ns[which]) < 1e-6, "T=1: d%c should vanish", "qkv"[which]);
            continue;
        }
        ck_assert_msg(mx > 1e-3, "attention: FD gradient wrt %c vanished (test cannot fail)", "qkv"[which]);
        ck_assert_msg(e < 2e-4, "attention T=%d H=%d KVH=%d hs=%d frozen=%d d%c: rel err %g", T, H, KVH, hs, frozen,
                      "qkv"[which], e);
    }
    free(q), free(k), free(v), free(w), free(out), free(att), free(scratch), free(dq), free(dk), free(dv);
    free(qd), free(kd), free(vd), free(wd), free(tmp), free(Pd), free(fd);
}

START_TEST(test_attention_backward) {
    check_attention(5, 2, 2, 4, 0); /* MHA */
    check_attention(6, 4, 2, 4, 0); /* GQA 2:1 */
    check_attention(4, 4, 1, 2, 0); /* MQA */
    check_attention(1, 2, 1, 4, 0); /* one position: softmax constant, dq = dk = 0 for real */
    check_attention(7, 4, 2, 4, 1); /* frozen pattern */
}
END_TEST

/* ---- SwiGLU ---------------------------------------------------------------------------- */

typedef struct sw_ctx {
    long N;
    int which; /* 0 gate, 1 up */
    double *gate, *up;
    const double *w, *gate_fixed;
} sw_ctx;

static double sw_f(void *vc, const double *x) {
    sw_ctx *c = vc;
    double s = 0;
    for (long i = 0; i < c->N; i++) {
        double g = c->which == 0 ? x[i] : c->gate[i], u = c->which == 1 ? x[i] : c->up[i];
        double m = c->gate_fixed ? d_silu(c->gate_fixed[i]) : d_silu(g);
        s += c->w[i] * m * u;
    }
    return s;
}

static void check_swiglu(long N, double scale, int frozen) {
    float *g = malloc((size_t)N * 4), *u = malloc((size_t)N * 4), *w = malloc((size_t)N * 4);
    float *dg = calloc((size_t)N, 4), *du = calloc((size_t)N, 4), *n = malloc((size_t)N * 4);
    fill(g, (size_t)N, scale);
    fill(u, (size_t)N, 1.0);
    fill(w, (size_t)N, 1.0);
    agi_swiglu_forward(n, g, u, N);
    for (long i = 0; i < N; i++) dg[i] = du[i] = 0.5f;
    agi_swiglu_backward(frozen ? NULL : dg, du, w, g, frozen ? NULL : u, N, frozen);
    for (long i = 0; i < N; i++) dg[i] -= 0.5f, du[i] -= 0.5f;
    double *gd = to_d(g, (size_t)N), *ud = to_d(u, (size_t)N), *wd = to_d(w, (size_t)N), *fd = malloc((size_t)N * 8);
    double *gfix = frozen ? to_d(g, (size_t)N) : NULL;
    sw_ctx c = {N, 0, gd, ud, wd, gfix};
    fd_grad(sw_f, &c, gd, (size_t)N, 1e-5, fd);
    if (frozen)
        ck_assert_msg(max_abs(dg, (size_t)N) == 0.0, "frozen swiglu touched dgate");
    else
        ck_assert_msg(rel_err(dg, fd, (size_t)N) < 1e-4, "swiglu dgate rel err %g", rel_err(dg, fd, (size_t)N));
    c.which = 1;
    fd_grad(sw_f, &c, ud, (size_t)N, 1e-5, fd);
    ck_assert_msg(rel_err(du, fd, (size_t)N) < 1e-5, "swiglu dup rel err %g (frozen %d)", rel_err(du, fd, (size_t)N), frozen);
    free(g), free(u), free(w), free(dg), free(du), free(n), free(gd), free(ud), free(wd), free(fd), free(gfix);
}

START_TEST(test_swiglu_backward) {
    check_swiglu(37, 1.0, 0);
    check_swiglu(64, 6.0, 0); /* into both tails of the sigmoid */
    check_swiglu(40, 3.0, 1);
}
END_TEST

/* ---- embedding and residual ------------------------------------------------------------ */

START_TEST(test_embed_residual_backward) {
    /* x = E[tok]: f = sum w ⊙ x, df/dE[v] = sum over rows with tok = v of w[row] (linear:
     * FD is exact up to rounding; checked through an explicit double loop). */
    int V = 7, D = 5, N = 6;
    int32_t tok[6] = {3, 1, 3, 0, 6, 3};
    float w[30], dE[35];
    fill(w, 30, 1.0);
    for (int i = 0; i < 35; i++) dE[i] = 0.25f;
    agi_embed_backward(dE, w, tok, N, D);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < D; i++) {
            double want = 0.25;
            for (int n = 0; n < N; n++)
                if (tok[n] == v) want += w[n * D + i];
            ck_assert_msg(fabs(dE[v * D + i] - want) < 1e-6, "embed dE[%d][%d] = %g, want %g", v, i, dE[v * D + i], want);
        }
    float dy[4] = {1, -2, 3, 0.5f}, da[4] = {1, 1, 1, 1}, db[4] = {0};
    agi_residual_backward(da, db, dy, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert(da[i] == 1 + dy[i]);
        ck_assert(db[i] == dy[i]);
    }
    agi_residual_backward(NULL, db, dy, 4); /* NULL branch skipped */
    for (int i = 0; i < 4; i++) ck_assert(db[i] == 2 * dy[i]);
}
END_TEST

static Suite *ops_suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("backward");
    tcase_add_test(tc, test_rmsnorm_backward);
    tcase_add_test(tc, test_rmsnorm_frozen_differs);
    tcase_add_test(tc, test_rope_backward);
    tcase_add_test(tc, test_rope_roundtrip);
    tcase_add_test(tc, test_attention_backward);
    tcase_add_test(tc, test_swiglu_backward);
    tcase_add_test(tc, test_embed_residual_backward);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(ops_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
