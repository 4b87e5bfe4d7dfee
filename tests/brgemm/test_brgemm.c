/* Check suite of brgemm_intrin: descriptors, emission, and the generated
 * bodies against a naive loop.
 *
 * Covering design (DESIGN.md, "Testing budgets"): every M x N in 1..67 for one
 * configuration per ISA (AVX-512, AVX2, generic), all compiled in one module
 * per ISA; pairwise coverage of ISA, K in {1,3,16,64,67}, batch mode, beta,
 * epilogue, leading dimensions, batch count, M, N and prefetch; every batch
 * count 0..16 for each mode; generic vector widths.  ISAs the host lacks are
 * skipped.  BRICK_TEST_REDUCED=1 (sanitizer builds) thins the M x N sweep.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brg_check.h"
#include "pairwise.h"

/* Can the host run bodies of "isa"? */
static int host_runs(brg_isa isa)
{
  return isa <= brg_isa_host();
}

/* A case of M x N x K on "isa" (generic bodies 8 wide), everything else as brg_desc_init
 * and zero sets it. */
static brg_case new_case(brg_isa isa, int M, int N, int K)
{
  brg_case c;
  memset(&c, 0, sizeof c);
  brg_desc_init(&c.d, M, N, K, isa);
  c.d.vlen = isa == BRG_ISA_GENERIC ? 8 : 0;
  return c;
}

/* What the case sweeps vary alike by case number "v" of ISA number "i": C's leading dimension,
 * the epilogue, the data and which guard page the buffers touch; and "beta". */
static void vary(brg_case *c, int i, int v, int beta)
{
  static const unsigned epis[4] = {BRG_EPI_NONE, BRG_EPI_BIAS_M_RELU, BRG_EPI_BIAS_N, BRG_EPI_RELU};
  c->d.ldc = c->d.M + v % 2;
  c->d.beta = beta;
  c->d.epilogue = epis[v % 4];
  c->seed = (unsigned)(i * 1000 + v);
  c->at_start = v % 2;
}

/* A compile-and-check thread: its own JIT, its share of the cases. */
typedef struct worker {
  brg_jit *jit;
  brg_case *cs;
  size_t n;
  int rc;
  char msg[600];
} worker;

/* Compile the cases of worker "arg" in one module and check each. */
static void *work(void *arg)
{
  worker *w = arg;
  brg_desc *d = malloc(w->n * sizeof *d);
  brg_fn *fn = malloc(w->n * sizeof *fn);
  for (size_t i = 0; i < w->n; i++)
    d[i] = w->cs[i].d;
  w->rc = brg_jit_get_many(w->jit, d, w->n, fn);
  if (w->rc)
    snprintf(w->msg, sizeof w->msg, "%s", brg_jit_error(w->jit));
  for (size_t i = 0; i < w->n && !w->rc; i++)
    w->rc = brg_case_run(&w->cs[i], fn[i], w->msg, sizeof w->msg);
  free(d);
  free(fn);
  return NULL;
}

/* Compile and check the "n" cases "cs", split over two threads (the
 * machines have 2 cores; compile time dominates). */
static void run_cases(const brg_case *cs, size_t n)
{
  enum { NW = 2 };
  worker w[NW];
  pthread_t th[NW];
  for (int k = 0; k < NW; k++) { /* JITs created here: LLVM's target set-up is not thread-safe */
    memset(&w[k], 0, sizeof w[k]);
    w[k].jit = brg_jit_new();
    ck_assert_ptr_nonnull(w[k].jit);
    w[k].cs = malloc((n / NW + 1) * sizeof *w[k].cs);
  }
  for (size_t i = 0; i < n; i++) /* interleaved: big and small cases on both */
    w[i % NW].cs[w[i % NW].n++] = cs[i];
  for (int k = 0; k < NW; k++)
    ck_assert_int_eq(pthread_create(&th[k], NULL, work, &w[k]), 0);
  for (int k = 0; k < NW; k++)
    pthread_join(th[k], NULL);
  for (int k = 0; k < NW; k++) {
    brg_jit_free(w[k].jit);
    free(w[k].cs);
  }
  for (int k = 0; k < NW; k++)
    ck_assert_msg(w[k].rc == 0, "%s", w[k].msg);
}

