/*
 * Independent verification of the reference interpreter. Each test parses a small kernel from a
 * string through the public API, runs it with brick_kernel_interpret on seeded random inputs
 * (outputs filled with NaN first, so an element that is never written shows), and compares every
 * output with a hand-written C loop nest in double precision, written from the mathematics of
 * the operation (convolution gradients as the scatter of the forward pass), not from interp.c.
 * The error of an output is max|x - ref| / max|ref| and must stay below 1e-6.
 *
 * Also pinned here: the language's special rules (DESIGN.md, "Rules that settle open
 * questions"): a `+=` of a product skips a term with an out-of-bounds factor (so 0 * Inf never
 * appears), `+=` targets start at 0 even where no term lands, `max=` starts at -inf and reads
 * outside are 0, later statements continue from the current value, `where` narrows a range.
 */
#include "brick/brick.h"

#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

/* ---- running a kernel ------------------------------------------------------------------ */

typedef struct run {
  brick_ctx *ctx;
  brick_program *prog;
  int k;
  int nparams, ninputs;
  float **args;
} run;

static void print_diag(void *user, brick_severity sev, const char *text) {
  (void)user, (void)sev;
  fputs(text, stderr);
}

/* splitmix64: reproducible inputs in [-1, 1). */
static float next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

/* Parse "src" with the -D overrides "defines" ("NAME", value, ..., NULL) and prepare kernel
 * "kernel": inputs random from "seed", outputs NaN. */
static run *run_new(const char *src, const char *kernel, uint64_t seed, const char *const *defines,
                    const int64_t *values) {
  run *r = calloc(1, sizeof(*r));
  r->ctx = brick_ctx_new();
  brick_ctx_set_diag_callback(r->ctx, print_diag, NULL);
  brick_options *opts = brick_options_new();
  for (int i = 0; defines && defines[i]; i++)
    brick_options_define(opts, defines[i], values[i]);
  int status = brick_program_parse_string(r->ctx, "test.bk", src, opts, &r->prog);
  brick_options_free(opts);
  ck_assert_msg(status == BRICK_OK, "kernel %s does not parse (status %d)", kernel, status);
  r->k = brick_program_find_kernel(r->prog, kernel);
  ck_assert_int_ge(r->k, 0);
  r->nparams = brick_kernel_param_count(r->prog, r->k);
  r->ninputs = brick_kernel_input_count(r->prog, r->k);
  r->args = calloc((size_t)r->nparams, sizeof(float *));
  for (int i = 0; i < r->nparams; i++) {
    int64_t n = brick_kernel_param_elems(r->prog, r->k, i);
    r->args[i] = malloc(sizeof(float) * (size_t)n);
    for (int64_t e = 0; e < n; e++)
      r->args[i][e] = i < r->ninputs ? next_random(&seed) : NAN;
  }
  return r;
}

static run *run_simple(const char *src, const char *kernel) {
  return run_new(src, kernel, 42, NULL, NULL);
}

static int param_index(const run *r, const char *name) {
  for (int i = 0; i < r->nparams; i++)
    if (strcmp(brick_kernel_param_name(r->prog, r->k, i), name) == 0)
      return i;
  ck_abort_msg("no parameter '%s'", name);
  return -1;
}

static float *param(const run *r, const char *name) { return r->args[param_index(r, name)]; }

static int64_t dim(const run *r, const char *name, int d) {
  return brick_kernel_param_dim(r->prog, r->k, param_index(r, name), d);
}

static int64_t elems(const run *r, const char *name) {
  return brick_kernel_param_elems(r->prog, r->k, param_index(r, name));
}

/* Fill every output with NaN and interpret the kernel. */
static void run_interpret(run *r) {
  for (int i = r->ninputs; i < r->nparams; i++)
    for (int64_t e = 0; e < brick_kernel_param_elems(r->prog, r->k, i); e++)
      r->args[i][e] = NAN;
  ck_assert_int_eq(brick_kernel_interpret(r->ctx, r->prog, r->k, r->args), BRICK_OK);
}

static void run_free(run *r) {
  for (int i = 0; i < r->nparams; i++)
    free(r->args[i]);
  free(r->args);
  brick_program_free(r->prog);
  brick_ctx_free(r->ctx);
  free(r);
}

/* Compare output "name" of "r" with "ref": max|x - ref| / max|ref| <= TOL, no NaN anywhere
 * (when ref is all zero, x must be exactly zero). */
