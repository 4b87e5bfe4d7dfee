/*
 * The public API's contracts (include/brick/brick.h) beyond the compile-and-run paths the other
 * suites take: contexts compiling in parallel threads, kernel indices out of range, the last
 * error of each call, renaming after compiling, symbols a module does not define, targets the
 * process cannot run or LLVM does not know.
 */
#include "brick/brick.h"
#include "cli/run_cmd.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const mm = "size M = 64\n"
                              "size N = 48\n"
                              "size K = 32\n"
                              "kernel mm(A: f32[M, K], B: f32[K, N]) -> (C: f32[M, N]) {\n"
                              "  C[i, j] += A[i, k] * B[k, j]\n"
                              "}\n";

typedef void mm_fn(const float *, const float *, float *);

/* Quiet diagnostics: collected, not printed. */
static void quiet(void *user, brick_severity sev, const char *text) {
  (void)user, (void)sev, (void)text;
}

static brick_ctx *ctx_new(void) {
  brick_ctx *ctx = brick_ctx_new();
  brick_ctx_set_diag_callback(ctx, quiet, NULL);
  return ctx;
}

/* Run the compiled mm on A = 1, B = 2 and check C = 2 K everywhere. */
static bool mm_right(mm_fn *fn) {
  static float a[64 * 32], b[32 * 48];
  float *c = malloc(sizeof(float) * 64 * 48);
  for (int i = 0; i < 64 * 32; i++)
    a[i] = 1;
  for (int i = 0; i < 32 * 48; i++)
    b[i] = 2;
  fn(a, b, c);
  bool ok = true;
  for (int i = 0; i < 64 * 48; i++)
    ok &= c[i] == 64.0f;
  free(c);
  return ok;
}

/* What module "m" writes as "kind" (-1: its header), read back from a scratch directory. */
static char *module_file(brick_ctx *ctx, brick_module *m, int kind) {
  char *dir = temp_dir_new(), path[4200];
  snprintf(path, sizeof path, "%s/out", dir);
  ck_assert_int_eq(kind < 0 ? brick_module_write_header(ctx, m, path)
                            : brick_module_emit(ctx, m, (brick_emit_kind)kind, path),
                   BRICK_OK);
  char *text = read_file(dir, "out");
  ck_assert_ptr_nonnull(text);
  temp_dir_remove(dir);
  return text;
}

/* ---- contexts in parallel threads --------------------------------------------------------- */

static pthread_barrier_t start;

static void *compile_in_thread(void *arg) {
  brick_ctx *ctx = ctx_new();
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, 1);
  brick_program *p = NULL;
  brick_module *m = NULL;
  bool ok = brick_program_parse_string(ctx, "mm.bk", mm, o, &p) == BRICK_OK;
  pthread_barrier_wait(&start); /* every thread compiles at once, its first compile */
  ok = ok && brick_compile(ctx, p, 0, o, &m) == BRICK_OK;
  mm_fn *fn = ok ? (mm_fn *)brick_module_lookup(ctx, m, "mm") : NULL;
  ok = fn && mm_right(fn);
  brick_module_free(m);
  brick_program_free(p);
  brick_options_free(o);
  brick_ctx_free(ctx);
  *(bool *)arg = ok;
  return NULL;
}

/* Separate contexts in separate threads (brick.h): LLVM's target registry, the one thing they
 * share, was initialised by each compile without a lock, and two first compiles at once could
 * hang in the registry's lookup (about half the runs on 2 threads). This runs first in its
 * process, so the first compiles are the ones racing. */
START_TEST(contexts_in_parallel_threads) {
  enum { T = 4 };
  pthread_t th[T];
  bool ok[T];
  pthread_barrier_init(&start, NULL, T);
  for (int i = 0; i < T; i++)
    pthread_create(&th[i], NULL, compile_in_thread, &ok[i]);
  for (int i = 0; i < T; i++) {
    pthread_join(th[i], NULL);
    ck_assert_msg(ok[i], "thread %d", i);
  }
  pthread_barrier_destroy(&start);
}
END_TEST

/* ---- indices, errors, names ------------------------------------------------------------------ */