START_TEST(test_validate)
{
  brg_desc d;
  brg_desc_init(&d, 16, 8, 4, BRG_ISA_AVX512);
  ck_assert_ptr_null(brg_desc_validate(&d));
  d.M = 0;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  brg_desc_init(&d, 16, 8, 4, BRG_ISA_AVX2);
  d.lda = 15;
  ck_assert_str_eq(brg_desc_validate(&d), "lda must be >= M (when K > 1)");
  d.lda = 16, d.ldc = 3;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  d.ldc = 16, d.epilogue = BRG_EPI_BIAS_M | BRG_EPI_BIAS_N;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  d.epilogue = BRG_EPI_NONE, d.beta = 2;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  d.beta = 0, d.isa = BRG_ISA_GENERIC, d.vlen = 3;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  d.vlen = 8, d.ldb_n = 0;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  brg_desc_init(&d, 17, 8, 4, BRG_ISA_AVX512);
  d.dot_rows = 1;
  ck_assert_ptr_null(brg_desc_validate(&d));
  d.dot_rows = 5;
  ck_assert_str_eq(brg_desc_validate(&d), "dot_rows must be 0, or 1..4 and less than M");
  d.M = 4, d.dot_rows = 4;
  ck_assert_ptr_nonnull(brg_desc_validate(&d));
  d.M = 17, d.mode = BRG_BATCH_ADDR;
  ck_assert_str_eq(brg_desc_validate(&d), "dot_rows needs the stride or offset batch mode");
  char buf[256];
  ck_assert_int_eq(brg_desc_name(&d, buf, sizeof buf), -1);
  ck_assert_ptr_null(brg_emit(NULL, &d));
}
END_TEST

START_TEST(test_names_and_reuse)
{
  brg_desc d, e;
  brg_desc_init(&d, 64, 56, 64, BRG_ISA_AVX512);
  char a[256], b[256];
  ck_assert_int_gt(brg_desc_name(&d, a, sizeof a), 0);
  ck_assert_str_eq(a, "brg_f32_m64n56k64_la64_lbk1_lbn64_lc64_str4096_3584_b1_none_avx512");
  int64_t *fields[] = {&e.lda, &e.ldb_k, &e.ldb_n, &e.ldc, &e.stride_a, &e.stride_b, &e.batch_hint};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    e = d;
    *fields[i] += 1;
    brg_desc_name(&e, b, sizeof b);
    ck_assert_str_ne(a, b);
  }
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("t", ctx);
  LLVMValueRef f1 = brg_emit(mod, &d), f2 = brg_emit(mod, &d);
  e = d;
  e.epilogue = BRG_EPI_BIAS_N_RELU;
  LLVMValueRef f3 = brg_emit(mod, &e);
  ck_assert_ptr_eq(f1, f2);
  ck_assert_ptr_ne(f1, f3);
  ck_assert_int_eq(LLVMGetLinkage(f1), LLVMPrivateLinkage);
  ck_assert_ptr_nonnull(LLVMGetStringAttributeAtIndex(f1, LLVMAttributeFunctionIndex,
                                                      "target-features", 15));
  ck_assert_ptr_eq(LLVMGlobalGetValueType(f1), brg_fn_type(ctx));
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
}
END_TEST

/* Does a line of the assembly of "d" contain "needle" (and "also", if not NULL)? */
static int asm_has(const brg_desc *d, const char *needle, const char *also)
{
  char path[] = "/tmp/brg_asm_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  brg_jit *jit = brg_jit_new();
  ck_assert_msg(brg_jit_dump_asm(jit, d, path) == 0, "%s", brg_jit_error(jit));
  brg_jit_free(jit);
  FILE *f = fopen(path, "r");
  char line[512];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    found |= strstr(line, needle) && (!also || strstr(line, also));
  if (f)
    fclose(f);
  unlink(path);
  return found;
}

/* Does the assembly of "d" contain "needle"? */
static int asm_contains(const brg_desc *d, const char *needle)
{
  return asm_has(d, needle, NULL);
}

START_TEST(test_isa_attributes)
{
  brg_desc d;
  brg_desc_init(&d, 67, 9, 5, BRG_ISA_AVX2);
  ck_assert_msg(!asm_contains(&d, "zmm"), "AVX2 body uses zmm registers");
  ck_assert_msg(!asm_contains(&d, "%k1"), "AVX2 body uses opmask registers");
  ck_assert(asm_contains(&d, "vmaskmovps"));
  ck_assert(asm_contains(&d, "ymm"));
  d.isa = BRG_ISA_AVX512;
  ck_assert(asm_contains(&d, "zmm"));
}
END_TEST