static void assert_close(const run *r, const char *name, const double *ref) {
  const float *x = param(r, name);
  int64_t n = elems(r, name);
  double maxdiff = 0, maxref = 0;
  for (int64_t e = 0; e < n; e++) {
    ck_assert_msg(isfinite(x[e]), "%s[%lld] = %g (reference %g)", name, (long long)e, x[e],
                  ref[e]);
    maxdiff = fmax(maxdiff, fabs((double)x[e] - ref[e]));
    maxref = fmax(maxref, fabs(ref[e]));
  }
  if (maxref == 0)
    ck_assert_msg(maxdiff == 0, "%s: expected all zeros, error %g", name, maxdiff);
  else
    ck_assert_msg(maxdiff / maxref <= TOL, "%s: relative error %g > %g", name, maxdiff / maxref,
                  TOL);
}

static double *zeros(int64_t n) { return calloc((size_t)n, sizeof(double)); }

/* ---- matmul and batched matmul ---------------------------------------------------------- */

START_TEST(matmul) {
  run *r = run_simple("size M = 13\nsize N = 17\nsize K = 19\n"
                      "kernel matmul(A: f32[M, K], B: f32[K, N]) -> (C: f32[M, N]) {\n"
                      "  C[i, j] += A[i, k] * B[k, j]\n"
                      "}\n",
                      "matmul");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  int M = 13, N = 17, K = 19;
  double *ref = zeros(M * N);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      for (int k = 0; k < K; k++)
        ref[i * N + j] += (double)A[i * K + k] * B[k * N + j];
  assert_close(r, "C", ref);
  free(ref);
  run_free(r);
}
END_TEST

START_TEST(batched_matmul) {
  run *r = run_simple("kernel bmm(A: f32[3, 5, 6], B: f32[3, 6, 7]) -> (C: f32[3, 5, 7]) {\n"
                      "  C[b, i, j] += A[b, i, k] * B[b, k, j]\n"
                      "}\n",
                      "bmm");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  double *ref = zeros(3 * 5 * 7);
  for (int b = 0; b < 3; b++)
    for (int i = 0; i < 5; i++)
      for (int j = 0; j < 7; j++)
        for (int k = 0; k < 6; k++)
          ref[(b * 5 + i) * 7 + j] += (double)A[(b * 5 + i) * 6 + k] * B[(b * 6 + k) * 7 + j];
  assert_close(r, "C", ref);
  free(ref);
  run_free(r);
}
END_TEST

/* ---- convolutions (NCHW) ---------------------------------------------------------------- */

typedef struct conv_params {
  int64_t N, C, K, H, W, R, S, stride, pad, dil;
} conv_params;

static const conv_params conv_cases[] = {
    {1, 3, 4, 9, 11, 3, 3, 1, 1, 1},  /* the usual 3x3, pad 1 */
    {2, 3, 5, 10, 9, 3, 3, 2, 2, 2},  /* stride 2, pad 2, dilation 2 */
    {1, 2, 3, 7, 8, 5, 3, 2, 0, 1},   /* stride 2, no padding, 5x3 filter */
    {1, 4, 2, 6, 6, 3, 3, 1, 0, 2},   /* dilation 2, no padding */
    {2, 3, 2, 11, 7, 3, 5, 3, 2, 1},  /* stride 3 */
    {1, 5, 3, 13, 5, 1, 1, 1, 0, 1},  /* 1x1 */
    {1, 2, 2, 5, 5, 3, 3, 1, 3, 1},   /* padding 3: border outputs get no term at all */
    {1, 3, 2, 15, 12, 4, 2, 2, 1, 3}, /* even filter, dilation 3, odd sizes */
};

static const char *const conv_src =
    "size N = 1\nsize C = 1\nsize K = 1\nsize H = 1\nsize W = 1\nsize R = 1\nsize S = 1\n"
    "size STRIDE = 1\nsize PAD = 0\nsize DIL = 1\n"
    "size P = (H + 2*PAD - DIL*(R - 1) - 1) / STRIDE + 1\n"
    "size Q = (W + 2*PAD - DIL*(S - 1) - 1) / STRIDE + 1\n"
    "kernel conv(I: f32[N, C, H, W], Wt: f32[K, C, R, S]) -> (O: f32[N, K, P, Q]) {\n"
    "  O[n, k, p, q] += I[n, c, STRIDE*p + DIL*r - PAD, STRIDE*q + DIL*s - PAD] * Wt[k, c, r, s]\n"
    "}\n";

static const char *const conv_names[] = {"N", "C", "K", "H", "W", "R", "S", "STRIDE", "PAD",
                                         "DIL", NULL};

