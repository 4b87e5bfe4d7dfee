/*
 * Random kernels (see gen.h). Sizes are drawn from 1..67, mostly not multiples of the vector
 * width, and shrunk until the case is under GEN_MAX_FLOPS. Index expressions are written the
 * way a user would (`2*p + 3*r - 1`), every tensor layout is a random permutation where the
 * class allows one.
 */
#include "gen.h"

#include "scheduler.h"

#include <string.h>

typedef bk_strbuf sb_t;

static int64_t rnd(uint64_t *rng, int64_t lo, int64_t hi) {
  return lo + sched_rng_below(rng, hi - lo + 1);
}

/* An extent in 1..67: small ones often (tails of every kind), the full range too. */
static int64_t extent(uint64_t *rng) {
  switch (sched_rng_below(rng, 4)) {
  case 0: return rnd(rng, 1, 4);
  case 1: return rnd(rng, 5, 20);
  default: return rnd(rng, 1, 67);
  }
}

/* Halve the largest of the "n" sizes in "v" (down to 1) while "flops()" is over the cap. */
static void shrink(int64_t **v, int n, double (*flops)(void)) {
  while (flops() > GEN_MAX_FLOPS) {
    int big = 0;
    for (int i = 1; i < n; i++)
      if (*v[i] > *v[big])
        big = i;
    if (*v[big] <= 1)
      return;
    *v[big] = (*v[big] + 1) / 2;
  }
}

/* "a*x" terms of an affine index, then the constant: "2*p + r - 1". */
static void affine(sb_t *sb, int n, const int64_t *coef, const char *const *var, int64_t c) {
  bool first = true;
  for (int i = 0; i < n; i++) {
    if (!coef[i])
      continue;
    int64_t a = coef[i] < 0 ? -coef[i] : coef[i];
    bk_strbuf_puts(sb, first ? (coef[i] < 0 ? "-" : "") : (coef[i] < 0 ? " - " : " + "));
    if (a != 1)
      bk_strbuf_printf(sb, "%lld*", (long long)a);
    bk_strbuf_puts(sb, var[i]);
    first = false;
  }
  if (first)
    bk_strbuf_printf(sb, "%lld", (long long)c);
  else if (c)
    bk_strbuf_printf(sb, " %s %lld", c < 0 ? "-" : "+", (long long)(c < 0 ? -c : c));
}

/* A tensor declaration "NAME: f32[d0, d1, ...]". */
static void decl(sb_t *sb, const char *name, int rank, const int64_t *dims) {
  bk_strbuf_printf(sb, "%s: f32[", name);
  for (int d = 0; d < rank; d++)
    bk_strbuf_printf(sb, "%s%lld", d ? ", " : "", (long long)dims[d]);
  bk_strbuf_puts(sb, "]");
}

/* A random permutation of 0..n-1 in "p" (identity half of the time). */
static void perm(uint64_t *rng, int *p, int n) {
  for (int i = 0; i < n; i++)
    p[i] = i;
  if (sched_rng_below(rng, 2))
    return;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)sched_rng_below(rng, i + 1), t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

/* A tensor over the iterators "its" (with extents "ext") in the layout "p": its declaration
 * into "d" and its access into "a". */
static void permuted(sb_t *d, sb_t *a, const char *name, int n, const char *const *its,
                     const int64_t *ext, const int *p) {
  int64_t dims[8];
  for (int i = 0; i < n; i++)
    dims[i] = ext[p[i]];
  decl(d, name, n, dims);
  bk_strbuf_printf(a, "%s[", name);
  for (int i = 0; i < n; i++)
    bk_strbuf_printf(a, "%s%s", i ? ", " : "", its[p[i]]);
  bk_strbuf_puts(a, "]");
}

static void emit(sb_t *out, sb_t *ins, sb_t *outs, sb_t *body) {
  bk_strbuf_printf(out, "kernel k(%s) -> (%s) {\n%s}\n", bk_strbuf_cstr(ins), bk_strbuf_cstr(outs),
                   bk_strbuf_cstr(body));
  bk_strbuf_release(ins);
  bk_strbuf_release(outs);
  bk_strbuf_release(body);
}

