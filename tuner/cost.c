/*
 * The analytic cost model: the estimated cycles of one call of a lowered kernel, used only to
 * rank candidates so that the promising ones are measured first.
 *
 * A BRGEMM op is a nest of loops (its "order", outermost first) around one call. Its cost has
 * three parts:
 *
 *  - Compute: each call is cut into register blocks the way brgemm_intrin/desc.c cuts it (nvec
 *    vectors along M by n columns, nvec*n + nvec + 1 registers), and one K step of a block costs
 *    max(FMA pairs, FMA latency, loads); the call adds fixed costs (C in and out, the batch loop,
 *    the call itself). Tiles that do not divide their range leave tail calls, costed as such.
 *  - Memory: the working set of the nest below each loop level is the footprint of A, B and C
 *    over the iterator ranges that level covers (cache lines, padded reads included). The call
 *    itself adds two levels, as the microkernel walks it: its M chunks, and the register blocks
 *    of a chunk (each running the whole batch and K). For each cache level, the outermost level
 *    whose working set fits decides the traffic: a tensor is loaded once per iteration of the
 *    loops outside it, except across the loop just outside when it does not depend on that loop
 *    (it stays in cache). Rows a multiple of a large power of two apart share cache sets (a
 *    1024-float row pitch puts every row of a tile into the same sets of L1), so they take a
 *    set's way each; and runs shorter than a few cache lines in rows on different pages
 *    defeat the hardware prefetchers, which the traffic from beyond L2 pays for. Traffic /
 *    bandwidth per cache level.
 *  - Parallel balance: the parallel loop's trips over the team, in static blocks, plus a fork
 *    and join per iteration of the loops outside it.
 *
 * Plain loop nests (fills, packs, copies, statements not run as BRGEMM) cost per point, less
 * when the innermost loop can be vectorized. Numbers are per core cycles of a two-FMA-pipe x86
 * core; only their order matters.
 */
#include "tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_USE 1.0          /* fraction of a cache a working set may fill */
#define PREFETCH_RUN 256.0     /* runs shorter than this, in rows on different pages, miss */
#define PAGE 4096
#define CALL_CYCLES 20.0       /* call, prologue, epilogue of one BRGEMM */
#define BATCH_STEP_CYCLES 3.0  /* per batch element and register block: pointers, loop */
#define FORK_CYCLES 8000.0     /* the kernel's GOMP_parallel fork and join (once per call) */
#define BARRIER_CYCLES 1000.0  /* one of brick's spinning barriers inside the region */
#define OVERLAP 0.25           /* part of the smaller of compute and memory that does not overlap */

static const double bandwidth[3] = {64.0, 16.0, 4.0}; /* bytes per cycle into L1, L2, L3 */