START_TEST(conv2d_nchw) {
  const conv_params *c = &conv_cases[_i];
  const int64_t values[] = {c->N, c->C, c->K, c->H, c->W, c->R, c->S, c->stride, c->pad, c->dil};
  run *r = run_new(conv_src, "conv", 7 + (uint64_t)_i, conv_names, values);
  int64_t P = (c->H + 2 * c->pad - c->dil * (c->R - 1) - 1) / c->stride + 1;
  int64_t Q = (c->W + 2 * c->pad - c->dil * (c->S - 1) - 1) / c->stride + 1;
  ck_assert_int_eq(dim(r, "O", 2), P);
  ck_assert_int_eq(dim(r, "O", 3), Q);
  run_interpret(r);
  const float *I = param(r, "I"), *Wt = param(r, "Wt");
  double *ref = zeros(c->N * c->K * P * Q);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t k = 0; k < c->K; k++)
      for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++)
          for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t y = 0; y < c->R; y++)
              for (int64_t x = 0; x < c->S; x++) {
                int64_t h = p * c->stride + y * c->dil - c->pad;
                int64_t w = q * c->stride + x * c->dil - c->pad;
                if (h < 0 || h >= c->H || w < 0 || w >= c->W)
                  continue;
                ref[((n * c->K + k) * P + p) * Q + q] +=
                    (double)I[((n * c->C + ch) * c->H + h) * c->W + w] *
                    Wt[((k * c->C + ch) * c->R + y) * c->S + x];
              }
  assert_close(r, "O", ref);
  free(ref);
  run_free(r);
}
END_TEST

START_TEST(conv1x1) {
  run *r = run_simple("kernel c1(I: f32[2, 5, 3, 4], Wt: f32[6, 5]) -> (O: f32[2, 6, 3, 4]) {\n"
                      "  O[n, k, h, w] += I[n, c, h, w] * Wt[k, c]\n"
                      "}\n",
                      "c1");
  run_interpret(r);
  const float *I = param(r, "I"), *Wt = param(r, "Wt");
  double *ref = zeros(2 * 6 * 12);
  for (int n = 0; n < 2; n++)
    for (int k = 0; k < 6; k++)
      for (int hw = 0; hw < 12; hw++)
        for (int c = 0; c < 5; c++)
          ref[(n * 6 + k) * 12 + hw] += (double)I[(n * 5 + c) * 12 + hw] * Wt[k * 5 + c];
  assert_close(r, "O", ref);
  free(ref);
  run_free(r);
}
END_TEST

/* A padded 1x1 convolution: the border of O receives no term, yet must be exactly 0. */
START_TEST(conv1x1_padded_border_is_zero) {
  run *r = run_simple("kernel c1p(I: f32[1, 3, 4, 5], Wt: f32[2, 3]) -> (O: f32[1, 2, 6, 7]) {\n"
                      "  O[n, k, p, q] += I[n, c, p - 1, q - 1] * Wt[k, c]\n"
                      "}\n",
                      "c1p");
  run_interpret(r);
  const float *I = param(r, "I"), *Wt = param(r, "Wt");
  double *ref = zeros(2 * 6 * 7);
  for (int k = 0; k < 2; k++)
    for (int h = 0; h < 4; h++)
      for (int w = 0; w < 5; w++)
        for (int c = 0; c < 3; c++)
          ref[(k * 6 + h + 1) * 7 + w + 1] += (double)I[(c * 4 + h) * 5 + w] * Wt[k * 3 + c];
  assert_close(r, "O", ref);
  const float *O = param(r, "O");
  ck_assert(O[0] == 0.0f && !signbit(O[0]));
  free(ref);
  run_free(r);
}
END_TEST

typedef struct bwd_params {
  int64_t N, C, K, H, W, R, S, PAD;
} bwd_params;

static const bwd_params bwd_cases[] = {
    {2, 3, 4, 7, 6, 3, 3, 1}, /* "same" convolution: P = H */
    {1, 2, 3, 6, 8, 3, 5, 2}, /* P = H + 2: more outputs than inputs */
    {1, 3, 2, 9, 7, 3, 3, 0}, /* no padding: the border of dI gets fewer terms */
};

static const char *const bwd_names[] = {"N", "C", "K", "H", "W", "R", "S", "PAD", NULL};

static const char *const bwd_sizes =
    "size N = 1\nsize C = 1\nsize K = 1\nsize H = 1\nsize W = 1\nsize R = 1\nsize S = 1\n"
    "size PAD = 0\n"
    "size P = H + 2*PAD - R + 1\n"
    "size Q = W + 2*PAD - S + 1\n";

/* Backward data: the gradient of the stride-1 forward convolution
 *   O[n,k,p,q] = sum I[n,c,p+r-PAD,q+s-PAD] * W[k,c,r,s]
 * with respect to I, computed by scattering every forward term. */