/* ---- contractions -------------------------------------------------------------------------- */

static int64_t G_b, G_m, G_n, G_k;
static double mm_flops(void) { return 2.0 * (double)G_b * (double)G_m * (double)G_n * (double)G_k; }

/* C[.., i, j] += A[.., i, k] * B[.., k, j] with every tensor in a random layout, the factors in
 * either order; "batched" adds an iterator b common to all three. */
static void gen_matmul_like(sb_t *out, uint64_t *rng, bool batched) {
  G_b = batched ? rnd(rng, 1, 9) : 1;
  G_m = extent(rng), G_n = extent(rng), G_k = extent(rng);
  int64_t *v[] = {&G_b, &G_m, &G_n, &G_k};
  shrink(v, 4, mm_flops);
  static const char *const ia[] = {"i", "k", "b"}, *const ib[] = {"k", "j", "b"},
                           *const ic[] = {"i", "j", "b"};
  int64_t ea[] = {G_m, G_k, G_b}, eb[] = {G_k, G_n, G_b}, ec[] = {G_m, G_n, G_b};
  int n = batched ? 3 : 2, pa[3], pb[3], pc[3];
  perm(rng, pa, n);
  perm(rng, pb, n);
  perm(rng, pc, n);
  sb_t ins, outs, body, xa, xb, xc;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  bk_strbuf_init(&xa), bk_strbuf_init(&xb), bk_strbuf_init(&xc);
  permuted(&ins, &xa, "A", n, ia, ea, pa);
  bk_strbuf_puts(&ins, ", ");
  permuted(&ins, &xb, "B", n, ib, eb, pb);
  permuted(&outs, &xc, "C", n, ic, ec, pc);
  bool swap = sched_rng_below(rng, 2);
  bk_strbuf_printf(&body, "  %s += %s * %s\n", bk_strbuf_cstr(&xc), bk_strbuf_cstr(swap ? &xb : &xa),
                   bk_strbuf_cstr(swap ? &xa : &xb));
  bk_strbuf_release(&xa), bk_strbuf_release(&xb), bk_strbuf_release(&xc);
  emit(out, &ins, &outs, &body);
}

static void gen_matmul(void *out, uint64_t *rng) { gen_matmul_like(out, rng, false); }

/* One long dimension (100..3000: several vector blocks, long K loops, many tiles), the others
 * short, in random layouts. */
static void gen_wide(void *out, uint64_t *rng) {
  int64_t len = rnd(rng, 100, 3000), a = rnd(rng, 1, 12), b = rnd(rng, 1, 12);
  int which = (int)sched_rng_below(rng, 3);
  G_b = 1;
  G_m = which == 0 ? len : a;
  G_n = which == 1 ? len : which == 0 ? a : b;
  G_k = which == 2 ? len : b;
  int64_t *v[] = {&G_m, &G_n, &G_k};
  shrink(v, 3, mm_flops);
  static const char *const ia[] = {"i", "k"}, *const ib[] = {"k", "j"}, *const ic[] = {"i", "j"};
  int64_t ea[] = {G_m, G_k}, eb[] = {G_k, G_n}, ec[] = {G_m, G_n};
  int pa[2], pb[2], pc[2];
  perm(rng, pa, 2);
  perm(rng, pb, 2);
  perm(rng, pc, 2);
  sb_t ins, outs, body, xa, xb, xc;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  bk_strbuf_init(&xa), bk_strbuf_init(&xb), bk_strbuf_init(&xc);
  permuted(&ins, &xa, "A", 2, ia, ea, pa);
  bk_strbuf_puts(&ins, ", ");
  permuted(&ins, &xb, "B", 2, ib, eb, pb);
  permuted(&outs, &xc, "C", 2, ic, ec, pc);
  bk_strbuf_printf(&body, "  %s += %s * %s\n", bk_strbuf_cstr(&xc), bk_strbuf_cstr(&xa),
                   bk_strbuf_cstr(&xb));
  bk_strbuf_release(&xa), bk_strbuf_release(&xb), bk_strbuf_release(&xc);
  emit(out, &ins, &outs, &body);
}
static void gen_batched(void *out, uint64_t *rng) { gen_matmul_like(out, rng, true); }

