/*
 * Check suite of scheduler/: the schedule text form and the schedule space.
 *
 * - Round trip: parse(print(s)) == s (and print again gives the same text) for the default
 *   schedule of every kernel in examples/ (serial and parallel), and for random samples of
 *   the schedule space (space.c).
 * - The space: every random sample and every enumerated schedule lowers without errors and
 *   passes the legality check.
 * - Errors: a table of invalid schedules, one per class, each with its exact diagnostic
 *   ("<schedule>:1:COL: error: ...", the string, a caret), through the public API with a
 *   diagnostic callback; and through `brick compile --schedule`, which exits with status 2.
 *
 * - Regressions: kernels and schedules that once computed wrong results, JIT-compiled and
 *   compared with the interpreter.
 *
 * BRICK_TEST_REDUCED=1 (the sanitizer pass) takes fewer samples.
 */
#include "brick/brick.h"
#include "frontend.h"
#include "oracle.h"
#include "scheduler.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool reduced(void) {
  const char *r = getenv("BRICK_TEST_REDUCED");
  return r && *r && strcmp(r, "0") != 0;
}

/* ---- loading kernels ---------------------------------------------------------------------- */

typedef struct loaded {
  bk_diag diag;
  bk_strbuf msgs;
  bk_source *src;
  ir_program *prog;
} loaded;

static loaded *load_text(const char *name, const char *text) {
  loaded *l = calloc(1, sizeof(*l));
  bk_strbuf_init(&l->msgs);
  bk_diag_init(&l->diag, bk_diag_sink_strbuf, &l->msgs);
  l->src = bk_source_new(name, text, strlen(text));
  l->prog = ir_program_new(&l->diag, NULL);
  ck_assert_msg(fe_parse(l->prog, l->src), "%s does not parse:\n%s", name,
                bk_strbuf_cstr(&l->msgs));
  return l;
}

static loaded *load_file(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f, "cannot open %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return load_text(path, buf);
}

static void loaded_free(loaded *l) {
  ir_program_free(l->prog);
  bk_source_free(l->src);
  bk_strbuf_release(&l->msgs);
  free(l);
}

/* The paths of the .bk files in examples/ (NULL-terminated, malloc'ed). */
static char **example_paths(void) {
  const char *root = getenv("BRICK_SOURCE_DIR");
  ck_assert_msg(root, "BRICK_SOURCE_DIR is not set");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/examples", root);
  DIR *d = opendir(dir);
  ck_assert_msg(d, "cannot open %s", dir);
  char **paths = calloc(256, sizeof(char *));
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 255) {
    size_t len = strlen(e->d_name);
    if (len > 3 && strcmp(e->d_name + len - 3, ".bk") == 0) {
      paths[n] = malloc(strlen(dir) + len + 2);
      sprintf(paths[n++], "%s/%s", dir, e->d_name);
    }
  }
  closedir(d);
  ck_assert_int_gt(n, 0);
  return paths;
}

static void paths_free(char **p) {
  for (int i = 0; p[i]; i++)
    free(p[i]);
  free(p);
}

/* ---- round trips and the space -------------------------------------------------------------- */

/* Print "s", parse it back, compare statement by statement, print again. */
static void check_round_trip(const ir_kernel *k, const sched_schedule *s, const char *what) {
  char *text = sched_schedule_to_str(k, s);
  bk_strbuf msgs;
  bk_strbuf_init(&msgs);
  bk_diag diag;
  bk_diag_init(&diag, bk_diag_sink_strbuf, &msgs);
  bk_source *src = bk_source_new("<schedule>", text, strlen(text));
  sched_schedule *back = sched_schedule_parse(k, src, &diag);
  ck_assert_msg(back, "%s: kernel %s: '%s' does not parse back:\n%s", what, k->name, text,
                bk_strbuf_cstr(&msgs));
  ck_assert_int_eq(back->stmts.len, s->stmts.len);
  for (int i = 0; i < s->stmts.len; i++)
    ck_assert_msg(sched_stmt_is_equal(&s->stmts.data[i], &back->stmts.data[i]),
                  "%s: kernel %s: section %d of '%s' changes in a round trip", what, k->name, i,
                  text);
  char *again = sched_schedule_to_str(k, back);
  ck_assert_str_eq(again, text);
  free(again);
  sched_schedule_free(back);
  bk_source_free(src);
  bk_strbuf_release(&msgs);
  free(text);
}

/* Lower "s" and check its legality; fail with the schedule text and the messages if not. */
static void check_lowers(const ir_kernel *k, isl_ctx *ctx, const sched_schedule *s,
                         const char *what) {
  bk_strbuf msgs;
  bk_strbuf_init(&msgs);
  bk_diag diag;
  bk_diag_init(&diag, bk_diag_sink_strbuf, &msgs);
  sched_kernel *sk = sched_lower(k, s, ctx, &diag);
  bool ok = sk && sched_check_legality(sk, ctx, &diag);
  if (!ok) {
    char *text = sched_schedule_to_str(k, s);
    ck_abort_msg("%s: kernel %s: schedule '%s' does not lower:\n%s", what, k->name, text,
                 bk_strbuf_cstr(&msgs));
  }
  sched_kernel_free(sk);
  bk_strbuf_release(&msgs);
}

START_TEST(test_round_trip_defaults) {
  char **paths = example_paths();
  for (int p = 0; paths[p]; p++) {
    loaded *l = load_file(paths[p]);
    for (int i = 0; i < l->prog->kernels.len; i++)
      for (int threads = 0; threads <= (reduced() ? 0 : 1); threads++) {
        const ir_kernel *k = l->prog->kernels.data[i];
        sched_schedule *s = sched_complete(k, NULL, threads);
        check_round_trip(k, s, paths[p]);
        check_lowers(k, l->prog->isl, s, paths[p]);
        sched_schedule_free(s);
      }
    loaded_free(l);
  }
  paths_free(paths);
}
END_TEST

START_TEST(test_random_samples) {
  char **paths = example_paths();
  int samples = reduced() ? 3 : 25, tails = 0;
  uint64_t rng = 12345;
  for (int p = 0; paths[p]; p++) {
    loaded *l = load_file(paths[p]);
    for (int i = 0; i < l->prog->kernels.len; i++)
      for (int n = 0; n < samples; n++) {
        const ir_kernel *k = l->prog->kernels.data[i];
        sched_schedule *s = sched_space_random(k, &rng);
        check_round_trip(k, s, paths[p]);
        check_lowers(k, l->prog->isl, s, paths[p]);
        for (int j = 0; j < s->stmts.len; j++)
          tails += s->stmts.data[j].tail > 0;
        sched_schedule_free(s);
      }
    loaded_free(l);
  }
  paths_free(paths);
  ck_assert_msg(reduced() || tails > 0, "no sample has an M tail");
}
END_TEST

/* Kernels the random samples of the examples do not reach: a tensor read twice, reductions
 * with 'where' ranges that do not start at 0, extents of 1, a transposed and a strided
 * factor, a non-contraction '+='. */
static const char *const odd_kernels[] = {
    "kernel gram(A: f32[7, 5]) -> (C: f32[7, 7]) { C[i, j] += A[i, k] * A[j, k] }",
    "kernel sq(A: f32[6, 6]) -> (C: f32[6, 6]) { C[i, j] += A[i, k] * A[k, j] }",
    "kernel w(A: f32[9, 12], B: f32[12, 5]) -> (C: f32[9, 5]) {\n"
    "  C[i, j] += A[i, k - 1] * B[k, j] where k in -2..11\n}",
    "kernel one(I: f32[1, 3, 6, 1], Wt: f32[4, 3, 3, 3]) -> (O: f32[1, 4, 6, 1]) {\n"
    "  O[n, o, p, q] += I[n, c, p + r - 1, q + s - 1] * Wt[o, c, r, s]\n}",
    "kernel tr(A: f32[13, 17], B: f32[11, 13]) -> (C: f32[17, 11]) {\n"
    "  C[i, j] += A[k, i] * B[j, k]\n}",
    "kernel st(I: f32[2, 3, 11, 11], Wt: f32[4, 3, 2, 2]) -> (O: f32[2, 4, 5, 5]) {\n"
    "  O[n, o, p, q] += I[n, c, 2*p + r, 2*q + s] * Wt[o, c, r, s]\n}",
    "kernel red(X: f32[5, 9]) -> (Y: f32[5]) { Y[i] += X[i, k] * 2.0 }",
};

START_TEST(test_random_samples_odd_kernels) {
  int samples = reduced() ? 5 : 60;
  uint64_t rng = 777;
  for (size_t t = 0; t < sizeof odd_kernels / sizeof *odd_kernels; t++) {
    loaded *l = load_text("odd.bk", odd_kernels[t]);
    const ir_kernel *k = l->prog->kernels.data[0];
    for (int n = 0; n < samples; n++) {
      sched_schedule *s = sched_space_random(k, &rng);
      check_round_trip(k, s, odd_kernels[t]);
      check_lowers(k, l->prog->isl, s, odd_kernels[t]);
      sched_schedule_free(s);
    }
    sched_schedule *d = sched_complete(k, NULL, 0);
    check_round_trip(k, d, odd_kernels[t]);
    check_lowers(k, l->prog->isl, d, odd_kernels[t]);
    sched_schedule_free(d);
    loaded_free(l);
  }
}
END_TEST

typedef struct visit_state {
  const ir_kernel *k;
  isl_ctx *ctx;
  int64_t seen, limit, brgemm;
} visit_state;

/* Lower every enumerated schedule of statement 0 (a one-statement kernel). */
static bool visit_lower(void *user, const sched_stmt *ss) {
  visit_state *v = user;
  sched_schedule *s = sched_schedule_new();
  sched_stmt *dst = sched_schedule_add(s, ss->stmt);
  *dst = *ss;
  memset(&dst->packs, 0, sizeof dst->packs);
  for (int i = 0; i < ss->packs.len; i++)
    bk_vec_push(s->arena, &dst->packs, ss->packs.data[i]);
  check_round_trip(v->k, s, "enumeration");
  check_lowers(v->k, v->ctx, s, "enumeration");
  sched_schedule_free(s);
  v->brgemm += ss->brgemm;
  return ++v->seen < v->limit;
}

START_TEST(test_enumerate) {
  static const char *const texts[] = {
      "kernel mm(A: f32[100, 70], B: f32[70, 90]) -> (C: f32[100, 90]) {\n"
      "  C[i, j] += A[i, k] * B[k, j]\n}",
      "kernel conv(I: f32[1, 6, 9, 9], Wt: f32[5, 6, 3, 3]) -> (O: f32[1, 5, 9, 9]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * Wt[k, c, r, s]\n}",
      odd_kernels[5],
  };
  for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
    loaded *l = load_text("enum.bk", texts[t]);
    const ir_kernel *k = l->prog->kernels.data[0];
    visit_state v = {.k = k, .ctx = l->prog->isl, .limit = reduced() ? 15 : 400};
    int64_t n = sched_space_enumerate(k, k->stmts.data[0], 0, visit_lower, &v);
    ck_assert_int_eq(n, v.seen);
    ck_assert_int_gt(v.brgemm, 0);
    loaded_free(l);
  }
}
END_TEST

/* ---- invalid schedules --------------------------------------------------------------------- */

static const char conv_text[] =
    "size C = 6\n"
    "size K = 5\n"
    "kernel conv(I: f32[1, C, 9, 9], Wt: f32[K, C, 3, 3]) -> (O: f32[1, K, 9, 9]) {\n"
    "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * Wt[k, c, r, s]\n"
    "}\n";
static const char strided_text[] =
    "kernel strided(I: f32[1, 3, 9, 9], Wt: f32[4, 3, 3, 3]) -> (O: f32[1, 4, 4, 4]) {\n"
    "  O[n, k, p, q] += I[n, c, 2*p + r, 2*q + s] * Wt[k, c, r, s]\n"
    "}\n";
static const char diag_text[] =
    "kernel dg(A: f32[4, 4], B: f32[3, 4]) -> (C: f32[3, 4]) {\n"
    "  C[i, j] += A[k + j, j] * B[i, k] where k in 0..1\n"
    "}\n";
static const char rank8_text[] =
    "kernel r8(A: f32[3, 2, 2, 2, 2, 2, 2, 2], B: f32[2]) -> (C: f32[2, 2, 2, 2, 2, 2, 2, 2]) {\n"
    "  C[a, b, c, d, e, f, g, h] += A[a + i, b, c, d, e, f, g, h] * B[i]\n"
    "}\n";
static const char fc_text[] =
    "kernel fc(X: f32[8, 20], Wt: f32[12, 20], b: f32[12]) -> (Y: f32[8, 12]) {\n"
    "  Y[n, k] += X[n, c] * Wt[k, c]\n"
    "  act: Y[n, k] = relu(Y[n, k] + b[k])\n"
    "}\n";

typedef struct bad_schedule {
  const char *kernel, *schedule;
  int col, len; /* of the caret */
  const char *msg;
} bad_schedule;

