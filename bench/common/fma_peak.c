/* fma_peak.c - see fma_peak.h. */
#include "fma_peak.h"

#include <immintrin.h>
#include <math.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of "iters" x 16 independent zmm FMAs. */
__attribute__((target("avx512f,fma"))) static double fma512(long iters)
{
  __m512 a = _mm512_set1_ps(1e-7f), b = _mm512_set1_ps(0.999999f), c[16];
  for (int i = 0; i < 16; i++)
    c[i] = _mm512_set1_ps(0.1f * (float)i);
  double t0 = now();
  for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      c[i] = _mm512_fmadd_ps(c[i], b, a);
  double t1 = now();
  for (int i = 1; i < 16; i++)
    c[0] = _mm512_add_ps(c[0], c[i]);
  volatile float sink = _mm512_reduce_add_ps(c[0]);
  (void)sink;
  return 512.0 * (double)iters / (t1 - t0) * 1e-9;
}

/* GFLOP/s of "iters" x 12 independent ymm FMAs. */
__attribute__((target("avx2,fma"))) static double fma256(long iters)
{
  __m256 a = _mm256_set1_ps(1e-7f), b = _mm256_set1_ps(0.999999f), c[12];
  for (int i = 0; i < 12; i++)
    c[i] = _mm256_set1_ps(0.1f * (float)i);
  double t0 = now();
  for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++)
      c[i] = _mm256_fmadd_ps(c[i], b, a);
  double t1 = now();
  float out[8];
  for (int i = 1; i < 12; i++)
    c[0] = _mm256_add_ps(c[0], c[i]);
  _mm256_storeu_ps(out, c[0]);
  volatile float sink = out[0];
  (void)sink;
  return 192.0 * (double)iters / (t1 - t0) * 1e-9;
}

double bench_fma_gflops(bool avx512, long iters)
{
  return avx512 ? fma512(iters) : fma256(iters);
}

double bench_fma_peak(bool avx512, int samples, long iters)
{
  double best = 0;
  bench_fma_gflops(avx512, 20000000L);
  for (int i = 0; i < samples; i++)
    best = fmax(best, bench_fma_gflops(avx512, iters));
  return best;
}