/* Convolution parameters: sizes, stride, padding, dilation, output sizes. */
typedef struct conv {
  int64_t n, c, k, h, w, r, s, st, pd, dl, p, q;
} conv;
static conv G_cv;

static double conv_flops(void) {
  conv *c = &G_cv;
  c->p = (c->h + 2 * c->pd - c->dl * (c->r - 1) - 1) / c->st + 1;
  c->q = (c->w + 2 * c->pd - c->dl * (c->s - 1) - 1) / c->st + 1;
  return 2.0 * (double)(c->n * c->k * c->c * c->r * c->s) * (double)(c->p * c->q);
}

/* Random convolution parameters with outputs of at least one row and column. */
static conv random_conv(uint64_t *rng, bool unit_stride) {
  conv c = {.n = rnd(rng, 1, 2), .c = extent(rng), .k = extent(rng), .h = extent(rng),
            .w = extent(rng), .r = rnd(rng, 1, 7), .s = rnd(rng, 1, 7),
            .st = unit_stride ? 1 : rnd(rng, 1, 4), .pd = rnd(rng, 0, 3), .dl = rnd(rng, 1, 3)};
  G_cv = c;
  int64_t *v[] = {&G_cv.c, &G_cv.k, &G_cv.h, &G_cv.w, &G_cv.n};
  shrink(v, 5, conv_flops);
  conv *g = &G_cv;
  /* The (dilated) filter must fit into the padded input. */
  while (g->h + 2 * g->pd < g->dl * (g->r - 1) + 1)
    g->r > 1 ? g->r-- : g->h++;
  while (g->w + 2 * g->pd < g->dl * (g->s - 1) + 1)
    g->s > 1 ? g->s-- : g->w++;
  conv_flops();
  return *g;
}

/* Input index "ST*p + DL*r - PD" of convolution "c". */
static void conv_index(sb_t *sb, const char *p, const char *r, int64_t st, int64_t dl, int64_t pd) {
  const char *var[] = {p, r};
  int64_t coef[] = {st, dl};
  affine(sb, 2, coef, var, -pd);
}

/* O[n, k, p, q] += I[n, c, ST*p + DL*r - PD, ST*q + DL*s - PD] * Wt[k, c, r, s], or one time
 * in three with prepacked weights Wt[c, r, s, k] (M over the output channels, the padding
 * taps skipped by rows and by columns: sched_op.tap, sched_op.col) */
static void gen_conv(void *out, uint64_t *rng) {
  conv c = random_conv(rng, false);
  bool packed = sched_rng_below(rng, 3) == 0;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "I", 4, (int64_t[]){c.n, c.c, c.h, c.w});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "Wt", 4, packed ? (int64_t[]){c.c, c.r, c.s, c.k} : (int64_t[]){c.k, c.c, c.r, c.s});
  decl(&outs, "O", 4, (int64_t[]){c.n, c.k, c.p, c.q});
  bk_strbuf_puts(&body, "  O[n, k, p, q] += I[n, c, ");
  conv_index(&body, "p", "r", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, ", ");
  conv_index(&body, "q", "s", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, packed ? "] * Wt[c, r, s, k]\n" : "] * Wt[k, c, r, s]\n");
  if (sched_rng_below(rng, 2)) { /* bias and ReLU: a candidate for the BRGEMM epilogue */
    bk_strbuf_puts(&ins, ", ");
    decl(&ins, "bias", 1, (int64_t[]){c.k});
    bk_strbuf_puts(&body, "  O[n, k, p, q] = relu(O[n, k, p, q] + bias[k])\n");
  }
  emit(out, &ins, &outs, &body);
}