START_TEST(kernel_index_out_of_range) {
  brick_ctx *ctx = ctx_new();
  brick_program *p;
  ck_assert_int_eq(brick_program_parse_string(ctx, "mm.bk", mm, NULL, &p), BRICK_OK);
  brick_module *m = (brick_module *)1;
  ck_assert_int_eq(brick_compile(ctx, p, 1, NULL, &m), BRICK_ERR_USAGE);
  ck_assert_ptr_null(m);
  ck_assert_str_eq(brick_ctx_last_error(ctx), "no kernel 1 (the program has 1; -1 means all)");
  ck_assert_int_eq(brick_compile(ctx, p, -2, NULL, &m), BRICK_ERR_USAGE);
  char *text = (char *)1;
  ck_assert_int_eq(brick_kernel_schedule(ctx, p, 3, NULL, &text), BRICK_ERR_USAGE);
  ck_assert_ptr_null(text);
  ck_assert_int_eq(brick_kernel_loops(ctx, p, -1, NULL, &text), BRICK_ERR_USAGE);
  ck_assert_str_eq(brick_ctx_last_error(ctx), "no kernel -1 (the program has 1)");
  double err = 1;
  float *args[3] = {0};
  ck_assert_int_eq(brick_kernel_check(ctx, p, 5, args, 0, 0, 1, &err, NULL), BRICK_ERR_USAGE);
  ck_assert(err == 0);
  ck_assert_int_eq(brick_kernel_interpret(ctx, p, 5, args), BRICK_ERR_USAGE);
  brick_program_free(p);
  brick_ctx_free(ctx);
}
END_TEST

/* The last error belongs to the last call: "" after a success, and the call's first error. */
START_TEST(last_error_is_the_last_calls) {
  brick_ctx *ctx = ctx_new();
  brick_program *p = NULL;
  ck_assert_int_eq(brick_program_parse_string(ctx, "bad.bk",
                                              "kernel k(A: f32[4]) -> (B: f32[4]) {\n"
                                              "  B[i] = A[i] +\n"
                                              "}\n"
                                              "kernel k2(A: f32[4]) -> (B: f32[4]) {\n"
                                              "  B[i] = Q[i]\n"
                                              "}\n",
                                              NULL, &p),
                   BRICK_ERR_INPUT);
  ck_assert_msg(strstr(brick_ctx_last_error(ctx), "bad.bk:2:") != NULL, "the first error: %s",
                brick_ctx_last_error(ctx));
  ck_assert_int_eq(brick_program_parse_string(ctx, "mm.bk", mm, NULL, &p), BRICK_OK);
  ck_assert_str_eq(brick_ctx_last_error(ctx), "");
  brick_program_free(p);
  brick_ctx_free(ctx);
}
END_TEST

/* A module keeps the names it was compiled with: renaming the kernel afterwards changes neither
 * its header nor its symbols; a module defines only its kernels' symbols. */
START_TEST(module_names_and_symbols) {
  brick_ctx *ctx = ctx_new();
  brick_program *p;
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, 1);
  ck_assert_int_eq(brick_program_parse_string(ctx, "mm.bk", mm, o, &p), BRICK_OK);
  brick_module *m;
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
  ck_assert_int_eq(brick_program_rename_kernel(ctx, p, 0, "mm64"), BRICK_OK);
  char *text = module_file(ctx, m, -1);
  ck_assert_msg(strstr(text, "void mm(const float *") && !strstr(text, "mm64"), "%s", text);
  ck_assert_msg(strstr(text, " * serial: no OpenMP region"), "compiled with threads 1: %s", text);
  free(text);
  ck_assert_int_ge(brick_module_workspace_bytes(m, "mm"), 0);
  ck_assert_ptr_null(brick_module_lookup(ctx, m, "printf"));
  ck_assert_str_eq(brick_ctx_last_error(ctx), "the module defines no 'printf' (a kernel's NAME, "
                                              "NAME_ws, NAME_flops or NAME_workspace_bytes)");
  ck_assert_ptr_null(brick_module_lookup(ctx, m, "mm64"));
  mm_fn *fn = (mm_fn *)brick_module_lookup(ctx, m, "mm");
  ck_assert_ptr_nonnull(fn);
  ck_assert_str_eq(brick_ctx_last_error(ctx), "");
  ck_assert(mm_right(fn));
  ck_assert_ptr_nonnull(brick_module_lookup(ctx, m, "mm_flops"));
  brick_module_free(m);
  brick_program_free(p);
  brick_options_free(o);
  brick_ctx_free(ctx);
}
END_TEST

