/* Guarded buffers, data layouts and the reference check of one BRGEMM call
 * (see brg_check.h).
 *
 * Layouts: in stride mode the blocks sit stride_a / stride_b apart as the
 * descriptor says; in offset and address mode the buffer holds batch + 1
 * blocks, each a little larger than needed, and block b of the batch is a
 * scrambled block index, so order and gaps matter.  Pointer arrays and offset
 * tables are guarded too: reading entry [batch] faults.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "brg_check.h"

/* A buffer of "bytes" between two PROT_NONE pages. */
typedef struct gbuf {
  void *map;
  size_t maplen;
  void *p;
} gbuf;

/* Allocate "bytes" (> 0 is not required) touching the guard page after it,
 * or the one before it when "at_start". */
static gbuf gbuf_new(size_t bytes, int at_start)
{
  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  size_t data = (bytes + ps - 1) / ps * ps;
  if (data == 0)
    data = ps;
  gbuf g;
  g.maplen = data + 2 * ps;
  g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g.map == MAP_FAILED) {
    perror("mmap");
    abort();
  }
  char *base = g.map;
  mprotect(base, ps, PROT_NONE);
  mprotect(base + ps + data, ps, PROT_NONE);
  g.p = at_start ? base + ps : base + ps + data - bytes;
  return g;
}

static void gbuf_free(gbuf *g)
{
  munmap(g->map, g->maplen);
}

/* Next value of generator "s" in [-1, 1). */
static float rnd(unsigned *s)
{
  *s = *s * 1103515245u + 12345u;
  return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Everything a case's call reads and writes. */
typedef struct tdata {
  gbuf a, b, c, bias, ta, tb; /* ta/tb: offset tables or pointer arrays */
  gbuf shift;                 /* implicit padding: the shift table (int32 pairs) */
  int64_t blk_a[64], blk_b[64]; /* element offset of block b (batch <= 64) */
  float *c0;                  /* C before the call */
  size_t nc;                  /* elements of the C buffer */
} tdata;

/* Elements one block of A / B spans. */
static int64_t span_a(const brg_desc *d) { return (int64_t)(d->K - 1) * d->lda + d->M; }
static int64_t span_b(const brg_desc *d)
{
  return (int64_t)(d->K - 1) * d->ldb_k + (int64_t)(d->N - 1) * d->ldb_n + 1;
}

/* Lay out the batch blocks of one operand with block span "span" and batch
 * stride "stride"; fill "off"; return the elements the buffer needs. */
static size_t layout(const brg_case *c, int64_t span, int64_t stride, int64_t *off)
{
  int nb = c->batch;
  if (c->d.mode == BRG_BATCH_STRIDE) {
    for (int b = 0; b < nb; b++)
      off[b] = b * stride;
    return nb ? (size_t)((nb - 1) * stride + span) : 1;
  }
  int64_t blk = span + 3;
  for (int b = 0; b < nb; b++)
    off[b] = (int64_t)(((unsigned)b * 5u + c->seed) % (unsigned)(nb + 1)) * blk;
  return (size_t)((nb + 1) * blk);
}

/* B's batch blocks for dot_rows, which needs each row of B over the batch to be one run
 * (brgemm.h): in stride mode as the descriptor's strides say (the test sets them so), in
 * offset mode the blocks rotated by the seed, K apart when ldb_k is 1, else interleaved
 * one element apart (ldb_k = batch, as the c, r, s of NCHW weights).  Fill "off"; return
 * the elements the buffer needs. */
static size_t rows_layout(const brg_case *c, int64_t *off)
{
  const brg_desc *d = &c->d;
  int nb = c->batch;
  for (int b = 0; b < nb; b++)
    off[b] = d->mode == BRG_BATCH_STRIDE ? b * d->stride_b
                                          : (int64_t)((b + c->seed) % (unsigned)nb) * (d->ldb_k == 1 ? d->K : 1);
  return (size_t)((int64_t)nb * d->K + (int64_t)(d->N - 1) * d->ldb_n + 1);
}

/* A guarded buffer of "n" random floats. */
static gbuf random_floats(size_t n, unsigned *s, int at_start)
{
  gbuf g = gbuf_new(n * sizeof(float), at_start);
  float *f = g.p;
  for (size_t i = 0; i < n; i++)
    f[i] = rnd(s);
  return g;
}

/* The batch table of "base" with block offsets "off": int64 offsets or pointers. */
static gbuf batch_table(const brg_case *c, const float *base, const int64_t *off)
{
  gbuf g = gbuf_new((size_t)c->batch * 8, c->at_start);
  for (int b = 0; b < c->batch; b++) {
    if (c->d.mode == BRG_BATCH_ADDR)
      ((const float **)g.p)[b] = base + off[b];
    else
      ((int64_t *)g.p)[b] = off[b];
  }
  return g;
}

/* Does batch element "b" add into column "n" (brg_desc.col_period)? */
static int adds_into(const brg_desc *d, int b, int n)
{
  if (!d->col_period)
    return 1;
  int t = b % d->col_period;
  return n >= d->col_lo[t] && n < d->col_hi[t];
}

/* Skipped column taps: NaN in the elements of B that only skipped terms read, so a term
 * the body should skip but computes shows. */
static void poison_skipped(const brg_case *c, tdata *t, size_t nb)
{
  const brg_desc *d = &c->d;
  unsigned char *used = calloc(nb, 1);
  for (int pass = 0; pass < 2; pass++)
    for (int b = 0; b < c->batch; b++)
      for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++) {
          int64_t i = t->blk_b[b] + (int64_t)k * d->ldb_k + (int64_t)n * d->ldb_n;
          if (i < 0 || (size_t)i >= nb)
            continue;
          if (pass == 0 && adds_into(d, b, n))
            used[i] = 1;
          else if (pass == 1 && !used[i])
            ((float *)t->b.p)[i] = NAN;
        }
  free(used);
}