/* Backward data of a stride-1 convolution:
 * dI[n, c, h, w] += dO[n, k, h - DL*r + PD, w - DL*s + PD] * Wt[k, c, r, s] */
static void gen_conv_bwd_data(void *out, uint64_t *rng) {
  conv c = random_conv(rng, true);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "dO", 4, (int64_t[]){c.n, c.k, c.p, c.q});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "Wt", 4, (int64_t[]){c.k, c.c, c.r, c.s});
  decl(&outs, "dI", 4, (int64_t[]){c.n, c.c, c.h, c.w});
  bk_strbuf_puts(&body, "  dI[n, c, h, w] += dO[n, k, ");
  conv_index(&body, "h", "r", 1, -c.dl, -c.pd);
  bk_strbuf_puts(&body, ", ");
  conv_index(&body, "w", "s", 1, -c.dl, -c.pd);
  bk_strbuf_puts(&body, "] * Wt[k, c, r, s]\n");
  emit(out, &ins, &outs, &body);
}

/* Weight update: dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, ST*p + DL*r - PD, ST*q + DL*s - PD] */
static void gen_conv_bwd_weights(void *out, uint64_t *rng) {
  conv c = random_conv(rng, false);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "I", 4, (int64_t[]){c.n, c.c, c.h, c.w});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "dO", 4, (int64_t[]){c.n, c.k, c.p, c.q});
  decl(&outs, "dW", 4, (int64_t[]){c.k, c.c, c.r, c.s});
  bk_strbuf_puts(&body, "  dW[k, c, r, s] += dO[n, k, p, q] * I[n, c, ");
  conv_index(&body, "p", "r", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, ", ");
  conv_index(&body, "q", "s", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, "]\n");
  emit(out, &ins, &outs, &body);
}

/* C[i, j] += A[i, k + OFF] * B[k, j] where k in LO..HI: a reduction range that does not start
 * at 0 (negative too) and reads outside both factors. */
static void gen_where(void *out, uint64_t *rng) {
  int64_t m = extent(rng), n = extent(rng), k = extent(rng);
  int64_t lo = rnd(rng, -5, k - 1), hi = rnd(rng, lo + 1, k + 5), off = rnd(rng, -3, 3);
  while (2.0 * (double)(m * n) * (double)(hi - lo) > GEN_MAX_FLOPS)
    m = (m + 1) / 2, n = (n + 1) / 2;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "A", 2, (int64_t[]){m, k});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "B", 2, (int64_t[]){k, n});
  decl(&outs, "C", 2, (int64_t[]){m, n});
  bk_strbuf_puts(&body, "  C[i, j] += A[i, ");
  affine(&body, 1, (int64_t[]){1}, (const char *[]){"k"}, off);
  bk_strbuf_printf(&body, "] * B[k, j] where k in %lld..%lld\n", (long long)lo, (long long)hi);
  emit(out, &ins, &outs, &body);
}

/* A tensor read twice: C[i, j] += A[i, k] * A[j, k] (or A[k, i] * A[k, j]). */
static void gen_gram(void *out, uint64_t *rng) {
  int64_t m = extent(rng), k = extent(rng);
  bool t = sched_rng_below(rng, 2);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "A", 2, t ? (int64_t[]){k, m} : (int64_t[]){m, k});
  decl(&outs, "C", 2, (int64_t[]){m, m});
  bk_strbuf_puts(&body, t ? "  C[i, j] += A[k, i] * A[k, j]\n" : "  C[i, j] += A[i, k] * A[j, k]\n");
  emit(out, &ins, &outs, &body);
}

/* A full reduction into a rank-0 tensor: T[] += A[i, k] * A[i, k] (or A[k, i] * A[k, i]).
 * A sum of squares: with factors of random sign, a scalar result can cancel to almost nothing,
 * and then float rounding alone exceeds 1e-4 of it (seen: 2.7e-4 for 1161 terms). */