START_TEST(conv_backward_data) {
  const bwd_params *c = &bwd_cases[_i];
  char src[1024];
  snprintf(src, sizeof src,
           "%skernel bwd(dO: f32[N, K, P, Q], Wt: f32[K, C, R, S]) -> (dI: f32[N, C, H, W]) {\n"
           "  dI[n, c, h, w] += dO[n, k, h - r + PAD, w - s + PAD] * Wt[k, c, r, s]\n"
           "}\n",
           bwd_sizes);
  const int64_t values[] = {c->N, c->C, c->K, c->H, c->W, c->R, c->S, c->PAD};
  run *r = run_new(src, "bwd", 100 + (uint64_t)_i, bwd_names, values);
  int64_t P = c->H + 2 * c->PAD - c->R + 1, Q = c->W + 2 * c->PAD - c->S + 1;
  run_interpret(r);
  const float *dO = param(r, "dO"), *Wt = param(r, "Wt");
  double *ref = zeros(c->N * c->C * c->H * c->W);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t k = 0; k < c->K; k++)
      for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++)
          for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t y = 0; y < c->R; y++)
              for (int64_t x = 0; x < c->S; x++) {
                int64_t h = p + y - c->PAD, w = q + x - c->PAD;
                if (h < 0 || h >= c->H || w < 0 || w >= c->W)
                  continue;
                ref[((n * c->C + ch) * c->H + h) * c->W + w] +=
                    (double)dO[((n * c->K + k) * P + p) * Q + q] *
                    Wt[((k * c->C + ch) * c->R + y) * c->S + x];
              }
  assert_close(r, "dI", ref);
  free(ref);
  run_free(r);
}
END_TEST

/* Weight update: the gradient of the same forward convolution with respect to W. */
START_TEST(conv_weight_update) {
  const bwd_params *c = &bwd_cases[_i];
  char src[1024];
  snprintf(src, sizeof src,
           "%skernel wu(I: f32[N, C, H, W], dO: f32[N, K, P, Q]) -> (dW: f32[K, C, R, S]) {\n"
           "  dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, p + r - PAD, q + s - PAD]\n"
           "}\n",
           bwd_sizes);
  const int64_t values[] = {c->N, c->C, c->K, c->H, c->W, c->R, c->S, c->PAD};
  run *r = run_new(src, "wu", 200 + (uint64_t)_i, bwd_names, values);
  int64_t P = c->H + 2 * c->PAD - c->R + 1, Q = c->W + 2 * c->PAD - c->S + 1;
  run_interpret(r);
  const float *I = param(r, "I"), *dO = param(r, "dO");
  double *ref = zeros(c->K * c->C * c->R * c->S);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t k = 0; k < c->K; k++)
      for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++)
          for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t y = 0; y < c->R; y++)
              for (int64_t x = 0; x < c->S; x++) {
                int64_t h = p + y - c->PAD, w = q + x - c->PAD;
                if (h < 0 || h >= c->H || w < 0 || w >= c->W)
                  continue;
                ref[((k * c->C + ch) * c->R + y) * c->S + x] +=
                    (double)dO[((n * c->K + k) * P + p) * Q + q] *
                    I[((n * c->C + ch) * c->H + h) * c->W + w];
              }
  assert_close(r, "dW", ref);
  free(ref);
  run_free(r);
}
END_TEST

/* ---- layers ---------------------------------------------------------------------------- */

START_TEST(fc_bias_relu) {
  run *r = run_simple("kernel fc(X: f32[6, 11], Wt: f32[9, 11], b: f32[9]) -> (Y: f32[6, 9]) {\n"
                      "  Y[n, k] += X[n, c] * Wt[k, c]\n"
                      "  Y[n, k] = relu(Y[n, k] + b[k])\n"
                      "}\n",
                      "fc");
  run_interpret(r);
  const float *X = param(r, "X"), *Wt = param(r, "Wt"), *b = param(r, "b");
  double ref[6 * 9];
  int positive = 0;
  for (int n = 0; n < 6; n++)
    for (int k = 0; k < 9; k++) {
      double s = b[k];
      for (int c = 0; c < 11; c++)
        s += (double)X[n * 11 + c] * Wt[k * 11 + c];
      ref[n * 9 + k] = s > 0 ? s : 0;
      positive += s > 0;
    }
  ck_assert(positive > 0 && positive < 6 * 9); /* both sides of the ReLU are exercised */
  assert_close(r, "Y", ref);
  run_free(r);
}
END_TEST

static double maxpool_ref(const float *X, int64_t H, int64_t W, int64_t c, int64_t p, int64_t q) {
  double m = -INFINITY;
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++) {
      int64_t h = 2 * p + y - 1, w = 2 * q + x - 1;
      double v = h >= 0 && h < H && w >= 0 && w < W ? X[(c * H + h) * W + w] : 0.0;
      m = fmax(m, v);
    }
  return m;
}

/* 3x3 max pooling, stride 2, padding 1: reads outside are 0, so with negative inputs the
 * border windows give 0; max= starts from -inf, so an all-negative interior window gives its
 * (negative) maximum. */
