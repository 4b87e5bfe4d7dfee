/*
 * In-process FP32 FMA peak of one core: independent FMA chains on the widest vectors the CPU
 * has (AVX-512, else AVX2 + FMA), the fastest of a few short runs after a warm-up (a run can
 * only be slowed down, by another process or a frequency dip, never sped up; the median
 * under load gave "140% of peak" later). brick run reports "% of peak" against this number
 * measured in the same process.
 */
#include "api_private.h"

#include <immintrin.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "n" independent FMA chains of "W"-float vectors, "iters" rounds; GFLOP/s. */
#define CHAINS(T, SET1, FMA, ADD, N, W, iters)                                      \
  volatile float va = 1e-7f, vb = 0.999999f, vc = 0.1f;                             \
  T a = SET1(va), b = SET1(vb), c[N];                                               \
  for (int j = 0; j < N; j++)                                                       \
    c[j] = SET1(vc * (float)j);                                                     \
  double t0 = now();                                                                \
  for (long it = 0; it < iters; it++) {                                             \
    _Pragma("GCC unroll 16") for (int j = 0; j < N; j++) c[j] = FMA(c[j], b, a);    \
  }                                                                                 \
  double t1 = now();                                                                \
  T s = c[0];                                                                       \
  for (int j = 1; j < N; j++)                                                       \
    s = ADD(s, c[j]);                                                               \
  volatile float sink = s[0];                                                       \
  (void)sink;                                                                       \
  return 2.0 * W * N * (double)iters / (t1 - t0) * 1e-9;

__attribute__((target("avx512f,fma"))) static double run512(long iters) {
  CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 16, iters)
}
__attribute__((target("avx2,fma"))) static double run256(long iters) {
  CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 12, 8, iters)
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double brick_measure_peak_gflops(void) {
  const char *env = getenv("BRICK_PEAK_GFLOPS");
  if (env && *env)
    return atof(env);
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !__builtin_cpu_supports("avx2"))
    return 0.0;
  double v[5];
  avx512 ? run512(20000000L) : run256(20000000L);
  for (int i = 0; i < 5; i++)
    v[i] = avx512 ? run512(5000000L) : run256(5000000L);
  qsort(v, 5, sizeof v[0], cmp);
  return v[4];
}
