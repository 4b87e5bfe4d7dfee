/*
 * The default schedule: a valid, reasonably fast BRGEMM schedule for any kernel, no tuning.
 *
 * For a contraction C += X * Y: M is an iterator of unit stride in C that only one factor has
 * (that factor becomes the BRGEMM's A; unit stride in it too, else it is packed im2col-style);
 * N is the largest iterator of C that only the other factor has; K is the largest reduction
 * iterator whose stride in A is at least the M tile; every other reduction iterator forms the
 * batch. Factors that can be read out of bounds get a zero-padded copy. Loops outside the call:
 * the iterators common to all three (independent GEMMs), then the output's iterators in its
 * dimension order, then the K tile loop. The parallel loop is the outermost loop with work for
 * several threads. Statements that are not contractions become plain loop nests.
 */
#include "scheduler.h"

#include <string.h>

#define M_TILE 64
#define N_TILE 64
#define K_WHOLE_MAX 512
#define K_TILE 256
#define PARALLEL_MIN_FLOPS 200000.0

static int64_t extent(const ir_stmt *s, int it) { return s->iters[it].hi - s->iters[it].lo; }

/* Can access "e" read outside its tensor over the domain of "s"? */
static bool may_oob(const ir_stmt *s, const ir_expr *e) {
  for (int d = 0; d < e->nargs; d++) {
    int64_t lo = e->index[d].c, hi = e->index[d].c;
    for (int i = 0; i < s->niters; i++) {
      int64_t c = e->index[d].coef[i];
      int64_t a = c * s->iters[i].lo, b = c * (s->iters[i].hi - 1);
      lo += a < b ? a : b;
      hi += a < b ? b : a;
    }
    if (lo < 0 || hi >= e->tensor->dims[d])
      return true;
  }
  return false;
}

/* The M iterator: unit stride in C, in exactly one factor; unit stride there preferred. */
static int choose_m(const ir_stmt *s, const sched_contraction *c, bool *a_is_x) {
  int best = -1, best_score = -1;
  for (int i = 0; i < s->niters; i++) {
    if (c->lin_c[i] != 1 || (c->cls[i] != SCHED_CLASS_X_SIDE && c->cls[i] != SCHED_CLASS_Y_SIDE))
      continue;
    bool x = c->cls[i] == SCHED_CLASS_X_SIDE;
    int64_t lin_a = x ? c->lin_x[i] : c->lin_y[i];
    int score = (lin_a == 1 ? 2 : 1) * 100000 + (int)(extent(s, i) > 99999 ? 99999 : extent(s, i));
    if (score > best_score) {
      best = i;
      best_score = score;
      *a_is_x = x;
    }
  }
  return best;
}

/* The N iterator: the largest of C's iterators that only B has. */
static int choose_n(const ir_stmt *s, const sched_contraction *c, bool a_is_x) {
  sched_class want = a_is_x ? SCHED_CLASS_Y_SIDE : SCHED_CLASS_X_SIDE;
  int best = -1;
  for (int i = 0; i < s->niters; i++)
    if (c->cls[i] == want && c->lin_c[i] > 0 && (a_is_x ? c->lin_y[i] : c->lin_x[i]) > 0 &&
        (best < 0 || extent(s, i) > extent(s, best)))
      best = i;
  return best;
}

/* The K iterator: the largest reduction with stride >= the M tile in A (or -1). */
static int choose_k(const ir_stmt *s, const sched_contraction *c, bool a_is_x, int64_t m_tile,
                    bool a_packed) {
  int best = -1;
  for (int i = 0; i < s->niters; i++) {
    if (c->cls[i] != SCHED_CLASS_REDUCE)
      continue;
    int64_t lin_a = a_is_x ? c->lin_x[i] : c->lin_y[i];
    int64_t lin_b = a_is_x ? c->lin_y[i] : c->lin_x[i];
    if (lin_b <= 0 || (!a_packed && lin_a < m_tile))
      continue;
    if (best < 0 || extent(s, i) > extent(s, best))
      best = i;
  }
  return best;
}

static void add_loop(sched_loop *loops, int *n, int it, bool tile) {
  loops[(*n)++] = (sched_loop){it, tile};
}

/* Is iterator "it" of the lhs (C) used before position "d" of its dims? Order helper. */
static void order_contraction(const ir_stmt *s, const sched_contraction *c, sched_stmt *ss) {
  for (int i = 0; i < s->niters; i++)
    if (c->cls[i] == SCHED_CLASS_BATCH)
      add_loop(ss->order, &ss->norder, i, false);
  for (int d = 0; d < s->lhs->nargs; d++) {
    int i = -1;
    for (int j = 0; j < s->niters; j++)
      if (s->lhs->index[d].coef[j])
        i = j;
    if (i < 0 || c->cls[i] == SCHED_CLASS_BATCH)
      continue;
    int r = i == ss->role[SCHED_M] ? SCHED_M : i == ss->role[SCHED_N] ? SCHED_N : -1;
    if (r < 0)
      add_loop(ss->order, &ss->norder, i, false);
    else if (ss->tile[r])
      add_loop(ss->order, &ss->norder, i, true);
  }
  if (ss->role[SCHED_K] >= 0 && ss->tile[SCHED_K])
    add_loop(ss->order, &ss->norder, ss->role[SCHED_K], true);
  for (int i = 0; i < s->niters; i++)
    if (s->iters[i].reduction && i != ss->role[SCHED_K])
      add_loop(ss->batch, &ss->nbatch, i, false);
}