START_TEST(maxpool_padded) {
  const char *src = "size H = 7\nsize W = 8\n"
                    "size P = (H + 2 - 3) / 2 + 1\nsize Q = (W + 2 - 3) / 2 + 1\n"
                    "kernel pool(X: f32[1, 3, H, W]) -> (Y: f32[1, 3, P, Q]) {\n"
                    "  Y[n, c, p, q] max= X[n, c, 2*p + r - 1, 2*q + s - 1] where r in 0..3, "
                    "s in 0..3\n"
                    "}\n";
  for (int negative = 0; negative < 2; negative++) {
    run *r = run_simple(src, "pool");
    float *X = param(r, "X");
    if (negative)
      for (int64_t e = 0; e < elems(r, "X"); e++)
        X[e] = -0.5f - fabsf(X[e]);
    run_interpret(r);
    int64_t P = dim(r, "Y", 2), Q = dim(r, "Y", 3);
    ck_assert_int_eq(P, 4);
    ck_assert_int_eq(Q, 4);
    double ref[3 * 4 * 4];
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
          ref[(c * P + p) * Q + q] = maxpool_ref(X, 7, 8, c, p, q);
    if (negative) {
      ck_assert(ref[0] == 0.0);         /* a border window sees the zero padding */
      ck_assert(ref[1 * Q + 1] < -0.5); /* an interior window does not */
    }
    assert_close(r, "Y", ref);
    run_free(r);
  }
}
END_TEST

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One LSTM step: gates i, f, g, o (in this order along the gate dimension) from two GEMMs
 * into a local, then c' = f*c + i*g, h' = o*tanh(c'). The input and hidden widths differ. */
START_TEST(lstm_cell) {
  run *r = run_simple(
      "size N = 3\nsize IN = 5\nsize HID = 4\n"
      "kernel lstm(X: f32[N, IN], Hp: f32[N, HID], Cp: f32[N, HID],\n"
      "            Wx: f32[IN, 4, HID], Wh: f32[HID, 4, HID], b: f32[4, HID])\n"
      "    -> (Hn: f32[N, HID], Cn: f32[N, HID]) {\n"
      "  local G: f32[N, 4, HID]\n"
      "  G[n, g, j] += X[n, k] * Wx[k, g, j]\n"
      "  G[n, g, j] += Hp[n, k] * Wh[k, g, j]\n"
      "  Cn[n, j] = sigmoid(G[n, 1, j] + b[1, j]) * Cp[n, j] +\n"
      "             sigmoid(G[n, 0, j] + b[0, j]) * tanh(G[n, 2, j] + b[2, j])\n"
      "  Hn[n, j] = sigmoid(G[n, 3, j] + b[3, j]) * tanh(Cn[n, j])\n"
      "}\n",
      "lstm");
  for (int i = 0; i < 6; i++) /* larger inputs, so the nonlinearities leave their linear part */
    for (int64_t e = 0; e < brick_kernel_param_elems(r->prog, r->k, i); e++)
      r->args[i][e] *= 2.5f;
  run_interpret(r);
  const float *X = param(r, "X"), *Hp = param(r, "Hp"), *Cp = param(r, "Cp");
  const float *Wx = param(r, "Wx"), *Wh = param(r, "Wh"), *b = param(r, "b");
  enum { N = 3, IN = 5, HID = 4 };
  double refh[N * HID], refc[N * HID];
  for (int n = 0; n < N; n++)
    for (int j = 0; j < HID; j++) {
      double gate[4];
      for (int g = 0; g < 4; g++) {
        double s = b[g * HID + j];
        for (int k = 0; k < IN; k++)
          s += (double)X[n * IN + k] * Wx[(k * 4 + g) * HID + j];
        for (int k = 0; k < HID; k++)
          s += (double)Hp[n * HID + k] * Wh[(k * 4 + g) * HID + j];
        gate[g] = s;
      }
      double c = sigmoid(gate[1]) * Cp[n * HID + j] + sigmoid(gate[0]) * tanh(gate[2]);
      refc[n * HID + j] = c;
      refh[n * HID + j] = sigmoid(gate[3]) * tanh(c);
    }
  assert_close(r, "Cn", refc);
  assert_close(r, "Hn", refh);
  run_free(r);
}
END_TEST

/* ---- statements in sequence, reductions, where ------------------------------------------ */

/* A later += continues from what an earlier = (or +=) wrote; only the first write initialises. */
START_TEST(later_statements_continue) {
  run *r = run_simple(
      "kernel seq(A: f32[4, 5], B: f32[4, 3], C: f32[3, 5]) -> (Y: f32[4, 5], Z: f32[4, 5]) {\n"
      "  Y[i, j] = A[i, j]\n"
      "  Y[i, j] += B[i, k] * C[k, j]\n"
      "  Z[i, j] += B[i, k] * C[k, j]\n"
      "  Z[i, j] += A[i, j] * 2.0\n"
      "  Z[i, j] = Z[i, j] - 0.5 * Y[i, j]\n"
      "  Y[i, j] max= A[i, j] * 4\n"
      "}\n",
      "seq");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B"), *C = param(r, "C");
  double y[20], z[20];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 5; j++) {
      double bc = 0;
      for (int k = 0; k < 3; k++)
        bc += (double)B[i * 3 + k] * C[k * 5 + j];
      double a = A[i * 5 + j], yy = a + bc;
      z[i * 5 + j] = bc + 2.0 * a - 0.5 * yy;
      y[i * 5 + j] = fmax(yy, 4.0 * a);
    }
  assert_close(r, "Y", y);
  assert_close(r, "Z", z);
  run_free(r);
}
END_TEST

