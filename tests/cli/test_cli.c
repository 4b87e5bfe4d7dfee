/*
 * Check suite for the `brick` command line: GNU-style help and version, usage errors (exit 2),
 * input errors (exit 1), kernel selection, the golden text of `brick show --ir`, and the
 * determinism of `brick run --interp --seed`. Every case runs the real binary ($BRICK_BINARY);
 * with BRICK_TEST_REDUCED=1 (the ASan/UBSan pass) a test with several similar cases runs only
 * its first.
 */
#include "brick/brick.h"
#include "cli/run_cmd.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRY "Try 'brick --help' for more information.\n"
#define TRY_RUN "Try 'brick run --help' for more information.\n"
#define TRY_SHOW "Try 'brick show --help' for more information.\n"
#define TRY_COMPILE "Try 'brick compile --help' for more information.\n"
#define TRY_TUNE "Try 'brick tune --help' for more information.\n"

static const char *const small = "size N = 3\n"
                                 "kernel scale(A: f32[N]) -> (B: f32[N]) {\n"
                                 "  B[i] = 2 * A[i]\n"
                                 "}\n"
                                 "kernel mm(A: f32[N, 5], X: f32[5, 2]) -> (C: f32[N, 2]) {\n"
                                 "  C[i, j] += A[i, k] * X[k, j]\n"
                                 "}\n";

/* Run brick with "args" in a scratch directory that holds "file" = "text". */
static cmd_result run_on(const char *file, const char *text, const char *const *args) {
  char *dir = temp_dir_new();
  write_file(dir, file, text);
  cmd_result r = run_brick(dir, args);
  temp_dir_remove(dir);
  return r;
}

/* Run brick with "args" in a scratch directory that holds t.bk = "small". */
static cmd_result run_args(const char *const *args) { return run_on("t.bk", small, args); }

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* How many of "n" similar cases to run. */
static int sample(int n) { return test_reduced() ? 1 : n; }

/* Expect exit status "status", stdout "out" (NULL: anything) and stderr "err" exactly. */
static void expect(const char *const *args, int status, const char *out, const char *err) {
  cmd_result r = run_args(args);
  ck_assert_msg(r.status == status, "brick %s ...: exit status %d, not %d\nstderr: %s", args[0],
                r.status, status, r.err);
  if (out)
    ck_assert_str_eq(r.out, out);
  ck_assert_str_eq(r.err, err);
  cmd_result_release(&r);
}

/* ---- help and version ------------------------------------------------------------------ */

