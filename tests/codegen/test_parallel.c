/*
 * The parallel region (codegen/parallel.c): a kernel call forks once and every thread runs the
 * whole body; parallel loops split across the team, everything else runs on thread 0, and
 * brick's own barrier separates the ops. Each case is JIT-compiled, run, and checked against
 * the interpreter (outputs start as NaN, so an element no thread wrote fails the check).
 */
#include "brick/brick.h"

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void kernel3(const float *, const float *, const float *, float *);

/* A padded 3x3 conv on 3 images (pack, BRGEMM, copy-back of the flattened rows), then a
 * plain loop nest over its result: ops with and without parallel loops. 17 MFLOP, so the
 * default schedule runs in parallel too. */
static const char *conv_relu =
    "size N = 3\nsize C = 32\nsize K = 48\nsize H = 14\nsize W = 15\n"
    "kernel cr(I: f32[N, C, H, W], Wt: f32[K, C, 3, 3], b: f32[K]) -> (O: f32[N, K, H, W]) {\n"
    "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * Wt[k, c, r, s]\n"
    "  O[n, k, p, q] = relu(O[n, k, p, q] - b[k])\n"
    "}\n";

typedef struct fixture {
  brick_ctx *ctx;
  brick_program *prog;
  brick_module *mod;
  kernel3 *fn;
} fixture;

/* Compile with "schedule" (NULL: default) for "threads"; look the kernel up if "lookup". */
static void compile_as(fixture *fx, const char *schedule, int threads, bool lookup) {
  fx->ctx = brick_ctx_new();
  ck_assert_int_eq(brick_program_parse_string(fx->ctx, "par.bk", conv_relu, NULL, &fx->prog), BRICK_OK);
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, threads);
  if (schedule)
    brick_options_set_schedule(o, schedule);
  ck_assert_int_eq(brick_compile(fx->ctx, fx->prog, 0, o, &fx->mod), BRICK_OK);
  brick_options_free(o);
  fx->fn = NULL;
  if (!lookup)
    return;
  fx->fn = (kernel3 *)brick_module_lookup(fx->ctx, fx->mod, brick_kernel_name(fx->prog, 0));
  ck_assert_ptr_nonnull(fx->fn);
}

static void compile(fixture *fx, const char *schedule, int threads) {
  compile_as(fx, schedule, threads, true);
}

static void release(fixture *fx) {
  brick_module_free(fx->mod);
  brick_program_free(fx->prog);
  brick_ctx_free(fx->ctx);
}

static float **new_args(const fixture *fx, uint64_t seed) {
  float **args = calloc(4, sizeof(float *));
  for (int i = 0; i < 4; i++) {
    int64_t n = brick_kernel_param_elems(fx->prog, 0, i);
    args[i] = malloc(sizeof(float) * (size_t)n);
    for (int64_t e = 0; e < n; e++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      args[i][e] = i < 3 ? (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5) : NAN;
    }
  }
  return args;
}

static void check_and_free(const fixture *fx, float **args) {
  double err;
  ck_assert_int_eq(brick_kernel_check(fx->ctx, fx->prog, 0, args, INFINITY, 0, 1, &err, NULL), BRICK_OK);
  ck_assert_msg(err <= 1e-5, "error %g", err);
  for (int i = 0; i < 4; i++)
    free(args[i]);
  free(args);
}

/* Run "schedule" with "threads" threads, "calls" times on the same arguments. */
static void run_case(const char *schedule, int threads, int calls) {
  fixture fx;
  compile(&fx, schedule, threads);
  float **args = new_args(&fx, 11);
  for (int c = 0; c < calls; c++)
    fx.fn(args[0], args[1], args[2], args[3]);
  check_and_free(&fx, args);
  release(&fx);
}

/* The BRGEMM op splits its output-channel tiles inside the image loop (every thread runs
 * that loop, with a barrier per image); the pack, the copy-back and the ReLU loop nest
 * either split over their outer loop or run on thread 0. */
static const char *nested =
    "s0{brgemm(m=q/40,n=k/8,k=c/8;batch=r,s);flatten=p;order=n,k/8,q/40,c/8;parallel=k/8;"
    "pack=I:pad} s1{loops;order=n,k,p,q}";

