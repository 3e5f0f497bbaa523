/* The only file that calls cblas_*. Keeping BLAS behind one door lets us swap libraries,
 * count FLOPs for benchmarks, and keep OpenBLAS's headers out of everything else. */
#include <cblas.h>

#include "engine/blas.h"

void agi_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS leaves C untouched for K = 0 only when beta = 1; make it exact */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void agi_linear(float *y, const float *x, const float *W, int N, int K, int M, float beta) {
    agi_gemm(0, 1, N, M, K, 1.0f, x, K, W, K, beta, y, M);
}

void agi_linear_dx(float *dx, const float *dy, const float *W, int N, int K, int M, float beta) {
    agi_gemm(0, 0, N, K, M, 1.0f, dy, M, W, K, beta, dx, K);
}

void agi_linear_dw(float *dW, const float *dy, const float *x, int N, int K, int M, float beta) {
    agi_gemm(1, 0, M, K, N, 1.0f, dy, M, x, K, beta, dW, K);
}

void agi_axpy(int n, float alpha, const float *x, float *y) {
    if (n > 0) cblas_saxpy(n, alpha, x, 1, y, 1);
}

float agi_dot(int n, const float *x, const float *y) { return n > 0 ? cblas_sdot(n, x, 1, y, 1) : 0.0f; }