static void gen_dot(void *out, uint64_t *rng) {
  int64_t m = extent(rng), k = extent(rng);
  bool t = sched_rng_below(rng, 2);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "A", 2, t ? (int64_t[]){k, m} : (int64_t[]){m, k});
  decl(&outs, "T", 0, NULL);
  bk_strbuf_puts(&body, t ? "  T[] += A[k, i] * A[k, i]\n" : "  T[] += A[i, k] * A[i, k]\n");
  emit(out, &ins, &outs, &body);
}

/* ---- layers and elementwise statements ---------------------------------------------------- */

/* Y[n, k] += X[n, c] * Wt[k, c] (or Wt[c, k]); Y[n, k] = relu(Y[n, k] + b[k]) */
static void gen_fc(void *out, uint64_t *rng) {
  int64_t n = extent(rng), c = extent(rng) * rnd(rng, 1, 4), k = extent(rng);
  while (2.0 * (double)(n * c * k) > GEN_MAX_FLOPS)
    c = (c + 1) / 2;
  bool t = sched_rng_below(rng, 2);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "X", 2, (int64_t[]){n, c});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "Wt", 2, t ? (int64_t[]){c, k} : (int64_t[]){k, c});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "b", 1, (int64_t[]){k});
  decl(&outs, "Y", 2, (int64_t[]){n, k});
  static const char *const epilogues[] = {
      "relu(Y[n, k] + b[k])", "Y[n, k] + b[k]", "b[k] + Y[n, k]", "relu(b[k] + Y[n, k])",
      "relu(Y[n, k])", "relu(Y[n, k] + b[k]) * 2.0"};
  bk_strbuf_printf(&body, "  Y[n, k] += X[n, c] * %s\n", t ? "Wt[c, k]" : "Wt[k, c]");
  bk_strbuf_printf(&body, "  Y[n, k] = %s\n", epilogues[sched_rng_below(rng, 6)]);
  emit(out, &ins, &outs, &body);
}

/* Two layers with a local activation:
 * H[n, j] += X[n, i] * W1[i, j]; H = relu(H + b1); Y[n, j] += H[n, i] * W2[i, j]; Y = Y + b2 */
static void gen_mlp(void *out, uint64_t *rng) {
  int64_t n = extent(rng), d0 = extent(rng), d1 = extent(rng), d2 = extent(rng);
  while (2.0 * (double)n * (double)(d0 * d1 + d1 * d2) > GEN_MAX_FLOPS)
    d1 = (d1 + 1) / 2;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  bk_strbuf_printf(&ins, "X: f32[%lld, %lld], W1: f32[%lld, %lld], b1: f32[%lld], "
                   "W2: f32[%lld, %lld], b2: f32[%lld]", (long long)n, (long long)d0, (long long)d0,
                   (long long)d1, (long long)d1, (long long)d1, (long long)d2, (long long)d2);
  decl(&outs, "Y", 2, (int64_t[]){n, d2});
  bk_strbuf_printf(&body, "  local H: f32[%lld, %lld]\n", (long long)n, (long long)d1);
  bk_strbuf_puts(&body, "  H[n, j] += X[n, i] * W1[i, j]\n  H[n, j] = relu(H[n, j] + b1[j])\n"
                        "  Y[n, j] += H[n, i] * W2[i, j]\n  Y[n, j] = Y[n, j] + b2[j]\n");
  emit(out, &ins, &outs, &body);
}