/* No vector spills: the bodies of typical and tail shapes, with the epilogue
 * that needs the most registers, never move a vector register to the stack.
 * (A pointer may be spilled outside the K loop when the plan's block loops,
 * bias and prefetch pointers exceed the 15 free GPRs; that costs nothing.) */
START_TEST(test_no_spills)
{
  static const int ms[6] = {16, 17, 32, 48, 64, 67}, ns[7] = {1, 6, 7, 14, 28, 56, 67};
  static const brg_isa isas[2] = {BRG_ISA_AVX512, BRG_ISA_AVX2};
  for (int i = 0; i < 4; i++)
    for (int m = 0; m < 6 && host_runs(isas[i % 2]); m++)
      for (int n = 0; n < 7; n++) {
        brg_desc d;
        brg_desc_init(&d, ms[m], ns[n], i < 2 ? 64 : 16, isas[i % 2]);
        d.epilogue = (m + n) % 2 ? BRG_EPI_BIAS_M_RELU : BRG_EPI_BIAS_N;
        d.prefetch = n % 4; /* brg_prefetch flags */
        char name[256];
        brg_desc_name(&d, name, sizeof name);
        ck_assert_msg(!asm_has(&d, "(%rsp)", "mm"), "%s spills vectors", name);
      }
}
END_TEST

/* The one configuration of the M x N sweep for "isa" (vlen for generic). */
static brg_case sweep_case(brg_isa isa, int vlen, int M, int N)
{
  brg_case c;
  memset(&c, 0, sizeof c);
  brg_desc_init(&c.d, M, N, 2, isa);
  c.d.vlen = vlen;
  c.d.lda = M + (N % 3);
  c.d.ldc = M + (M % 2);
  c.d.ldb_n = 2 + (M % 2);
  c.d.stride_a = 2 * c.d.lda + 1;
  c.d.stride_b = c.d.ldb_n * N;
  c.d.beta = (M + N) % 2;
  c.batch = 2;
  c.seed = (unsigned)(M * 131 + N);
  c.at_start = (M * N) % 2;
  return c;
}

/* Every M x N in 1..67 (a thinned set when reduced) for "isa". */
static void sweep(brg_isa isa, int vlen)
{
  if (!host_runs(isa))
    return;
  int step = brg_test_reduced() ? 6 : 1;
  brg_case *cs = malloc(67 * 67 * sizeof *cs);
  size_t n = 0;
  for (int M = 1; M <= 67; M += (M < 3 || M > 62) ? 1 : step)
    for (int N = 1; N <= 67; N += (N < 3 || N > 62) ? 1 : step)
      cs[n++] = sweep_case(isa, vlen, M, N);
  run_cases(cs, n);
  free(cs);
}

START_TEST(test_sweep_avx512) { sweep(BRG_ISA_AVX512, 0); }
END_TEST
START_TEST(test_sweep_avx2) { sweep(BRG_ISA_AVX2, 0); }
END_TEST
START_TEST(test_sweep_generic) { sweep(BRG_ISA_GENERIC, 8); }
END_TEST

/* Factors of the pairwise design and their levels. */
enum { F_ISA, F_K, F_MODE, F_BETA, F_EPI, F_LD, F_BATCH, F_M, F_N, F_PF, F_COUNT };
static const int pw_levels[F_COUNT] = {3, 5, 3, 2, 6, 2, 6, 7, 7, 4};
static const int lv_k[5] = {1, 3, 16, 64, 67};
static const unsigned lv_epi[6] = {BRG_EPI_NONE, BRG_EPI_BIAS_M, BRG_EPI_BIAS_N, BRG_EPI_RELU,
                                   BRG_EPI_BIAS_M_RELU, BRG_EPI_BIAS_N_RELU};
static const int lv_batch[6] = {1, 2, 3, 7, 9, 16};
static const int lv_m[7] = {1, 5, 16, 17, 33, 64, 67};
static const int lv_n[7] = {1, 2, 7, 13, 28, 56, 67};

