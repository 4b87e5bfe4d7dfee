/*
 * brick's own transcendentals (codegen/stmt.c) against libm: exp to 2 ulp relative on all of
 * f32's normal range, with denormal and infinite results where libm has them; tanh and sigmoid
 * to 1e-6 (absolute, both are bounded by 1); special values.
 */
#include "brick/brick.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#define N 20001

static const char *src =
    "size N = 20001\n"
    "kernel f(X: f32[N]) -> (E: f32[N], T: f32[N], S: f32[N]) {\n"
    "  E[i] = exp(X[i])\n"
    "  T[i] = tanh(X[i])\n"
    "  S[i] = sigmoid(X[i])\n"
    "}\n";

typedef void kernel_fn(const float *, float *, float *, float *);

static float *X, *E, *T, *S;

static void run(int threads) {
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog;
  ck_assert_int_eq(brick_program_parse_string(ctx, "math.bk", src, NULL, &prog), BRICK_OK);
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, threads);
  brick_module *mod;
  ck_assert_int_eq(brick_compile(ctx, prog, 0, o, &mod), BRICK_OK);
  kernel_fn *fn = (kernel_fn *)brick_module_lookup(ctx, mod, "f");
  ck_assert_ptr_nonnull(fn);
  fn(X, E, T, S);
  brick_module_free(mod);
  brick_options_free(o);
  brick_program_free(prog);
  brick_ctx_free(ctx);
}

static void fill(void) {
  X = malloc(sizeof(float) * N);
  E = malloc(sizeof(float) * N);
  T = malloc(sizeof(float) * N);
  S = malloc(sizeof(float) * N);
  for (int i = 0; i < N - 5; i++)
    X[i] = -100.0f + 200.0f * (float)i / (float)(N - 6);
  X[N - 5] = 0.0f;
  X[N - 4] = 1e-6f;
  X[N - 3] = INFINITY;
  X[N - 2] = -INFINITY;
  X[N - 1] = NAN;
}

START_TEST(exp_within_2ulp) {
  run(1);
  for (int i = 0; i < N - 5; i++) {
    double ref = exp((double)X[i]);
    if (ref > FLT_MAX) { /* past ln(FLT_MAX) = 88.7228: +inf, as expf */
      ck_assert_msg(isinf(E[i]) && E[i] > 0, "exp(%.9g) = %.9g, not +inf", X[i], E[i]);
    } else if (ref >= FLT_MIN) { /* from -87.33 */
      double rel = fabs(E[i] - ref) / ref;
      ck_assert_msg(rel <= 2.0 * 0x1p-23, "exp(%.9g) = %.9g, libm %.9g (rel %.3g)", X[i], E[i], ref, rel);
    } else { /* a denormal result (gradual underflow), or 0 below 2^-150 */
      ck_assert_msg(fabs(E[i] - ref) <= 0x1p-149 + 4e-7 * ref, "exp(%.9g) = %.9g, libm %.9g",
                    X[i], E[i], ref);
    }
  }
  ck_assert(E[N - 5] == 1.0f);
  ck_assert(isinf(E[N - 3]) && E[N - 3] > 0);
  ck_assert(E[N - 2] == 0.0f);
  ck_assert(isnan(E[N - 1]));
}
END_TEST

START_TEST(tanh_and_sigmoid) {
  run(2);
  for (int i = 0; i < N - 1; i++) {
    double t = tanh((double)X[i]), s = 1.0 / (1.0 + exp(-(double)X[i]));
    ck_assert_msg(fabs(T[i] - t) <= 1e-6 * (fabs(t) > 1e-3 ? fabs(t) : 1e-3) + 1e-12,
                  "tanh(%.9g) = %.9g, libm %.9g", X[i], T[i], t);
    ck_assert_msg(fabs(S[i] - s) <= 1e-6, "sigmoid(%.9g) = %.9g, libm %.9g", X[i], S[i], s);
  }
  ck_assert(T[N - 3] == 1.0f && T[N - 2] == -1.0f);
  ck_assert(S[N - 3] == 1.0f && S[N - 2] == 0.0f);
}
END_TEST

int main(void) {
  fill();
  Suite *s = suite_create("codegen-math");
  TCase *tc = tcase_create("transcendentals");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, exp_within_2ulp);
  tcase_add_test(tc, tanh_and_sigmoid);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