/* A random expression over X[i, j], Z[j], Xt (X read transposed when square) and constants. */
static void expr(sb_t *sb, uint64_t *rng, int depth, bool square) {
  static const char *const leaves[] = {"X[i, j]", "Z[j]", "X[i, j]", "0.5"};
  static const char *const fun1[] = {"relu", "sigmoid", "tanh", "exp", "-"};
  static const char *const fun2[] = {"max", "min"};
  static const char *const ops[] = {" + ", " - ", " * "};
  int kind = depth <= 0 ? 0 : (int)sched_rng_below(rng, 5);
  switch (kind) {
  case 0:
    bk_strbuf_puts(sb, square && sched_rng_below(rng, 5) == 0 ? "X[j, i]" : leaves[sched_rng_below(rng, 4)]);
    break;
  case 1:
    bk_strbuf_printf(sb, "%s(", fun1[sched_rng_below(rng, 5)]);
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ")");
    break;
  case 2:
    bk_strbuf_printf(sb, "%s(", fun2[sched_rng_below(rng, 2)]);
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ", ");
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ")");
    break;
  case 3: /* a division that cannot blow up */
    bk_strbuf_puts(sb, "(");
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ") / (Z[j] * Z[j] + 1.0)");
    break;
  default:
    bk_strbuf_puts(sb, "(");
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ops[sched_rng_below(rng, 3)]);
    expr(sb, rng, depth - 1, square);
    bk_strbuf_puts(sb, ")");
  }
}

/* Y[i, j] = f(X, Z), then a reduction of Y: R[i] += Y[i, j] * 2.0, or R[i] max= ... */
static void gen_elementwise(void *out, uint64_t *rng) {
  int64_t m = extent(rng), n = sched_rng_below(rng, 3) == 0 ? m : extent(rng);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "X", 2, (int64_t[]){m, n});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "Z", 1, (int64_t[]){n});
  decl(&outs, "Y", 2, (int64_t[]){m, n});
  bk_strbuf_puts(&outs, ", ");
  decl(&outs, "R", 1, (int64_t[]){m});
  bk_strbuf_puts(&body, "  Y[i, j] = ");
  expr(&body, rng, (int)rnd(rng, 1, 3), m == n);
  bk_strbuf_puts(&body, "\n");
  switch (sched_rng_below(rng, 3)) {
  case 0: bk_strbuf_puts(&body, "  R[i] += Y[i, j] * 2.0\n"); break;
  case 1: bk_strbuf_puts(&body, "  R[i] max= Y[i, j]\n"); break;
  default: bk_strbuf_puts(&body, "  R[i] += Y[i, j] * X[i, j]\n"); break;
  }
  emit(out, &ins, &outs, &body);
}

/* A softmax through locals along the rows or the columns of X (a max= reduction, an
 * elementwise statement from one local into another, a += reduction, a division):
 *   local m: f32[R]; local e: f32[M, N]; m[i] max= X[i, j]; e[i, j] = exp(X[i, j] - m[i])
 *   S[i] += e[i, j]; Y[i, j] = e[i, j] / S[i]        (i and j swapped along the columns) */
static void gen_softmax(void *out, uint64_t *rng) {
  int64_t m = extent(rng), n = extent(rng);
  bool cols = sched_rng_below(rng, 2);
  const char *a = cols ? "j" : "i";
  int64_t r = cols ? n : m;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "X", 2, (int64_t[]){m, n});
  decl(&outs, "Y", 2, (int64_t[]){m, n});
  bk_strbuf_puts(&outs, ", ");
  decl(&outs, "S", 1, (int64_t[]){r});
  bk_strbuf_printf(&body, "  local mx: f32[%lld]\n  local e: f32[%lld, %lld]\n", (long long)r,
                   (long long)m, (long long)n);
  bk_strbuf_printf(&body, "  mx[%s] max= X[i, j]\n  e[i, j] = exp(X[i, j] - mx[%s])\n", a, a);
  bk_strbuf_printf(&body, "  S[%s] += e[i, j]\n  Y[i, j] = e[i, j] / S[%s]\n", a, a);
  emit(out, &ins, &outs, &body);
}

/* Max pooling (NCHW) with random window, stride and padding:
 * Y[n, c, p, q] max= X[n, c, ST*p + r - PD, ST*q + s - PD] where r in 0..R, s in 0..S */
