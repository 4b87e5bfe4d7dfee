/*
 * One program linking the same kernel (examples/matmul.bk) compiled at two sizes, the
 * symbols of each renamed with `brick compile --name`: both run, and each result matches
 * a double-precision product of the same inputs.
 */
#include "mm_big.h"
#include "mm_small.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef void matmul_fn(const float *, const float *, float *);

/* Run "f" on M x K and K x N inputs; the largest error against the reference. */
static double max_error(matmul_fn *f, int64_t M, int64_t N, int64_t K) {
  float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
  float *C = malloc(sizeof(float) * (size_t)(M * N));
  for (int64_t i = 0; i < M * K; i++)
    A[i] = (float)((i * 7) % 13) - 6.0f;
  for (int64_t i = 0; i < K * N; i++)
    B[i] = (float)((i * 5) % 11) - 5.0f;
  f(A, B, C);
  double err = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += (double)A[i * K + k] * B[k * N + j];
      err = fmax(err, fabs(s - C[i * N + j]) / (1.0 + fabs(s)));
    }
  free(A);
  free(B);
  free(C);
  return err;
}

int main(void) {
  double small = max_error(mm_small, mm_small_A_dims[0], mm_small_B_dims[1], mm_small_A_dims[1]);
  double big = max_error(mm_big, mm_big_A_dims[0], mm_big_B_dims[1], mm_big_A_dims[1]);
  printf("mm_small %lldx%lld: max rel. error %.2g; mm_big %lldx%lld: %.2g\n",
         (long long)mm_small_C_dims[0], (long long)mm_small_C_dims[1], small,
         (long long)mm_big_C_dims[0], (long long)mm_big_C_dims[1], big);
  return small <= 1e-5 && big <= 1e-5 && mm_small_C_dims[0] != mm_big_C_dims[0] ? 0 : 1;
}