START_TEST(help) {
  const char *forms[] = {"--help", "-h"};
  for (int i = 0; i < sample(2); i++) {
    cmd_result r = run_args((const char *[]){forms[i], NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(starts_with(r.out, "Usage: brick COMMAND"));
    ck_assert_ptr_nonnull(strstr(r.out, "\n  run "));
    ck_assert_ptr_nonnull(strstr(r.out, "\n  show "));
    ck_assert_ptr_nonnull(strstr(r.out, "--version"));
    ck_assert_ptr_nonnull(strstr(r.out, "Exit status"));
    ck_assert_str_eq(r.err, "");
    cmd_result_release(&r);
  }
}
END_TEST

START_TEST(version) {
  char want[64];
  snprintf(want, sizeof want, "brick %s\n", brick_version());
  const char *forms[] = {"--version", "-V"};
  for (int i = 0; i < sample(2); i++)
    expect((const char *[]){forms[i], NULL}, 0, want, "");
}
END_TEST

START_TEST(command_help) {
  const char *cmds[] = {"run", "show", "compile"};
  for (int i = 0; i < sample(3); i++)
    for (int form = 0; form < sample(2); form++) {
      /* --help wins over everything else on the line, even a missing file */
      cmd_result r = run_args(
          (const char *[]){cmds[i], form ? "-h" : "--help", "missing.bk", NULL});
      ck_assert_int_eq(r.status, 0);
      char want[64];
      snprintf(want, sizeof want, "Usage: brick %s ", cmds[i]);
      ck_assert_msg(starts_with(r.out, want), "brick %s --help printed:\n%s", cmds[i], r.out);
      ck_assert_ptr_nonnull(strstr(r.out, "-D NAME=VALUE"));
      ck_assert_ptr_null(strstr(r.out, "%%")); /* the text is printed as is, not as a format */
      ck_assert_str_eq(r.err, "");
      cmd_result_release(&r);
    }
}
END_TEST

/* ---- usage errors: exit 2 --------------------------------------------------------------- */

START_TEST(no_command) {
  expect((const char *[]){NULL}, 2, "", "brick: error: no command given\n" TRY);
}
END_TEST

START_TEST(unknown_command) {
  expect((const char *[]){"frob", "t.bk", NULL}, 2, "",
         "brick: error: unknown command 'frob'\n" TRY);
}
END_TEST

/* A usage error: arguments and the exact stderr (exit status 2, nothing on stdout). */
typedef struct usage_case {
  const char *args[8];
  const char *err;
} usage_case;

static void expect_usage(const usage_case *cases, int n) {
  for (int i = 0; i < sample(n); i++)
    expect(cases[i].args, 2, "", cases[i].err);
}

START_TEST(unknown_option) {
  static const usage_case cases[] = {
      {{"--frob", NULL}, "brick: error: unknown option '--frob'\n" TRY},
      {{"run", "--interp", "--frob", "t.bk", NULL}, "brick: error: unknown option '--frob'\n" TRY_RUN},
      {{"show", "-Q", "t.bk", NULL}, "brick: error: unknown option '-Q'\n" TRY_SHOW},
  };
  expect_usage(cases, 3);
}
END_TEST

START_TEST(missing_option_argument) {
  static const usage_case cases[] = {
      {{"run", "--interp", "t.bk", "-k", NULL}, "brick: error: option '-k' needs an argument\n" TRY_RUN},
      {{"run", "--interp", "t.bk", "--kernel", NULL},
       "brick: error: option '--kernel' needs an argument\n" TRY_RUN},
      {{"run", "--interp", "t.bk", "--seed", NULL},
       "brick: error: option '--seed' needs an argument\n" TRY_RUN},
      {{"show", "t.bk", "-D", NULL}, "brick: error: option '-D' needs an argument\n" TRY_SHOW},
  };
  expect_usage(cases, 4);
}
END_TEST

START_TEST(bad_option_value) {
  static const usage_case cases[] = {
      {{"run", "--interp", "--seed", "x1", "t.bk", NULL},
       "brick: error: --seed expects an integer in 0..2147483647, got 'x1'\n" TRY_RUN},
      {{"run", "--interp", "--seed=", "t.bk", NULL},
       "brick: error: --seed expects an integer in 0..2147483647, got ''\n" TRY_RUN},
      {{"compile", "--threads", "-1", "t.bk", NULL},
       "brick: error: --threads expects an integer in 0..1024, got '-1'\n" TRY_COMPILE},
  };
  expect_usage(cases, 3);
}
END_TEST

START_TEST(no_input_file) {
  static const usage_case cases[] = {
      {{"run", "--interp", NULL}, "brick: error: run: no input file\n" TRY_RUN},
      {{"show", NULL}, "brick: error: show: no input file\n" TRY_SHOW},
  };
  expect_usage(cases, 2);
}
END_TEST

START_TEST(two_input_files) {
  expect((const char *[]){"show", "t.bk", "u.bk", NULL}, 2, "",
         "brick: error: unexpected argument 'u.bk'\n" TRY_SHOW);
  /* 'show --schedule' is a flag (print the schedule); a schedule to show is --with-schedule */
  expect((const char *[]){"show", "--loops", "--schedule", "s0{loops}", "t.bk", NULL}, 2, "",
         "brick: error: unexpected argument 's0{loops}' ('brick show --schedule' prints the "
         "schedule; to show a given one, use --with-schedule S)\n" TRY_SHOW);
}
END_TEST

START_TEST(kernel_not_found) {
  expect((const char *[]){"run", "--interp", "--kernel", "zz", "t.bk", NULL}, 2, "",
         "brick: error: t.bk has no kernel named 'zz'\n");
}
END_TEST

/* ---- input errors: exit 1 --------------------------------------------------------------- */

START_TEST(unreadable_file) {
  expect((const char *[]){"run", "--interp", "x.bk", NULL}, 1, "",
         "brick: error: cannot read 'x.bk': No such file or directory\n");
  if (test_reduced())
    return;
  expect((const char *[]){"show", "--ir", "no/such/dir/x.bk", NULL}, 1, "",
         "brick: error: cannot read 'no/such/dir/x.bk': No such file or directory\n");
  char *dir = temp_dir_new();
  write_file(dir, "t.bk", small);
  cmd_result r = run_brick(dir, (const char *[]){"show", ".", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "brick: error: cannot read '.': Is a directory\n");
  cmd_result_release(&r);
  if (geteuid() != 0) { /* root reads anything */
    char path[4200];
    snprintf(path, sizeof path, "%s/t.bk", dir);
    ck_assert_int_eq(chmod(path, 0), 0);
    r = run_brick(dir, (const char *[]){"show", "t.bk", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "brick: error: cannot read 't.bk': Permission denied\n");
    cmd_result_release(&r);
  }
  temp_dir_remove(dir);
}
END_TEST

/* ---- show --ir --------------------------------------------------------------------------- */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  ck_assert_int_eq((long)fread(s, 1, (size_t)n, f), n);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* tests/cli/golden/NAME.bk shown with "args" must print tests/cli/golden/NAME.out exactly. */
static void check_golden(const char *name, const char *const *args) {
  char dir[4096], out[4200];
  snprintf(dir, sizeof dir, "%s/tests/cli/golden", brick_source_dir());
  snprintf(out, sizeof out, "%s/%s.out", dir, name);
  char *want = read_text(out);
  cmd_result r = run_brick(dir, args);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  ck_assert_msg(strcmp(r.out, want) == 0, "%s differs from the golden text\n--- want:\n%s--- got:\n%s",
                name, want, r.out);
  cmd_result_release(&r);
  free(want);
}

START_TEST(show_ir_golden) {
  check_golden("show_ir", (const char *[]){"show", "--ir", "show_ir.bk", NULL});
  if (test_reduced())
    return;
  /* --ir is the default */
  check_golden("show_ir", (const char *[]){"show", "show_ir.bk", NULL});
  check_golden("show_ir_define", (const char *[]){"show", "-D", "N=3", "show_ir.bk", NULL});
}
END_TEST

/* ---- run --interp ------------------------------------------------------------------------ */

/* The output of `brick run` without its timing lines ("kernel NAME: ... ms ..."). */
static char *checksums(const char *out) {
  char *s = malloc(strlen(out) + 1), *p = s;
  for (const char *line = out; *line;) {
    const char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line + 1) : strlen(line);
    if (starts_with(line, "  output ")) {
      memcpy(p, line, n);
      p += n;
    } else {
      ck_assert_msg(starts_with(line, "kernel "), "unexpected line: %.*s", (int)n, line);
    }
    line += n;
  }
  *p = '\0';
  return s;
}

static char *run_seed(const char *seed, const char *kernel) {
  const char *args[] = {"run", "--interp", "--seed", seed, "t.bk", kernel ? "-k" : NULL, kernel,
                        NULL};
  cmd_result r = run_args(args);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  char *c = checksums(r.out);
  cmd_result_release(&r);
  return c;
}

START_TEST(run_seed_determinism) {
  char *a = run_seed("7", NULL), *b = run_seed("7", NULL);
  ck_assert_str_eq(a, b);
  if (test_reduced()) {
    free(a), free(b);
    return;
  }
  char *c = run_seed("8", NULL);
  ck_assert_str_ne(a, c);
  ck_assert(starts_with(a, "  output B[3]: sum "));
  ck_assert_ptr_nonnull(strstr(a, "\n  output C[3, 2]: sum "));
  ck_assert_ptr_nonnull(strstr(a, ", sum|x| "));
  /* a kernel's inputs depend only on the seed, not on the kernels run before it */
  char *mm = run_seed("7", "mm");
  ck_assert_str_eq(mm, strstr(a, "  output C["));
  free(a), free(b), free(c), free(mm);
}
END_TEST

START_TEST(run_default_seed_is_1) {
  if (test_reduced())
    return;
  char *a = run_seed("1", NULL);
  cmd_result r = run_args((const char *[]){"run", "--interp", "t.bk", NULL});
  ck_assert_int_eq(r.status, 0);
  char *b = checksums(r.out);
  ck_assert_str_eq(a, b);
  ck_assert(starts_with(r.out, "kernel scale: 3 flops, interpreter "));
  cmd_result_release(&r);
  free(a), free(b);
}
END_TEST

/* --caches: the default schedule's blocks follow the cache sizes given (a GEMM's N x K block
 * takes three quarters of L1, its M x K block a quarter of L2); bad sizes are usage errors. */
START_TEST(caches_option) {
  static const char *const gemm = "kernel g(A: f32[1024, 1024], B: f32[1024, 1024]) -> "
                                  "(C: f32[1024, 1024]) {\n"
                                  "  C[i, j] += A[i, k] * B[k, j]\n"
                                  "}\n";
  static const struct {
    const char *caches, *schedule;
  } cases[] = {
      {"32K,1M", "g: s0{brgemm(m=j/512,n=i/48,k=k/128);order=j/512,i/48,k/128;pack=B:pad}\n"},
      {"48K,1M,32M", "g: s0{brgemm(m=j/512,n=i/72,k=k/128);order=j/512,i/72,k/128;pack=B:pad}\n"},
      {"32768,262144", "g: s0{brgemm(m=j/128,n=i/48,k=k/128);order=j/128,i/48,k/128;pack=B:pad}\n"},
  };
  char *dir = temp_dir_new();
  write_file(dir, "g.bk", gemm);
  for (int i = 0; i < 3; i++) {
    cmd_result r = run_brick(dir, (const char *[]){"show", "--schedule", "--threads", "1",
                                                   "--caches", cases[i].caches, "g.bk", NULL});
    ck_assert_msg(r.status == 0, "--caches %s: exit %d: %s", cases[i].caches, r.status, r.err);
    ck_assert_str_eq(r.out, cases[i].schedule);
    cmd_result_release(&r);
  }
  temp_dir_remove(dir);
  static const char *const bad[] = {"3x", "", "1", "1K,2M,3M,4M", "-32K", "32KB"};
  for (int i = 0; i < sample(6); i++) {
    char err[512];
    snprintf(err, sizeof err,
             "brick: error: --caches expects L1[,L2[,L3]] sizes in bytes or with a K, M or G "
             "suffix (at least 1K; an empty size keeps the detected one), got '%s'\n" TRY_SHOW,
             bad[i]);
    expect((const char *[]){"show", "--schedule", "--caches", bad[i], "t.bk", NULL}, 2, "", err);
  }
}
END_TEST

START_TEST(run_with_define) {
  cmd_result r = run_args((const char *[]){"run", "--interp", "-D", "N=4", "-k", "mm", "t.bk",
                                           NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert(starts_with(r.out, "kernel mm: 80 flops, interpreter "));
  ck_assert_ptr_nonnull(strstr(r.out, "\n  output C[4, 2]: sum "));
  cmd_result_release(&r);
}
END_TEST

/* Tensors too big for this machine's memory (880 GB, within the language's 2^40 elements): a
 * clean error, also under the sanitizers (found by a review: ASan aborted the run). */
START_TEST(run_too_big_to_allocate) {
  cmd_result r = run_args((const char *[]){"run", "-D", "N=219902325555", "t.bk", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.out, "");
  ck_assert_msg(strstr(r.err, "brick: error: cannot allocate 880 GB for tensor A of kernel "
                              "scale\n"), "%s", r.err);
  cmd_result_release(&r);
}
END_TEST

/* run on a target this machine cannot run is bad usage (exit 2, found by a trial: exit 1);
 * compile takes it. */
START_TEST(run_foreign_target) {
  cmd_result r = run_args((const char *[]){"run", "--target", "aarch64-linux-gnu", "t.bk", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "brick: error: the module is compiled for 'aarch64-linux-gnu', which "
                              "this process ("), "%s", r.err);
  ck_assert_msg(strstr(r.err, "cannot run; emit an object instead\n"), "%s", r.err);
  cmd_result_release(&r);
}
END_TEST

/* compile --name: the kernel's symbols and header names follow the new name; errors for a
 * name that is not a C identifier, one another kernel has, several kernels, other commands. */
START_TEST(compile_name) {
  char *dir = temp_dir_new();
  write_file(dir, "t.bk", small);
  cmd_result r = run_brick(dir, (const char *[]){"compile", "t.bk", "-k", "mm", "--name",
                                                 "mm_n3", "--emit", "header", "-o", "mm3",
                                                 "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
  char *text = read_file(dir, "mm3.h");
  ck_assert_ptr_nonnull(text);
  ck_assert_msg(strstr(text, "void mm_n3(const float *") && strstr(text, "void mm_n3_ws(") &&
                    strstr(text, "mm_n3_workspace_bytes") && !strstr(text, "void mm("),
                "%s", text);
  free(text);
  temp_dir_remove(dir);
  expect((const char *[]){"compile", "t.bk", "-k", "mm", "--name", "2mm", NULL}, 2, "",
         "brick: error: --name: '2mm' is not a C identifier\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "-k", "mm", "--name", "scale", NULL}, 2, "",
         "brick: error: --name: the program already has a kernel named 'scale'\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "--name", "x", NULL}, 2, "",
         "brick: error: --name names one kernel; t.bk has several (add --kernel K)\n" TRY_COMPILE);
  expect((const char *[]){"run", "t.bk", "--name", "x", NULL}, 2, "",
         "brick: error: --name is an option of 'brick compile'\n" TRY_RUN);
  expect((const char *[]){"compile", "t.bk", "-k", "mm", "--name", "malloc", NULL}, 2, "",
         "brick: error: --name: 'malloc' cannot name a kernel: it is a function of the C standard "
         "library, which the kernel's symbol would replace\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "-k", "mm", "--name", "int", NULL}, 2, "",
         "brick: error: --name: 'int' cannot name a kernel: it is reserved in C or C++, and the "
         "kernel becomes a C function\n" TRY_COMPILE);
}
END_TEST

/* A source longer than 64 MiB (/dev/zero) is refused, not read forever; a file without a
 * kernel is an error for every command. */
START_TEST(odd_sources) {
  expect((const char *[]){"show", "/dev/zero", NULL}, 1, "",
         "brick: error: cannot read '/dev/zero': File too large (a source file may have at most "
         "64 MiB)\n");
  static const char *const cmds[] = {"run", "show", "compile"};
  for (int i = 0; i < 3; i++)
    expect((const char *[]){cmds[i], "/dev/null", NULL}, 1, "",
           "brick: error: /dev/null has no kernel (a file is sizes and 'kernel NAME(...) -> "
           "(...) { ... }' definitions)\n");
  expect((const char *[]){"tune", "/dev/null", NULL}, 1, "", "brick: error: /dev/null has no kernel\n");
}
END_TEST

/* Results past f32's range: the reference (in double) is rounded to f32 before the check, so
 * an overflow to inf on both sides passes; exp's results near the top of the range are right. */
START_TEST(run_f32_range) {
  char *dir = temp_dir_new();
  write_file(dir, "o.bk", "size M = 64\n"
                          "kernel ovf(A: f32[M]) -> (C: f32[M], E: f32[M]) {\n"
                          "  C[i] = A[i] * 1e30 * 1e30\n"
                          "  E[i] = exp(A[i] * 0.15 + 88.55)\n"
                          "}\n");
  for (int t = 0; t < 2; t++) {
    cmd_result r = run_brick(dir, (const char *[]){"run", "o.bk", "--threads", t ? "2" : "1", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s%s", r.status, r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "kernel ovf: check ok"));
    cmd_result_release(&r);
  }
  temp_dir_remove(dir);
}
END_TEST

/* Valid programs that look odd: an iterator named like a tensor of the kernel (iterators are
 * local to their statement); a copy, whose rate is in GB/s; 40 tensors, which run --interp
 * takes and compiled runs refuse. */
START_TEST(run_odd_programs) {
  char *dir = temp_dir_new();
  write_file(dir, "b.bk", "kernel bmm(A: f32[2, 16, 8], X: f32[2, 8, 4], b: f32[4]) -> "
                          "(C: f32[2, 16, 4]) {\n"
                          "  C[b, i, j] += A[b, i, k] * X[b, k, j]\n"
                          "  C[b, i, j] = C[b, i, j] + b[j]\n"
                          "}\n");
  cmd_result r = run_brick(dir, (const char *[]){"run", "b.bk", "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
  /* a copy has no FLOPs: its rate is in bytes (a layout change, weights packed once) */
  write_file(dir, "t.bk", "kernel tr(W: f32[40, 24]) -> (T: f32[24, 40]) {\n  T[c, k] = W[k, c]\n}\n");
  r = run_brick(dir, (const char *[]){"run", "t.bk", "--threads", "1", NULL});
  ck_assert_msg(r.status == 0 && strstr(r.out, " GB/s of its parameters read or written once (1 "
                "thread); compile ") && !strstr(r.out, "GFLOP/s"), "exit %d: %s%s", r.status,
                r.out, r.err);
  cmd_result_release(&r);
  char src[4096] = "kernel many(";
  for (int i = 0; i < 39; i++)
    snprintf(src + strlen(src), sizeof src - strlen(src), "%sA%d: f32[4]", i ? ", " : "", i);
  snprintf(src + strlen(src), sizeof src - strlen(src), ") -> (C: f32[4]) {\n  C[i] = A0[i]");
  for (int i = 1; i < 39; i++)
    snprintf(src + strlen(src), sizeof src - strlen(src), " + A%d[i]", i);
  snprintf(src + strlen(src), sizeof src - strlen(src), "\n}\n");
  write_file(dir, "m.bk", src);
  r = run_brick(dir, (const char *[]){"run", "m.bk", "--interp", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"run", "m.bk", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "brick: error: kernel many has 40 tensors; brick run and brick tune call "
                          "kernels of at most 32 (brick compile and run --interp have no limit)\n");
  cmd_result_release(&r);
  temp_dir_remove(dir);
}
END_TEST

/* compile: an output that is the input, or two outputs on one path (-o x.h with the default
 * obj,header), are refused before anything is written; so is an empty --emit; two kernels
 * whose names collide in the object or header ("mm" and "mm_ws") are an error of the file. */
START_TEST(compile_outputs) {
  expect((const char *[]){"compile", "t.bk", "-o", "t.bk", NULL}, 2, "",
         "brick: error: output 't.bk' is the input file; choose another -o\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "-o", "./t.bk", "--emit", "llvm", NULL}, 2, "",
         "brick: error: output './t.bk' is the input file; choose another -o\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "-o", "x.h", NULL}, 2, "",
         "brick: error: two outputs would both be written to 'x.h'; choose another -o\n" TRY_COMPILE);
  expect((const char *[]){"compile", "t.bk", "--emit", "", NULL}, 2, "",
         "brick: error: --emit takes a list of obj, asm, llvm, header; got ''\n" TRY_COMPILE);
  char *dir = temp_dir_new();
  write_file(dir, "c.bk", "kernel mm(A: f32[4]) -> (C: f32[4]) {\n  C[i] = A[i]\n}\n"
                          "kernel mm_ws(A: f32[4]) -> (C: f32[4]) {\n  C[i] = A[i]\n}\n");
  cmd_result r = run_brick(dir, (const char *[]){"compile", "c.bk", "--threads", "1", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "c.bk:4:8: error: kernels 'mm' and 'mm_ws' would both define 'mm_ws' "
                          "in the object or its header; rename one\n"
                          "    4 | kernel mm_ws(A: f32[4]) -> (C: f32[4]) {\n"
                          "      |        ^~~~~\n");
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"compile", "c.bk", "-k", "mm_ws", "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "one of them alone compiles: exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
  temp_dir_remove(dir);
}
END_TEST

/* ---- each command takes its own options (found by a new-user trial) ----------------------- */

/* An option of other commands is a usage error naming them, not silently ignored. */
START_TEST(foreign_option) {
  static const usage_case cases[] = {
      {{"run", "t.bk", "--emit", "obj", NULL},
       "brick: error: --emit is an option of 'brick compile'\n" TRY_RUN},
      {{"show", "t.bk", "--interp", NULL},
       "brick: error: --interp is an option of 'brick run'\n" TRY_SHOW},
      {{"show", "t.bk", "-v", NULL},
       "brick: error: -v is an option of 'brick run', 'brick compile' and 'brick tune'\n" TRY_SHOW},
      {{"compile", "t.bk", "--full-check", NULL},
       "brick: error: --full-check is an option of 'brick run'\n" TRY_COMPILE},
      {{"run", "-o", "x", "t.bk", NULL}, "brick: error: -o is an option of 'brick compile'\n" TRY_RUN},
      {{"compile", "--seed=3", "t.bk", NULL},
       "brick: error: --seed is an option of 'brick run' and 'brick tune'\n" TRY_COMPILE},
      {{"run", "t.bk", "--with-schedule", "s0{loops}", NULL},
       "brick: error: --with-schedule is an option of 'brick show'\n" TRY_RUN},
      {{"compile", "t.bk", "--llvm", NULL},
       "brick: error: --llvm is an option of 'brick show'\n" TRY_COMPILE},
      {{"show", "t.bk", "--trials", "3", NULL},
       "brick: error: --trials is an option of 'brick tune'\n" TRY_SHOW},
      {{"tune", "t.bk", "--target", "native", NULL},
       "brick: error: --target is an option of 'brick run', 'brick compile' and 'brick show'\n"
       TRY_TUNE},
      {{"tune", "t.bk", "--caches=32K", NULL},
       "brick: error: --caches is an option of 'brick run', 'brick compile' and 'brick show'\n"
       TRY_TUNE},
      {{"tune", "t.bk", "-o", "x", NULL}, "brick: error: -o is an option of 'brick compile'\n" TRY_TUNE},
      {{"tune", "t.bk", "--frob", NULL}, "brick: error: unknown option '--frob'\n" TRY_TUNE},
      /* found by a review: a value given to a long option that takes none printed the
       * option's value as a short option ("unknown option '-'") */
      {{"run", "--interp=1", "t.bk", NULL},
       "brick: error: option '--interp' takes no argument\n" TRY_RUN},
      {{"show", "--schedule=x", "t.bk", NULL},
       "brick: error: option '--schedule' takes no argument\n" TRY_SHOW},
      {{"tune", "--list=1", NULL}, "brick: error: option '--list' takes no argument\n" TRY_TUNE},
      {{"run", "--help=1", "t.bk", NULL}, "brick: error: option '--help' takes no argument\n" TRY_RUN},
      {{"compile", "--interp=1", "t.bk", NULL},
       "brick: error: --interp is an option of 'brick run'\n" TRY_COMPILE},
  };
  expect_usage(cases, sizeof cases / sizeof cases[0]);
}
END_TEST

/* The options on the option lines of "command"'s --help ("-D", "--target", ...), as one
 * string " -D --target ... " (malloc'ed). */
static char *help_options(const char *command) {
  cmd_result r = run_args((const char *[]){command, "--help", NULL});
  ck_assert_int_eq(r.status, 0);
  char *opts = calloc(1, strlen(r.out) + 2), *p = opts;
  *p++ = ' ';
  for (const char *line = r.out; *line;) {
    size_t n = strcspn(line, "\n");
    size_t lead = strspn(line, " ");
    for (size_t i = lead; lead < n && line[lead] == '-' && i < n; i++) {
      if (line[i] != '-' || (i > 0 && line[i - 1] != ' ' && line[i - 1] != '['))
        continue;
      size_t m = 1 + strspn(line + i + 1, "-");
      m += strspn(line + i + m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-");
      if (m < 2 || line[i + m - 1] == '-')
        continue;
      memcpy(p, line + i, m);
      p += m;
      *p++ = ' ';
      i += m - 1;
    }
    line += n + (line[n] == '\n');
  }
  *p = '\0';
  cmd_result_release(&r);
  return opts;
}

/* Every command takes exactly the options its --help lists: each listed one is accepted and
 * each option of another command is refused (found by a new-user trial: run --help did not
 * list --target, which run takes). */
START_TEST(help_lists_the_options) {
  static const char *const cmds[] = {"run", "compile", "show", "tune"};
  char *opts[4], all[2048] = " ";
  for (int c = 0; c < 4; c++) {
    opts[c] = help_options(cmds[c]);
    char *list = strdup(opts[c]);
    for (char *o = strtok(list, " "); o; o = strtok(NULL, " ")) {
      char word[64];
      snprintf(word, sizeof word, " %s ", o);
      if (!strstr(all, word))
        strcat(all, word + 1);
    }
    free(list);
  }
  ck_assert_msg(strstr(opts[0], " --target ") != NULL, "run --help: %s", opts[0]);
  ck_assert_msg(strstr(opts[1], " --emit ") && strstr(opts[2], " --with-schedule ") &&
                strstr(opts[3], " --trials "), "%s|%s|%s", opts[1], opts[2], opts[3]);
  char *dir = temp_dir_new();
  for (int c = 0; c < sample(4); c++) {
    char *list = strdup(all);
    for (char *o = strtok(list, " "); o; o = strtok(NULL, " ")) {
      if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0)
        continue;
      char word[64];
      snprintf(word, sizeof word, " %s ", o);
      bool listed = strstr(opts[c], word) != NULL;
      /* options before "--db none.db" take "--db" as their argument: never a file written */
      cmd_result r = run_brick(dir, (const char *[]){cmds[c], o, "--db", "none.db", NULL});
      bool refused = strstr(r.err, " is an option of ") || strstr(r.err, "unknown option");
      ck_assert_msg(listed != refused, "brick %s %s: %s in --help, but stderr says:\n%s",
                    cmds[c], o, listed ? "listed" : "not listed", r.err);
      cmd_result_release(&r);
    }
    free(list);
  }
  temp_dir_remove(dir);
  for (int c = 0; c < 4; c++)
    free(opts[c]);
  /* tune says why it has no --target, --caches or --schedule */
  cmd_result r = run_args((const char *[]){"tune", "--help", NULL});
  ck_assert_ptr_nonnull(strstr(r.out, "tune takes no --target, --caches or --schedule"));
  cmd_result_release(&r);
}
END_TEST

/* ---- --schedule with several kernels ------------------------------------------------------ */

static const char *const pool = "size C = 4\n"
                                "kernel avgpool(X: f32[C, 8]) -> (Y: f32[C, 8]) {\n"
                                "  Y[c, p] += X[c, p + r - 1] * 0.25 where r in 0..3\n"
                                "}\n"
                                "kernel maxpool3(X: f32[C, 8]) -> (Y: f32[C, 8]) {\n"
                                "  Y[c, p] max= X[c, p + r - 1] where r in 0..3\n"
                                "}\n";

/* Run brick with "args" on p.bk = "pool" in a scratch directory. */
static cmd_result run_pool(const char *const *args) { return run_on("p.bk", pool, args); }

/* A schedule "KERNEL: ..." applies to that kernel only, the others keep their default; the
 * text 'brick show --schedule' prints (a line per kernel) is accepted as it is (found by a
 * new-user trial: run applied the first kernel's schedule to the second and failed). */
START_TEST(schedule_for_several_kernels) {
  static const char *const one = "avgpool: s0{loops;order=p,c,r}";
  cmd_result r = run_pool((const char *[]){"show", "p.bk", "--schedule", "--threads", "1", NULL});
  ck_assert_int_eq(r.status, 0);
  char *all = strdup(r.out); /* "avgpool: ...\nmaxpool3: ...\n" */
  ck_assert_msg(starts_with(all, "avgpool: s0{") && strstr(all, "\nmaxpool3: s0{"), "%s", all);
  const char *maxpool = strstr(all, "maxpool3: ");
  cmd_result_release(&r);
  /* show: the given part for avgpool, maxpool3's default */
  r = run_pool((const char *[]){"show", "p.bk", "--schedule", "--threads", "1",
                                "--with-schedule", one, NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  char want[512];
  snprintf(want, sizeof want, "%s\n%s", one, maxpool);
  ck_assert_str_eq(r.out, want);
  cmd_result_release(&r);
  /* run and compile, with one part or with the whole printed text */
  const char *schedules[] = {one, all};
  for (int i = 0; i < 2; i++) {
    r = run_pool((const char *[]){"run", "p.bk", "--threads", "1", "--schedule", schedules[i],
                                  NULL});
    ck_assert_msg(r.status == 0 && strstr(r.out, "kernel avgpool: check ok") &&
                  strstr(r.out, "kernel maxpool3: check ok"), "exit %d: %s%s", r.status, r.out,
                  r.err);
    cmd_result_release(&r);
    r = run_pool((const char *[]){"compile", "p.bk", "--threads", "1", "--emit", "header",
                                  "--schedule", schedules[i], NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cmd_result_release(&r);
  }
  free(all);
  /* --kernel chooses one: a schedule without a name is for it */
  r = run_pool((const char *[]){"run", "p.bk", "-k", "maxpool3", "--threads", "1", "--schedule",
                                "s0{loops;order=c,p,r}", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
}
END_TEST

/* A schedule without kernel names for several kernels, or naming a kernel the file does not
 * have, is a usage error. */
START_TEST(schedule_for_several_kernels_errors) {
  static const char *const unnamed =
      "brick: error: the schedule names no kernel, but p.bk has 2: start each kernel's part with "
      "'KERNEL:' (as 'brick show --schedule' prints them), or choose one kernel (the kernel "
      "argument; --kernel in the CLI)\n";
  static const char *const cmds[][3] = {
      {"run", "--schedule", "s0{loops}"},
      {"compile", "--schedule", "s0{loops}"},
      {"show", "--with-schedule", "s0{loops}"},
  };
  for (int i = 0; i < sample(3); i++) {
    const char *args[8] = {cmds[i][0], "p.bk", cmds[i][1], cmds[i][2], NULL};
    if (i == 2) {
      args[4] = "--loops";
      args[5] = NULL;
    }
    cmd_result r = run_pool(args);
    ck_assert_msg(r.status == 2, "%s: exit %d", cmds[i][0], r.status);
    ck_assert_str_eq(r.err, unnamed);
    ck_assert_str_eq(r.out, "");
    cmd_result_release(&r);
  }
  cmd_result r = run_pool((const char *[]){"run", "p.bk", "--schedule",
                                           "avgpool: s0{loops}\nfoo: s0{loops}", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.err, "<schedule>:2:1: error: the program has no kernel 'foo' (its kernels: "
                          "avgpool, maxpool3)\n"
                          "    2 | foo: s0{loops}\n"
                          "      | ^~~\n");
  cmd_result_release(&r);
  r = run_pool((const char *[]){"run", "p.bk", "--schedule",
                                "avgpool: s0{loops} avgpool: s0{loops}", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.err, "<schedule>:1:20: error: kernel 'avgpool' has two parts in this "
                          "schedule\n"
                          "    1 | avgpool: s0{loops} avgpool: s0{loops}\n"
                          "      |                    ^~~~~~~\n");
  cmd_result_release(&r);
  /* found by a review: the parts of a kernel that is not compiled were not checked, and a
   * space before the colon hid the part ("the schedule names no kernel") */
  r = run_pool((const char *[]){"run", "p.bk", "-k", "avgpool", "--schedule",
                                "maxpool3: s0{loops} maxpool3: s0{loops}", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "<schedule>:1:21: error: kernel 'maxpool3' has two parts"));
  cmd_result_release(&r);
  /* and every part is checked before any kernel runs: no avgpool result on stdout */
  r = run_pool((const char *[]){"run", "p.bk", "--schedule",
                                "avgpool: s0{loops} maxpool3: s0{loops;order=z}", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.out, "");
  ck_assert_ptr_nonnull(strstr(r.err, "error: statement s0 has no iterator 'z'"));
  cmd_result_release(&r);
  r = run_pool((const char *[]){"run", "p.bk", "--threads", "1", "--schedule",
                                "maxpool3 : s0{loops;order=c,p,r}", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "kernel maxpool3: check ok"));
  cmd_result_release(&r);
}
END_TEST

/* ---- the standard input ------------------------------------------------------------------- */

/* "-" reads the source from the standard input, named <stdin> in diagnostics; compile then
 * needs -o (found by a new-user trial: "cannot read '-'"). */
START_TEST(source_from_stdin) {
  char *dir = temp_dir_new(), in[4200], bad[4200];
  write_file(dir, "t.bk", small);
  write_file(dir, "bad.bk", "kernel k(A: f32[4]) -> (B: f32[4]) {\n  B[i] = A[i] @\n}\n");
  snprintf(in, sizeof in, "%s/t.bk", dir);
  snprintf(bad, sizeof bad, "%s/bad.bk", dir);
  cmd_result r = run_brick_input(dir, (const char *[]){"run", "--interp", "-", NULL}, in);
  ck_assert_msg(r.status == 0 && starts_with(r.out, "kernel scale: 3 flops"), "exit %d: %s",
                r.status, r.err);
  cmd_result_release(&r);
  r = run_brick_input(dir, (const char *[]){"show", "-", NULL}, bad);
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "<stdin>:2:15: error: stray '@' in program\n"
                          "    2 |   B[i] = A[i] @\n"
                          "      |               ^\n");
  cmd_result_release(&r);
  r = run_brick_input(dir, (const char *[]){"run", "-", "-k", "zz", NULL}, in);
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.err, "brick: error: <stdin> has no kernel named 'zz'\n");
  cmd_result_release(&r);
  r = run_brick_input(dir, (const char *[]){"compile", "-", NULL}, in);
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.err, "brick: error: the source comes from the standard input ('-'): name "
                          "the output with -o\n" TRY_COMPILE);
  cmd_result_release(&r);
  r = run_brick_input(dir, (const char *[]){"compile", "-", "-k", "mm", "-o", "mm.o",
                                            "--threads", "1", NULL}, in);
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  cmd_result_release(&r);
  char *h = read_file(dir, "mm.h");
  ck_assert_ptr_nonnull(h);
  free(h);
  temp_dir_remove(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("help");
  tcase_add_test(tc, help);
  tcase_add_test(tc, version);
  tcase_add_test(tc, command_help);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, no_command);
  tcase_add_test(tc, unknown_command);
  tcase_add_test(tc, unknown_option);
  tcase_add_test(tc, missing_option_argument);
  tcase_add_test(tc, bad_option_value);
  tcase_add_test(tc, no_input_file);
  tcase_add_test(tc, two_input_files);
  tcase_add_test(tc, kernel_not_found);
  tcase_add_test(tc, unreadable_file);
  tcase_add_test(tc, foreign_option);
  tcase_add_test(tc, help_lists_the_options);
  suite_add_tcase(s, tc);
  tc = tcase_create("commands");
  tcase_add_test(tc, show_ir_golden);
  tcase_add_test(tc, run_seed_determinism);
  tcase_add_test(tc, run_default_seed_is_1);
  tcase_add_test(tc, run_with_define);
  tcase_add_test(tc, run_too_big_to_allocate);
  tcase_add_test(tc, run_foreign_target);
  tcase_add_test(tc, caches_option);
  tcase_add_test(tc, compile_name);
  tcase_add_test(tc, compile_outputs);
  tcase_add_test(tc, odd_sources);
  tcase_add_test(tc, run_f32_range);
  tcase_add_test(tc, run_odd_programs);
  tcase_add_test(tc, schedule_for_several_kernels);
  tcase_add_test(tc, schedule_for_several_kernels_errors);
  tcase_add_test(tc, source_from_stdin);
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
