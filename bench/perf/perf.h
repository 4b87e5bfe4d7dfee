/* perf.h - the internal header of bench_perf, one section per .c file.
 *
 * bench_perf times brick's kernels, compiled from plain .bk text with default
 * settings, against a peer library on the same inputs in the same process:
 * oneDNN for convolutions, OpenBLAS for GEMMs. The shapes and kernel entry
 * points come from perf_kernels.c, which CMake generates.
 */
#ifndef BRICK_BENCH_PERF_H
#define BRICK_BENCH_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- perf_kernels.c (generated): the shapes ------------------------------- */

typedef enum perf_kind { PERF_CONV, PERF_GEMM } perf_kind;

/* O[n,k,p,q] += I[n,c,stride*p+r-pad, stride*q+s-pad] * Wt[k,c,r,s] */
typedef struct perf_conv_dims {
  int n, c, k, h, w, r, s, stride, pad;
} perf_conv_dims;

/* C[i,j] += A[i,k] * B[k,j], row-major, C is m x n; with bt, B[j,k] (B is n x k) */
typedef struct perf_gemm_dims {
  int m, n, k, bt;
} perf_gemm_dims;

/* brick's NAME_ws(in0, in1, out, workspace) */
typedef void (*perf_kernel_fn)(const float *, const float *, float *, void *);

typedef struct perf_shape {
  const char *name, *desc;
  perf_kind kind;
  perf_conv_dims conv;      /* PERF_CONV only */
  perf_gemm_dims gemm;      /* PERF_GEMM only */
  perf_kernel_fn fn;
  const double *flops;      /* NAME_flops, as brick counts them */
  const uint64_t *ws_bytes; /* NAME_workspace_bytes */
  const int64_t *out_dims;  /* the output's dims from the generated header */
  /* PERF_CONV with prepacked weights (NULL: none): brick's NAME_pack(Wt, Wp), run once before
   * the timed calls, which read Wp[c,r,s,k]; the peer and the check take Wt[k,c,r,s]. Such
   * rows are not in the geomeans (the target is the plain NCHW text) */
  void (*pack)(const float *, float *);
} perf_shape;

extern const perf_shape perf_shapes[];
extern const int perf_nshapes;

/* ---- reference.c: shapes, inputs, the sampled double-precision check ------ */

int perf_conv_p(const perf_conv_dims *d);
int perf_conv_q(const perf_conv_dims *d);
double perf_shape_flops(const perf_shape *s);
size_t perf_shape_in0_size(const perf_shape *s);
size_t perf_shape_in1_size(const perf_shape *s);
size_t perf_shape_out_size(const perf_shape *s);
const char *perf_shape_check_dims(const perf_shape *s);

void *perf_alloc(size_t bytes);
void perf_fill(float *x, size_t n, unsigned seed);
void perf_fill_nan(float *x, size_t n);

typedef struct perf_sample perf_sample;
perf_sample *perf_sample_new(const perf_shape *s, const float *in0, const float *in1, int count,
                             unsigned seed);
double perf_sample_error(const perf_sample *smp, const float *out);
void perf_sample_free(perf_sample *smp);

/* ---- measure.c: clock, peak, interleaved timing ---------------------------- */

double perf_now(void);
double perf_median(const double *v, int n);
double perf_peak_gflops(const char **isa);

/* Something to time: "run(ctx)" does "flops" useful FLOPs. */
typedef struct perf_runner {
  void (*run)(void *ctx);
  void *ctx;
  double flops;
} perf_runner;

typedef struct perf_timing_opts {
  int samples;       /* samples of each runner */
  double min_sample; /* seconds a sample lasts at least (calls are repeated) */
  double settle;     /* seconds of sleep before a sample that switches runner */
} perf_timing_opts;

#define PERF_MAX_SAMPLES 101

typedef struct perf_timing {
  double gflops[2];     /* median GFLOP/s of each runner, NAN if not timed */
  double lo[2], hi[2];  /* slowest and fastest sample of each runner */
  double pair_ratio;    /* median of the per-pair ratios of runner 0 over runner 1 */
  int reps[2];          /* calls per sample */
} perf_timing;

perf_timing perf_time_pair(const perf_runner *a, const perf_runner *b,
                           const perf_timing_opts *o);

/* ---- peer_dnnl.c: oneDNN forward convolution, format any ------------------- */

typedef struct perf_dnnl perf_dnnl;
const char *perf_dnnl_version(void);
perf_dnnl *perf_dnnl_new(const perf_shape *s, const float *in, const float *wt);
void perf_dnnl_run(void *d);
int perf_dnnl_output(perf_dnnl *d, float *out);
const char *perf_dnnl_impl(const perf_dnnl *d);
void perf_dnnl_free(perf_dnnl *d);

/* ---- peer_openblas.c: OpenBLAS cblas_sgemm, row-major ---------------------- */

typedef struct perf_blas {
  const perf_shape *shape;
  const float *a, *b;
  float *c;
} perf_blas;

const char *perf_openblas_version(void);
void perf_openblas_set_threads(int n);
void perf_openblas_run(void *blas);

/* ---- report.c: table, CSV, summary ----------------------------------------- */

typedef struct perf_result {
  const perf_shape *shape;
  int threads;
  const char *peer;          /* "oneDNN", "OpenBLAS", or NULL when none applies */
  double brick_gflops;       /* NAN when not timed */
  double peer_gflops;        /* NAN when not timed */
  double ratio;              /* brick / peer of the median GFLOP/s, or NAN */
  double pair_ratio;         /* median of the per-pair ratios brick / peer, or NAN */
  double spread;             /* (fastest - slowest) / median sample, the worse of the two */
  double brick_best, peer_best; /* GFLOP/s of the fastest sample, or NAN */
  double brick_err, peer_err;
  bool brick_ok, peer_ok;    /* passed the check */
  double load1;              /* 1-minute load average when the row was measured */
  char note[160];            /* peer implementation, or why something was skipped */
} perf_result;

typedef struct perf_report {
  double peak;         /* per-core GFLOP/s, the basis of every %peak */
  int ncpus;           /* online cpus */
  FILE *csv;           /* or NULL */
  perf_result *rows;
  int nrows, cap;
} perf_report;

void perf_report_header(const perf_report *r);
void perf_report_add(perf_report *r, const perf_result *row);
int perf_report_summary(const perf_report *r, const int *threads, int nthreads);

#endif