/* Rank-0 outputs: full reductions with +=, a dot product, and max=. */
START_TEST(rank0_reductions) {
  run *r = run_simple("kernel red(A: f32[6, 7], B: f32[6, 7]) -> (S: f32[], D: f32[], M: f32[]) {\n"
                      "  S[] += A[i, j]\n"
                      "  D[] += A[i, j] * B[i, j]\n"
                      "  M[] max= A[i, j]\n"
                      "}\n",
                      "red");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  double s = 0, d = 0, m = -INFINITY;
  for (int e = 0; e < 42; e++) {
    s += A[e];
    d += (double)A[e] * B[e];
    m = fmax(m, A[e]);
  }
  assert_close(r, "S", &s);
  assert_close(r, "D", &d);
  assert_close(r, "M", &m);
  run_free(r);
}
END_TEST

/* where narrows an inferable range, gives the range of an iterator that never stands alone,
 * and may reach outside the tensor (reads there are 0). */
START_TEST(where_narrowing) {
  run *r = run_simple("size N = 6\n"
                      "kernel wh(A: f32[4, N], V: f32[N], X: f32[11])\n"
                      "    -> (Y: f32[4], Y2: f32[4], Y3: f32[4], Y4: f32[5], Y5: f32[4]) {\n"
                      "  Y[i] += A[i, j] where j in 1..3\n"
                      "  Y2[i] += A[i, j] * V[j] where j in 2..N - 1\n"
                      "  Y3[i] += A[i, j] + V[j] where j in -2..2\n"
                      "  Y4[p] += X[2*p + r] where r in 0..3\n"
                      "  Y5[i] += V[i + j] * A[i, 0] where j in -2..0\n"
                      "}\n",
                      "wh");
  run_interpret(r);
  const float *A = param(r, "A"), *V = param(r, "V"), *X = param(r, "X");
  double y[4] = {0}, y2[4] = {0}, y3[4] = {0}, y4[5] = {0}, y5[4] = {0};
  for (int i = 0; i < 4; i++) {
    for (int j = 1; j < 3; j++)
      y[i] += A[i * 6 + j];
    for (int j = 2; j < 5; j++)
      y2[i] += (double)A[i * 6 + j] * V[j];
    for (int j = -2; j < 2; j++) /* not a product: an outside read is 0 and the term stays */
      y3[i] += (j >= 0 ? (double)A[i * 6 + j] + V[j] : 0.0);
    for (int j = -2; j < 0; j++) /* a range that ends at 0 */
      y5[i] += i + j >= 0 ? (double)V[i + j] * A[i * 6] : 0.0;
  }
  for (int p = 0; p < 5; p++)
    for (int q = 0; q < 3; q++)
      y4[p] += 2 * p + q < 11 ? X[2 * p + q] : 0.0;
  assert_close(r, "Y", y);
  assert_close(r, "Y2", y2);
  assert_close(r, "Y3", y3);
  assert_close(r, "Y4", y4);
  assert_close(r, "Y5", y5);
  run_free(r);
}
END_TEST

/* ---- the special rules ------------------------------------------------------------------- */

/* In a += of a product, a term with an out-of-bounds factor is skipped entirely: Inf and NaN
 * weights whose partner read is always outside never reach the output (0 * Inf is NaN). */