/* The case of pairwise row "r" (seeded by "i"). */
static brg_case pairwise_case(const int *r, int i)
{
  static const brg_isa isas[3] = {BRG_ISA_AVX512, BRG_ISA_AVX2, BRG_ISA_GENERIC};
  int M = lv_m[r[F_M]], N = lv_n[r[F_N]], K = lv_k[r[F_K]];
  brg_case c = new_case(isas[r[F_ISA]], M, N, K);
  c.d.mode = (brg_batch_mode)r[F_MODE];
  c.d.beta = r[F_BETA];
  c.d.epilogue = lv_epi[r[F_EPI]];
  if (r[F_LD]) { /* non-tight, and B transposed (n stride 1) */
    c.d.lda = M + 5;
    c.d.ldc = M + 3;
    c.d.ldb_k = N + 2;
    c.d.ldb_n = 1;
    c.d.stride_a = (int64_t)K * c.d.lda + 7;
    c.d.stride_b = (int64_t)K * c.d.ldb_k + 1;
  }
  c.d.prefetch = r[F_PF];
  c.batch = lv_batch[r[F_BATCH]];
  c.d.batch_hint = i % 3 == 0 ? c.batch : 0;
  c.seed = (unsigned)i * 7919u + 17u;
  c.at_start = i % 2;
  return c;
}

START_TEST(test_pairwise)
{
  int(*rows)[PW_MAX_FACTORS] = malloc(400 * sizeof *rows);
  int n = pw_generate(F_COUNT, pw_levels, 12345u, rows, 400);
  ck_assert_int_gt(n, 0);
  brg_case *cs = malloc((size_t)n * sizeof *cs);
  size_t nc = 0;
  for (int i = 0; i < n; i++) {
    brg_case c = pairwise_case(rows[i], i);
    if (host_runs(c.d.isa))
      cs[nc++] = c;
  }
  run_cases(cs, nc);
  free(cs);
  free(rows);
}
END_TEST

