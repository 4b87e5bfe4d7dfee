/* fma_peak.c - see fma_peak.h. */
#define _GNU_SOURCE
#include "fma_peak.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
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

#define C2C_ROUNDS 20000

typedef struct c2c {
  _Atomic long word __attribute__((aligned(64)));
  int cpu;
  _Atomic int ok;
} c2c;

static int pin(int cpu)
{
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The other side: answers every odd value with the next even one. */
static void *c2c_echo(void *arg)
{
  c2c *c = arg;
  atomic_store(&c->ok, pin(c->cpu) == 0 ? 1 : -1);
  if (atomic_load(&c->ok) < 0)
    return NULL;
  for (long i = 1; i < 2 * C2C_ROUNDS; i += 2) {
    while (atomic_load_explicit(&c->word, memory_order_acquire) != i)
      ;
    atomic_store_explicit(&c->word, i + 1, memory_order_release);
  }
  return NULL;
}

static int cmp_dbl(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

double bench_c2c_round_trip_ns(int a, int b)
{
  double t[5];
  cpu_set_t saved;
  if (pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) != 0)
    return 0;
  int runs = 0;
  for (; runs < 5; runs++) {
    static c2c c;
    atomic_store(&c.word, 0);
    atomic_store(&c.ok, 0);
    c.cpu = b;
    pthread_t th;
    if (pin(a) != 0 || pthread_create(&th, NULL, c2c_echo, &c) != 0)
      break;
    while (atomic_load(&c.ok) == 0)
      ;
    if (atomic_load(&c.ok) < 0) {
      pthread_join(th, NULL);
      break;
    }
    double t0 = now();
    for (long i = 0; i < 2 * C2C_ROUNDS; i += 2) {
      atomic_store_explicit(&c.word, i + 1, memory_order_release);
      while (atomic_load_explicit(&c.word, memory_order_acquire) != i + 2)
        ;
    }
    t[runs] = (now() - t0) * 1e9 / C2C_ROUNDS;
    pthread_join(th, NULL);
  }
  pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
  if (runs == 0)
    return 0;
  qsort(t, (size_t)runs, sizeof t[0], cmp_dbl);
  return t[runs / 2];
}