/* A CPU LLVM does not know is a usage error (LLVM itself would warn and then abort the process
 * on a 64-bit triple); a module for another architecture can be emitted but not run. */
START_TEST(targets) {
  brick_ctx *ctx = ctx_new();
  brick_program *p;
  ck_assert_int_eq(brick_program_parse_string(ctx, "mm.bk", mm, NULL, &p), BRICK_OK);
  brick_options *o = brick_options_new();
  brick_options_set_threads(o, 1);
  brick_module *m = NULL;
  brick_options_set_target(o, "x86_64-pc-linux-gnu:bogus");
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_ERR_USAGE);
  ck_assert_ptr_nonnull(strstr(brick_ctx_last_error(ctx), "unknown CPU"));
  brick_options_set_target(o, "x86_64-pc-linux-gnu:i686"); /* 32-bit CPU, 64-bit triple */
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
  brick_module_free(m);
  brick_options_set_target(o, "amd64-unknown-linux-gnu:bogus"); /* x86-64 spelt otherwise */
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_ERR_USAGE);
#if defined(__x86_64__) && defined(__linux__)
  brick_options_set_target(o, "amd64-unknown-linux-gnu:i686"); /* runs here */
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
  mm_fn *fn = (mm_fn *)brick_module_lookup(ctx, m, "mm");
  ck_assert_msg(fn && mm_right(fn), "%s", brick_ctx_last_error(ctx));
  brick_module_free(m);
  brick_options_set_target(o, "x86_64-apple-darwin"); /* the host's architecture, not its OS */
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
  ck_assert_ptr_null(brick_module_lookup(ctx, m, "mm"));
  ck_assert_ptr_nonnull(strstr(brick_ctx_last_error(ctx), "which this process"));
  ck_assert_int_eq(brick_ctx_last_status(ctx), BRICK_ERR_USAGE);
  ck_assert_ptr_null(brick_module_lookup(ctx, m, "nosuch"));
  ck_assert_int_eq(brick_ctx_last_status(ctx), BRICK_ERR_USAGE);
  brick_module_free(m);
  ck_assert_int_eq(brick_compile(ctx, p, 0, NULL, &m), BRICK_OK);
  ck_assert_int_eq(brick_ctx_last_status(ctx), BRICK_OK);
  brick_module_free(m);
#endif
  /* a named CPU picks the BRGEMM bodies its vector registers allow */
  static const struct { const char *target, *reg, *not_reg; } isa[] = {
      {"x86_64-pc-linux-gnu:znver4", "%zmm", NULL},
      {"x86_64-pc-linux-gnu:haswell", "%ymm", "%zmm"},
  };
  for (int i = 0; i < 2; i++) {
    brick_options_set_target(o, isa[i].target);
    ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
    char *text = module_file(ctx, m, BRICK_EMIT_ASM);
    ck_assert_msg(strstr(text, isa[i].reg), "%s: no %s", isa[i].target, isa[i].reg);
    ck_assert_msg(!isa[i].not_reg || !strstr(text, isa[i].not_reg), "%s: %s", isa[i].target,
                  isa[i].not_reg);
    free(text);
    brick_module_free(m);
  }
  brick_options_set_target(o, "aarch64-linux-gnu");
  ck_assert_int_eq(brick_compile(ctx, p, 0, o, &m), BRICK_OK);
  ck_assert_ptr_null(brick_module_lookup(ctx, m, "mm"));
  ck_assert_ptr_nonnull(strstr(brick_ctx_last_error(ctx), "which this process ("));
  brick_module_free(m);
  brick_options_free(o);
  brick_program_free(p);
  brick_ctx_free(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("api");
  tcase_add_test(tc, contexts_in_parallel_threads);
  tcase_add_test(tc, kernel_index_out_of_range);
  tcase_add_test(tc, last_error_is_the_last_calls);
  tcase_add_test(tc, module_names_and_symbols);
  tcase_add_test(tc, targets);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