static int64_t extent(const sched_op *op, int i) { return op->iters[i].hi - op->iters[i].lo; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- the microkernel -------------------------------------------------------------------- */

/* Widest column block for chunks of "nvec" vectors (desc.c's rule). */
static int n_max(int nvec, int nregs) {
  int n = (nregs - nvec - 1 - nregs / 16) / nvec;
  return n > 28 ? 28 : n < 1 ? 1 : n;
}

/* FMA-pair cycles of one K step of an "nvec" x "n" block: two FMAs and two loads per cycle,
 * FMA latency 4; a block of fewer than 8 accumulators rotates K steps through several sets
 * of them (block.c), which hides the latency as 8 accumulators would. */
static double step_cost(int nvec, int n) {
  double fma = nvec * n / 2.0, ld = (nvec + n) / 2.0;
  double lat = nvec * n >= 8 ? 4.0 : 4.0 / ((8 + nvec * n - 1) / (nvec * n));
  double c = fma > lat ? fma : lat;
  return c > ld ? c : ld;
}

/* "total" split into balanced runs of at most "cap": the number of runs and the largest run. */
static int64_t runs_of(int64_t total, int64_t cap, int64_t *largest) {
  int64_t nb = ceil_div(total, cap);
  *largest = ceil_div(total, nb);
  return nb;
}

typedef struct block_plan {
  double step;      /* cycles of one K step over the whole M x N tile */
  int64_t blocks;   /* register blocks in the tile */
  int64_t mchunks, nblocks; /* chunks along M, column blocks per chunk */
  int64_t mwidth, ncols;    /* floats per chunk, columns per block (the largest) */
} block_plan;

/* The register blocking of an "M" x "N" tile: the chunk width (in vectors) of least cost. */
static block_plan plan_tile(const tune_machine *m, int64_t M, int64_t N) {
  int64_t nv = ceil_div(M, m->vlen);
  int mb_cap = (m->nregs - 2) / 2 > 4 ? 4 : (m->nregs - 2) / 2;
  block_plan best = {0};
  for (int mb = 1; mb <= mb_cap && mb <= nv; mb++) {
    int64_t width, chunks = runs_of(nv, mb, &width), ncol, ncb = runs_of(N, n_max((int)width, m->nregs), &ncol);
    block_plan p = {chunks * ncb * step_cost((int)width, (int)ncol), chunks * ncb, chunks, ncb,
                    width * m->vlen, ncol};
    if (best.blocks == 0 || p.step < best.step)
      best = p;
  }
  if (best.blocks == 0)
    best = (block_plan){step_cost(1, 1), 1, 1, 1, m->vlen, 1};
  return best;
}

/* Cycles of one call of "M" x "N" x "K" with "batch". */
static double call_cycles(const tune_machine *m, int64_t M, int64_t N, int64_t K, int64_t batch,
                          const block_plan *p) {
  double cio = 2.0 * (double)ceil_div(M, m->vlen) * (double)N;
  return CALL_CYCLES + cio + (double)p->blocks * (double)batch * BATCH_STEP_CYCLES +
         (double)batch * (double)K * p->step;
}

double tune_ukernel_efficiency(const tune_machine *m, int64_t M, int64_t N, int64_t K,
                               int64_t batch) {
  block_plan p = plan_tile(m, M, N);
  double useful = (double)M * (double)N * (double)K * (double)batch / (2.0 * m->vlen);
  return useful / call_cycles(m, M, N, K, batch, &p);
}

/* ---- BRGEMM ops ------------------------------------------------------------------------ */

/* One loop of a BRGEMM op's nest: a loop of the order, or one of the two loops inside a call
 * (over its M chunks, then over the register blocks of a chunk). */
typedef struct level {
  int iter;
  bool tile;
  int64_t trips;
} level;

typedef struct bnest {
  const sched_kernel *sk;
  const sched_op *op;
  const tune_machine *m;
  level lv[SCHED_MAX_LOOPS + 2];
  int nreal, n;           /* loops of the order; and with the two inside the call */
  block_plan plan;        /* register blocking of a full tile */
  int64_t size[3];        /* tile of each role as the call sees it (1 if absent) */
  int64_t batch;          /* batch count of a full call */
  const sched_access *acc[3]; /* A, B, C */
  int64_t lin[3][64];         /* their linear element strides over the op's iterators */
} bnest;

static int role_of(const sched_stmt *ss, int it) {
  for (int r = 0; r < 3; r++)
    if (ss->role[r] == it)
      return r;
  return -1;
}

static void nest_init(bnest *b, const sched_kernel *sk, const sched_op *op, const tune_machine *m) {
  const sched_stmt *ss = &op->sched;
  *b = (bnest){.sk = sk, .op = op, .m = m, .batch = 1,
               .acc = {&op->reads[op->a_read], &op->reads[op->b_read], &op->write}};
  for (int x = 0; x < 3; x++) {
    int64_t c0;
    sched_access_linearize(sk, op, b->acc[x], b->lin[x], &c0);
  }
  for (int r = 0; r < 3; r++) {
    int it = ss->role[r];
    int64_t e = it >= 0 ? extent(op, it) : 1;
    b->size[r] = it < 0 ? 1 : ss->tile[r] && ss->tile[r] < e ? ss->tile[r] : e;
  }
  for (int i = 0; i < ss->norder && b->n < SCHED_MAX_LOOPS; i++) {
    sched_loop l = ss->order[i];
    int r = l.tile ? role_of(ss, l.iter) : -1;
    int64_t e = extent(op, l.iter);
    b->lv[b->n++] = (level){l.iter, l.tile, r >= 0 ? ceil_div(e, b->size[r]) : e};
  }
  for (int i = 0; i < ss->nbatch; i++) {
    sched_loop l = ss->batch[i];
    int64_t e = extent(op, l.iter);
    b->batch *= l.tile ? ceil_div(e, b->size[SCHED_K]) : e;
  }
  b->nreal = b->n;
  b->plan = plan_tile(m, b->size[SCHED_M], b->size[SCHED_N]);
  b->lv[b->n++] = (level){ss->role[SCHED_M], false, b->plan.mchunks};
  b->lv[b->n++] = (level){ss->role[SCHED_N], false, b->plan.nblocks};
}

/* Distinct values of iterator "it" that one execution of the nest from level "j" covers. */
static int64_t span(const bnest *b, int it, int j) {
  for (int i = j; i < b->nreal; i++)
    if (b->lv[i].iter == it)
      return extent(b->op, it);
  const sched_stmt *ss = &b->op->sched;
  int r = role_of(ss, it);
  if (r == SCHED_K)
    for (int i = 0; i < ss->nbatch; i++)
      if (ss->batch[i].iter == it)
        return extent(b->op, it); /* the K tile loop in the batch: all of K per call */
  if (r == SCHED_M && j > b->nreal)
    return b->size[r] < b->plan.mwidth ? b->size[r] : b->plan.mwidth;
  if (r == SCHED_N && j > b->nreal + 1)
    return b->size[r] < b->plan.ncols ? b->size[r] : b->plan.ncols;
  if (r >= 0)
    return b->size[r];
  for (int i = 0; i < ss->nbatch; i++)
    if (ss->batch[i].iter == it)
      return extent(b->op, it);
  return 1;
}

/* The largest power of two dividing both "bytes" and "way" (0: no way, 1). */
static int64_t gcd_way(int64_t bytes, int64_t way) {
  int64_t g = 1;
  while (way > 0 && g < way && bytes % (2 * g) == 0)
    g *= 2;
  return g;
}

/* Bytes of the cache lines that an access with linear strides "lin" touches when each
 * iterator i covers "spans[i]" values: terms of equal stride merge, then from the smallest
 * stride up, a term within the contiguous run so far extends it, a larger one repeats it.
 * With "way" (the bytes of one way of a set-associative cache) > 0, the bytes the access
 * takes of that cache: blocks repeated at a stride that is a multiple of a large power of two
 * land in the same sets (a 4 KB row pitch maps every row of a 48 KB 12-way L1 to the same
 * sets), so each block takes at least gcd(stride, way) bytes of it. */
static double footprint(const bnest *b, const int64_t *lin, const int64_t *spans, int64_t nelems,
                        int64_t way, double *penalty) {
  int64_t stride[64], reach[64];
  int n = 0;
  for (int i = 0; i < b->op->niters; i++) {
    int64_t c = llabs(lin[i]);
    if (c == 0 || spans[i] <= 1)
      continue;
    int j = 0;
    while (j < n && stride[j] != c)
      j++;
    if (j == n) {
      stride[n] = c;
      reach[n++] = 0;
    }
    reach[j] += spans[i] - 1;
  }
  for (int i = 1; i < n; i++) /* insertion sort by stride */
    for (int j = i; j > 0 && stride[j - 1] > stride[j]; j--) {
      int64_t t = stride[j], r = reach[j];
      stride[j] = stride[j - 1];
      reach[j] = reach[j - 1];
      stride[j - 1] = t;
      reach[j - 1] = r;
    }
  int64_t run = 1;
  double blocks = 1, bytes = 0;
  *penalty = 1;
  for (int i = 0; i < n; i++) {
    if (stride[i] <= run) {
      run += stride[i] * reach[i];
      continue;
    }
    if (bytes == 0) {
      bytes = (double)(ceil_div(run * 4, 64) * 64);
      if (stride[i] * 4 >= PAGE && bytes < PREFETCH_RUN)
        *penalty = PREFETCH_RUN / bytes;
    }
    blocks *= (double)(reach[i] + 1);
    bytes = (double)(reach[i] + 1) * fmax(bytes, (double)gcd_way(stride[i] * 4, way));
  }
  double elems = blocks * (double)run;
  if (elems > (double)nelems)
    return (double)nelems * 4;
  return bytes > 0 ? bytes : (double)(ceil_div(run * 4, 64) * 64);
}

/* Bytes of operand "x" (A, B, C) that one execution of the nest from level "j" touches. A call
 * reads B at one value of the M iterator and A at one value of N (the base of the call), even
 * where a packed layout gives them a stride there: across tiles they move by tile * stride. */
static double footprint_at(const bnest *b, int x, int j, int64_t way, double *penalty) {
  int64_t spans[64], strides[64];
  for (int i = 0; i < b->op->niters; i++) {
    spans[i] = span(b, i, j);
    strides[i] = b->lin[x][i];
  }
  int r = x == 0 ? SCHED_N : x == 1 ? SCHED_M : -1, it = r >= 0 ? b->op->sched.role[r] : -1;
  if (it >= 0 && strides[it]) {
    bool looped = false;
    for (int i = j; i < b->nreal; i++)
      looped |= b->lv[i].iter == it;
    spans[it] = looped ? ceil_div(extent(b->op, it), b->size[r]) : 1;
    strides[it] *= b->size[r];
  }
  return footprint(b, strides, spans, b->sk->bufs.data[b->acc[x]->buf].nelems, way, penalty);
}

/* Does operand "x" change along level "i"? (In a call, A does not move with N nor B with M.) */
static bool depends_on(const bnest *b, int x, int i) {
  int it = b->lv[i].iter;
  if (i >= b->nreal)
    return it >= 0 && x != (i == b->nreal ? 1 : 0);
  return b->lin[x][it] != 0;
}

/* Bytes loaded into a cache of "capacity" bytes over one execution of the op: the outermost
 * level whose working set fits runs from the cache, loaded once per iteration of the levels
 * outside it (but once for all iterations of the level just outside that the operand does
 * not depend on); when not even a register block's data fits, everything streams. */
static double traffic(const bnest *b, int lvl) {
  double fit = (double)b->m->cache[lvl] * CACHE_USE, w[SCHED_MAX_LOOPS + 3][3];
  int64_t way = b->m->cache[lvl] / (b->m->ways[lvl] > 0 ? b->m->ways[lvl] : 1);
  int jstar = -1;
  double pen[SCHED_MAX_LOOPS + 3][3];
  for (int j = 0; j <= b->n && jstar < 0; j++) {
    double taken = 0;
    for (int x = 0; x < 3; x++)
      taken += footprint_at(b, x, j, way, &pen[j][x]);
    if (taken <= fit)
      jstar = j;
  }
  for (int j = 0; j <= b->n; j++)
    for (int x = 0; x < 3; x++)
      w[j][x] = footprint_at(b, x, j, 0, &pen[j][x]);
  bool fits = jstar >= 0;
  jstar = fits ? jstar : b->n;
  double total = 0;
  for (int x = 0; x < 3; x++) {
    double t = w[jstar][x] * (x == 2 ? 2.0 : 1.0) * (lvl > 0 && !fits ? pen[jstar][x] : 1.0);
    for (int i = 0; i < jstar; i++)
      if (!fits || i < jstar - 1 || depends_on(b, x, i))
        t *= (double)b->lv[i].trips;
    total += t;
  }
  return total;
}

/* The sizes a role takes over its range: full tiles and a tail. */
static int role_sizes(const bnest *b, int r, int64_t *size, double *count) {
  const sched_stmt *ss = &b->op->sched;
  int it = ss->role[r];
  bool looped = false;
  for (int i = 0; i < b->nreal; i++)
    looped |= b->lv[i].iter == it && b->lv[i].tile;
  if (it < 0 || !looped) {
    size[0] = b->size[r];
    count[0] = 1;
    return 1;
  }
  int64_t e = extent(b->op, it), t = b->size[r];
  size[0] = t;
  count[0] = (double)(e / t);
  if (e % t == 0)
    return 1;
  size[1] = e % t;
  count[1] = 1;
  return 2;
}

/* Compute cycles of the op (serial) and its useful share; "plan" gets the full tile's plan. */
static double brgemm_compute(const bnest *b, double *useful) {
  double other = 1;
  for (int i = 0; i < b->nreal; i++)
    if (!b->lv[i].tile || role_of(&b->op->sched, b->lv[i].iter) < 0)
      other *= (double)b->lv[i].trips;
  int64_t sm[2], sn[2], skk[2];
  double cm[2], cn[2], ck[2], cycles = 0;
  int nm = role_sizes(b, SCHED_M, sm, cm), nn = role_sizes(b, SCHED_N, sn, cn),
      nk = role_sizes(b, SCHED_K, skk, ck);
  *useful = 0;
  for (int i = 0; i < nm; i++)
    for (int j = 0; j < nn; j++) {
      block_plan p = plan_tile(b->m, sm[i], sn[j]);
      for (int l = 0; l < nk; l++) {
        double n = other * cm[i] * cn[j] * ck[l];
        cycles += n * call_cycles(b->m, sm[i], sn[j], skk[l], b->batch, &p);
        *useful += n * (double)(sm[i] * sn[j] * skk[l] * b->batch) / (2.0 * b->m->vlen);
      }
    }
  return cycles;
}

/* Time of "serial" cycles of an op whose parallel loop is "par" (-1: none) in "lv". */
static double parallel_time(double serial, const level *lv, int par, int team, double *balance,
                            double *fork) {
  *balance = 1;
  *fork = 0;
  if (team <= 1)
    return serial;
  if (par < 0) {
    *balance = 1.0 / team;
    return serial;
  }
  int64_t trips = lv[par].trips, per = ceil_div(trips, team);
  double outer = 1;
  for (int i = 0; i < par; i++)
    outer *= (double)lv[i].trips;
  *balance = (double)trips / (double)(per * team);
  *fork = FORK_CYCLES + outer * BARRIER_CYCLES; /* codegen/parallel.c: one region per call */
  return serial * (double)per / (double)trips + *fork;
}

static void cost_brgemm(const sched_kernel *sk, const sched_op *op, const tune_machine *m,
                        int team, tune_cost *c, double *eff_w, double *bal_w, double *w) {
  bnest b;
  nest_init(&b, sk, op, m);
  double useful, compute = brgemm_compute(&b, &useful), mem = 0;
  for (int lvl = 0; lvl < 3; lvl++)
    mem += traffic(&b, lvl) / bandwidth[lvl];
  double serial = (compute > mem ? compute : mem) + OVERLAP * (compute < mem ? compute : mem);
  double balance, fork, t = parallel_time(serial, b.lv, op->sched.parallel, team, &balance, &fork);
  c->compute += compute;
  c->memory += mem;
  c->overhead += fork;
  c->total += t;
  *eff_w += useful;
  *bal_w += balance * useful;
  *w += compute;
}

/* ---- plain loop nests ---------------------------------------------------------------- */

static int count_ops(const ir_expr *e) {
  if (!e || e->kind != IR_EXPR_OP)
    return e && e->kind == IR_EXPR_ACCESS ? 1 : 0;
  int n = 1;
  for (int i = 0; i < e->nargs; i++)
    n += count_ops(e->args[i]);
  return n;
}

/* Is the innermost loop of "op" unit stride (or invariant) in every access? */
static bool inner_vectorizable(const sched_kernel *sk, const sched_op *op) {
  if (op->sched.norder == 0)
    return false;
  int it = op->sched.order[op->sched.norder - 1].iter;
  for (int a = -1; a < op->nreads; a++) {
    const sched_access *x = a < 0 ? &op->write : &op->reads[a];
    int rank = sched_access_rank(sk, x);
    for (int d = 0; d < rank; d++)
      if (x->index[d].coef[it] && (d != rank - 1 || x->index[d].coef[it] != 1))
        return false;
  }
  return true;
}

static void cost_loops(const sched_kernel *sk, const sched_op *op, const tune_machine *m,
                       int team, tune_cost *c) {
  level lv[SCHED_MAX_LOOPS];
  double points = 1;
  int n = 0;
  for (int i = 0; i < op->sched.norder && n < SCHED_MAX_LOOPS; i++) {
    int64_t e = extent(op, op->sched.order[i].iter);
    lv[n++] = (level){op->sched.order[i].iter, false, e};
    points *= (double)e;
  }
  bool vec = inner_vectorizable(sk, op);
  double per;
  if (op->value == SCHED_VAL_CONST)
    per = 0.25;
  else if (op->value == SCHED_VAL_COPY)
    per = vec ? 0.5 : 1.0;
  else
    per = (double)(1 + count_ops(op->stmt->rhs)) * (vec ? 1.5 / m->vlen : 1.0) +
          (op->assign != IR_ASSIGN_SET && !vec ? 3.0 : 0.0);
  double balance, fork, serial = points * per;
  double t = parallel_time(serial, lv, op->sched.parallel, team, &balance, &fork);
  if (op->value == SCHED_VAL_EXPR && op->kind == SCHED_OP_LOOPS)
    c->compute += serial;
  else
    c->overhead += serial;
  c->overhead += fork;
  c->total += t;
}

void tune_cost_kernel(const sched_kernel *sk, const tune_machine *m, int threads,
                      tune_cost *out) {
  *out = (tune_cost){0};
  int team = threads > 0 ? threads : m->cores;
  double useful = 0, bal = 0, weight = 0;
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    if (op->kind == SCHED_OP_BRGEMM)
      cost_brgemm(sk, op, m, team, out, &useful, &bal, &weight);
    else
      cost_loops(sk, op, m, team, out);
  }
  out->ukernel_eff = weight > 0 ? useful / weight : 0;
  out->balance = useful > 0 ? bal / useful : 1;
}

/* ---- rank correlation -------------------------------------------------------------------- */

typedef struct ranked {
  double v;
  int i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
  double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
  return (x > y) - (x < y);
}

/* Ranks of "v" (1-based, ties averaged) into "rank". */
static void ranks(const double *v, int n, double *rank) {
  ranked *r = malloc(sizeof(ranked) * (size_t)n);
  for (int i = 0; i < n; i++)
    r[i] = (ranked){v[i], i};
  qsort(r, (size_t)n, sizeof(ranked), cmp_ranked);
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && r[j + 1].v == r[i].v)
      j++;
    for (int k = i; k <= j; k++)
      rank[r[k].i] = (i + j) / 2.0 + 1;
    i = j + 1;
  }
  free(r);
}

double tune_spearman(const double *x, const double *y, int n) {
  if (n < 3)
    return NAN;
  double *rx = malloc(sizeof(double) * (size_t)n), *ry = malloc(sizeof(double) * (size_t)n);
  ranks(x, n, rx);
  ranks(y, n, ry);
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < n; i++) {
    mx += rx[i] / n;
    my += ry[i] / n;
  }
  for (int i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  free(rx);
  free(ry);
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}