#define CONV_OK "brgemm(m=q,n=k,k=c;batch=r,s)"
static const bad_schedule bad[] = {
    /* names */
    {conv_text, "s0{brgemm(m=q,n=k,k=x)}", 21, 1, "statement s0 has no iterator 'x'"},
    {conv_text, "s0{loops;order=p,zz/4}", 18, 2, "statement s0 has no iterator 'zz'"},
    {conv_text, "s1{loops}", 1, 2, "kernel 'conv' has no statement 's1' (statements are s0..s0)"},
    {fc_text, "bias{loops}", 1, 4, "kernel 'fc' has no statement 'bias' (statements are s0..s1)"},
    {conv_text, "s0{" CONV_OK ";pack=X:pad}", 39, 1, "statement s0 reads no tensor 'X'"},
    {conv_text, "s0{" CONV_OK ";pack=I:foo}", 41, 3,
     "unknown packing 'foo' (expected 'pad', 'im2col', 'im2row', 'mask' or, for the target, 'transpose')"},
    {conv_text, "s0{tile=4}", 4, 4,
     "unknown schedule item 'tile' (expected brgemm, flatten, tail, epilogue, order, parallel, "
     "pack, loops or fused)"},
    {conv_text, "s0{loops} s0{loops}", 11, 2, "statement s0 is scheduled twice"},
    {fc_text, "s1{loops} act{loops}", 11, 3, "statement s1 is scheduled twice"},
    /* tile sizes */
    {conv_text, "s0{brgemm(m=q/0,n=k,k=c)}", 15, 1, "tile size 0 of 'q' must be positive"},
    {conv_text, "s0{brgemm(m=q/-3,n=k,k=c)}", 15, 2, "tile size -3 of 'q' must be positive"},
    {conv_text, "s0{brgemm(m=q/4,n=k,k=c;batch=r,s);order=q/8;pack=I:pad}", 42, 3,
     "'q/8' does not match the tile size of m=q/4"},
    {conv_text, "s0{loops;order=q/4}", 16, 3,
     "only the M, N and K iterators of a BRGEMM can be tiled, not 'q'"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c/4;batch=r,s,c/4);pack=I:pad}", 19, 5,
     "the K tile 4 must divide the range 6 of 'c' when its tile loop is in the batch"},
    /* a BRGEMM on a statement that is not a contraction */
    {fc_text, "s1{brgemm(m=k,n=n)}", 1, 2,
     "statement s1 is not a contraction 'C[..] += A[..] * B[..]'; schedule it with 'loops'"},
    {fc_text, "act{brgemm(m=k)}", 1, 3,
     "statement s1 is not a contraction 'C[..] += A[..] * B[..]'; schedule it with 'loops'"},
    /* roles */
    {conv_text, "s0{brgemm(m=p,n=k,k=c;batch=r,s);pack=I:pad}", 11, 3,
     "M iterator 'p' must have unit stride in the output 'O' (it has 9); add "
     "'pack=O:transpose'"},
    {strided_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s)}", 11, 3,
     "M iterator 'q' has stride 2 in 'I'; add 'pack=I:im2col'"},
    {fc_text, "s0{brgemm(m=c,n=n)}", 11, 3,
     "M iterator 'c' must index the output and exactly one of the factors"},
    {conv_text, "s0{brgemm(m=q,n=c,k=k;batch=r,s);pack=I:pad}", 15, 3,
     "N iterator 'c' must index the output and 'Wt' only"},
    {conv_text, "s0{brgemm(m=q,n=k,k=p;batch=r,s);pack=I:pad}", 19, 3,
     "K iterator 'p' must be a reduction over both factors"},
    {conv_text, "s0{brgemm(m=q,n=k,k=s;batch=c,r);pack=I:pad}", 19, 3,
     "the stride 1 of K iterator 's' in 'I' is less than the M tile 9 (tile M by at most 1, "
     "or add 'pack=I:im2col')"},
    {conv_text, "s0{brgemm(m=q,n=q)}", 15, 3,
     "'q' has two BRGEMM roles"},
    {conv_text, "s0{brgemm(m=q,m=p)}", 15, 1, "role 'm' is given twice"},
    {conv_text, "s0{brgemm(n=k)}", 14, 1, "brgemm(...) needs an M iterator ('m=')"},
    {conv_text, "s0{brgemm(m=q,x=k)}", 15, 1, "expected 'm=', 'n=' or 'k=' in brgemm(...)"},
    {conv_text, "s0{" CONV_OK "}", 1, 2, "'I' can be read out of bounds; add 'pack=I:pad'"},
    {conv_text, "s0{loops;pack=I:im2col}", 1, 2,
     "'pack=I:im2col' needs a BRGEMM with an M iterator"},
    {rank8_text, "s0{brgemm(m=h);pack=A:im2col}", 1, 2,
     "'pack=A:im2col' needs 9 dimensions, more than the 8 a tensor can have"},
    {conv_text, "s0{loops;pack=I:im2row}", 1, 2,
     "'pack=I:im2row' needs a BRGEMM with an M iterator"},
    {diag_text, "s0{brgemm(m=j,n=i);pack=A:im2row}", 1, 2,
     "'pack=A:im2row' needs the M iterator 'j' in exactly one dimension of 'A'"},
    /* the M tail */
    {conv_text, "s0{loops;tail=1}", 10, 6, "'tail' needs a BRGEMM statement"},
    {conv_text, "s0{" CONV_OK ";tail=0;pack=I:pad}", 39, 1,
     "'tail' takes a positive number of M iterations"},
    {conv_text, "s0{" CONV_OK ";tail=x;pack=I:pad}", 39, 1,
     "'tail' takes a positive number of M iterations"},
    {conv_text, "s0{" CONV_OK ";tail=+2;pack=I:pad}", 39, 1,
     "'tail' takes a positive number of M iterations"},
    {conv_text, "s0{" CONV_OK ";tail=9;pack=I:pad}", 34, 6,
     "'tail=9' leaves no iteration of M 'q' (9 in all) to the BRGEMM calls"},
    {fc_text, "s0{brgemm(m=n,n=k,k=c);tail=1;epilogue=s1} s1{fused}", 24, 6,
     "'tail' cannot be combined with 'epilogue': the dot products would skip the epilogue"},
    {conv_text, "s0{" CONV_OK ";tail=1:cal;pack=I:pad}", 41, 3,
     "expected 'call' after 'tail=1:' (the dot products inside the BRGEMM calls)"},
    {conv_text, "s0{" CONV_OK ";tail=5:call;pack=I:pad}", 34, 11,
     "'tail=5:call' runs at most 4 iterations of M inside the calls"},
    {conv_text, "s0{brgemm(m=q/4,n=k,k=c;batch=r,s);tail=1:call;pack=I:pad}", 36, 11,
     "'tail=1:call' needs all of M 'q' in each call, not tiles of 4"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r);tail=1:call;pack=I:pad}", 32, 11,
     "'tail=1:call' needs the reductions of each call to cover one contiguous run of 'Wt' (its "
     "unit-stride reductions, in full); use 'tail=1'"},
    /* found by a user trial: repeated items were accepted, the last one winning */
    {conv_text, "s0{" CONV_OK ";order=n,p;order=n,p;pack=I:pad}", 44, 5,
     "'order' is given twice in this section"},
    {conv_text, "s0{" CONV_OK ";pack=I:pad,I:pad}", 45, 1, "'I' is packed twice"},
    {conv_text, "s0{loops;brgemm(m=q,n=k,k=c;batch=r,s)}", 10, 6,
     "'brgemm': the section already says brgemm, loops or fused"},
    /* found by a user trial: k is in no factor A, so its pitch there was 0 like "cannot" */
    {conv_text, "s0{brgemm(m=q,n=k/4,k=c;batch=r,s);flatten=k;pack=I:pad}", 36, 9,
     "cannot flatten 'k' into M 'q': they must index the last two dimensions of 'O', with "
     "unit stride and a row pitch of at least 9 in 'I' and not in 'Wt' (and a wider pitch "
     "needs 'O' to start its accumulation here)"},
    /* the input read in place, its padding masked off */
    {conv_text, "s0{" CONV_OK ";pack=I:mask}", 1, 2,
     "'pack=I:mask' needs a BRGEMM with the output rows flattened into M ('flatten=')"},
    {conv_text, "s0{loops;pack=I:mask}", 1, 2,
     "'pack=I:mask' needs a BRGEMM with the output rows flattened into M ('flatten=')"},
    {conv_text, "s0{" CONV_OK ";flatten=p;pack=I:pad,Wt:mask}", 1, 2,
     "'pack=Wt:mask' applies to the factor M runs along ('I')"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=s);flatten=p;order=n,p,r;pack=I:mask}", 1, 2,
     "'pack=I:mask' needs every other iterator of the image's rows and columns (the filter "
     "taps) to be a batch loop of the call"},
    {"kernel diag(I: f32[1, 10, 6, 7], W: f32[4, 4, 3, 3]) -> (O: f32[1, 4, 6, 7]) {\n"
     "  O[n, k, p, q] += I[n, c + p, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n",
     "s0{brgemm(m=q/16,n=k,k=c;batch=r,s);flatten=p;order=n,p,q/16;pack=I:mask}", 1, 2,
     "'pack=I:mask' needs the flattened row and M to index only the image's rows and columns"},
    {conv_text, "s0{" CONV_OK ";flatten=p;tail=10;pack=I:mask}", 1, 2,
     "'pack=I:mask' cannot be combined with a 'tail' longer than a row"},
    /* the target's transposed copy */
    {conv_text, "s0{" CONV_OK ";pack=I:transpose}", 39, 1,
     "'transpose' packs the target of s0 ('O'), not 'I'"},
    {conv_text, "s0{" CONV_OK ";pack=I:pad,O:transpose}", 45, 11,
     "'pack=O:transpose' needs the M iterator 'q' in a dimension of 'O' other than the last"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);flatten=p;pack=I:pad,O:transpose}", 55, 11,
     "'pack=O:transpose' cannot be combined with 'flatten'"},
    {conv_text, "s0{loops;pack=O:transpose}", 15, 11,
     "'pack=O:transpose' needs a BRGEMM statement"},
    {fc_text, "s0{brgemm(m=n,n=k,k=c);tail=1;pack=X:im2col,Y:transpose} s1{loops}", 45, 11,
     "'pack=Y:transpose' cannot be combined with 'tail' (only with 'tail=T:call')"},
    /* loops */
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);order=n,p,p;pack=I:pad}", 44, 1,
     "loop 'p' is listed twice"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);order=r;pack=I:pad}", 40, 1,
     "loop 'r' is listed twice"},
    {conv_text, "fc: s0{loops}", 1, 2, "this schedule is for kernel 'fc', not 'conv'"},
    /* found by a review: these pointed at the section, or quoted the tile wrong */
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=c/2,r,s)}", 29, 3,
     "'c/2' is a loop over tiles, but k=c is not tiled (write k=c/2)"},
    {conv_text, "s0{brgemm(m=q/99999999999999999999,n=k,k=c)}", 15, 20,
     "tile size '99999999999999999999' of 'q' is out of range (at most 2147483647)"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);tail=4294967296;pack=I:pad}", 39, 10,
     "'tail=4294967296' is out of range (at most 2147483647)"},
    {"kernel e(X: f32[8, 20], Wt: f32[20, 12], b: f32[12]) -> (Y: f32[8, 12]) {\n"
     "  Y[n, k] += X[n, c] * Wt[c, k]\n  Y[n, k] = Y[n, k] * b[k]\n}\n",
     "s0{brgemm(m=k,n=n,k=c);epilogue=s1} s1{fused}", 24, 11,
     "statement s1 cannot run as the epilogue of s0 (it must be 'T = relu(T + b[x])', "
     "'T = T + b[x]' or 'T = relu(T)' on s0's target, right after it, with x its M or N "
     "iterator)"},
    /* found by a new-user trial: the caret was at column 1 and the advice was 's0{fused}' */
    {fc_text, "s0{brgemm(m=k,n=n,k=c);epilogue=s0} act{fused}", 24, 11,
     "statement s0 cannot be its own epilogue (an epilogue is the elementwise statement right "
     "after it, on its target)"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);order=q}", 40, 1,
     "'q' is the M iterator: its loop is inside the BRGEMM call (write 'q/T' for the loop over "
     "its tiles)"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=n)}", 29, 1,
     "'n' cannot be in the batch: it indexes the output"},
    /* parallel loops */
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=s);order=r,n,p;parallel=r;pack=I:pad}", 53, 1,
     "loop 'r' carries the reduction over 'r'; it cannot be parallel"},
    {conv_text, "s0{loops;parallel=c}", 19, 1,
     "loop 'c' carries the reduction over 'c'; it cannot be parallel"},
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);parallel=c}", 43, 1,
     "the parallel loop 'c' is not a loop of the order"},
    /* syntax */
    {conv_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s)", 33, 1,
     "expected '}' at the end of the schedule"},
    {conv_text, "s0 {loops}", 3, 1, "expected '{', found ' '"},
    {conv_text, "s0{loops};", 10, 1,
     "expected a statement section ('sN{...}' or 'LABEL{...}'), found ';'"},
    {conv_text, "s0{loops;order=}", 16, 1, "expected an iterator name"},
    {conv_text, "s0{brgemm(m=q/x)}", 15, 1, "expected a tile size after '/'"},
    {conv_text, "s0{brgemm(m=q;bat=r)}", 15, 1, "expected 'batch=' in brgemm(...)"},
    {conv_text, "s0{brgemm m=q}", 10, 1, "expected '(', found ' '"},
    {conv_text, "s0{order n}", 9, 1, "expected '=', found ' '"},
};

/* The diagnostic "msg" at column "col" (caret "len" wide) of schedule "s", as printed. */
static char *expected_diag(const char *s, int col, int len, const char *msg) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_printf(&sb, "<schedule>:1:%d: error: %s\n    1 | %s\n      | %*s^", col, msg, s,
                   col - 1, "");
  for (int i = 1; i < len; i++)
    bk_strbuf_puts(&sb, "~");
  bk_strbuf_puts(&sb, "\n");
  return bk_strbuf_take(&sb);
}

static void collect(void *user, brick_severity sev, const char *text) {
  bk_strbuf_puts(user, text);
}

START_TEST(test_bad_schedules_api) {
  const bad_schedule *b = &bad[_i];
  brick_ctx *ctx = brick_ctx_new();
  bk_strbuf got;
  bk_strbuf_init(&got);
  brick_ctx_set_diag_callback(ctx, collect, &got);
  brick_program *prog;
  ck_assert_int_eq(brick_program_parse_string(ctx, "k.bk", b->kernel, NULL, &prog), BRICK_OK);
  brick_options *opts = brick_options_new();
  brick_options_set_schedule(opts, b->schedule);
  brick_module *mod = NULL;
  int st = brick_compile(ctx, prog, 0, opts, &mod);
  char *want = expected_diag(b->schedule, b->col, b->len, b->msg);
  ck_assert_msg(st == BRICK_ERR_USAGE, "'%s': status %d, want %d", b->schedule, st,
                BRICK_ERR_USAGE);
  ck_assert_ptr_null(mod);
  ck_assert_str_eq(bk_strbuf_cstr(&got), want);
  /* The schedule query reports parse errors the same way. */
  char *text = NULL;
  bk_strbuf_release(&got);
  bk_strbuf_init(&got);
  if (brick_kernel_schedule(ctx, prog, 0, opts, &text) == BRICK_OK)
    free(text);
  else
    ck_assert_str_eq(bk_strbuf_cstr(&got), want);
  free(want);
  bk_strbuf_release(&got);
  brick_options_free(opts);
  brick_program_free(prog);
  brick_ctx_free(ctx);
}
END_TEST