/* Build the data of case "c" into "t". */
static void tdata_init(tdata *t, const brg_case *c)
{
  const brg_desc *d = &c->d;
  unsigned s = c->seed * 2654435761u + 1;
  size_t na = layout(c, span_a(d), d->stride_a, t->blk_a);
  if (d->pad_q) { /* one image; the blocks are its shifts from the tile's first pixel */
    na = (size_t)((int64_t)(d->K - 1) * d->lda + d->pad_len);
    for (int b = 0; b < c->batch; b++)
      t->blk_a[b] = c->pad_m + (int64_t)c->shift[b][0] * d->pad_q + c->shift[b][1];
  }
  size_t nb = d->dot_rows ? rows_layout(c, t->blk_b) : layout(c, span_b(d), d->stride_b, t->blk_b);
  t->a = random_floats(na, &s, c->at_start);
  t->b = random_floats(nb, &s, !c->at_start);
  if (d->col_period)
    poison_skipped(c, t, nb);
  t->nc = (size_t)((int64_t)(d->N - 1) * d->ldc + d->M);
  t->c = random_floats(t->nc, &s, c->at_start);
  if (d->beta == 0)
    for (size_t i = 0; i < t->nc; i++)
      ((float *)t->c.p)[i] = NAN;
  t->c0 = malloc(t->nc * sizeof(float));
  memcpy(t->c0, t->c.p, t->nc * sizeof(float));
  int nbias = (d->epilogue & BRG_EPI_BIAS_M) ? d->M : (d->epilogue & BRG_EPI_BIAS_N) ? d->N : 0;
  t->bias = random_floats((size_t)nbias, &s, !c->at_start);
  t->ta = batch_table(c, t->a.p, t->blk_a);
  t->tb = batch_table(c, t->b.p, t->blk_b);
  t->shift = gbuf_new((size_t)c->batch * 2 * sizeof(int32_t), c->at_start);
  for (int b = 0; b < c->batch; b++)
    for (int i = 0; i < 2; i++)
      ((int32_t *)t->shift.p)[2 * b + i] = c->shift[b][i];
}

static void tdata_free(tdata *t)
{
  gbuf *g[7] = {&t->a, &t->b, &t->c, &t->bias, &t->ta, &t->tb, &t->shift};
  for (int i = 0; i < 7; i++)
    gbuf_free(g[i]);
  free(t->c0);
}

/* Element (m, k) of A_b: with implicit padding the pixel pad_m + m shifted as batch element
 * b says, 0 outside the image. */