START_TEST(oob_factor_skips_term) {
  run *r = run_simple("kernel skip(I: f32[4], W: f32[8], W2: f32[8], W3: f32[8], V: f32[4])\n"
                      "    -> (O: f32[4], O2: f32[4], O3: f32[3], O4: f32[4]) {\n"
                      "  O[p] += I[p + r] * W[r]\n"
                      "  O2[p] += I[p + r] * W[r] * W2[r]\n"
                      "  O3[p] += V[p - r] * W3[r]\n"
                      "  O4[p] += 2.0 * (I[p + r] * W2[r]) * V[p]\n"
                      "}\n",
                      "skip");
  float *I = param(r, "I"), *W = param(r, "W"), *W2 = param(r, "W2"), *W3 = param(r, "W3");
  float *V = param(r, "V");
  /* O and O2 read W[r], W2[r] with I[p + r]: inside only for r < 4 - p. */
  W[4] = INFINITY, W[5] = -INFINITY, W[6] = NAN, W[7] = INFINITY;
  W2[4] = NAN, W2[7] = INFINITY;
  /* O3 reads W3[r] with V[p - r]: inside only for r <= p <= 2. */
  for (int q = 3; q < 8; q++)
    W3[q] = q % 2 ? INFINITY : NAN;
  run_interpret(r);
  double o[4] = {0}, o2[4] = {0}, o3[3] = {0}, o4[4] = {0};
  for (int p = 0; p < 4; p++)
    for (int q = 0; p + q < 4; q++) {
      o[p] += (double)I[p + q] * W[q];
      o2[p] += (double)I[p + q] * W[q] * W2[q];
      o4[p] += 2.0 * I[p + q] * W2[q] * V[p];
    }
  for (int p = 0; p < 3; p++)
    for (int q = 0; q <= p; q++)
      o3[p] += (double)V[p - q] * W3[q];
  assert_close(r, "O", o);
  assert_close(r, "O2", o2);
  assert_close(r, "O3", o3);
  assert_close(r, "O4", o4);
  run_free(r);
}
END_TEST

/* Only reads that are factors of the product skip a term (docs/language.md): a read inside a
 * sum is 0 outside, and so is any read when the right side is not a product. */
START_TEST(oob_read_inside_a_factor_is_zero) {
  run *r = run_simple("kernel inner(I: f32[4], W: f32[8]) -> (O: f32[4], O2: f32[4]) {\n"
                      "  O[p] += (I[p + r] + 1) * W[r]\n"
                      "  O2[p] += I[p + r] * W[r] + 1\n"
                      "}\n",
                      "inner");
  float *I = param(r, "I"), *W = param(r, "W");
  run_interpret(r);
  double o[4] = {0}, o2[4] = {0};
  for (int p = 0; p < 4; p++)
    for (int q = 0; q < 8; q++) {
      double in = p + q < 4 ? I[p + q] : 0.0;
      o[p] += (in + 1) * W[q];
      o2[p] += in * W[q] + 1;
    }
  assert_close(r, "O", o);
  assert_close(r, "O2", o2);
  run_free(r);
}
END_TEST

/* A += target starts at 0 even where no term lands; outputs were NaN before the call. */
START_TEST(init_without_terms) {
  run *r = run_simple("kernel init(A: f32[3], B: f32[6]) -> (Y: f32[6], Z: f32[6]) {\n"
                      "  Y[i] += A[i - 4] * B[i]\n"
                      "  Z[i] += A[i + j - 7] * B[j]\n"
                      "}\n",
                      "init");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  double y[6] = {0}, z[6] = {0};
  for (int i = 4; i < 6; i++)
    if (i - 4 < 3)
      y[i] = (double)A[i - 4] * B[i];
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++)
      if (i + j - 7 >= 0 && i + j - 7 < 3)
        z[i] += (double)A[i + j - 7] * B[j];
  ck_assert(y[0] == 0 && z[0] == 0 && z[1] == 0); /* these get no term */
  assert_close(r, "Y", y);
  assert_close(r, "Z", z);
  run_free(r);
}
END_TEST

/* An = statement: outside reads are 0 (not skipped), inside an elementwise expression. */
START_TEST(assign_reads_outside_as_zero) {
  run *r = run_simple("size N = 5\n"
                      "kernel sh(A: f32[N]) -> (Y: f32[N], R: f32[N]) {\n"
                      "  Y[i] = A[i + 1] - A[i - 1] + 1\n"
                      "  R[i] = A[N - 1 - i]\n"
                      "}\n",
                      "sh");
  run_interpret(r);
  const float *A = param(r, "A");
  double y[5], rv[5];
  for (int i = 0; i < 5; i++) {
    y[i] = (i + 1 < 5 ? A[i + 1] : 0.0) - (i - 1 >= 0 ? A[i - 1] : 0.0) + 1;
    rv[i] = A[4 - i];
  }
  assert_close(r, "Y", y);
  assert_close(r, "R", rv);
  run_free(r);
}
END_TEST