static void gen_pool(void *out, uint64_t *rng) {
  conv c = random_conv(rng, false);
  c.dl = 1;
  while (c.h + 2 * c.pd < c.r)
    c.h++;
  while (c.w + 2 * c.pd < c.s)
    c.w++;
  c.p = (c.h + 2 * c.pd - c.r) / c.st + 1;
  c.q = (c.w + 2 * c.pd - c.s) / c.st + 1;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "X", 4, (int64_t[]){c.n, c.c, c.h, c.w});
  decl(&outs, "Y", 4, (int64_t[]){c.n, c.c, c.p, c.q});
  bk_strbuf_puts(&body, "  Y[n, c, p, q] max= X[n, c, ");
  conv_index(&body, "p", "r", c.st, 1, c.pd);
  bk_strbuf_puts(&body, ", ");
  conv_index(&body, "q", "s", c.st, 1, c.pd);
  bk_strbuf_printf(&body, "] where r in 0..%lld, s in 0..%lld\n", (long long)c.r, (long long)c.s);
  emit(out, &ins, &outs, &body);
}

/* The paper's blocked layout with random blocks, stride, padding and dilation:
 * O[n, kb, p, q, k] += I[n, cb, ST*p + DL*r - PD, ST*q + DL*s - PD, c] * Wt[kb, cb, r, s, c, k] */
static void gen_conv_blocked(void *out, uint64_t *rng) {
  int64_t vc = rnd(rng, 1, 20), vk = rnd(rng, 1, 20);
  conv c = random_conv(rng, false);
  int64_t cb = (c.c + vc - 1) / vc, kb = (c.k + vk - 1) / vk;
  while (2.0 * (double)(c.n * cb * vc * kb * vk * c.r * c.s) * (double)(c.p * c.q) > GEN_MAX_FLOPS)
    cb > 1 ? cb-- : kb > 1 ? kb-- : vc > 1 ? vc-- : vk--;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "I", 5, (int64_t[]){c.n, cb, c.h, c.w, vc});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "Wt", 6, (int64_t[]){kb, cb, c.r, c.s, vc, vk});
  decl(&outs, "O", 5, (int64_t[]){c.n, kb, c.p, c.q, vk});
  bk_strbuf_puts(&body, "  O[n, kb, p, q, k] += I[n, cb, ");
  conv_index(&body, "p", "r", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, ", ");
  conv_index(&body, "q", "s", c.st, c.dl, c.pd);
  bk_strbuf_puts(&body, ", c] * Wt[kb, cb, r, s, c, k]\n");
  emit(out, &ins, &outs, &body);
}

/* Iterators outside the usual classes: l only in the output (a broadcast), r a reduction over
 * one factor only: C[i, j, l] += A[i, k, r] * B[k, j], in random layouts of A and C. */
static void gen_odd_contraction(void *out, uint64_t *rng) {
  int64_t m = extent(rng), n = extent(rng), k = extent(rng), l = rnd(rng, 1, 5), r = rnd(rng, 1, 5);
  while (2.0 * (double)(m * n * k * l * r) > GEN_MAX_FLOPS)
    m = (m + 1) / 2, n = (n + 1) / 2;
  static const char *const ia[] = {"i", "k", "r"}, *const ic[] = {"i", "j", "l"};
  int64_t ea[] = {m, k, r}, ec[] = {m, n, l};
  int pa[3], pc[3];
  perm(rng, pa, 3);
  perm(rng, pc, 3);
  sb_t ins, outs, body, xa, xc;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  bk_strbuf_init(&xa), bk_strbuf_init(&xc);
  permuted(&ins, &xa, "A", 3, ia, ea, pa);
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "B", 2, (int64_t[]){k, n});
  permuted(&outs, &xc, "C", 3, ic, ec, pc);
  bk_strbuf_printf(&body, "  %s += %s * B[k, j]\n", bk_strbuf_cstr(&xc), bk_strbuf_cstr(&xa));
  bk_strbuf_release(&xa), bk_strbuf_release(&xc);
  emit(out, &ins, &outs, &body);
}

/* An LSTM cell: two contractions into one local (the second continues the first), then gate
 * math that reads an output written by the statement before. */