static int64_t tile_for(int64_t ext, int64_t max_whole, int64_t tile) {
  return ext <= max_whole ? 0 : tile;
}

static void add_pack(sched_stmt *ss, int read, sched_pack kind, bk_arena *a) {
  struct sched_pack_rec rec = {read, kind};
  bk_vec_push(a, &ss->packs, rec);
}

/* Fill "ss" for contraction "s"; false if no BRGEMM mapping exists. */
static bool default_contraction(const ir_stmt *s, sched_stmt *ss, bk_arena *arena) {
  sched_contraction c;
  if (!sched_classify(s, &c))
    return false;
  bool a_is_x = true;
  int m = choose_m(s, &c, &a_is_x);
  if (m < 0)
    return false;
  int a_read = a_is_x ? c.x : c.y, b_read = a_is_x ? c.y : c.x;
  bool a_im2col = (a_is_x ? c.lin_x[m] : c.lin_y[m]) != 1;
  ss->brgemm = true;
  ss->role[SCHED_M] = m;
  ss->tile[SCHED_M] = tile_for(extent(s, m), M_TILE, M_TILE);
  int64_t m_tile = ss->tile[SCHED_M] ? ss->tile[SCHED_M] : extent(s, m);
  ss->role[SCHED_N] = choose_n(s, &c, a_is_x);
  if (ss->role[SCHED_N] >= 0)
    ss->tile[SCHED_N] = tile_for(extent(s, ss->role[SCHED_N]), N_TILE, N_TILE);
  ss->role[SCHED_K] = choose_k(s, &c, a_is_x, m_tile, a_im2col);
  if (ss->role[SCHED_K] >= 0)
    ss->tile[SCHED_K] = tile_for(extent(s, ss->role[SCHED_K]), K_WHOLE_MAX, K_TILE);
  order_contraction(s, &c, ss);
  if (a_im2col)
    add_pack(ss, a_read, SCHED_PACK_IM2COL, arena);
  else if (may_oob(s, s->reads[a_read]))
    add_pack(ss, a_read, SCHED_PACK_PAD, arena);
  if (may_oob(s, s->reads[b_read]))
    add_pack(ss, b_read, SCHED_PACK_PAD, arena);
  return true;
}

/* Plain loops: the left-side iterators in order, then the reductions. */
static void default_loops(const ir_stmt *s, sched_stmt *ss) {
  ss->brgemm = false;
  for (int i = 0; i < s->niters; i++)
    add_loop(ss->order, &ss->norder, i, false);
}

/* The outermost loop of a parallel iterator with at least two iterations. */
static void choose_parallel(const ir_stmt *s, sched_stmt *ss, int threads) {
  ss->parallel = -1;
  if (threads == 1 || s->flops < PARALLEL_MIN_FLOPS)
    return;
  for (int i = 0; i < ss->norder; i++) {
    sched_loop l = ss->order[i];
    if (s->iters[l.iter].reduction)
      continue;
    int r = l.tile ? (l.iter == ss->role[SCHED_M] ? SCHED_M : SCHED_N) : -1;
    int64_t trips = r >= 0 ? (extent(s, l.iter) + ss->tile[r] - 1) / ss->tile[r]
                           : extent(s, l.iter);
    if (trips >= 2) {
      ss->parallel = i;
      return;
    }
  }
}

void sched_default_stmt(const ir_kernel *k, const ir_stmt *s, int threads, sched_stmt *out,
                        bk_arena *arena) {
  *out = (sched_stmt){.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
  if (!default_contraction(s, out, arena)) {
    *out = (sched_stmt){.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
    default_loops(s, out);
  }
  choose_parallel(s, out, threads);
}

sched_schedule *sched_complete(const ir_kernel *k, const sched_schedule *given, int threads) {
  sched_schedule *out = sched_schedule_new();
  for (int i = 0; i < k->stmts.len; i++) {
    sched_stmt *g = NULL;
    for (int j = 0; given && j < given->stmts.len; j++)
      if (given->stmts.data[j].stmt == i)
        g = &given->stmts.data[j];
    sched_stmt *ss = sched_schedule_add(out, i);
    if (!g) {
      sched_default_stmt(k, k->stmts.data[i], threads, ss, out->arena);
      continue;
    }
    *ss = *g;
    memset(&ss->packs, 0, sizeof ss->packs);
    for (int p = 0; p < g->packs.len; p++)
      bk_vec_push(out->arena, &ss->packs, g->packs.data[p]);
  }
  return out;
}
