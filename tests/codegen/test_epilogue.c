/*
 * Epilogue fusion (scheduler/epilogue.c): a bias/ReLU statement after a contraction runs in the
 * BRGEMM's epilogue, on the last visit of each output tile. Each case is JIT-compiled with
 * the given schedule and checked against the interpreter; outputs start as NaN.
 */
#include "brick/brick.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef void kernel3(const float *, const float *, const float *, float *);

static const char *fc =
    "size N = 37\nsize C = 300\nsize K = 77\n"
    "kernel fc(X: f32[N, C], Wt: f32[K, C], b: f32[K]) -> (Y: f32[N, K]) {\n"
    "  Y[n, k] += X[n, c] * Wt[k, c]\n"
    "  Y[n, k] = relu(Y[n, k] + b[k])\n"
    "}\n";

static const char *mm_bias_n =
    "size M = 45\nsize N = 70\nsize K = 129\n"
    "kernel mm(A: f32[M, K], B: f32[K, N], b: f32[M]) -> (C: f32[M, N]) {\n"
    "  C[i, j] += A[i, k] * B[k, j]\n"
    "  C[i, j] = b[i] + C[i, j]\n"
    "}\n";

/* Compile "src" with "schedule" (NULL: default), run, check; returns the schedule used. */
static void run_case(const char *src, const char *schedule, const char *want_in_schedule) {
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog;
  ck_assert_int_eq(brick_program_parse_string(ctx, "epi.bk", src, NULL, &prog), BRICK_OK);
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, 1);
  if (schedule)
    brick_options_set_schedule(o, schedule);
  char *text = NULL;
  ck_assert_int_eq(brick_kernel_schedule(ctx, prog, 0, o, &text), BRICK_OK);
  ck_assert_msg(strstr(text, want_in_schedule), "schedule %s lacks %s", text, want_in_schedule);
  free(text);
  brick_module *mod;
  ck_assert_int_eq(brick_compile(ctx, prog, 0, o, &mod), BRICK_OK);
  kernel3 *fn = (kernel3 *)brick_module_lookup(ctx, mod, brick_kernel_name(prog, 0));
  ck_assert_ptr_nonnull(fn);
  float *args[4];
  uint64_t seed = 7;
  for (int i = 0; i < 4; i++) {
    int64_t n = brick_kernel_param_elems(prog, 0, i);
    args[i] = malloc(sizeof(float) * (size_t)n);
    for (int64_t e = 0; e < n; e++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      args[i][e] = i < 3 ? (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5) : NAN;
    }
  }
  fn(args[0], args[1], args[2], args[3]);
  double err;
  ck_assert_int_eq(brick_kernel_check(ctx, prog, 0, args, INFINITY, 0, 1, &err, NULL), BRICK_OK);
  ck_assert_msg(err <= 1e-5, "error %g", err);
  for (int i = 0; i < 4; i++)
    free(args[i]);
  brick_module_free(mod);
  brick_options_free(o);
  brick_program_free(prog);
  brick_ctx_free(ctx);
}

START_TEST(default_fuses_bias_relu) { run_case(fc, NULL, "epilogue=s1"); }
END_TEST

START_TEST(k_tiles_outside_the_call) {
  /* The reduction runs over 3 calls per tile: the epilogue must run on the last only. */
  run_case(fc, "s0{brgemm(m=k/32,n=n/8,k=c/128);epilogue=s1;order=n/8,c/128,k/32;pack=Wt:im2col} s1{fused}",
           "epilogue=s1");
}
END_TEST

START_TEST(not_fused_when_asked) {
  run_case(fc, "s0{brgemm(m=k/32,n=n/8,k=c/128);order=n/8,c/128,k/32;pack=Wt:im2col}", "s1{loops");
}
END_TEST

START_TEST(bias_along_n) {
  run_case(mm_bias_n, NULL, "epilogue=s1");
  run_case(mm_bias_n, "s0{brgemm(m=j/16,n=i/4,k=k/50);epilogue=s1;order=i/4,k/50,j/16} s1{fused}",
           "epilogue=s1");
}
END_TEST

START_TEST(epilogue_without_fused_statement_is_an_error) {
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog;
  ck_assert_int_eq(brick_program_parse_string(ctx, "epi.bk", fc, NULL, &prog), BRICK_OK);
  brick_options *o = brick_options_new();
  brick_options_set_schedule(o, "s0{brgemm(m=k,n=n,k=c);epilogue=s1;pack=Wt:im2col} s1{loops}");
  brick_module *mod = NULL;
  ck_assert_int_eq(brick_compile(ctx, prog, 0, o, &mod), BRICK_ERR_USAGE);
  ck_assert_ptr_nonnull(strstr(brick_ctx_last_error(ctx), "runs as the epilogue of s0"));
  brick_options_free(o);
  brick_program_free(prog);
  brick_ctx_free(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen-epilogue");
  TCase *tc = tcase_create("epilogue");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, default_fuses_bias_relu);
  tcase_add_test(tc, k_tiles_outside_the_call);
  tcase_add_test(tc, not_fused_when_asked);
  tcase_add_test(tc, bias_along_n);
  tcase_add_test(tc, epilogue_without_fused_statement_is_an_error);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