START_TEST(ops_with_and_without_parallel_loops) { run_case(nested, 2, 1); }
END_TEST

/* Two ops with parallel loops: the BRGEMM op's inside the image loop, the ReLU nest's. */
static const char *two_parallel =
    "s0{brgemm(m=q/40,n=k/8,k=c/8;batch=r,s);flatten=p;order=n,k/8,q/40,c/8;parallel=k/8;"
    "pack=I:pad} s1{loops;order=k,n,p,q;parallel=k}";

START_TEST(two_parallel_ops) { run_case(two_parallel, 2, 2); }
END_TEST

START_TEST(more_threads_than_iterations) {
  /* 5 threads for 3 output-channel tiles (and 2 cores): some threads get no iterations and
   * wait, spinning then yielding, at every barrier. */
  run_case(nested, 5, 1);
}
END_TEST

START_TEST(repeated_calls) {
  /* Each call starts a new region with fresh barrier words; 50 calls in a row. */
  run_case(nested, 2, 50);
}
END_TEST

START_TEST(default_schedule_parallel) { run_case(NULL, 2, 3); }
END_TEST

/* The text of file "path" (to free). */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = calloc((size_t)n + 1, 1);
  ck_assert_int_eq(fread(text, 1, (size_t)n, f), n);
  fclose(f);
  return text;
}

/* Occurrences of "needle" in the body of function "fn" of LLVM IR "ir". */
static int count_in_fn(const char *ir, const char *fn, const char *needle) {
  char head[128];
  snprintf(head, sizeof head, "define void @%s(", fn);
  const char *start = strstr(ir, head);
  ck_assert_ptr_nonnull(start);
  const char *end = strstr(start, "\n}\n");
  ck_assert_ptr_nonnull(end);
  int count = 0;
  for (const char *p = strstr(start, needle); p && p < end; p = strstr(p + 1, needle))
    count++;
  return count;
}

/* Calls of GOMP_parallel in NAME_ws (the kernel proper): one per call of the kernel however
 * many ops run in parallel, none with --threads 1, where no OpenMP function is named. */
static int regions(const char *schedule, int threads) {
  fixture fx;
  compile_as(&fx, schedule, threads, false);
  char path[] = "/tmp/brick_test_parallel_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(brick_module_emit(fx.ctx, fx.mod, BRICK_EMIT_LLVM, path), BRICK_OK);
  char *ir = read_file(path);
  int n = count_in_fn(ir, "cr_ws", "call void @GOMP_parallel(");
  if (threads == 1)
    ck_assert_ptr_null(strstr(ir, "omp_"));
  free(ir);
  remove(path);
  release(&fx);
  return n;
}

START_TEST(one_region_per_call) {
  ck_assert_int_eq(regions(nested, 2), 1);
  ck_assert_int_eq(regions(two_parallel, 2), 1);
  ck_assert_int_eq(regions(NULL, 0), 1);
  ck_assert_int_eq(regions(nested, 1), 0);
}
END_TEST

START_TEST(called_from_a_parallel_region) {
  /* Two threads of the caller's own team call the kernel at once, each on its own data: each
   * call gets a team of one (no nested parallelism) and must still be right. */
  fixture fx;
  compile(&fx, nested, 2);
  float **args[2] = {new_args(&fx, 5), new_args(&fx, 6)};
#pragma omp parallel num_threads(2)
  {
    float **a = args[omp_get_thread_num()];
    for (int c = 0; c < 5; c++)
      fx.fn(a[0], a[1], a[2], a[3]);
  }
  check_and_free(&fx, args[0]);
  check_and_free(&fx, args[1]);
  release(&fx);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("parallel");
  TCase *tc = tcase_create("region");
  tcase_add_test(tc, ops_with_and_without_parallel_loops);
  tcase_add_test(tc, two_parallel_ops);
  tcase_add_test(tc, more_threads_than_iterations);
  tcase_add_test(tc, repeated_calls);
  tcase_add_test(tc, default_schedule_parallel);
  tcase_add_test(tc, one_region_per_call);
  tcase_add_test(tc, called_from_a_parallel_region);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
