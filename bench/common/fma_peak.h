/* fma_peak.h - the in-process FP32 FMA rate of one core, shared by the benchmarks.
 *
 * Independent chains of FMAs (16 of zmm with AVX-512, 12 of ymm with AVX2), so that neither
 * latency nor the loop limits them: the rate a BRGEMM body could reach at best on this core,
 * measured in the benchmark's own process because the VM's clock and its neighbours change
 * from run to run. (The brick library has its own, brick_measure_peak_gflops, for brick run.)
 */
#ifndef BRICK_BENCH_FMA_PEAK_H
#define BRICK_BENCH_FMA_PEAK_H

#include <stdbool.h>

/* GFLOP/s of one run of "iters" rounds of the chains, zmm ("avx512") or ymm. */
double bench_fma_gflops(bool avx512, long iters);

/* The best of "samples" runs of "iters" rounds after a warm-up of 20M rounds (the best, not
 * the median: other processes only ever slow a run down). */
double bench_fma_peak(bool avx512, int samples, long iters);

/* Nanoseconds for a cache line to go from CPU "a" to CPU "b" and back (two threads pinned
 * there flipping one word), the median of a few runs; 0 when they cannot be pinned. On the
 * 2-core VMs: 80-110 ns when both vCPUs sit on one CCD (one L3), 350-380 ns when they do
 * not (then data one thread writes and the other reads goes through memory). */
double bench_c2c_round_trip_ns(int a, int b);

#endif