/* Run "cmd" through the shell; its standard error into "err" (malloc'ed); the exit status. */
static int run_shell(const char *cmd, char **err) {
  char errpath[] = "/tmp/brick_sched_errXXXXXX";
  int fd = mkstemp(errpath);
  ck_assert_int_ge(fd, 0);
  close(fd);
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_printf(&sb, "%s 2>%s", cmd, errpath);
  int st = system(bk_strbuf_cstr(&sb));
  bk_strbuf_release(&sb);
  FILE *f = fopen(errpath, "rb");
  bk_strbuf out;
  bk_strbuf_init(&out);
  char buf[4096];
  size_t n;
  while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
    bk_strbuf_append(&out, buf, n);
  if (f)
    fclose(f);
  unlink(errpath);
  bk_strbuf_puts(&out, "");
  *err = bk_strbuf_take(&out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A sample of the table through the real binary: the same text on stderr, exit status 2. */
START_TEST(test_bad_schedules_cli) {
  const char *bin = getenv("BRICK_BINARY");
  ck_assert_msg(bin, "BRICK_BINARY is not set");
  char dir[] = "/tmp/brick_schedXXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  static const char *const files[] = {conv_text, strided_text, fc_text, rank8_text, diag_text};
  static const char *const names[] = {"conv.bk", "strided.bk", "fc.bk", "rank8.bk", "diag.bk"};
  for (int f = 0; f < 5; f++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, names[f]);
    FILE *fp = fopen(path, "w");
    fputs(files[f], fp);
    fclose(fp);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i += reduced() ? 11 : 3) {
    const bad_schedule *b = &bad[i];
    int f = b->kernel == conv_text      ? 0
            : b->kernel == strided_text ? 1
            : b->kernel == fc_text      ? 2
            : b->kernel == rank8_text   ? 3 : 4;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' compile %s/%s -o %s/out.o --schedule '%s'", bin, dir,
             names[f], dir, b->schedule);
    char *err;
    int st = run_shell(cmd, &err);
    char *want = expected_diag(b->schedule, b->col, b->len, b->msg);
    ck_assert_msg(st == 2, "'%s': exit %d, want 2 (stderr: %s)", b->schedule, st, err);
    ck_assert_str_eq(err, want);
    free(want);
    free(err);
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A valid schedule of every kind compiles through the API. */
START_TEST(test_good_schedules_api) {
  static const struct { const char *kernel, *schedule; } good[] = {
      {conv_text, "s0{brgemm(m=q/4,n=k/2,k=c/4;batch=r,s);order=k/2,q/4,n,c/4,p;parallel=q/4;"
                  "pack=I:pad}"},
      {conv_text, "s0{brgemm(m=q,n=k,k=c/3;batch=c/3,r,s);order=n,p;pack=I:pad}"},
      {conv_text, "s0{brgemm(m=q,n=k;batch=c,r,s);order=n,p;pack=I:im2col}"},
      {strided_text, "s0{brgemm(m=q,n=k,k=c;batch=r,s);order=p,n;parallel=p;pack=I:im2col}"},
      {strided_text, "s0{brgemm(m=q,n=k,k=r;batch=c,s);order=p,n;parallel=p;pack=I:im2row}"},
      {fc_text, "s0{brgemm(m=k/5,n=n/3,k=c/7);order=c/7,n/3,k/5;pack=Wt:im2col} "
                "act{loops;order=k,n;parallel=k}"},
      {fc_text, "s0{loops;order=c,k,n;parallel=n;pack=X:pad} s1{loops}"},
      /* the line 'brick show --schedule' prints, the kernel's name first */
      {fc_text, "fc: s0{brgemm(m=k,n=n,k=c);pack=Wt:im2col} s1{loops;order=n,k}"},
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    brick_ctx *ctx = brick_ctx_new();
    brick_program *prog;
    ck_assert_int_eq(brick_program_parse_string(ctx, "k.bk", good[i].kernel, NULL, &prog),
                     BRICK_OK);
    brick_options *opts = brick_options_new();
    brick_options_set_schedule(opts, good[i].schedule);
    brick_options_set_threads(opts, 1);
    brick_module *mod = NULL;
    ck_assert_msg(brick_compile(ctx, prog, 0, opts, &mod) == BRICK_OK, "'%s': %s",
                  good[i].schedule, brick_ctx_last_error(ctx));
    char *text;
    ck_assert_int_eq(brick_kernel_schedule(ctx, prog, 0, opts, &text), BRICK_OK);
    free(text);
    brick_module_free(mod);
    brick_options_free(opts);
    brick_program_free(prog);
    brick_ctx_free(ctx);
  }
}
END_TEST

/* ---- regressions ---------------------------------------------------------------------------- */

/* JIT-compile "text" (one kernel: 1 or 2 inputs, then 1 output) with "schedule" and "threads",
 * run it five times (races show up as intermittent failures) and compare with the interpreter. */
static void check_runs_on(const char *text, const char *schedule, int threads, const char *target) {
  loaded *l = load_text("regress.bk", text);
  const ir_kernel *k = l->prog->kernels.data[0];
  int np = k->params.len;
  float *args[8];
  uint64_t seed = 99;
  for (int i = 0; i < np; i++) {
    args[i] = malloc(sizeof(float) * (size_t)k->params.data[i]->nelems);
    oracle_fill(args[i], k->params.data[i]->nelems, &seed);
  }
  double **ref = oracle_reference(k, args);
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog;
  ck_assert_int_eq(brick_program_parse_string(ctx, "regress.bk", text, NULL, &prog), BRICK_OK);
  brick_options *opts = brick_options_new();
  brick_options_set_schedule(opts, schedule);
  brick_options_set_threads(opts, threads);
  if (target)
    brick_options_set_target(opts, target);
  brick_module *mod;
  ck_assert_msg(brick_compile(ctx, prog, 0, opts, &mod) == BRICK_OK, "%s", brick_ctx_last_error(ctx));
  void *sym = brick_module_lookup(ctx, mod, k->name);
  ck_assert_ptr_nonnull(sym);
  ck_assert(np == 2 || np == 3);
  for (int run = 0; run < 5; run++) {
    oracle_fill_nan(args[np - 1], k->params.data[np - 1]->nelems);
    if (np == 2)
      ((void (*)(float *, float *))sym)(args[0], args[1]);
    else
      ((void (*)(float *, float *, float *))sym)(args[0], args[1], args[2]);
    ck_assert_msg(oracle_check(k, args, ref, schedule) <= ORACLE_TOLERANCE, "%s: run %d differs",
                  schedule, run);
  }
  brick_module_free(mod);
  brick_options_free(opts);
  brick_program_free(prog);
  brick_ctx_free(ctx);
  oracle_reference_free(k, ref);
  for (int i = 0; i < np; i++)
    free(args[i]);
  loaded_free(l);
}

static void check_runs(const char *text, const char *schedule, int threads) {
  check_runs_on(text, schedule, threads, NULL);
}

/* The default schedule of kernel "text" on "threads" threads, without the kernel's name
 * (malloc'ed). */
/* A context, "text" parsed and options with "schedule" (NULL: the default) and "threads". */
typedef struct session {
  brick_ctx *ctx;
  brick_program *prog;
  brick_options *opts;
} session;

static session session_open(const char *text, const char *schedule, int threads) {
  session S = {.ctx = brick_ctx_new(), .opts = brick_options_new()};
  ck_assert_int_eq(brick_program_parse_string(S.ctx, "test.bk", text, NULL, &S.prog), BRICK_OK);
  if (schedule)
    brick_options_set_schedule(S.opts, schedule);
  brick_options_set_threads(S.opts, threads);
  return S;
}

static void session_close(session *S) {
  brick_options_free(S->opts);
  brick_program_free(S->prog);
  brick_ctx_free(S->ctx);
}

static char *default_schedule(const char *text, int threads) {
  session S = session_open(text, NULL, threads);
  char *named;
  ck_assert_int_eq(brick_kernel_schedule(S.ctx, S.prog, 0, S.opts, &named), BRICK_OK);
  const char *sp = strstr(named, ": "), *brace = strchr(named, '{');
  char *plain = strdup(sp && (!brace || sp < brace) ? sp + 2 : named);
  free(named);
  session_close(&S);
  return plain;
}

/* check_runs on 1 thread, then on 2. */
static void check_runs_1_2(const char *text, const char *schedule) {
  check_runs(text, schedule, 1);
  check_runs(text, schedule, 2);
}

/* A K range that starts off a multiple of the K tile and is no longer than one tile still
 * spans two partial tiles (1..4 and 4..5 for tile 4): codegen knew only the size 4. */
START_TEST(test_regress_k_tile_off_origin) {
  check_runs("kernel k(A: f32[5, 7], B: f32[7, 4]) -> (C: f32[5, 4]) {\n"
             "  C[i, j] += A[i, k - 2] * B[k, j] where k in 1..5\n}\n",
             "s0{brgemm(m=j,n=i,k=k/4);order=k/4;pack=A:pad}", 1);
  check_runs("kernel k(A: f32[5, 7], B: f32[7, 4]) -> (C: f32[5, 4]) {\n"
             "  C[i, j] += A[i, k + 2] * B[k, j] where k in -3..4\n}\n",
             "s0{brgemm(m=j,n=i,k=k/2);order=k/2;pack=A:pad,B:pad}", 1);
}
END_TEST

/* A parallel loop of one iteration (i/4 over 4 rows): isl generates no loop for it, and the
 * "parallel" mark ended up above the K tile loop, which carries the reduction (a race). */
START_TEST(test_regress_parallel_single_trip) {
  check_runs("kernel k(A: f32[4, 17], B: f32[17, 59]) -> (C: f32[4, 59]) {\n"
             "  C[i, j] += A[i, k - 3] * B[k, j] where k in 2..9\n}\n",
             "s0{brgemm(m=j,n=i/4,k=k/4);order=i/4,k/4;parallel=i/4;pack=A:im2col,B:pad}", 2);
}
END_TEST

/* im2row of a padded 7x7/2 convolution (the ResNet-50 first layer, shrunk): rows stay padded
 * and shared by the filter rows, columns are expanded over (s, q); K = r, c and s batched. */
START_TEST(test_im2row_conv) {
  static const char text[] =
      "kernel c1(I: f32[1, 3, 20, 22], Wt: f32[5, 3, 7, 7]) -> (O: f32[1, 5, 10, 11]) {\n"
      "  O[n, k, p, q] += I[n, c, 2*p + r - 3, 2*q + s - 3] * Wt[k, c, r, s]\n"
      "}\n";
  check_runs(text, "s0{brgemm(m=q,n=k,k=r;batch=c,s);order=n,p;parallel=p;pack=I:im2row}", 2);
  check_runs(text, "s0{brgemm(m=q/4,n=k/2,k=s/3;batch=r,c);order=q/4,p,n,k/2,s/3;pack=I:im2row}",
             1);
}
END_TEST

/* A padded copy whose rows are a multiple of 256 floats gets 16 more per row (no 1 KiB
 * aliasing in L1): the copy's pitch and the BRGEMM's lda must agree, with and without
 * out-of-bounds reads, and for the M operand (the default for big GEMMs) and the broadcast
 * one. */
START_TEST(test_pad_pitch) {
  check_runs("kernel k(A: f32[9, 70], B: f32[70, 256]) -> (C: f32[9, 256]) {\n"
             "  C[i, j] += A[i, k] * B[k, j]\n}\n",
             "s0{brgemm(m=j/96,n=i/4,k=k/16);order=j/96,i/4,k/16;parallel=j/96;pack=B:pad}", 2);
  check_runs("kernel k(A: f32[9, 255], B: f32[256, 33]) -> (C: f32[9, 33]) {\n"
             "  C[i, j] += A[i, k - 1] * B[k, j]\n}\n",
             "s0{brgemm(m=j,n=i/4,k=k/64);order=i/4,k/64;pack=A:pad}", 1);
  /* the default: N >= 1024 and rows of 256 floats, so B is copied with the longer pitch */
  static const char big[] = "kernel k(A: f32[1024, 64], B: f32[64, 256]) -> (C: f32[1024, 256]) {\n"
                            "  C[i, j] += A[i, k] * B[k, j]\n}\n";
  char *text = default_schedule(big, 2);
  ck_assert_msg(strstr(text, "pack=B:pad"), "default schedule without the pitch copy: %s", text);
  check_runs(big, text, 2);
  free(text);
}
END_TEST

static char *loops_of(const char *text, const char *schedule, int threads);

/* "tail=T": the last T iterations of M run as dot products after the BRGEMM calls (a copy of
 * A's slice, a fill when the statement starts the accumulation, a loop nest). The default
 * takes a tail of 1 or 2 where B has a long unit-stride run of reductions (1x1 conv on 7x7, a
 * GEMM with 33 columns, a 3x3 on 7x7 after an im2col copy), not where M ends 6 past a vector.
 * Outputs start as NaN, so a tail element left unfilled or unwritten fails. */
START_TEST(test_m_tail) {
  static const char c1x1[] = "kernel k(I: f32[1, 80, 7, 7], W: f32[24, 80, 1, 1]) -> (O: f32[1, 24, 7, 7]) {\n"
                             "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  static const char gemm[] = "kernel k(A: f32[5, 70], B: f32[70, 33]) -> (C: f32[5, 33]) {\n"
                             "  C[i, j] += A[i, k] * B[k, j]\n}\n";
  static const char c3x3[] = "kernel k(I: f32[1, 32, 12, 12], W: f32[64, 32, 3, 3]) -> (O: f32[1, 64, 10, 10]) {\n"
                             "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  const char *texts[] = {c1x1, gemm};
  for (int i = 0; i < 2; i++) {
    char *text = default_schedule(texts[i], 1);
    ck_assert_msg(strstr(text, ";tail=1"), "no tail in the default schedule: %s", text);
    check_runs(texts[i], text, 1);
    free(text);
  }
  char *text = default_schedule(c3x3, 2);
  ck_assert_msg(!strstr(text, "tail="), "a tail in the default schedule of a 3x3: %s", text);
  free(text);
  /* a padded 3x3 on 7x7 with 128 outputs: the input read in place with the padding masked
   * off (M = 49, not 61 at the padded pitch 9), and the tail's dot products along c, r, s at
   * once (in the calls by default; after them below); the same with an im2row copy with the
   * rows next to each other and with an im2col copy */
  static const char small[] = "kernel k(I: f32[1, 16, 7, 7], W: f32[128, 16, 3, 3]) -> (O: f32[1, 128, 7, 7]) {\n"
                              "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  text = default_schedule(small, 1);
  ck_assert_msg(strstr(text, ";flatten=p;tail=1:call;") && strstr(text, "pack=I:mask"),
                "not the masked rows and a tail: %s", text);
  check_runs(small, text, 1);
  char *after = strstr(text, ":call;");
  memmove(after, after + 5, strlen(after + 5) + 1); /* tail=1: the loop nest after the calls */
  check_runs(small, text, 1);
  check_runs(small, "s0{brgemm(m=q,n=k/64,k=c;batch=r,s);flatten=p;tail=1:call;order=n,p,k/64;"
                    "pack=I:im2row}", 2);
  check_runs(small, "s0{brgemm(m=q,n=k/64,k=c;batch=r,s);flatten=p;tail=1;order=n,p,k/64;"
                    "pack=I:im2col}", 2);
  /* a padded 3x3 on 28x28: the input read in place with the padding masked off makes M the
   * 784 pixels (49 vectors, not 53 at the padded pitch 30), written straight into O: no copy
   * and no copy-back op; the im2row copy [c][s][row][q] does the same with a copy */
  static const char c28[] = "kernel k(I: f32[1, 16, 28, 28], W: f32[32, 16, 3, 3]) -> (O: f32[1, 32, 28, 28]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  char *t28 = default_schedule(c28, 2);
  ck_assert_msg(strstr(t28, ";flatten=p;") && strstr(t28, "pack=I:mask"), "%s", t28);
  check_runs_1_2(c28, t28);
  char *l28 = loops_of(c28, t28, 1);
  ck_assert_msg(strstr(l28, "// O0: BRGEMM") && !strstr(l28, "// O1"), "%s", l28);
  free(l28);
  free(t28);
  static const char r28[] = "s0{brgemm(m=q/400,n=k,k=c;batch=r,s);flatten=p;order=n,p,q/400;"
                            "parallel=q/400;pack=I:im2row}";
  check_runs_1_2(c28, r28);
  l28 = loops_of(c28, r28, 1);
  ck_assert_msg(strstr(l28, "// O1: BRGEMM") && !strstr(l28, "// O2"), "%s", l28);
  free(l28);
  /* the input read in place, the padding masked off inside the calls: taps of a dilated
   * 3x3 and of a 5x5 with 2 pixels of padding, M tiles that start inside a row, a tail after
   * the calls, K tiles with a border, a fused ReLU, 2 images on 2 threads */
  static const char dil[] = "kernel k(I: f32[2, 5, 11, 11], W: f32[7, 5, 3, 3]) -> (O: f32[2, 7, 11, 11]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + 2*r - 2, q + 2*s - 2] * W[k, c, r, s]\n}\n";
  check_runs_1_2(dil, "s0{brgemm(m=q/16,n=k,k=c/2;batch=r,s);flatten=p;order=n,p,q/16,c/2;"
                      "parallel=n;pack=I:mask}");
  check_runs_1_2(dil, "s0{brgemm(m=q,n=k,k=c;batch=r,s);flatten=p;tail=3;order=n,p;pack=I:mask}");
  static const char p5[] = "kernel k(I: f32[1, 3, 10, 10], W: f32[4, 3, 5, 5]) -> (O: f32[1, 4, 10, 10]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 2, q + s - 2] * W[k, c, r, s]\n"
                           "  O[n, k, p, q] = relu(O[n, k, p, q])\n}\n";
  check_runs_1_2(p5, "s0{brgemm(m=q/48,n=k,k=c;batch=r,s);flatten=p;order=n,p,q/48;"
                     "parallel=q/48;epilogue=s1;pack=I:mask} s1{fused}");
  /* found by a review: a K tile loop inside the batch, not outermost (the shifts followed the
   * taps in another order than the offsets); a conv reading a local that another conv wrote
   * (the padding lanes were reads with no writer for the isl check) */
  static const char c8[] = "kernel k(I: f32[1, 8, 6, 6], W: f32[4, 8, 3, 3]) -> (O: f32[1, 4, 6, 6]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  check_runs_1_2(c8, "s0{brgemm(m=q,n=k,k=c/4;batch=r,s,c/4);flatten=p;order=n,p;pack=I:mask}");
  check_runs_1_2(c8, "s0{brgemm(m=q,n=k,k=c/4;batch=s,c/4,r);flatten=p;order=n,p;pack=I:mask}");
  static const char two[] = "kernel k(I: f32[1, 8, 9, 9], W: f32[8, 8, 3, 3]) -> (O: f32[1, 8, 9, 9]) {\n"
                            "  local T: f32[1, 8, 9, 9]\n"
                            "  T[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n"
                            "  O[n, k, p, q] += T[n, c, p + r - 1, q + s - 1] * W[c, k, r, s]\n}\n";
  char *t2 = default_schedule(two, 1);
  ck_assert_msg(strstr(t2, "pack=T:mask"), "%s", t2);
  check_runs_1_2(two, t2);
  free(t2);
  /* and on shapes drawn at random: images from 1x1 to 19x23, filters up to 5x5 with any
   * padding up to "same" and dilations of 1-2, M tiles from 16 up, K tiles with borders, tails
   * up to a row, 1 or 2 images */
  uint64_t rng = 2026;
  for (int t = 0; t < 24; t++) {
    int64_t C = 1 + sched_rng_below(&rng, 9), K = 1 + sched_rng_below(&rng, 20);
    int64_t R = 1 + sched_rng_below(&rng, 5), S = 1 + sched_rng_below(&rng, 5);
    int64_t D = 1 + sched_rng_below(&rng, 2), H = 1 + sched_rng_below(&rng, 19);
    int64_t W = 1 + sched_rng_below(&rng, 23), N = 1 + sched_rng_below(&rng, 2);
    int64_t PR = sched_rng_below(&rng, (D * (R - 1)) / 2 + 1), PS = D * (S - 1) / 2;
    int64_t P = H + 2 * PR - D * (R - 1), Q = W + 2 * PS - D * (S - 1); /* Q < W: scratch rows */
    if (P < 1 || Q < 1)
      continue;
    char text[512], sch[256];
    snprintf(text, sizeof text,
             "kernel k(I: f32[%lld, %lld, %lld, %lld], W: f32[%lld, %lld, %lld, %lld]) -> "
             "(O: f32[%lld, %lld, %lld, %lld]) {\n  O[n, k, p, q] += I[n, c, p + %lld*r - %lld, "
             "q + %lld*s - %lld] * W[k, c, r, s]\n}\n",
             (long long)N, (long long)C, (long long)H, (long long)W, (long long)K, (long long)C,
             (long long)R, (long long)S, (long long)N, (long long)K, (long long)P, (long long)Q,
             (long long)D, (long long)PR, (long long)D, (long long)PS);
    int64_t m = P * W, mt = 16 * (1 + sched_rng_below(&rng, 4)), kt = 1 + sched_rng_below(&rng, C);
    int64_t tail = sched_rng_below(&rng, 3) ? 0 : 1 + sched_rng_below(&rng, Q < m ? Q : m - 1);
    if (tail >= m)
      tail = 0;
    if (tail) /* the tail runs on whole rows of M: no M tiles; inside the calls, K whole */
      snprintf(sch, sizeof sch, "s0{brgemm(m=q,n=k,k=c/%lld;batch=r,s);flatten=p;tail=%lld%s;"
               "order=n,p,c/%lld;pack=I:mask}", (long long)(tail <= 4 && t % 2 ? C : kt),
               (long long)tail, tail <= 4 && t % 2 ? ":call" : "",
               (long long)(tail <= 4 && t % 2 ? C : kt));
    else
      snprintf(sch, sizeof sch, "s0{brgemm(m=q/%lld,n=k,k=c/%lld;batch=r,s);flatten=p;"
               "order=n,p,q/%lld,c/%lld;pack=I:mask}", (long long)mt, (long long)kt, (long long)mt,
               (long long)kt);
    check_runs_1_2(text, sch);
    if (t % 4 == 0) /* the same masks on AVX2 (vector masks) and in generic vectors */
      check_runs_on(text, sch, 1, t % 8 ? "x86-64-v3" : "x86_64-pc-linux-gnu:x86-64");
  }
  /* found by the random tests: r is a reduction of one factor only, so A's copy has no r and
   * the tail's k and r (one after the other in B) cannot run as one loop */
  check_runs("kernel k(A: f32[3, 4, 25], B: f32[4, 57]) -> (C: f32[2, 25, 57]) {\n"
             "  C[l, i, j] += A[r, k, i] * B[k, j]\n}\n",
             "s0{brgemm(m=j,n=i/25,k=k/4;batch=r);tail=3;order=k/4,l,i/25;pack=A:im2col}", 1);
  /* found by the random tests once the tail ran inside the BRGEMM's loops: the tail lies past
   * the last M tile of the calls, and the iterations of its own tiles had a call over nothing */
  const char *mt = "s0{brgemm(m=i/4,n=j/16,k=k/6;batch=r);tail=10;order=i/4,j/16,k/6,l;"
                   "parallel=i/4;pack=A:im2row,B:im2col}";
  static const char odd[] = "kernel k(A: f32[61, 4, 4], B: f32[4, 8]) -> (C: f32[3, 8, 61]) {\n"
                            "  C[l, j, i] += A[i, r, k] * B[k, j]\n}\n";
  check_runs_1_2(odd, mt);
  char *loops = loops_of(small, text, 1);
  ck_assert_msg(strstr(loops, " <= 143; "), "the tail's reductions are not one loop:\n%s", loops);
  free(loops);
  free(text);
  /* the flattened rows of a 3x3 (pitch 12, a copy-back), a parallel BRGEMM: the tail's loop
   * nest (64 x 6 x 288 points) splits over k; then a tail of one, then one vector */
  const char *s3 = "s0{brgemm(m=q,n=k/16,k=c/16;batch=r,s);flatten=p;tail=6;order=n,p,k/16,c/16;"
                   "parallel=k/16}";
  check_runs_1_2(c3x3, s3);
  check_runs(c3x3, "s0{brgemm(m=q,n=k/16,k=c/16;batch=r,s);flatten=p;tail=1;order=n,p,k/16,c/16}", 1);
  check_runs(c3x3, "s0{brgemm(m=q,n=k/16,k=c/16;batch=r,s);flatten=p;tail=16;order=n,p,k/16,c/16}", 1);
  loops = loops_of(c3x3, s3, 2);
  ck_assert_msg(strstr(loops, "// O1: pack") && strstr(loops, "// O2: fill") &&
                strstr(loops, "// O3: statement") && strstr(loops, "// parallel"),
                "the tail ops are not there:\n%s", loops);
  free(loops);
}
END_TEST

/* A tail's dot products in blocks ("dot" mark, codegen/dot.c): 2 rows by 2, 3 and 4 points
 * (2, 1 and 1 vectors per step), 1 row by 9 (in passes of 8 points), a border row, reductions
 * that end in a partial vector (c of a 1x1 in K tiles of 32 and 6; c, r, s merged, 45 long),
 * on AVX-512 and AVX2 (vectors of 8), inside the calls' loops and after them (a loop over r
 * outside the calls: the tail's own loop nest, parallel over its rows), on 1 and 2 threads.
 * A tail of one point stays LLVM's loop. */
START_TEST(test_tail_dot_blocks) {
  static const char c1[] = "kernel k(I: f32[2, 70, 5, 5], W: f32[21, 70, 1, 1]) -> (O: f32[2, 21, 5, 5]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  static const char c3[] = "kernel k(I: f32[1, 5, 7, 7], W: f32[19, 5, 3, 3]) -> (O: f32[1, 19, 7, 7]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  static const int tails[] = {1, 2, 4, 9};
  const char *targets[] = {NULL, "x86-64-v3"};
  for (int i = 0; i < 4; i++) {
    char sch[256];
    snprintf(sch, sizeof sch, "s0{brgemm(m=q,n=k/8,k=c/32);flatten=p;tail=%d;order=n,p,k/8,c/32;"
             "parallel=k/8}", tails[i]);
    char *loops = loops_of(c1, sch, 1);
    ck_assert_msg(!strstr(loops, "// dot") == (tails[i] == 1), "dot blocks %s:\n%s",
                  tails[i] == 1 ? "for one point" : "missing", loops);
    free(loops);
    for (int t = 0; t < 2; t++)
      for (int threads = 1; threads <= 2; threads++)
        check_runs_on(c1, sch, threads, targets[t]);
  }
  const char *s3 = "s0{brgemm(m=q,n=k/16,k=c;batch=r,s);flatten=p;tail=3;order=n,p,k/16;pack=I:im2row}";
  char *loops = loops_of(c3, s3, 2);
  ck_assert_msg(strstr(loops, "// dot") && strstr(loops, " <= 44; "), "no dot blocks over c, r, s:\n%s", loops);
  free(loops);
  for (int t = 0; t < 2; t++)
    check_runs_on(c3, s3, 2, targets[t]);
  static const char c3k[] = "kernel k(I: f32[1, 5, 7, 7], W: f32[515, 5, 3, 3]) -> (O: f32[1, 515, 7, 7]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  const char *apart = "s0{brgemm(m=q,n=k/64,k=c;batch=s);flatten=p;tail=3;order=n,p,k/64,r;"
                      "parallel=k/64;pack=I:im2row}";
  loops = loops_of(c3k, apart, 2);
  const char *dot = strstr(loops, "// dot"), *fill = strstr(loops, "O3("), *par = strstr(loops, "// parallel");
  ck_assert_msg(dot && fill && fill < dot && par && strstr(par + 1, "// parallel") &&
                strstr(par + 1, "// parallel") < dot, "not a parallel tail after the calls:\n%s", loops);
  free(loops);
  check_runs_1_2(c3k, apart);
  /* no blocks (found by a review): 40 points (codegen unrolls the passes over them), a
   * reduction shorter than a vector, the reduction outside M */
  static const char fc[] = "kernel fc(I: f32[3, 40], W: f32[40, 40]) -> (O: f32[3, 40]) {\n"
                           "  O[n, k] += I[n, c] * W[k, c]\n}\n";
  static const char fc2[] = "kernel fc(I: f32[3, 2], W: f32[40, 2]) -> (O: f32[3, 40]) {\n"
                            "  O[n, k] += I[n, c] * W[k, c]\n}\n";
  const char *none[][2] = {{fc, "s0{loops;order=n,k,c}"}, {fc2, "s0{loops;order=k,n,c}"},
                           {fc, "s0{loops;order=k,c,n}"}, {fc, "s0{loops;order=k,n,c}"}};
  for (int i = 0; i < 4; i++) {
    loops = loops_of(none[i][0], none[i][1], 1);
    ck_assert_msg(!strstr(loops, "// dot") == (i < 3), "%s:\n%s", none[i][1], loops);
    free(loops);
    check_runs(none[i][0], none[i][1], 1);
  }
}
END_TEST

/* The loop nest of kernel "text" with "schedule" on "threads" threads (malloc'ed). */
static char *loops_of(const char *text, const char *schedule, int threads) {
  session S = session_open(text, schedule, threads);
  char *loops;
  ck_assert_int_eq(brick_kernel_loops(S.ctx, S.prog, 0, S.opts, &loops), BRICK_OK);
  session_close(&S);
  return loops;
}

/* Packs that transpose (W[k,c] into [c][k]; conv weights into [c][r][s][k]) run over 2-D
 * blocks: 32 of the innermost loop (k) by ~32 elements of the contiguous read, block loops
 * outermost, split across threads; a 2-D one in 16 x 16 tiles under a "transpose" mark (full
 * tiles: vector loads, shuffles, stores; border tiles: the loops). Extents that are not
 * multiples of the blocks, a copy big enough to run in parallel. */
START_TEST(test_transpose_blocks) {
  static const char fc[] = "kernel k(X: f32[5, 77], W: f32[70, 77]) -> (Y: f32[5, 70]) {\n"
                           "  Y[n, k] += X[n, c] * W[k, c]\n}\n";
  const char *fc_sched = "s0{brgemm(m=k/48,n=n,k=c/32);order=k/48,c/32;parallel=k/48;pack=W:im2col}";
  check_runs_1_2(fc, fc_sched);
  check_runs("kernel k(X: f32[3, 300], W: f32[261, 300]) -> (Y: f32[3, 261]) {\n"
             "  Y[n, k] += X[n, c] * W[k, c]\n}\n",
             "s0{brgemm(m=k/64,n=n,k=c/64);order=k/64,c/64;parallel=k/64;pack=W:im2col}", 2);
  /* a 36 MB workspace: above glibc's mmap threshold, so NAME maps it in huge pages */
  check_runs("kernel k(X: f32[1, 3000], W: f32[3000, 3000]) -> (Y: f32[1, 3000]) {\n"
             "  Y[n, k] += X[n, c] * W[k, c]\n}\n",
             "s0{brgemm(m=k/512,n=n,k=c/128);order=k/512,c/128;parallel=k/512;pack=W:im2col}", 2);
  check_runs("kernel k(I: f32[1, 7, 9, 9], W: f32[40, 7, 3, 3]) -> (O: f32[1, 7, 7, 40]) {\n"
             "  O[n, p, q, k] += W[k, c, r, s] * I[n, c, p + r, q + s]\n}\n",
             "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;parallel=p;pack=W:im2col}", 2);
  char *loops = loops_of(fc, fc_sched, 2);
  /* the pack: blocks of k and c, 16 x 16 tiles in them, the mark, c and k in the tile */
  ck_assert_msg(strstr(loops, "c2 = 2 * c0; c2 <= min(4, 2 * c0 + 1)") &&
                    strstr(loops, "// transpose") &&
                    strstr(loops, "c4 = 16 * c3; c4 <= min(76, 16 * c3 + 15)") &&
                    strstr(loops, "c5 = 16 * c2; c5 <= min(69, 16 * c2 + 15)"),
                "the transposing pack is not blocked:\n%s", loops);
  free(loops);
  /* a statement that only copies another tensor (weights packed once) is blocked the same
   * way: 16 x 16 tiles of a 2-D transpose, 32-blocks of the 4-D conv weights' repack, one
   * with a border; a big one runs in parallel by default */
  static const char t2[] = "kernel k(W: f32[70, 77], B: f32[77]) -> (T: f32[77, 70]) {\n"
                           "  T[c, k] = W[k, c]\n  T[c, k] += B[c]\n}\n";
  static const char t4[] = "kernel k(W: f32[40, 7, 3, 3], B: f32[7]) -> (T: f32[7, 3, 3, 40]) {\n"
                           "  T[c, r, s, k] = W[k, c, r, s]\n  T[c, r, s, k] += B[c]\n}\n";
  check_runs_1_2(t2, "s0{loops;order=c,k} s1{loops}");
  check_runs_1_2(t4, "s0{loops;order=c,r,s,k} s1{loops}");
  loops = loops_of(t2, "s0{loops;order=c,k} s1{loops}", 1);
  ck_assert_msg(strstr(loops, "// transpose"), "the transposing statement is not tiled:\n%s", loops);
  free(loops);
  /* the default runs a big copy in parallel (it has no FLOPs for the usual threshold), a
   * small one not */
  static const char bigc[] = "kernel k(W: f32[256, 64, 3, 3]) -> (T: f32[64, 3, 3, 256]) {\n"
                             "  T[c, r, s, k] = W[k, c, r, s]\n}\n";
  char *text = default_schedule(bigc, 2);
  ck_assert_msg(strstr(text, "parallel="), "%s", text);
  free(text);
  static const char bigc2[] = "kernel k(W: f32[256, 64, 3, 3], B: f32[64]) -> (T: f32[64, 3, 3, 256]) {\n"
                              "  T[c, r, s, k] = W[k, c, r, s]\n  T[c, r, s, k] += B[c]\n}\n";
  text = default_schedule(bigc2, 2);
  ck_assert_msg(strstr(text, "s0{loops;order=c,r,s,k;parallel=c}"), "%s", text);
  check_runs_1_2(bigc2, text);
  free(text);
  text = default_schedule("kernel k(W: f32[16, 64]) -> (T: f32[64, 16]) {\n  T[c, k] = W[k, c]\n}\n", 2);
  ck_assert_msg(!strstr(text, "parallel="), "%s", text);
  free(text);
  loops = loops_of(t4, "s0{loops;order=c,r,s,k} s1{loops}", 1);
  ck_assert_msg(strstr(loops, "c5 = 32 * c0; c5 <= min(39, 32 * c0 + 31)"),
                "the repack is not blocked:\n%s", loops);
  free(loops);
}
END_TEST

/* Packs that read every other element (the subsampled input of a stride-2 1x1 conv, the
 * im2row of a padded 7x7/2 one) run in 16-wide tiles (8-wide for rows under 16) under a
 * "subsample" mark: full tiles in bounds move with two vector loads and a shuffle, the
 * others (row ends, padding, the last row of the buffer) with the loops. */
START_TEST(test_subsample_tiles) {
  static const char s2[] = "kernel k(I: f32[1, 5, 40, 37], W: f32[6, 5]) -> (O: f32[1, 6, 20, 19]) {\n"
                           "  O[n, k, p, q] += I[n, c, 2*p, 2*q] * W[k, c]\n}\n";
  const char *s2_sched = "s0{brgemm(m=q,n=k,k=c);order=n,p;parallel=p;pack=I:im2col}";
  check_runs_1_2(s2, s2_sched);
  check_runs("kernel k(I: f32[1, 4, 28, 27], W: f32[6, 4]) -> (O: f32[1, 6, 14, 14]) {\n"
             "  O[n, k, p, q] += I[n, c, 2*p, 2*q] * W[k, c]\n}\n",
             "s0{brgemm(m=q,n=k,k=c);order=n,p;pack=I:im2col}", 1);
  check_runs("kernel c1(I: f32[1, 3, 40, 45], Wt: f32[5, 3, 7, 7]) -> (O: f32[1, 5, 20, 23]) {\n"
             "  O[n, k, p, q] += I[n, c, 2*p + r - 3, 2*q + s - 3] * Wt[k, c, r, s]\n}\n",
             "s0{brgemm(m=q,n=k,k=r;batch=c,s);order=n,p;parallel=p;pack=I:im2row}", 2);
  char *loops = loops_of(s2, s2_sched, 0);
  ck_assert_msg(strstr(loops, "// subsample") && strstr(loops, "16 * c"),
                "the stride-2 pack is not tiled:\n%s", loops);
  free(loops);
}
END_TEST

/* A fully connected layer with PyTorch's weights W[k, c] runs as dot products along c by
 * default when each weight serves few images (here 1 and 8): a BRGEMM would need W
 * transposed, a copy of all of W. Loops: k outermost, so each row of W stays in L1 for all
 * images. With 12 images and a small W, the copy pays again. */
START_TEST(test_gemv_dot_products) {
  static const char *const texts[] = {
      "kernel k(X: f32[1, 300], W: f32[70, 300]) -> (Y: f32[1, 70]) {\n"
      "  Y[n, k] += X[n, c] * W[k, c]\n}\n",
      "kernel k(X: f32[8, 300], W: f32[70, 300]) -> (Y: f32[8, 70]) {\n"
      "  Y[n, k] += X[n, c] * W[k, c]\n}\n",
      "kernel k(X: f32[12, 300], W: f32[70, 300]) -> (Y: f32[12, 70]) {\n"
      "  Y[n, k] += X[n, c] * W[k, c]\n}\n"};
  for (int i = 0; i < 3; i++) {
    char *text = default_schedule(texts[i], 1);
    ck_assert_msg((strcmp(text, "s0{loops;order=k,n,c}") == 0) == (i < 2), "%d: %s", i, text);
    check_runs(texts[i], text, 1);
    free(text);
  }
}
END_TEST

/* A 'where' range that ends at or below 0 was taken for "no range inferred". */
START_TEST(test_regress_where_negative_range) {
  check_runs("kernel k(A: f32[1, 4], B: f32[4, 19]) -> (C: f32[1, 19]) {\n"
             "  C[i, j] += A[i, k + 6] * B[k + 5, j] where k in -5..-3\n}\n",
             "s0{loops;order=k,j,i}", 1);
}
END_TEST

/* Does the LLVM IR of "text" compiled with "schedule" (NULL: the default) for "threads" contain
 * "needle"? */
static bool llvm_has_on(const char *text, const char *schedule, const char *needle, int64_t l2,
                        int threads) {
  session S = session_open(text, schedule, threads);
  if (l2)
    brick_options_set_caches(S.opts, 32768, l2, 32 << 20);
  brick_ctx *ctx = S.ctx;
  brick_module *mod;
  ck_assert_msg(brick_compile(ctx, S.prog, 0, S.opts, &mod) == BRICK_OK, "%s", brick_ctx_last_error(ctx));
  char path[] = "/tmp/brick_test_irXXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(brick_module_emit(ctx, mod, BRICK_EMIT_LLVM, path), BRICK_OK);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  bool found = false;
  char line[4096];
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, needle) != NULL;
  fclose(f);
  unlink(path);
  brick_module_free(mod);
  session_close(&S);
  return found;
}

static bool llvm_has_l2(const char *text, const char *schedule, const char *needle, int64_t l2) {
  return llvm_has_on(text, schedule, needle, l2, 0);
}

static bool llvm_has(const char *text, const char *schedule, const char *needle) {
  return llvm_has_l2(text, schedule, needle, 0);
}

/* "tail=T:call": the calls cover all of M and run its last T iterations as dot products
 * (brg_desc.dot_rows). Tails of 1-4 over c, r, s of a 3x3 (offset tables that interleave
 * each row of W), over c of a 1x1 in K tiles of 32 and 6, a fully connected layer with a
 * fused ReLU (3 rows after a masked vector of 9), on
 * AVX-512 and AVX2, on 1 and 2 threads; the default takes it for one pixel of 7x7 images.
 * Outputs start as NaN. */
START_TEST(test_tail_in_calls) {
  static const char c3[] = "kernel k(I: f32[1, 5, 7, 7], W: f32[19, 5, 3, 3]) -> (O: f32[1, 19, 7, 7]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  static const char c1[] = "kernel k(I: f32[2, 70, 5, 5], W: f32[21, 70, 1, 1]) -> (O: f32[2, 21, 5, 5]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  const char *targets[] = {NULL, "x86-64-v3"};
  for (int tail = 1; tail <= 4; tail++) {
    char s3[256], s1[256];
    snprintf(s3, sizeof s3, "s0{brgemm(m=q,n=k/8,k=c;batch=r,s);flatten=p;tail=%d:call;order=n,p,k/8;"
             "parallel=k/8;pack=I:im2row}", tail);
    snprintf(s1, sizeof s1, "s0{brgemm(m=q,n=k/8,k=c/32);flatten=p;tail=%d:call;order=n,p,k/8,c/32;"
             "parallel=k/8}", tail);
    char dot[16];
    snprintf(dot, sizeof dot, "_dot%d", tail);
    ck_assert_msg(llvm_has(c3, s3, dot), "no dot rows in the calls: %s", s3);
    ck_assert_msg(llvm_has(c1, s1, dot), "no dot rows in the calls: %s", s1);
    for (int t = 0; t < 2; t++)
      for (int threads = 1; threads <= 2; threads++) {
        check_runs_on(c3, s3, threads, targets[t]);
        check_runs_on(c1, s1, threads, targets[t]);
      }
  }
  static const char fcr[] = "kernel fc(X: f32[8, 20], Wt: f32[12, 20]) -> (Y: f32[8, 12]) {\n"
                            "  Y[n, k] += X[n, c] * Wt[k, c]\n  Y[n, k] = relu(Y[n, k])\n}\n";
  check_runs_1_2(fcr, "s0{brgemm(m=k,n=n,k=c);tail=3:call;epilogue=s1;pack=Wt:im2col} s1{fused}");
  /* found by a user trial: the parallel split tiles M after the tail went into the calls */
  static const char mm129[] = "kernel mm(A: f32[64, 512], B: f32[512, 129]) -> (C: f32[64, 129]) {\n"
                              "  C[i, j] += A[i, k] * B[k, j]\n}\n";
  for (int threads = 0; threads <= 2; threads++) {
    char *d = default_schedule(mm129, threads);
    check_runs_1_2(mm129, d);
    free(d);
  }
  static const char c7[] = "kernel k(I: f32[1, 64, 7, 7], W: f32[24, 64, 1, 1]) -> (O: f32[1, 24, 7, 7]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  char *text = default_schedule(c7, 1);
  ck_assert_msg(strstr(text, ";tail=1:call;"), "the default does not run the tail in the calls: %s", text);
  check_runs_1_2(c7, text);
  free(text);
  /* a tail in the calls goes with a fused ReLU (the body applies it to the dot rows too) */
  static const char c7r[] = "kernel k(I: f32[1, 64, 7, 7], W: f32[24, 64, 1, 1]) -> (O: f32[1, 24, 7, 7]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n"
                            "  O[n, k, p, q] = relu(O[n, k, p, q])\n}\n";
  text = default_schedule(c7r, 2);
  ck_assert_msg(strstr(text, ";tail=1:call;") && strstr(text, "epilogue=s1"), "%s", text);
  check_runs_1_2(c7r, text);
  free(text);
}
END_TEST

/* "pack=Y:transpose": the calls write a copy of the target with M's dimension innermost,
 * copied back after them. The default takes it for a fully connected layer with PyTorch's
 * W[k, c] from 8 images (M = n; else W's transposed copy, or dot products for fewer images),
 * with 8 rows of W per call for one vector of images; with a fused ReLU, a conv whose M is
 * the output channels, 1 and 2 threads; a statement that does not start its target cannot. */
START_TEST(test_transposed_target) {
  static const char fc[] = "kernel fc(X: f32[16, 256], W: f32[300, 256]) -> (Y: f32[16, 300]) {\n"
                           "  Y[n, k] += X[n, c] * W[k, c]\n}\n";
  char *text = default_schedule(fc, 2);
  ck_assert_msg(strstr(text, "brgemm(m=n,n=k/8,k=c)") && strstr(text, "Y:transpose"),
                "not the transposed target: %s", text);
  check_runs_1_2(fc, text);
  free(text);
  /* found by a review: 17 images (a vector and a tail of one) took a tail after the calls,
   * which the transposed target rejects; now the tail runs in the calls */
  static const char fc17[] = "kernel fc(X: f32[17, 256], W: f32[300, 256]) -> (Y: f32[17, 300]) {\n"
                             "  Y[n, k] += X[n, c] * W[k, c]\n}\n";
  text = default_schedule(fc17, 2);
  ck_assert_msg(strstr(text, "tail=1:call") && strstr(text, "Y:transpose"), "%s", text);
  check_runs_1_2(fc17, text);
  free(text);
  static const char gemv[] = "kernel fc(X: f32[2, 40], W: f32[70, 40]) -> (Y: f32[2, 70]) {\n"
                             "  Y[n, k] += X[n, c] * W[k, c]\n}\n";
  text = default_schedule(gemv, 1);
  ck_assert_msg(!strstr(text, "transpose"), "a transposed target for 2 images: %s", text);
  free(text);
  static const char fcr[] = "kernel fc(X: f32[24, 37], W: f32[50, 37]) -> (Y: f32[24, 50]) {\n"
                            "  Y[n, k] += X[n, c] * W[k, c]\n  Y[n, k] = relu(Y[n, k])\n}\n";
  check_runs_1_2(fcr, "s0{brgemm(m=n,n=k/16,k=c/16);epilogue=s1;order=k/16,c/16;parallel=k/16;"
                      "pack=X:im2col,Y:transpose} s1{fused}");
  static const char cv[] = "kernel k(I: f32[2, 5, 6, 6], W: f32[19, 5, 3, 3]) -> (O: f32[2, 19, 6, 6]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  check_runs_1_2(cv, "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;parallel=n;pack=I:pad,W:im2col,"
                     "O:transpose}");
  static const char two[] = "kernel fc(X: f32[8, 20], W: f32[12, 20]) -> (Y: f32[8, 12]) {\n"
                            "  Y[n, k] += X[n, c] * W[k, c]\n  Y[n, k] += X[n, c] * W[k, c]\n}\n";
  session S = session_open(two, "s0{loops} s1{brgemm(m=n,n=k,k=c);pack=X:im2col,Y:transpose}", 0);
  brick_module *mod = NULL;
  ck_assert_int_ne(brick_compile(S.ctx, S.prog, 0, S.opts, &mod), BRICK_OK);
  ck_assert_msg(strstr(brick_ctx_last_error(S.ctx), "'pack=Y:transpose' needs s1 to start the "
                       "accumulation of 'Y'"), "%s", brick_ctx_last_error(S.ctx));
  session_close(&S);
}
END_TEST

/* Weight update dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, p + r - 1, q + s - 1]: the only
 * unit-stride M is s (3 of 16 lanes), so the default takes M over channels through copies
 * (choose_long_m), N over the others, each batch element (an image row) with its whole K = q
 * even when the batch is long, and, on 2 threads, a parallel loop of M or N tiles outermost
 * rather than the 3 filter rows. The transposed target's copy-back walks c, r, s as one loop:
 * a 2-D transpose in 16 x 16 tiles; with a dimension before the moved one (per-image weight
 * gradients) too. All against the interpreter. */
START_TEST(test_weight_update) {
  static const char wu[] = "kernel k(I: f32[1, 32, 10, 10], dO: f32[1, 48, 10, 10]) -> (dW: f32[48, 32, 3, 3]) {\n"
                           "  dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, p + r - 1, q + s - 1]\n}\n";
  for (int t = 1; t <= 2; t++) {
    char *text = default_schedule(wu, t);
    ck_assert_msg(strstr(text, "dW:transpose") && !strstr(text, "m=s") && !strstr(text, "n=s") &&
                      !strstr(text, "m=r") && !strstr(text, "parallel=r"),
                  "%d threads: %s", t, text);
    check_runs_1_2(wu, text);
    free(text);
  }
  static const char wide[] = "kernel k(I: f32[1, 32, 40, 40], dO: f32[1, 32, 40, 40]) -> (dW: f32[32, 32, 3, 3]) {\n"
                             "  dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, p + r - 1, q + s - 1]\n}\n";
  for (int t = 1; t <= 2; t++) {
    char *text = default_schedule(wide, t);
    ck_assert_msg(strstr(text, "k=q;") && strstr(text, "batch=n,p"), "the K of a long batch is tiled: %s", text);
    if (t == 2) /* 3 filter rows would split 2:1 */
      ck_assert_msg(strstr(text, "order=k/") || strstr(text, "order=c/"), "%s", text);
    check_runs(wide, text, t);
    free(text);
  }
  const char *sched = "s0{brgemm(m=k,n=c,k=q;batch=n,p);order=r,s;pack=dO:im2col,I:pad,dW:transpose}";
  char *loops = loops_of(wu, sched, 1);
  ck_assert_msg(strstr(loops, "// transpose") && strstr(loops, "c0 = 0; c0 <= 8;"),
                "the copy-back is not a 2-D transpose over c * r * s = 288 (9 blocks of 32):\n%s", loops);
  free(loops);
  check_runs_1_2(wu, sched);
  static const char per_image[] =
      "kernel k(I: f32[3, 20, 6, 6], dO: f32[3, 40, 6, 6]) -> (dW: f32[3, 40, 20, 3, 3]) {\n"
      "  dW[n, k, c, r, s] += dO[n, k, p, q] * I[n, c, p + r - 1, q + s - 1]\n}\n";
  check_runs_1_2(per_image, "s0{brgemm(m=k,n=c,k=q;batch=p);order=n,r,s;parallel=n;"
                            "pack=dO:im2col,I:pad,dW:transpose}");
}
END_TEST

/* Plain loop nests (found by a user trial). On 1 thread the loops run in a function whose
 * buffers are noalias parameters, as the parallel region's are, so a statement that reads
 * one local and writes another vectorizes (it stayed scalar: 14x slower). The default puts
 * the target's unit-stride iterator innermost when the largest read is contiguous along it
 * and not along the last iterator (a column reduction), or when that is a reduction of max=
 * (LLVM keeps llvm.maxnum reductions scalar). A small sliding window (max pooling, 3x3/1 and
 * 3x3/2) stays innermost, unrolled inside the vectorized output row. All against the
 * interpreter. */
START_TEST(test_plain_loops) {
  static const char locals[] = "kernel k(X: f32[64, 100], m0: f32[64]) -> (Y: f32[64, 100]) {\n"
                               "  local m: f32[64]\n  local e: f32[64, 100]\n  m[i] = m0[i]\n"
                               "  e[i, j] = exp(X[i, j] - m[i])\n  Y[i, j] = e[i, j]\n}\n";
  ck_assert_msg(llvm_has_on(locals, NULL, "@llvm.floor.v", 0, 1), "exp of a local into a local is scalar");
  char *text = default_schedule(locals, 1);
  check_runs_1_2(locals, text);
  free(text);
  static const struct {
    const char *text, *order;
  } cases[] = {
      {"kernel k(X: f32[40, 50]) -> (m: f32[50]) {\n  m[j] max= X[i, j]\n}\n", "order=i,j}"},
      {"kernel k(X: f32[40, 50]) -> (m: f32[50]) {\n  m[j] += X[i, j]\n}\n", "order=i,j}"},
      {"kernel k(X: f32[40, 50]) -> (m: f32[40]) {\n  m[i] += X[i, j]\n}\n", "order=i,j}"},
      {"kernel k(X: f32[40, 50]) -> (m: f32[40]) {\n  m[i] max= X[i, j]\n}\n", "order=i,j}"},
      {"kernel k(X: f32[1, 8, 20, 20]) -> (Y: f32[1, 8, 20, 20]) {\n"
       "  Y[n, c, p, q] max= X[n, c, p + r - 1, q + s - 1] where r in 0..3, s in 0..3\n}\n",
       "order=n,c,p,q,r,s}"},
      {"kernel k(X: f32[1, 8, 20, 20]) -> (Y: f32[1, 8, 10, 10]) {\n"
       "  Y[n, c, p, q] max= X[n, c, 2*p + r - 1, 2*q + s - 1] where r in 0..3, s in 0..3\n}\n",
       "order=n,c,p,q,r,s}"},
      {"kernel k(X: f32[1, 8, 20, 20]) -> (Y: f32[1, 8, 18, 18]) {\n"
       "  Y[n, c, p, q] max= X[n, c, p + r, q + s] where r in 0..3, s in 0..3\n}\n",
       "order=n,c,p,q,r,s}"},
      {"kernel k(X: f32[1, 8, 20, 20]) -> (Y: f32[1, 8, 20, 20]) {\n"
       "  Y[n, c, p, q] += X[n, c, p + r - 1, q + s - 1] * X[n, c, p + r - 1, q + s - 1]"
       " where r in 0..3, s in 0..3\n}\n",
       "order=n,c,p,q,r,s}"},
      /* average pooling */
      {"kernel k(X: f32[1, 8, 20, 20]) -> (Y: f32[1, 8, 10, 10]) {\n"
       "  Y[n, c, p, q] += X[n, c, 2*p + r - 1, 2*q + s - 1] * 0.25 where r in 0..2, s in 0..2\n}\n",
       "order=n,c,p,q,r,s}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    text = default_schedule(cases[i].text, 1);
    ck_assert_msg(strstr(text, cases[i].order), "case %zu: %s, not %s", i, text, cases[i].order);
    check_runs_1_2(cases[i].text, text);
    free(text);
  }
  /* statements without iterators (found by a trial: the default schedule listed a loop of
   * iterator -1, compilation failed and show --schedule crashed) */
  static const char *const scalars[] = {
      "kernel s(A: f32[10]) -> (D: f32[]) {\n  D[] = A[3]\n}\n",
      "kernel s(A: f32[100]) -> (D: f32[], E: f32[]) {\n  D[] max= A[i]\n  E[] = D[]\n}\n",
      "kernel s(A: f32[100]) -> (D: f32[]) {\n  D[] += A[i]\n  D[] = D[] + 1\n}\n",
  };
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    text = default_schedule(scalars[i], 1);
    check_runs_1_2(scalars[i], text);
    free(text);
  }
  check_runs_1_2(scalars[0], "s0{loops}");
  /* a strided depthwise convolution (N = 1 over an im2row copy) runs as plain loops from
   * output rows of a vector on (heuristic.c window_loops_better), as calls below */
  static const char dw[] = "size H = 36\nsize Q = (H + 2 - 3) / 2 + 1\n"
                           "kernel k(I: f32[1, 3, H, H], W: f32[3, 3, 3]) -> (O: f32[1, 3, Q, Q]) {\n"
                           "  O[n, c, p, q] += I[n, c, 2*p + r - 1, 2*q + s - 1] * W[c, r, s]\n}\n";
  text = default_schedule(dw, 1);
  ck_assert_msg(strstr(text, "s0{loops;order=n,c,p,q,r,s}"), "%s", text);
  check_runs_1_2(dw, text);
  check_runs_1_2(dw, "s0{loops;order=c,p,q,r,s,n;parallel=c}");
  free(text);
  char dw28[sizeof dw];
  memcpy(dw28, dw, sizeof dw);
  memcpy(strstr(dw28, "36"), "28", 2);
  text = default_schedule(dw28, 1);
  ck_assert_msg(strstr(text, "brgemm("), "%s", text);
  free(text);
  /* found by a review: on 2 threads the parallel loop moved out of the reduction and took
   * the row loop with it (order=j,i, 10x slower than 1 thread); a column reduction big enough
   * for 2 threads keeps its order, serial */
  text = default_schedule("kernel k(X: f32[4096, 1024]) -> (m: f32[1024]) {\n  m[j] max= X[i, j]\n}\n", 2);
  ck_assert_msg(strstr(text, "order=i,j}"), "%s", text);
  free(text);
}
END_TEST

/* A max= reduction in a plain loop runs in steps of 16 independent maxima (codegen
 * gen_max_for) when it has at least 16 points, folded into the target after them; a max= that
 * starts its target (at -inf) takes "x > m ? x : m" per point (codegen/stmt.c), one that
 * continues from a value takes maxnum. The result must stay C's fmaxf over the same values:
 * NaNs ignored, NaN only when every value and the target's start are NaN (-inf when the
 * statement starts the target). Rows of 37 (two steps and 5 more), 5 (no step) and 1 (no
 * loop), the target set first or not; on 1 and 2 threads. */
START_TEST(test_max_reduction_nan) {
  static const int cols[] = {37, 5, 1};
  for (size_t ci = 0; ci < 2 * sizeof cols / sizeof cols[0]; ci++) {
    int L = cols[ci / 2];
    bool set_first = ci % 2 == 0;
    char text[512];
    snprintf(text, sizeof text, "kernel k(X: f32[4, %d], B: f32[4]) -> (m: f32[4]) {\n%s}\n", L,
             set_first ? "  m[i] = B[i]\n  m[i] max= X[i, j]\n"
                       : "  m[i] max= X[i, j]\n  m[i] = max(m[i], B[i])\n");
    ck_assert_msg(L < 16 || llvm_has_on(text, NULL, "llvm.vector.reduce.fmax", 0, 1),
                  "%d columns: no steps of 16 maxima", L);
    float X[4 * 37], B[4] = {-1e30f, NAN, NAN, 2.0f}, m[4], want[4];
    uint64_t seed = 5;
    oracle_fill(X, 4 * L, &seed);
    for (int j = 0; j < L; j++) {
      if (j % 3 == 1)
        X[1 * L + j] = NAN; /* row 1: some NaNs, the start NaN */
      X[2 * L + j] = NAN;   /* row 2: all NaN, the start NaN */
      X[3 * L + j] = NAN;   /* row 3: all NaN, the start 2 */
    }
    for (int i = 0; i < 4; i++) {
      want[i] = set_first ? B[i] : -INFINITY;
      for (int j = 0; j < L; j++)
        want[i] = fmaxf(want[i], X[i * L + j]);
      if (!set_first) /* row 2: -inf, where a NaN would stay NaN */
        want[i] = fmaxf(want[i], B[i]);
    }
    for (int t = 1; t <= 2; t++) {
      session S = session_open(text, NULL, t);
      brick_module *mod;
      ck_assert_msg(brick_compile(S.ctx, S.prog, 0, S.opts, &mod) == BRICK_OK, "%s", brick_ctx_last_error(S.ctx));
      void (*fn)(float *, float *, float *) = (void (*)(float *, float *, float *))brick_module_lookup(S.ctx, mod, "k");
      ck_assert_ptr_nonnull(fn);
      fn(X, B, m);
      for (int i = 0; i < 4; i++)
        ck_assert_msg(isnan(want[i]) ? isnan(m[i]) : m[i] == want[i],
                      "%d columns, %d threads, row %d: %g, not %g", L, t, i, m[i], want[i]);
      brick_module_free(mod);
      session_close(&S);
    }
  }
}
END_TEST

/* Ranges of 2^31 and more (found by a trial: isl's *_si setters take an int, and the loops of
 * a 2^31 + 1 sum ran 0 times): the loop bounds keep all 64 bits, in the domains, the tiles and
 * the accesses of the legality check. */
START_TEST(test_ranges_past_2p31) {
  char *loops = loops_of("size N = 2147483649\nkernel k(A: f32[N]) -> (S: f32[]) {\n"
                         "  S[] += A[i]\n}\n", NULL, 1);
  ck_assert_msg(strstr(loops, "c0 <= 2147483648;"), "%s", loops);
  free(loops);
  loops = loops_of("size N = 4294967300\nkernel k(A: f32[N]) -> (B: f32[N]) {\n"
                   "  B[i] = A[i] * 2\n}\n", "s0{loops;order=i}", 1);
  ck_assert_msg(strstr(loops, "c0 <= 4294967299;"), "%s", loops);
  free(loops);
  loops = loops_of("size N = 3221225472\nkernel k(A: f32[2, 1], B: f32[1, N]) -> (C: f32[2, N]) {\n"
                   "  C[i, j] += A[i, k] * B[k, j]\n}\n", "s0{brgemm(m=j/1024,n=i,k=k);order=j/1024}", 1);
  ck_assert_msg(strstr(loops, "c0 <= 3145727;"), "%s", loops);
  free(loops);
}
END_TEST

/* A '+=' of a product runs only the reduction values whose terms are not all skipped (ir_clip_
 * skipped, in the interpreter and in plain loop ops): a 'where' range far past the tensors
 * (found by a trial: 0..2^40 over 4 elements ran for hours in both), a reversed index, a
 * coefficient of 2. Against the interpreter on 1 and 2 threads. */
START_TEST(test_clip_skipped) {
  static const struct {
    const char *text, *loop;
  } cases[] = {
      {"kernel k(A: f32[4]) -> (B: f32[4]) {\n"
       "  B[i] += A[j] * A[i] where j in 0..1099511627776\n}\n", "c1 <= 3;"},
      {"kernel k(A: f32[4], X: f32[5]) -> (B: f32[5]) {\n"
       "  B[i] += A[j] * X[i] where j in 0..1000\n}\n", "c1 <= 3;"},
      {"kernel k(A: f32[6], X: f32[5]) -> (B: f32[5]) {\n"
       "  B[i] += A[3 - j] * X[i] where j in -100..100\n}\n", "c1 = -2;"},
      {"kernel k(A: f32[9], X: f32[5]) -> (B: f32[5]) {\n"
       "  B[i] += A[2*j + 1] * X[i] where j in 0..100\n}\n", "c1 <= 3;"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *loops = loops_of(cases[i].text, "s0{loops;order=i,j}", 1);
    ck_assert_msg(strstr(loops, cases[i].loop), "case %zu: %s", i, loops);
    free(loops);
    check_runs_1_2(cases[i].text, "s0{loops;order=i,j}");
  }
}
END_TEST

/* Count the statement ops ("// On: statement") of a loop nest. */
static int statement_ops(const char *loops) {
  int n = 0;
  for (const char *p = loops; (p = strstr(p, ": statement")) != NULL; p++)
    n++;
  return n;
}

/* A plain loop nest whose reads can leave their tensors runs its interior (no read can) as one
 * op without bounds tests and its borders as up to 2 per narrowed output iterator (lower.c
 * split_borders). Pieces: padded 3x3/1 pooling (5 ops) and 3x3/2 (4: the even width leaves
 * no right border), a dilated 1-D window with a
 * reversed index (3: interior, left, right), average pooling as a product that skips its
 * out-of-bounds terms, a window wider than the image (no interior: 1 op), a read indexed by two
 * output iterators (no split: 1 op), an elementwise shift; each against the interpreter on 1
 * and 2 threads, the outputs NaN before each run, so that a point no piece computes shows. */
START_TEST(test_split_borders) {
  static const struct {
    const char *text;
    int ops;
  } cases[] = {
      {"kernel k(X: f32[1, 3, 9, 10]) -> (Y: f32[1, 3, 9, 10]) {\n"
       "  Y[n, c, p, q] max= X[n, c, p + r - 1, q + s - 1] where r in 0..3, s in 0..3\n}\n", 5},
      {"kernel k(X: f32[2, 3, 11, 12]) -> (Y: f32[2, 3, 6, 6]) {\n"
       "  Y[n, c, p, q] max= X[n, c, 2*p + r - 1, 2*q + s - 1] where r in 0..3, s in 0..3\n}\n", 4},
      {"kernel k(X: f32[40]) -> (Y: f32[40]) {\n"
       "  Y[p] += X[39 - p + 2*r - 2] where r in 0..3\n}\n", 3},
      {"kernel k(X: f32[1, 2, 7, 7]) -> (Y: f32[1, 2, 4, 4]) {\n"
       "  Y[n, c, p, q] += X[n, c, 2*p + r - 1, 2*q + s - 1] * 0.25 where r in 0..2, s in 0..2\n}\n", 3},
      {"kernel k(X: f32[1, 2, 3, 3]) -> (Y: f32[1, 2, 3, 3]) {\n"
       "  Y[n, c, p, q] max= X[n, c, p + r - 2, q + s - 2] where r in 0..5, s in 0..5\n}\n", 1},
      {"kernel k(X: f32[20, 20]) -> (Y: f32[20, 20]) {\n"
       "  Y[i, j] += X[i + j - 3, r] where r in 0..4\n}\n", 1},
      {"kernel k(X: f32[30, 17], B: f32[30, 17]) -> (Y: f32[30, 17]) {\n"
       "  Y[i, j] = X[i, j + 1] - X[i, j - 1] + B[i, j]\n}\n", 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = default_schedule(cases[i].text, 1);
    char *loops = loops_of(cases[i].text, text, 1);
    ck_assert_msg(statement_ops(loops) == cases[i].ops, "case %zu: %d statement ops, not %d:\n%s", i,
                  statement_ops(loops), cases[i].ops, loops);
    free(loops);
    check_runs_1_2(cases[i].text, text);
    free(text);
  }
  /* every piece keeps the statement's parallel loop */
  check_runs_1_2(cases[0].text, "s0{loops;order=n,c,p,q,r,s;parallel=c}");
  check_runs_1_2(cases[1].text, "s0{loops;order=n,p,c,q,r,s;parallel=p}");
  /* the interior of the pooling runs without tests: LLVM vectorizes it */
  ck_assert_msg(llvm_has_on(cases[1].text, NULL, "x float>", 0, 1), "the interior is scalar");
}
END_TEST

/* A plain loop window that starts its target has no fill op: the first point of each output's
 * window sets it (lower.c first_point_starts, codegen/stmt.c). max= must still be fmaxf from
 * -inf over the window, NaN counting for nothing: inputs all NaN but for a few numbers, so
 * that interior windows of NaN only give -inf, windows at the border take the padding's 0,
 * and some first points are NaN. Against a C loop, on 1 and 2 threads. A window reaching 16
 * points in one loop keeps the fill (gen_max_for folds into the target). */
START_TEST(test_first_point_starts) {
  static const char text[] = "kernel k(X: f32[2, 7, 7]) -> (Y: f32[2, 7, 7]) {\n"
                             "  Y[c, p, q] max= X[c, p + r - 1, q + s - 1] where r in 0..3, s in 0..3\n}\n";
  char *loops = loops_of(text, NULL, 1);
  ck_assert_msg(!strstr(loops, ": fill"), "%s", loops);
  free(loops);
  float X[2 * 49], Y[2 * 49], want[2 * 49];
  for (int i = 0; i < 2 * 49; i++)
    X[i] = i % 11 == 3 ? (float)(i % 7) - 3.0f : NAN;
  for (int c = 0; c < 2; c++)
    for (int p = 0; p < 7; p++)
      for (int q = 0; q < 7; q++) {
        float m = -INFINITY;
        for (int r = 0; r < 3; r++)
          for (int s2 = 0; s2 < 3; s2++) {
            int h = p + r - 1, w = q + s2 - 1;
            m = fmaxf(m, h < 0 || h >= 7 || w < 0 || w >= 7 ? 0.0f : X[c * 49 + h * 7 + w]);
          }
        want[c * 49 + p * 7 + q] = m;
      }
  for (int t = 1; t <= 2; t++) {
    session S = session_open(text, NULL, t);
    brick_module *mod;
    ck_assert_msg(brick_compile(S.ctx, S.prog, 0, S.opts, &mod) == BRICK_OK, "%s", brick_ctx_last_error(S.ctx));
    void (*fn)(float *, float *) = (void (*)(float *, float *))brick_module_lookup(S.ctx, mod, "k");
    ck_assert_ptr_nonnull(fn);
    for (int i = 0; i < 2 * 49; i++)
      Y[i] = 12345.0f;
    fn(X, Y);
    for (int i = 0; i < 2 * 49; i++)
      ck_assert_msg(Y[i] == want[i], "%d threads, element %d: %g, not %g", t, i, Y[i], want[i]);
    brick_module_free(mod);
    session_close(&S);
  }
  static const char long_window[] = "kernel k(X: f32[4, 40]) -> (Y: f32[4, 20]) {\n"
                                    "  Y[i, j] max= X[i, j + r] where r in 0..16\n}\n";
  loops = loops_of(long_window, NULL, 1);
  ck_assert_msg(strstr(loops, ": fill"), "%s", loops);
  free(loops);
  check_runs_1_2(long_window, "s0{loops;order=i,j,r}");
}
END_TEST

/* Run kernel "text" (I, W -> O, all rank 4) under "schedule" with positive inputs and +Inf
 * in W's index "wv" of dimension "wd" (a filter row or column), and check O's outputs at index
 * "ov" of dimension "od" (a row or a column) against the interpreter, which skips the terms
 * that read outside I: there that filter row or column reads only I's zero padding, so 0 * Inf
 * (NaN) shows whether a call ran it. */
static void check_skips(const char *text, const char *schedule, int wd, int wv, int od, int ov) {
  loaded *l = load_text("taps.bk", text);
  const ir_kernel *k = l->prog->kernels.data[0];
  float *args[3];
  uint64_t seed = 7;
  for (int i = 0; i < 3; i++) {
    args[i] = malloc(sizeof(float) * (size_t)k->params.data[i]->nelems);
    oracle_fill(args[i], k->params.data[i]->nelems, &seed);
  }
  const int64_t *wdims = k->params.data[1]->dims, *odims = k->params.data[2]->dims;
  for (int64_t i = 0; i < k->params.data[0]->nelems; i++)
    args[0][i] = fabsf(args[0][i]) + 0.25f;
  int64_t inner = 1, oinner = 1;
  for (int d = wd + 1; d < 4; d++)
    inner *= wdims[d];
  for (int d = od + 1; d < 4; d++)
    oinner *= odims[d];
  for (int64_t i = 0; i < k->params.data[1]->nelems; i++)
    if ((i / inner) % wdims[wd] == wv)
      args[1][i] = INFINITY;
  double **ref = oracle_reference(k, args);
  session S = session_open(text, schedule, 2);
  brick_module *mod;
  ck_assert_msg(brick_compile(S.ctx, S.prog, 0, S.opts, &mod) == BRICK_OK, "%s",
                brick_ctx_last_error(S.ctx));
  void (*fn)(float *, float *, float *) =
      (void (*)(float *, float *, float *))brick_module_lookup(S.ctx, mod, k->name);
  ck_assert_ptr_nonnull(fn);
  fn(args[0], args[1], args[2]);
  int64_t checked = 0;
  for (int64_t i = 0; i < k->params.data[2]->nelems; i++) {
    if ((i / oinner) % odims[od] != ov)
      continue;
    double want = ref[0][i], got = args[2][i];
    ck_assert_msg(isfinite(want), "the reference reads the Inf taps at output %lld", (long long)i);
    ck_assert_msg(fabs(got - want) <= ORACLE_TOLERANCE * (1 + fabs(want)),
                  "%s: output %lld is %g, not %g (a call ran the padding taps)", schedule,
                  (long long)i, got, want);
    checked++;
  }
  ck_assert_int_gt(checked, 0);
  brick_module_free(mod);
  session_close(&S);
  oracle_reference_free(k, ref);
  for (int i = 0; i < 3; i++)
    free(args[i]);
  loaded_free(l);
}

/* Skipped taps (sched_op.tap): a call whose first batch loop is the filter row r, with the
 * output row p outside the call and the input a zero-padded copy, runs only the rows of taps
 * that read the image (a run-time batch), as the language's skipped terms say: 0 * Inf in the
 * padding would be NaN. Against the interpreter: the filter rows in offset tables (batch r, s)
 * and in stride mode (batch r alone), the input as A or as B, stride 2 with dilation 2, a
 * filter taller than the padding (output rows that read no row), the backward-data form (a
 * negative coefficient of r), 2 images on 1 and 2 threads; the default schedule that takes it. */
START_TEST(test_skipped_taps) {
  static const char fwd[] = "kernel k(I: f32[2, 5, 7, 7], W: f32[5, 3, 3, 19]) -> (O: f32[2, 19, 7, 7]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[c, r, s, k]\n}\n";
  /* im2col'ed weights: the input is B */
  static const char nchw[] = "kernel k(I: f32[1, 6, 9, 8], W: f32[17, 6, 5, 3]) -> (O: f32[1, 17, 4, 6]) {\n"
                             "  O[n, k, p, q] += I[n, c, 2*p + 2*r - 4, q + s - 1] * W[k, c, r, s]\n}\n";
  /* backward data: dI[c, h, w] += dO[k, h - r + 1, w - s + 1] * W[k, c, r, s] */
  static const char neg[] = "kernel k(dO: f32[1, 8, 6, 6], W: f32[8, 3, 3, 16]) -> (dI: f32[1, 16, 6, 6]) {\n"
                            "  dI[n, c, h, w] += dO[n, k, h - r + 1, w - s + 1] * W[k, r, s, c]\n}\n";
  static const struct {
    const char *text, *schedule;
    int wr, rv; /* W's filter row dimension, the row that reads only padding at output row 0 */
  } cases[] = {
      {fwd, "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;parallel=n;pack=I:pad,O:transpose}", 1, 0},
      {fwd, "s0{brgemm(m=k/16,n=q,k=c;batch=r);order=n,k/16,s,p;parallel=k/16;pack=I:pad,O:transpose}", 1, 0},
      {fwd, "s0{brgemm(m=q,n=k/8,k=c;batch=r,s);order=n,p,k/8;parallel=n;pack=I:pad}", 1, 0},
      {nchw, "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;pack=I:pad,W:im2col,O:transpose}", 2, 0},
      {neg, "s0{brgemm(m=c,n=w,k=k;batch=r,s);order=n,h;pack=dO:pad,dI:transpose}", 1, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    check_skips(cases[i].text, cases[i].schedule, cases[i].wr, cases[i].rv, 2, 0);
    check_runs_1_2(cases[i].text, cases[i].schedule);
  }
  /* skipped column taps (sched_op.col): N over a whole output row, the filter column the last
   * batch loop; the first and last output columns, unit and stride 2 with dilation 2, the
   * backward-data form */
  check_skips(fwd, cases[0].schedule, 2, 0, 3, 0);
  check_skips(fwd, cases[0].schedule, 2, 2, 3, 6);
  check_skips(nchw, cases[3].schedule, 3, 0, 3, 0);
  check_skips(neg, cases[4].schedule, 2, 2, 3, 0);
  check_skips(neg, cases[4].schedule, 2, 0, 3, 5);
  static const char s2[] = "kernel k(I: f32[1, 8, 5, 9], W: f32[8, 3, 3, 16]) -> (O: f32[1, 16, 5, 5]) {\n"
                           "  O[n, k, p, q] += I[n, c, p + r - 1, 2*q + 2*s - 2] * W[c, r, s, k]\n}\n";
  static const char s2s[] = "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;pack=I:pad,O:transpose}";
  check_skips(s2, s2s, 2, 0, 3, 0);
  check_skips(s2, s2s, 2, 2, 3, 4);
  check_runs_1_2(s2, s2s);
  /* a 7-row filter with padding 4 on a 3-row image: the first output row reads no row */
  static const char tall[] = "kernel k(I: f32[1, 4, 3, 5], W: f32[4, 7, 1, 16]) -> (O: f32[1, 16, 5, 5]) {\n"
                             "  O[n, k, p, q] += I[n, c, p + r - 4, q + s] * W[c, r, s, k]\n}\n";
  check_runs_1_2(tall, "s0{brgemm(m=k,n=q,k=c;batch=r,s);order=n,p;pack=I:pad,O:transpose}");
  /* the default: M over the output channels for a padded 7x7 image with weights [C][R][S][K]
   * (choose_channels), or NCHW weights from 8 images (384 outputs per weight), copied
   * transposed in the call, N over the image row (not the 8 images); not with NCHW weights of
   * fewer images, without padding, with fewer input channels than a vector or without taps */
  static const struct {
    const char *text, *want;
    int wr, wc; /* W's filter row and column dimensions */
  } channels[] = {
      {"kernel k(I: f32[1, 32, 7, 7], W: f32[32, 3, 3, 64]) -> (O: f32[1, 64, 7, 7]) {\n"
       "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[c, r, s, k]\n}\n",
       "O:transpose", 1, 2},
      {"kernel k(I: f32[8, 32, 7, 7], W: f32[64, 32, 3, 3]) -> (O: f32[8, 64, 7, 7]) {\n"
       "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n",
       "W:im2col", 2, 3},
  };
  for (size_t i = 0; i < sizeof channels / sizeof *channels; i++)
    for (int threads = 1; threads <= 2; threads++) {
      const char *wp = channels[i].text;
      char *text = default_schedule(wp, threads);
      ck_assert_msg(strstr(text, "brgemm(m=k") && strstr(text, "n=q,") &&
                    strstr(text, channels[i].want), "%s", text);
      check_skips(wp, text, channels[i].wr, 0, 2, 0);
      check_skips(wp, text, channels[i].wc, 0, 3, 0); /* the columns too (sched_op.col) */
      check_skips(wp, text, channels[i].wc, 2, 3, 6);
      check_runs_1_2(wp, text);
      free(text);
    }
  static const char *const not_wp[] = {
      "kernel k(I: f32[1, 32, 7, 7], W: f32[64, 32, 3, 3]) -> (O: f32[1, 64, 7, 7]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n",
      /* 4 images of NCHW weights: the transposed copy does not pay yet */
      "kernel k(I: f32[4, 32, 7, 7], W: f32[64, 32, 3, 3]) -> (O: f32[4, 64, 7, 7]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n",
      "kernel k(I: f32[1, 32, 7, 7], W: f32[32, 1, 1, 64]) -> (O: f32[1, 64, 7, 7]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[c, r, s, k]\n}\n",
      /* found by a review: 3 input channels made the filter column K and the channels the
       * first batch loop, so nothing was skipped */
      "kernel k(I: f32[1, 3, 7, 7], W: f32[3, 3, 3, 112]) -> (O: f32[1, 112, 7, 7]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[c, r, s, k]\n}\n",
      /* padding without taps (a 1x1 on 5x5 into 7x7): nothing to skip */
      "kernel k(I: f32[1, 64, 5, 5], W: f32[64, 1, 1, 128]) -> (O: f32[1, 128, 7, 7]) {\n"
      "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[c, r, s, k]\n}\n",
  };
  for (size_t i = 0; i < sizeof not_wp / sizeof *not_wp; i++) {
    char *text = default_schedule(not_wp[i], 1);
    ck_assert_msg(!strstr(text, "brgemm(m=k"), "%s", text);
    free(text);
  }
}
END_TEST

/* Skipped taps, rows and columns (sched_op.tap, sched_op.col), on random convolutions against
 * the interpreter: filters of 1-9 columns (9: more than a body takes, nothing skipped), strides
 * and dilations of 1-3, paddings of 0-3 (wider than some filters, so whole taps read nothing),
 * images of 1-9 pixels a side, the weights prepacked [C][R][S][K] or NCHW (then an im2col copy),
 * with and without a K tile, the backward-data form (negative coefficients), 1 and 2 threads.
 * The random convolutions of tests/random rarely take these schedules. */
START_TEST(test_random_skipped_taps) {
  uint64_t seed = 12345;
  int cases = reduced() ? 6 : 24;
  for (int i = 0; i < cases; i++) {
    int64_t v[11];
    static const int64_t lo[11] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
    static const int64_t hi[11] = {20, 40, 9, 9, 8, 9, 3, 3, 3, 2, 2};
    for (int j = 0; j < 11; j++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      v[j] = lo[j] + (int64_t)((seed >> 33) % (uint64_t)(hi[j] - lo[j] + 1));
    }
    int64_t C = v[0], K = v[1], H = v[2], W = v[3], R = v[4], S = v[5], st = v[6], dl = v[7];
    int64_t pd = v[8], form = v[9], ktile = v[10];
    if (form == 2) /* backward data is a stride-1 convolution */
      st = 1;
    while (H + 2 * pd < dl * (R - 1) + 1)
      H++;
    while (W + 2 * pd < dl * (S - 1) + 1)
      W++;
    int64_t P = (H + 2 * pd - dl * (R - 1) - 1) / st + 1, Q = (W + 2 * pd - dl * (S - 1) - 1) / st + 1;
    char text[512], sched[256];
    if (form == 2) /* dI[c, h, w] += dO[k, h - DL*r + PD, w - DL*s + PD] * W[k, r, s, c] */
      snprintf(text, sizeof text,
               "kernel k(dO: f32[1, %lld, %lld, %lld], W: f32[%lld, %lld, %lld, %lld]) -> "
               "(dI: f32[1, %lld, %lld, %lld]) {\n"
               "  dI[n, c, h, w] += dO[n, k, h - %lld*r + %lld, w - %lld*s + %lld] * W[k, r, s, c]\n}\n",
               (long long)K, (long long)P, (long long)Q, (long long)K, (long long)R, (long long)S,
               (long long)C, (long long)C, (long long)H, (long long)W, (long long)dl,
               (long long)pd, (long long)dl, (long long)pd);
    else
      snprintf(text, sizeof text,
               "kernel k(I: f32[1, %lld, %lld, %lld], W: f32[%lld, %lld, %lld, %lld]) -> "
               "(O: f32[1, %lld, %lld, %lld]) {\n"
               "  O[n, k, p, q] += I[n, c, %lld*p + %lld*r - %lld, %lld*q + %lld*s - %lld] * %s\n}\n",
               (long long)C, (long long)H, (long long)W, (long long)(form ? K : C),
               (long long)(form ? C : R), (long long)(form ? R : S), (long long)(form ? S : K),
               (long long)K, (long long)P, (long long)Q, (long long)st, (long long)dl,
               (long long)pd, (long long)st, (long long)dl, (long long)pd,
               form ? "W[k, c, r, s]" : "W[c, r, s, k]");
    const char *m = form == 2 ? "c" : "k", *n = form == 2 ? "w" : "q", *red = form == 2 ? "k" : "c";
    const char *row = form == 2 ? "h" : "p", *in = form == 2 ? "dO" : "I", *out = form == 2 ? "dI" : "O";
    int64_t kext = form == 2 ? K : C;
    char ks[32] = "", ko[32] = "";
    if (ktile == 2 && kext > 1) {
      snprintf(ks, sizeof ks, "/%lld", (long long)((kext + 1) / 2));
      snprintf(ko, sizeof ko, ",%s%s", red, ks);
    }
    snprintf(sched, sizeof sched, "s0{brgemm(m=%s,n=%s,k=%s%s;batch=r,s);order=n,%s%s;pack=%s:pad,%s%s:transpose}",
             m, n, red, ks, row, ko, in, form == 1 ? "W:im2col," : "", out);
    check_runs_1_2(text, sched);
  }
}
END_TEST

/* NCHW weights broadcast over the taps of a convolution prefetch the next register block's
 * rows when they exceed L2 (BRG_PREFETCH_ROWS, "_pf2" in the body's name); not below it, nor
 * without taps (a 1x1). */
START_TEST(test_prefetch_rows) {
  static const char big[] = "kernel k(I: f32[1, 64, 7, 7], W: f32[64, 64, 3, 3]) -> (O: f32[1, 64, 7, 7]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n";
  static const char one[] = "kernel k(I: f32[1, 64, 7, 7], W: f32[64, 64, 1, 1]) -> (O: f32[1, 64, 7, 7]) {\n"
                            "  O[n, k, p, q] += I[n, c, p + r, q + s] * W[k, c, r, s]\n}\n";
  const char *bs = "s0{brgemm(m=q,n=k/32,k=c/32;batch=r,s);flatten=p;order=n,p,k/32,c/32;pack=I:mask}";
  ck_assert(llvm_has_l2(big, bs, "_pf2", 65536));   /* 144 KiB of weights */
  ck_assert(!llvm_has_l2(big, bs, "_pf2", 1 << 20));
  ck_assert(!llvm_has_l2(one, "s0{brgemm(m=q,n=k/32,k=c);flatten=p;order=n,p,k/32}", "_pf", 8192));
  check_runs_1_2(big, bs);
}
END_TEST

static Suite *schedule_suite(void) {
  Suite *s = suite_create("scheduler");
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, test_round_trip_defaults);
  tcase_add_loop_test(tc, test_bad_schedules_api, 0, (int)(sizeof bad / sizeof *bad));
  tcase_add_test(tc, test_bad_schedules_cli);
  tcase_add_test(tc, test_good_schedules_api);
  suite_add_tcase(s, tc);
  tc = tcase_create("space");
  tcase_add_test(tc, test_random_samples);
  tcase_add_test(tc, test_random_samples_odd_kernels);
  tcase_add_test(tc, test_enumerate);
  suite_add_tcase(s, tc);
  tc = tcase_create("regressions");
  tcase_add_test(tc, test_regress_k_tile_off_origin);
  tcase_add_test(tc, test_regress_parallel_single_trip);
  tcase_add_test(tc, test_regress_where_negative_range);
  tcase_add_test(tc, test_im2row_conv);
  tcase_add_test(tc, test_pad_pitch);
  tcase_add_test(tc, test_transpose_blocks);
  tcase_add_test(tc, test_subsample_tiles);
  tcase_add_test(tc, test_m_tail);
  tcase_add_test(tc, test_tail_dot_blocks);
  tcase_add_test(tc, test_tail_in_calls);
  tcase_add_test(tc, test_transposed_target);
  tcase_add_test(tc, test_weight_update);
  tcase_add_test(tc, test_plain_loops);
  tcase_add_test(tc, test_max_reduction_nan);
  tcase_add_test(tc, test_split_borders);
  tcase_add_test(tc, test_clip_skipped);
  tcase_add_test(tc, test_ranges_past_2p31);
  tcase_add_test(tc, test_first_point_starts);
  tcase_add_test(tc, test_skipped_taps);
  tcase_add_test(tc, test_random_skipped_taps);
  tcase_add_test(tc, test_prefetch_rows);
  tcase_add_test(tc, test_gemv_dot_products);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(schedule_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