static double a_elem(const brg_case *c, const tdata *t, int b, int m, int k)
{
  const brg_desc *d = &c->d;
  const float *A = t->a.p;
  if (!d->pad_q)
    return A[t->blk_a[b] + m + (int64_t)k * d->lda];
  int64_t pix = c->pad_m + m, p = pix / d->pad_q + c->shift[b][0], q = pix % d->pad_q + c->shift[b][1];
  if (p < 0 || p * d->pad_q >= d->pad_len || q < 0 || q >= d->pad_q)
    return 0;
  return A[(int64_t)k * d->lda + p * d->pad_q + q];
}

/* The reference value of C[m + n*ldc] after the call. */
static double reference(const brg_case *c, const tdata *t, int m, int n)
{
  const brg_desc *d = &c->d;
  const float *B = t->b.p, *bias = t->bias.p;
  double acc = d->beta ? (double)t->c0[m + (size_t)n * d->ldc] : 0.0;
  for (int b = 0; b < c->batch; b++)
    for (int k = 0; k < d->K && adds_into(d, b, n); k++)
      acc += a_elem(c, t, b, m, k) *
             (double)B[t->blk_b[b] + (int64_t)k * d->ldb_k + (int64_t)n * d->ldb_n];
  if (d->epilogue & BRG_EPI_BIAS_M)
    acc += bias[m];
  if (d->epilogue & BRG_EPI_BIAS_N)
    acc += bias[n];
  if (d->epilogue & BRG_EPI_RELU)
    acc = acc > 0 ? acc : 0;
  return acc;
}

double brg_case_tol(long terms)
{
  return 2e-6 * (1.0 + sqrt((double)terms));
}

/* Compare the C of "t" with the reference; 0 or -1 with "msg". */
static int compare(const brg_case *c, const tdata *t, char *msg, size_t n)
{
  const brg_desc *d = &c->d;
  const float *C = t->c.p;
  double maxerr = 0, maxref = 1e-30;
  for (size_t i = 0; i < t->nc; i++) {
    int m = (int)(i % (size_t)(d->ldc ? d->ldc : 1)), col = (int)(i / (size_t)(d->ldc ? d->ldc : 1));
    if (d->N == 1)
      m = (int)i, col = 0;
    if (m >= d->M) {
      if (memcmp(&C[i], &t->c0[i], sizeof(float))) {
        snprintf(msg, n, "C[%zu] outside the tile was written", i);
        return -1;
      }
      continue;
    }
    double ref = reference(c, t, m, col), err = fabs((double)C[i] - ref);
    if (!(err == err) || isinf(err)) {
      snprintf(msg, n, "C[m=%d, n=%d] = %g, expected %g", m, col, C[i], ref);
      return -1;
    }
    maxerr = fmax(maxerr, err);
    maxref = fmax(maxref, fabs(ref));
  }
  double tol = brg_case_tol((long)c->batch * d->K);
  if (maxerr / maxref > tol) {
    snprintf(msg, n, "relative error %.3g > %.3g", maxerr / maxref, tol);
    return -1;
  }
  return 0;
}

int brg_case_run(const brg_case *c, brg_fn fn, char *msg, size_t n)
{
  if (c->batch < 0 || c->batch > 64) {
    snprintf(msg, n, "test batch must be in 0..64");
    return -1;
  }
  tdata t;
  tdata_init(&t, c);
  fn(c->d.mode == BRG_BATCH_ADDR ? t.ta.p : t.a.p, c->d.mode == BRG_BATCH_ADDR ? t.tb.p : t.b.p,
     t.c.p, c->batch, t.bias.p, t.ta.p, t.tb.p, c->pad_m, t.shift.p);
  int rc = compare(c, &t, msg, n);
  if (rc) {
    char name[256], tail[300];
    brg_desc_name(&c->d, name, sizeof name);
    snprintf(tail, sizeof tail, "%s", msg);
    snprintf(msg, n, "%s batch=%d seed=%u: %s", name, c->batch, c->seed, tail);
  }
  tdata_free(&t);
  return rc;
}

int brg_test_reduced(void)
{
  const char *e = getenv("BRICK_TEST_REDUCED");
  return e && *e && strcmp(e, "0");
}
