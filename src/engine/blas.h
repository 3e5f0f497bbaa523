/* The one door to BLAS. Every cblas_* call of the library is in blas.c; everything else
 * calls these. All matrices are row-major float32. */
#ifndef AGI_BLAS_H
#define AGI_BLAS_H

/* C[M][N] = alpha * op(A)[M][K] · op(B)[K][N] + beta * C, op = transpose when trans* != 0. */
void agi_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* A linear layer over N rows: y[N][M] = x[N][K] · W[M][K]^T + beta * y (W is [out][in]). */
void agi_linear(float *y, const float *x, const float *W, int N, int K, int M, float beta);

/* Its input gradient: dx[N][K] = dy[N][M] · W[M][K] + beta * dx. */
void agi_linear_dx(float *dx, const float *dy, const float *W, int N, int K, int M, float beta);

/* Its weight gradient: dW[M][K] = dy[N][M]^T · x[N][K] + beta * dW. */
void agi_linear_dw(float *dW, const float *dy, const float *x, int N, int K, int M, float beta);

/* y[n] += alpha * x[n] */
void agi_axpy(int n, float alpha, const float *x, float *y);
/* x · y, accumulated in double inside BLAS-free code would be slower; this is sdot. */
float agi_dot(int n, const float *x, const float *y);

#endif