/* Every batch count 0..16 with one body per batch mode, beta and epilogue mix. */
START_TEST(test_batch_counts)
{
  brg_case cs[3 * 17];
  size_t n = 0;
  for (int mode = 0; mode < 3; mode++)
    for (int b = 0; b <= 16; b++) {
      brg_case c;
      memset(&c, 0, sizeof c);
      brg_desc_init(&c.d, 35, 9, 7, brg_isa_host());
      c.d.mode = (brg_batch_mode)mode;
      c.d.beta = mode != 1;
      c.d.epilogue = mode == 2 ? BRG_EPI_BIAS_M_RELU : BRG_EPI_NONE;
      c.batch = b;
      c.seed = (unsigned)(mode * 100 + b);
      c.at_start = b % 2;
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

/* Blocks of fewer than 8 accumulators (M <= 32 with N = 1 or 2, M = 5 with
 * N = 3) rotate K steps through several accumulator sets and sum them before
 * the epilogue: every K from 1 to 19 (no split, partial unrolls, remainders)
 * with beta 0 and 1 and a bias + ReLU epilogue. */
START_TEST(test_k_split)
{
  static const int mn[3][2] = {{16, 1}, {32, 2}, {5, 3}};
  brg_case cs[3 * 19];
  size_t n = 0;
  for (int s = 0; s < 3; s++)
    for (int k = 1; k <= 19; k++) {
      brg_case c;
      memset(&c, 0, sizeof c);
      brg_desc_init(&c.d, mn[s][0], mn[s][1], k, brg_isa_host());
      c.d.beta = k % 2;
      c.d.epilogue = k % 3 ? BRG_EPI_NONE : BRG_EPI_BIAS_M_RELU;
      c.batch = 1 + k % 4;
      c.seed = (unsigned)(s * 100 + k);
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

/* Generic bodies of every vector width on a few shapes with tails. */
START_TEST(test_generic_widths)
{
  static const int vl[5] = {2, 4, 8, 16, 32};
  static const int mn[4][2] = {{1, 1}, {13, 5}, {33, 17}, {67, 3}};
  brg_case cs[5 * 4];
  size_t n = 0;
  for (int v = 0; v < 5; v++)
    for (int s = 0; s < 4; s++) {
      brg_case c;
      memset(&c, 0, sizeof c);
      brg_desc_init(&c.d, mn[s][0], mn[s][1], 19, BRG_ISA_GENERIC);
      c.d.vlen = vl[v];
      c.d.beta = s % 2;
      c.d.epilogue = s == 2 ? BRG_EPI_BIAS_N_RELU : BRG_EPI_NONE;
      c.batch = 3;
      c.seed = (unsigned)(v * 10 + s);
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

/* Rows of dot products (brg_desc.dot_rows): 1-4 rows after 1-4 vectors (49 = 3 x 16 + 1
 * pixels) or a masked vector, on each ISA, in stride and offset mode with B's rows laid
 * out in blocks of K (ldb_k = 1) or interleaved over the batch (ldb_k = batch: the c, r, s
 * of NCHW weights), reductions that end in a partial vector, beta 0 and 1, every epilogue,
 * N that leaves partial groups of columns, batch counts from 0. */
START_TEST(test_dot_rows)
{
  static const brg_isa isas[3] = {BRG_ISA_AVX512, BRG_ISA_AVX2, BRG_ISA_GENERIC};
  static const int ms[6] = {2, 17, 20, 49, 52, 70}, ns[5] = {1, 7, 8, 13, 64};
  static const int ks[4] = {1, 5, 16, 32}, batches[5] = {0, 1, 3, 9, 4};
  brg_case cs[3 * 60];
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    for (int v = 0; v < 60; v++) {
      if (!host_runs(isas[i]))
        continue;
      int M = ms[v % 6], N = ns[v % 5], K = ks[(v / 5) % 4];
      brg_case c = new_case(isas[i], M, N, K);
      c.d.dot_rows = 1 + (v + i) % 4;
      if (c.d.dot_rows >= M)
        c.d.dot_rows = M - 1;
      c.batch = batches[(v / 3) % 5];
      int nb = c.batch ? c.batch : 1;
      c.d.mode = v % 2 ? BRG_BATCH_OFFSETS : BRG_BATCH_STRIDE;
      int inter = (v / 2) % 2 && K > 1;
      c.d.ldb_k = inter ? nb : 1;
      c.d.stride_b = inter ? 1 : K;
      c.d.ldb_n = (int64_t)nb * K + v % 3;
      c.d.lda = M + v % 4;
      c.d.stride_a = (int64_t)K * c.d.lda + 1;
      vary(&c, i, v, (v / 4) % 2);
      c.d.batch_hint = v % 3 ? c.batch : 0;
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

/* Implicit zero padding (brg_desc.pad_q): the taps of 3x3 and 1x3 filters (shifts of -1..1,
 * and -2..2 for a dilation of 2) over images of 7x7, 5x9, 14x14 and 3x40 pixels, with tiles
 * of the whole image or a part of it that starts anywhere (a row's middle too), M tails,
 * rows of dot products, on each ISA, beta 0 and 1, every epilogue, batch counts from 0.  The
 * image touches a guard page, so a lane outside it that were loaded would fault. */
START_TEST(test_pad)
{
  static const brg_isa isas[3] = {BRG_ISA_AVX512, BRG_ISA_AVX2, BRG_ISA_GENERIC};
  static const int imgs[4][2] = {{7, 7}, {5, 9}, {14, 14}, {3, 40}}, ns[4] = {1, 5, 8, 16};
  static const int ks[3] = {1, 4, 16}, batches[5] = {9, 0, 3, 9, 1};
  brg_case cs[3 * 48];
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    for (int v = 0; v < 48; v++) {
      if (!host_runs(isas[i]))
        continue;
      int P = imgs[v % 4][0], Q = imgs[v % 4][1], len = P * Q;
      int M = v % 3 == 0 ? len : 1 + (v * 7 + i) % (len - 1);
      brg_case c = new_case(isas[i], M, ns[(v / 4) % 4], ks[(v / 2) % 3]);
      c.pad_m = M == len ? 0 : (v * 5) % (len - M + 1);
      c.d.pad_q = Q;
      c.d.pad_len = len;
      c.d.mode = BRG_BATCH_OFFSETS;
      c.d.lda = len + v % 3;
      vary(&c, i, v, (v / 3) % 2);
      c.batch = batches[v % 5];
      int dil = v % 7 == 3 ? 2 : 1, one_row = v % 5 == 2;
      for (int b = 0; b < c.batch; b++) {
        c.shift[b][0] = one_row ? 0 : (b / 3 - 1) * dil;
        c.shift[b][1] = (b % 3 - 1) * dil;
      }
      c.d.batch_hint = c.batch;
      if (v % 4 == 1 && M > 1) { /* the last rows as dot products, B's rows one run each */
        c.d.dot_rows = 1 + v % 3 < M ? 1 + v % 3 : M - 1;
        c.d.ldb_k = 1;
        c.d.ldb_n = (int64_t)(c.batch ? c.batch : 1) * c.d.K + 1;
      }
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

/* Skipped column taps (brg_desc.col_period): periods of 1-8 taps, each with its own run of
 * columns (trimmed at either end as a 3x3 or 7x7 filter's border taps are, empty, or all
 * of them), over N of one or several register blocks (200: a loop of middle blocks between
 * the row's ends), on each ISA, in every batch mode, with
 * beta 0 and 1, every epilogue, both prefetches, K with and without a K loop, batch counts
 * of 0-3 periods.  The elements of B that only skipped terms read are NaN. */
START_TEST(test_col_taps)
{
  static const brg_isa isas[3] = {BRG_ISA_AVX512, BRG_ISA_AVX2, BRG_ISA_GENERIC};
  static const int ms[4] = {48, 16, 20, 5}, ns[6] = {7, 14, 1, 33, 5, 200}, ks[3] = {4, 1, 19};
  static const int periods[5] = {3, 7, 1, 2, 8};
  brg_case cs[3 * 40];
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    for (int v = 0; v < 40; v++) {
      if (!host_runs(isas[i]))
        continue;
      int M = ms[v % 4], N = ns[v % 6], K = ks[(v / 2) % 3], P = periods[v % 5];
      brg_case c = new_case(isas[i], M, N, K);
      c.d.col_period = P;
      for (int t = 0; t < P; t++) { /* a filter of P taps over a row padded by P/2 */
        int lo = P / 2 - t, hi = N + P / 2 - t;
        c.d.col_lo[t] = lo < 0 ? 0 : lo > N ? N : lo;
        c.d.col_hi[t] = hi > N ? N : hi < c.d.col_lo[t] ? c.d.col_lo[t] : hi;
      }
      if (v % 7 == 3) /* one tap with no column at all, one with every column */
        c.d.col_lo[0] = c.d.col_hi[0] = N / 2;
      if (v % 7 == 4)
        c.d.col_lo[P - 1] = 0, c.d.col_hi[P - 1] = N;
      c.batch = P * ((v / 3) % 4);
      if (c.batch > 64)
        c.batch = 8 * P;
      c.d.mode = (brg_batch_mode)(v % 3);
      c.d.lda = M + v % 3;
      c.d.ldb_k = 1 + (v / 4) % 2 * (N + 1);
      c.d.ldb_n = c.d.ldb_k == 1 ? K + v % 2 : 1;
      c.d.stride_a = (int64_t)K * c.d.lda + 3;
      c.d.stride_b = (int64_t)K * c.d.ldb_k + (int64_t)N * c.d.ldb_n;
      vary(&c, i, v, (v / 2) % 2);
      c.d.prefetch = (v / 5) % 4;
      c.d.batch_hint = v % 3 ? c.batch : 0;
      cs[n++] = c;
    }
  run_cases(cs, n);
}
END_TEST

static Suite *brgemm_suite(void)
{
  Suite *s = suite_create("brgemm");
  TCase *api = tcase_create("api");
  tcase_add_test(api, test_validate);
  tcase_add_test(api, test_names_and_reuse);
  tcase_add_test(api, test_isa_attributes);
  tcase_add_test(api, test_no_spills);
  tcase_set_timeout(api, 600);
  suite_add_tcase(s, api);
  TCase *run = tcase_create("run");
  tcase_add_test(run, test_k_split);
  tcase_add_test(run, test_sweep_avx512);
  tcase_add_test(run, test_sweep_avx2);
  tcase_add_test(run, test_sweep_generic);
  tcase_add_test(run, test_pairwise);
  tcase_add_test(run, test_batch_counts);
  tcase_add_test(run, test_generic_widths);
  tcase_add_test(run, test_dot_rows);
  tcase_add_test(run, test_pad);
  tcase_add_test(run, test_col_taps);
  tcase_set_timeout(run, 600);
  suite_add_tcase(s, run);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(brgemm_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