/* Every function and operator, sizes used as values, float literal forms. */
START_TEST(elementwise_functions) {
  run *r = run_simple(
      "size N = 7\n"
      "kernel ew(A: f32[N], B: f32[N]) -> (Y: f32[N], Z: f32[N]) {\n"
      "  Y[i] = max(A[i], B[i]) - min(A[i], 0.5) / 2 + exp(-A[i]) * sqrt(B[i] * B[i] + 1)\n"
      "  Z[i] = relu(A[i] - B[i]) + tanh(A[i]) - sigmoid(-B[i]) * N + 1.5e-1 + .25 - 2.f * "
      "-(A[i] - -B[i])\n"
      "}\n",
      "ew");
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  double y[7], z[7];
  for (int i = 0; i < 7; i++) {
    double a = A[i], b = B[i];
    y[i] = fmax(a, b) - fmin(a, 0.5) / 2 + exp(-a) * sqrt(b * b + 1);
    z[i] = fmax(a - b, 0) + tanh(a) - sigmoid(-b) * 7 + 0.15 + 0.25 + 2.0 * (a + b);
  }
  assert_close(r, "Y", y);
  assert_close(r, "Z", z);
  run_free(r);
}
END_TEST

/* Many kernels in one program; iterators are local to a statement, so k has a different
 * range in each GEMM. */
START_TEST(several_kernels) {
  const char *src = "kernel first(A: f32[2, 3]) -> (Y: f32[2]) {\n  Y[i] += A[i, k]\n}\n"
                    "kernel second(A: f32[2, 3], B: f32[2, 4]) -> (Y: f32[2]) {\n"
                    "  Y[i] += A[i, k]\n  Y[i] += B[i, k]\n}\n";
  run *r = run_simple(src, "second");
  ck_assert_int_eq(brick_program_kernel_count(r->prog), 2);
  run_interpret(r);
  const float *A = param(r, "A"), *B = param(r, "B");
  double y[2] = {0};
  for (int i = 0; i < 2; i++) {
    for (int k = 0; k < 3; k++)
      y[i] += A[i * 3 + k];
    for (int k = 0; k < 4; k++)
      y[i] += B[i * 4 + k];
  }
  assert_close(r, "Y", y);
  run_free(r);
}
END_TEST

/* Statements with many iterators and many factors (beyond any fixed-size table). */
START_TEST(many_iterators_and_factors) {
  char src[8192], *p = src;
  p += sprintf(p, "kernel big(A: f32[1, 1, 1, 1, 1, 1, 1, 1], V: f32[4]) -> (Y: f32[4], Z: "
                  "f32[4]) {\n  Y[i] += V[i]");
  for (int a = 0; a < 9; a++) { /* 9 x 8 = 72 reduction iterators, each of extent 1 */
    p += sprintf(p, " * A[");
    for (int d = 0; d < 8; d++)
      p += sprintf(p, "%sj%d", d ? ", " : "", a * 8 + d);
    p += sprintf(p, "]");
  }
  p += sprintf(p, "\n  Z[i] += V[i]");
  for (int a = 0; a < 300; a++)
    p += sprintf(p, " * V[i]");
  sprintf(p, "\n}\n");
  run *r = run_simple(src, "big");
  float *A = param(r, "A"), *V = param(r, "V");
  A[0] = -1.0f;
  V[0] = 1.0f, V[1] = -1.0f, V[2] = 1.0f, V[3] = 0.5f;
  run_interpret(r);
  double y[4], z[4];
  for (int i = 0; i < 4; i++) {
    y[i] = -V[i];
    z[i] = V[i] * pow(V[i], 300);
  }
  assert_close(r, "Y", y);
  assert_close(r, "Z", z);
  run_free(r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interp");
  TCase *tc = tcase_create("contractions");
  tcase_add_test(tc, matmul);
  tcase_add_test(tc, batched_matmul);
  tcase_add_loop_test(tc, conv2d_nchw, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
  tcase_add_test(tc, conv1x1);
  tcase_add_test(tc, conv1x1_padded_border_is_zero);
  tcase_add_loop_test(tc, conv_backward_data, 0, (int)(sizeof bwd_cases / sizeof bwd_cases[0]));
  tcase_add_loop_test(tc, conv_weight_update, 0, (int)(sizeof bwd_cases / sizeof bwd_cases[0]));
  suite_add_tcase(s, tc);
  tc = tcase_create("layers");
  tcase_add_test(tc, fc_bias_relu);
  tcase_add_test(tc, maxpool_padded);
  tcase_add_test(tc, lstm_cell);
  suite_add_tcase(s, tc);
  tc = tcase_create("rules");
  tcase_add_test(tc, later_statements_continue);
  tcase_add_test(tc, rank0_reductions);
  tcase_add_test(tc, where_narrowing);
  tcase_add_test(tc, oob_factor_skips_term);
  tcase_add_test(tc, oob_read_inside_a_factor_is_zero);
  tcase_add_test(tc, init_without_terms);
  tcase_add_test(tc, assign_reads_outside_as_zero);
  tcase_add_test(tc, elementwise_functions);
  tcase_add_test(tc, several_kernels);
  tcase_add_test(tc, many_iterators_and_factors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  /* No fork per test: forking a process that maps LLVM costs more than most tests, and under
   * ASan each child would run its own LeakSanitizer pass. */
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