static void gen_lstm(void *out, uint64_t *rng) {
  long long n = extent(rng), in = extent(rng), hid = extent(rng);
  while (16.0 * (double)(n * hid) * (double)(in + hid) > GEN_MAX_FLOPS)
    in = (in + 1) / 2, hid = (hid + 1) / 2;
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  bk_strbuf_printf(&ins, "X: f32[%lld, %lld], Hp: f32[%lld, %lld], Cp: f32[%lld, %lld], "
                   "Wx: f32[%lld, 4, %lld], Wh: f32[%lld, 4, %lld], b: f32[4, %lld]",
                   n, in, n, hid, n, hid, in, hid, hid, hid, hid);
  bk_strbuf_printf(&outs, "Hn: f32[%lld, %lld], Cn: f32[%lld, %lld]", n, hid, n, hid);
  bk_strbuf_printf(&body, "  local G: f32[%lld, 4, %lld]\n", n, hid);
  bk_strbuf_puts(&body,
                 "  G[n, g, j] += X[n, k] * Wx[k, g, j]\n"
                 "  G[n, g, j] += Hp[n, k] * Wh[k, g, j]\n"
                 "  Cn[n, j] = sigmoid(G[n, 1, j] + b[1, j]) * Cp[n, j] +\n"
                 "             sigmoid(G[n, 0, j] + b[0, j]) * tanh(G[n, 2, j] + b[2, j])\n"
                 "  Hn[n, j] = sigmoid(G[n, 3, j] + b[3, j]) * tanh(Cn[n, j])\n");
  emit(out, &ins, &outs, &body);
}

/* Accumulation into values an earlier statement wrote (beta = 1 from the first call on):
 * C[i, j] = D[i, j] * 0.5; C[i, j] += A[i, k] * B[k, j]; then sometimes C[i, j] max= ... */
static void gen_accumulate(void *out, uint64_t *rng) {
  int64_t m = extent(rng), n = extent(rng), k = extent(rng);
  sb_t ins, outs, body;
  bk_strbuf_init(&ins), bk_strbuf_init(&outs), bk_strbuf_init(&body);
  decl(&ins, "A", 2, (int64_t[]){m, k});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "B", 2, (int64_t[]){k, n});
  bk_strbuf_puts(&ins, ", ");
  decl(&ins, "D", 2, (int64_t[]){m, n});
  decl(&outs, "C", 2, (int64_t[]){m, n});
  bk_strbuf_puts(&body, sched_rng_below(rng, 2) ? "  C[i, j] = D[i, j] * 0.5\n" : "  C[i, j] = D[0, j]\n");
  bk_strbuf_puts(&body, "  C[i, j] += A[i, k] * B[k, j]\n");
  if (sched_rng_below(rng, 2))
    bk_strbuf_puts(&body, "  C[i, j] max= A[i, k] * 3.0\n");
  if (sched_rng_below(rng, 2))
    bk_strbuf_puts(&body, "  C[i, j] += D[i, k - 1] * B[k, j] where k in 0..4\n");
  emit(out, &ins, &outs, &body);
}

const gen_class gen_classes[] = {
    {"matmul", gen_matmul},
    {"batched", gen_batched},
    {"conv2d", gen_conv},
    {"conv_bwd_data", gen_conv_bwd_data},
    {"conv_bwd_weights", gen_conv_bwd_weights},
    {"where", gen_where},
    {"gram", gen_gram},
    {"dot", gen_dot},
    {"fc_relu", gen_fc},
    {"mlp", gen_mlp},
    {"elementwise", gen_elementwise},
    {"maxpool", gen_pool},
    {"conv_blocked", gen_conv_blocked},
    {"odd_contraction", gen_odd_contraction},
    {"lstm", gen_lstm},
    {"wide", gen_wide},
    {"accumulate", gen_accumulate},
    {"softmax", gen_softmax},
};
const int gen_nclasses = (int)(sizeof gen_classes / sizeof *gen_classes);
