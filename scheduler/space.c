/*
 * The schedule space: the legal schedules of one statement, enumerated (a pruned space, for
 * exhaustive search) or drawn at random (the randomized tests, random and evolutionary search).
 *
 * A contraction C[..] += X[..] * Y[..] maps onto BRGEMM through a "mapping": the M iterator
 * (unit stride in C), the factor that holds it (A, vector loads) and the packing of each factor.
 * The rules are those check_brgemm() in lower.c enforces, evaluated here on the strides the
 * factors have after packing:
 *
 *   M  in C and A only, unit stride in both; A is packed im2col-style when it is not unit
 *      stride there (im2col puts M last), padded when it can be read out of bounds; C is a
 *      transposed copy of the target ("pack=Y:transpose", M's dimension last) when M is not
 *      unit stride in the target and the statement starts the target's accumulation;
 *   N  in C and B only, positive stride in both (and ldc >= the M tile);
 *   K  a reduction over both factors, positive strides, lda >= the M tile;
 *   batch: any other reduction loops, or the loop over K tiles when the tile divides the range.
 *
 * Every loop left outside the call (the other iterators, the tile loops) may come in any order;
 * the parallel loop is any of them that is not a reduction. Samples also fuse the output rows
 * into M ("flatten") now and then, where lower.c accepts it (reading A in place with its
 * padding masked off, "pack=A:mask", now and then too), and run a matching bias/ReLU
 * statement as a BRGEMM's epilogue (sched_space_random). A statement that is not a
 * contraction (or has no mapping) is a plain loop nest in any order. Packs name tensors, so a
 * tensor read twice gets one packing for both reads.
 */
#include "scheduler.h"

#include <string.h>

/* ---- random numbers (splitmix64) --------------------------------------------------------- */

uint64_t sched_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t sched_rng_below(uint64_t *state, int64_t n) {
  return n <= 1 ? 0 : (int64_t)(sched_rng_next(state) % (uint64_t)n);
}

static bool chance(uint64_t *rng, int percent) { return sched_rng_below(rng, 100) < percent; }

/* ---- strides after packing ---------------------------------------------------------------- */

static int64_t extent(const ir_stmt *s, int it) { return s->iters[it].hi - s->iters[it].lo; }

static bool read_may_oob(const ir_stmt *s, const ir_expr *e) {
  for (int d = 0; d < e->nargs; d++) {
    int64_t lo = e->index[d].c, hi = e->index[d].c;
    for (int i = 0; i < s->niters; i++) {
      int64_t a = e->index[d].coef[i] * s->iters[i].lo, b = e->index[d].coef[i] * (s->iters[i].hi - 1);
      lo += a < b ? a : b;
      hi += a < b ? b : a;
    }
    if (lo < 0 || hi >= e->tensor->dims[d])
      return true;
  }
  return false;
}

static void discard(void *user, bk_severity sev, const char *text) {}

/* The strides of reads "ra" and "rb" of "s" after packing them with "pa" and "pb" (M = "m"),
 * taken from the lowering itself (the statement as a plain op with those packs), so that the
 * space and lower.c cannot disagree about pack layouts. False if that does not lower. */
static bool packed_strides(const ir_kernel *k, const ir_stmt *s, int m, int ra, sched_pack pa,
                           int rb, sched_pack pb, int64_t *la, int64_t *lb) {
  sched_schedule *sch = sched_schedule_new();
  sched_stmt *ss = sched_schedule_add(sch, s->index);
  ss->role[SCHED_M] = m;
  for (int i = 0; i < s->niters; i++)
    ss->order[ss->norder++] = (sched_loop){i, false};
  sched_stmt_add_pack(ss, s, ra, pa, sch->arena);
  sched_stmt_add_pack(ss, s, rb, pb, sch->arena);
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  sched_kernel *sk = sched_lower(k, sch, isl_set_get_ctx(s->domain), &diag);
  bool ok = sk != NULL;
  if (ok) {
    const sched_op *op = sk->ops.data[sk->ops.len - 1];
    int64_t c0;
    sched_access_linearize(sk, op, &op->reads[ra], la, &c0);
    sched_access_linearize(sk, op, &op->reads[rb], lb, &c0);
    ok = !op->reads[ra].may_oob && !op->reads[rb].may_oob;
  }
  sched_kernel_free(sk);
  sched_schedule_free(sch);
  return ok;
}

/* ---- mappings ----------------------------------------------------------------------------- */

/* Does "s" read the tensor of read "r" anywhere else? */
static int other_read_of_tensor(const ir_stmt *s, int r) {
  for (int q = 0; q < s->nreads; q++)
    if (q != r && s->reads[q]->tensor == s->reads[r]->tensor)
      return q;
  return -1;
}

/* Can read "r" be packed with "kind"? (The lowering rejects what it cannot lay out.) */
static bool pack_possible(const ir_stmt *s, int r, sched_pack kind) {
  return kind != SCHED_PACK_NONE || !read_may_oob(s, s->reads[r]);
}

/* Fill "mp" for M = "m" with packs "pa" (A) and "pb" (B), and the target transposed when "ot";
 * false if that is not legal. */
static bool mapping_init(const ir_kernel *k, const ir_stmt *s, const sched_contraction *c, int m,
                         sched_pack pa, sched_pack pb, bool ot, sched_mapping *mp) {
  if ((c->lin_c[m] != 1) != ot || (c->cls[m] != SCHED_CLASS_X_SIDE && c->cls[m] != SCHED_CLASS_Y_SIDE))
    return false;
  bool a_is_x = c->cls[m] == SCHED_CLASS_X_SIDE;
  *mp = (sched_mapping){.m = m, .a_read = a_is_x ? c->x : c->y, .b_read = a_is_x ? c->y : c->x,
                        .pack = {pa, pb}};
  if (s->reads[c->x]->tensor == s->reads[c->y]->tensor && pa != pb)
    return false;
  if (!pack_possible(s, mp->a_read, pa) || !pack_possible(s, mp->b_read, pb))
    return false;
  mp->b_side = a_is_x ? SCHED_CLASS_Y_SIDE : SCHED_CLASS_X_SIDE;
  mp->out_transpose = ot;
  memcpy(mp->lin_c, c->lin_c, sizeof(int64_t) * (size_t)s->niters);
  if (ot && !sched_transposed_strides(s, m, mp->lin_c))
    return false;
  memcpy(mp->cls, c->cls, sizeof(sched_class) * (size_t)s->niters);
  return packed_strides(k, s, m, mp->a_read, pa, mp->b_read, pb, mp->lin_a, mp->lin_b) &&
         mp->lin_a[m] == 1;
}

int sched_space_mappings(const ir_kernel *k, const ir_stmt *s, sched_mapping *out, int max) {
  sched_contraction c;
  if (!sched_classify(s, &c))
    return 0;
  int n = 0;
  for (int ot = 0; ot < 2; ot++)
    for (int m = 0; m < s->niters; m++)
      for (int pa = SCHED_PACK_NONE; pa <= SCHED_PACK_IM2ROW; pa++)
        for (int pb = SCHED_PACK_NONE; pb <= SCHED_PACK_IM2COL; pb++) {
          sched_mapping mp;
          if (n < max && mapping_init(k, s, &c, m, (sched_pack)pa, (sched_pack)pb, ot, &mp))
            out[n++] = mp;
        }
  return n;
}

bool sched_mapping_n_ok(const sched_mapping *mp, const ir_stmt *s, int n, int64_t m_tile,
                        int64_t n_tile) {
  if (n < 0)
    return true;
  if (n == mp->m || mp->cls[n] != mp->b_side || mp->lin_c[n] < 1 || mp->lin_b[n] < 1)
    return false;
  int64_t me = m_tile ? m_tile : extent(s, mp->m), ne = n_tile ? n_tile : extent(s, n);
  return ne == 1 || mp->lin_c[n] >= (me < extent(s, mp->m) ? me : extent(s, mp->m));
}

bool sched_mapping_k_ok(const sched_mapping *mp, const ir_stmt *s, int k, int64_t m_tile,
                        int64_t k_tile) {
  if (k < 0)
    return true;
  if (mp->cls[k] != SCHED_CLASS_REDUCE || mp->lin_a[k] < 1 || mp->lin_b[k] < 1)
    return false;
  int64_t me = m_tile ? m_tile : extent(s, mp->m), ke = k_tile ? k_tile : extent(s, k);
  return ke == 1 || mp->lin_a[k] >= (me < extent(s, mp->m) ? me : extent(s, mp->m));
}

/* ---- building a schedule from choices ----------------------------------------------------- */

struct sched_pack_rec *sched_stmt_pack(const sched_stmt *ss, int r) {
  for (int i = 0; i < ss->packs.len; i++)
    if (ss->packs.data[i].read == r)
      return &ss->packs.data[i];
  return NULL;
}

/* Add the packing "kind" of read "r" to "ss", for every read of the same tensor, in the order
 * that parsing the printed form gives back (the tensor's reads in statement order). */
void sched_stmt_add_pack(sched_stmt *ss, const ir_stmt *s, int r, sched_pack kind,
                         bk_arena *arena) {
  if (kind == SCHED_PACK_NONE)
    return;
  for (int i = 0; i < ss->packs.len; i++)
    if (s->reads[ss->packs.data[i].read]->tensor == s->reads[r]->tensor)
      return;
  for (int q = 0; q < s->nreads; q++)
    if (s->reads[q]->tensor == s->reads[r]->tensor) {
      struct sched_pack_rec rec = {q, kind};
      bk_vec_push(arena, &ss->packs, rec);
    }
}

static void shuffle(sched_loop *l, int n, uint64_t *rng) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)sched_rng_below(rng, i + 1);
    sched_loop t = l[i];
    l[i] = l[j];
    l[j] = t;
  }
}

/* A random parallel loop of "ss" (an order position whose iterator is not a reduction), or -1. */
static int random_parallel(const ir_stmt *s, const sched_stmt *ss, uint64_t *rng) {
  int cand[SCHED_MAX_LOOPS], n = 0;
  for (int i = 0; i < ss->norder; i++)
    if (!s->iters[ss->order[i].iter].reduction)
      cand[n++] = i;
  if (n == 0 || chance(rng, 25))
    return -1;
  return cand[sched_rng_below(rng, n)];
}

/* A random tile size for a range of "ext": 0 (whole), small, vector multiples, anything. */
static int64_t random_tile(int64_t ext, int64_t max, uint64_t *rng) {
  static const int64_t common[] = {16, 32, 48, 64, 128};
  int64_t t;
  switch (sched_rng_below(rng, 5)) {
  case 0: t = 0; break;
  case 1: t = 1 + sched_rng_below(rng, 8); break;
  case 2: t = common[sched_rng_below(rng, 5)]; break;
  case 3: t = ext; break;
  default: t = 1 + sched_rng_below(rng, ext); break;
  }
  if (max > 0 && (t == 0 ? ext : t) > max)
    t = max >= ext ? 0 : 1 + sched_rng_below(rng, max);
  return t;
}

/* Iterators of "want" class satisfying "ok" at the chosen tiles: a random one, or -1. */
static int random_role(const sched_mapping *mp, const ir_stmt *s, bool is_k, int64_t mt,
                       uint64_t *rng) {
  int cand[64], n = 0;
  for (int i = 0; i < s->niters; i++)
    if (is_k ? sched_mapping_k_ok(mp, s, i, mt, 1) : sched_mapping_n_ok(mp, s, i, mt, 1))
      cand[n++] = i;
  if (n == 0 || chance(rng, 10))
    return -1;
  return cand[sched_rng_below(rng, n)];
}

/* The M tile: any, but at most what the candidate K (if any) allows as lda. */
static void random_roles(const sched_mapping *mp, const ir_stmt *s, sched_stmt *ss,
                         uint64_t *rng) {
  int m = mp->m;
  ss->role[SCHED_M] = m;
  int k = random_role(mp, s, true, 1, rng);
  int64_t mmax = k >= 0 && extent(s, k) > 1 ? mp->lin_a[k] : 0;
  ss->tile[SCHED_M] = random_tile(extent(s, m), mmax, rng);
  ss->role[SCHED_K] = k;
  if (k >= 0) {
    ss->tile[SCHED_K] = random_tile(extent(s, k), 0, rng);
    if (!sched_mapping_k_ok(mp, s, k, ss->tile[SCHED_M], ss->tile[SCHED_K]))
      ss->tile[SCHED_K] = 1;
  }
  int n = random_role(mp, s, false, ss->tile[SCHED_M], rng);
  ss->role[SCHED_N] = n;
  if (n >= 0) {
    ss->tile[SCHED_N] = random_tile(extent(s, n), 0, rng);
    if (!sched_mapping_n_ok(mp, s, n, ss->tile[SCHED_M], ss->tile[SCHED_N]))
      ss->tile[SCHED_N] = 1;
  }
}

static int role_of(const sched_stmt *ss, int it) {
  for (int r = 0; r < 3; r++)
    if (ss->role[r] == it)
      return r;
  return -1;
}

/* The loops of a BRGEMM schedule: reductions into the batch or the order at random, the K tile
 * loop into the batch when its tile divides the range; the order shuffled. */
static void random_loops(const ir_stmt *s, sched_stmt *ss, uint64_t *rng) {
  for (int i = 0; i < s->niters; i++) {
    int r = role_of(ss, i);
    if (r >= 0) {
      if (ss->tile[r] == 0)
        continue;
      bool in_batch = r == SCHED_K && extent(s, i) % ss->tile[r] == 0 && chance(rng, 40);
      if (in_batch)
        ss->batch[ss->nbatch++] = (sched_loop){i, true};
      else
        ss->order[ss->norder++] = (sched_loop){i, true};
    } else if (s->iters[i].reduction && chance(rng, 60)) {
      ss->batch[ss->nbatch++] = (sched_loop){i, false};
    } else {
      ss->order[ss->norder++] = (sched_loop){i, false};
    }
  }
  shuffle(ss->order, ss->norder, rng);
  shuffle(ss->batch, ss->nbatch, rng);
}

/* Does "s" lower with "ss" alone? (Errors are discarded.) */
static bool lowers(const ir_kernel *k, const ir_stmt *s, const sched_stmt *ss) {
  sched_schedule *sch = sched_schedule_new();
  *sched_schedule_add(sch, s->index) = *ss;
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  sched_kernel *sk = sched_lower(k, sch, isl_set_get_ctx(s->domain), &diag);
  bool ok = sk != NULL;
  sched_kernel_free(sk);
  sched_schedule_free(sch);
  return ok;
}

/* Now and then fuse the output rows into M ("flatten", lower.c), where the lowering takes it. */
static void random_flatten(const ir_kernel *k, const ir_stmt *s, sched_stmt *ss, uint64_t *rng) {
  int rank = s->lhs->nargs, p = -1;
  if (rank < 2 || !chance(rng, 30))
    return;
  for (int i = 0; i < s->niters; i++)
    if (s->lhs->index[rank - 2].coef[i])
      p = i;
  if (p < 0 || role_of(ss, p) >= 0 || sched_flatten_pitch(s, ss, p) == 0)
    return;
  ss->flatten = true;
  ss->flatten_iter = p;
  ss->flatten = lowers(k, s, ss);
}

/* Now and then run the last iterations of M as dot products ("tail", lower.c). */
static void random_tail(const ir_kernel *k, const ir_stmt *s, sched_stmt *ss, uint64_t *rng) {
  int64_t em = sched_call_m_extent(s, ss);
  if (em < 2 || !chance(rng, 25))
    return;
  ss->tail = 1 + sched_rng_below(rng, em - 1 < 20 ? em - 1 : 20);
  ss->tail_call = ss->tail <= SCHED_MAX_CALL_TAIL && chance(rng, 50);
  if (ss->tail_call && !lowers(k, s, ss))
    ss->tail_call = false;
  if (!lowers(k, s, ss))
    ss->tail = 0, ss->tail_call = false;
}

/* Now and then read a flattened conv's input in place with its padding masked off instead of
 * copying it ("pack=A:mask", lower.c), where the lowering takes it. */
static void random_mask(const ir_kernel *k, const ir_stmt *s, const sched_mapping *mp,
                        sched_stmt *ss, uint64_t *rng) {
  if (!ss->flatten || !chance(rng, 50))
    return;
  struct sched_pack_rec *copy = sched_stmt_pack(ss, mp->a_read);
  if (!copy || copy->kind == SCHED_PACK_NONE)
    return;
  sched_pack kind = copy->kind;
  copy->kind = SCHED_PACK_MASK;
  if (!lowers(k, s, ss))
    copy->kind = kind;
}

static void random_brgemm(const ir_kernel *k, const ir_stmt *s, const sched_mapping *mp,
                          sched_stmt *ss, uint64_t *rng, bk_arena *arena) {
  ss->brgemm = true;
  random_roles(mp, s, ss, rng);
  random_loops(s, ss, rng);
  ss->parallel = random_parallel(s, ss, rng);
  int first = mp->a_read < mp->b_read ? 0 : 1;
  for (int i = 0; i < 2; i++) {
    int w = i == 0 ? first : 1 - first;
    sched_stmt_add_pack(ss, s, w == 0 ? mp->a_read : mp->b_read, mp->pack[w], arena);
  }
  ss->out_transpose = mp->out_transpose;
  random_flatten(k, s, ss, rng);
  random_tail(k, s, ss, rng);
  random_mask(k, s, mp, ss, rng);
}

/* A plain loop nest in a random order; some reads padded (which changes nothing). */
static void random_plain(const ir_stmt *s, sched_stmt *ss, uint64_t *rng, bk_arena *arena) {
  ss->brgemm = false;
  for (int i = 0; i < s->niters; i++)
    ss->order[ss->norder++] = (sched_loop){i, false};
  shuffle(ss->order, ss->norder, rng);
  ss->parallel = random_parallel(s, ss, rng);
  for (int r = 0; r < s->nreads; r++)
    if (chance(rng, 15))
      sched_stmt_add_pack(ss, s, r, SCHED_PACK_PAD, arena);
}

void sched_space_sample(const ir_kernel *k, const ir_stmt *s, uint64_t *rng, sched_stmt *out,
                        bk_arena *arena) {
  *out = (sched_stmt){.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
  if (s->niters > SCHED_MAX_LOOPS) {
    sched_default_stmt(k, s, 0, out, arena);
    return;
  }
  sched_mapping maps[64];
  int n = sched_space_mappings(k, s, maps, 64), plain[64], nplain = 0;
  for (int i = 0; i < n; i++)
    if (!maps[i].out_transpose)
      plain[nplain++] = i;
  if (n > 0 && chance(rng, 85)) {
    /* transposed targets are about half of the mappings: keep them to about a fifth */
    int i = (int)sched_rng_below(rng, n);
    if (maps[i].out_transpose && nplain > 0 && chance(rng, 60))
      i = plain[sched_rng_below(rng, nplain)];
    random_brgemm(k, s, &maps[i], out, rng, arena);
  } else {
    random_plain(s, out, rng, arena);
  }
}

/* Now and then run statement i + 1 as the epilogue of BRGEMM statement i, where it matches
 * (bias and/or ReLU on i's output: see sched_epilogue_match). */
static void random_epilogues(const ir_kernel *k, sched_schedule *sch, uint64_t *rng) {
  for (int i = 0; i + 1 < sch->stmts.len; i++) {
    sched_stmt *c = &sch->stmts.data[i], *e = &sch->stmts.data[i + 1];
    int bias;
    if (!c->brgemm || c->fused || c->tail || !chance(rng, 50) ||
        !sched_epilogue_match(k->stmts.data[i], c, k->stmts.data[i + 1], &bias))
      continue;
    c->epilogue = true;
    c->epilogue_stmt = i + 1;
    *e = (sched_stmt){.stmt = i + 1, .role = {-1, -1, -1}, .parallel = -1, .fused = true};
  }
}

sched_schedule *sched_space_random(const ir_kernel *k, uint64_t *rng) {
  sched_schedule *sch = sched_schedule_new();
  for (int i = 0; i < k->stmts.len; i++) {
    sched_stmt *ss = sched_schedule_add(sch, i);
    sched_space_sample(k, k->stmts.data[i], rng, ss, sch->arena);
  }
  random_epilogues(k, sch, rng);
  return sch;
}

/* ---- enumeration -------------------------------------------------------------------------- */

/* Candidate tiles of a range of "ext": the whole range and the vector multiples below it. */
static int tile_candidates(int64_t ext, int64_t *out) {
  static const int64_t sizes[] = {16, 32, 64, 128, 256};
  int n = 0;
  out[n++] = 0;
  for (int i = 0; i < 5; i++)
    if (sizes[i] < ext)
      out[n++] = sizes[i];
  return n;
}

/* The canonical loops of "ss": iterators common to all three tensors, then the output's
 * iterators in stmt order (tile loops where tiled), then the reductions that are not in the
 * batch, then the K tile loop; "batch_mask" picks the reductions inside the call. */
static void canonical_loops(const ir_stmt *s, const sched_mapping *mp, sched_stmt *ss,
                            unsigned batch_mask, bool k_tile_in_batch) {
  ss->norder = ss->nbatch = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < s->niters; i++) {
      if (s->iters[i].reduction || (pass == 0) != (mp->cls[i] == SCHED_CLASS_BATCH))
        continue;
      int r = role_of(ss, i);
      if (r < 0 || ss->tile[r])
        ss->order[ss->norder++] = (sched_loop){i, r >= 0};
    }
  int bit = 0;
  for (int i = 0; i < s->niters; i++) {
    if (!s->iters[i].reduction || i == ss->role[SCHED_K])
      continue;
    if (batch_mask >> bit++ & 1)
      ss->batch[ss->nbatch++] = (sched_loop){i, false};
    else
      ss->order[ss->norder++] = (sched_loop){i, false};
  }
  int k = ss->role[SCHED_K];
  if (k >= 0 && ss->tile[SCHED_K]) {
    if (k_tile_in_batch)
      ss->batch[ss->nbatch++] = (sched_loop){k, true};
    else
      ss->order[ss->norder++] = (sched_loop){k, true};
  }
}

/* The outermost loop with at least two iterations that is not a reduction, or -1. */
static int first_parallel(const ir_stmt *s, const sched_stmt *ss, int threads) {
  if (threads == 1)
    return -1;
  for (int i = 0; i < ss->norder; i++) {
    sched_loop l = ss->order[i];
    if (s->iters[l.iter].reduction)
      continue;
    int64_t t = l.tile ? ss->tile[role_of(ss, l.iter)] : 1;
    if ((extent(s, l.iter) + t - 1) / t >= 2)
      return i;
  }
  return -1;
}

typedef struct enumerator {
  const ir_stmt *s;
  int threads;
  sched_space_visit_fn *visit;
  void *user;
  bk_arena *arena;
  int64_t count;
  bool stop;
} enumerator;

static void emit(enumerator *E, sched_stmt *ss) {
  if (E->stop)
    return;
  ss->parallel = first_parallel(E->s, ss, E->threads);
  E->count++;
  if (!E->visit(E->user, ss))
    E->stop = true;
}

/* Every batch subset and K tile placement of "ss" (roles and tiles chosen). */
static void enumerate_loops(enumerator *E, const sched_mapping *mp, sched_stmt *ss) {
  const ir_stmt *s = E->s;
  int nred = 0;
  for (int i = 0; i < s->niters; i++)
    nred += s->iters[i].reduction && i != ss->role[SCHED_K];
  if (nred > 8)
    nred = 8;
  int k = ss->role[SCHED_K];
  bool can_batch_k = k >= 0 && ss->tile[SCHED_K] && extent(s, k) % ss->tile[SCHED_K] == 0;
  for (unsigned mask = 0; mask < (1u << nred); mask++)
    for (int kb = 0; kb <= (can_batch_k ? 1 : 0); kb++) {
      canonical_loops(s, mp, ss, mask, kb);
      emit(E, ss);
    }
}

/* Every N, K and tile choice of mapping "mp". */
static void enumerate_mapping(enumerator *E, const sched_mapping *mp) {
  const ir_stmt *s = E->s;
  sched_stmt ss = {.stmt = s->index, .brgemm = true, .role = {mp->m, -1, -1}, .parallel = -1};
  int first = mp->a_read < mp->b_read ? 0 : 1;
  for (int i = 0; i < 2; i++) {
    int w = i == 0 ? first : 1 - first;
    sched_stmt_add_pack(&ss, s, w == 0 ? mp->a_read : mp->b_read, mp->pack[w], E->arena);
  }
  ss.out_transpose = mp->out_transpose;
  int64_t tm[8], tn[8], tk[8];
  int ntm = tile_candidates(extent(s, mp->m), tm);
  for (int n = -1; n < s->niters; n++)
    for (int k = -1; k < s->niters; k++) {
      if (!sched_mapping_n_ok(mp, s, n, 0, 1) || !sched_mapping_k_ok(mp, s, k, 1, 1))
        continue;
      int ntn = n >= 0 ? tile_candidates(extent(s, n), tn) : (tn[0] = 0, 1);
      int ntk = k >= 0 ? tile_candidates(extent(s, k), tk) : (tk[0] = 0, 1);
      for (int a = 0; a < ntm; a++)
        for (int b = 0; b < ntn; b++)
          for (int c = 0; c < ntk && !E->stop; c++) {
            if (!sched_mapping_n_ok(mp, s, n, tm[a], tn[b]) ||
                !sched_mapping_k_ok(mp, s, k, tm[a], tk[c]))
              continue;
            ss.role[SCHED_N] = n;
            ss.role[SCHED_K] = k;
            ss.tile[SCHED_M] = tm[a];
            ss.tile[SCHED_N] = n >= 0 ? tn[b] : 0;
            ss.tile[SCHED_K] = k >= 0 ? tk[c] : 0;
            enumerate_loops(E, mp, &ss);
          }
    }
}

/* Is mapping "i" of "maps" minimal: no pack where none is needed (a tensor read twice aside),
 * im2col / im2row only where no mapping with the same M needs no such copy? (Both copies stay
 * in the space: which is cheaper depends on the shape.) */
static bool mapping_is_minimal(const ir_stmt *s, const sched_mapping *maps, int i) {
  const sched_mapping *mp = &maps[i];
  for (int w = 0; w < 2; w++) {
    int r = w == 0 ? mp->a_read : mp->b_read;
    bool shared = other_read_of_tensor(s, r) >= 0;
    if (mp->pack[w] == SCHED_PACK_PAD && !read_may_oob(s, s->reads[r]) && !shared)
      return false;
    if (mp->pack[w] == SCHED_PACK_IM2COL && w == 1 && !shared)
      return false;
  }
  bool copy = mp->pack[0] == SCHED_PACK_IM2COL || mp->pack[0] == SCHED_PACK_IM2ROW;
  for (int j = 0; copy && j < i; j++)
    if (maps[j].m == mp->m && maps[j].pack[0] != SCHED_PACK_IM2COL &&
        maps[j].pack[0] != SCHED_PACK_IM2ROW)
      return false;
  return true;
}

int64_t sched_space_enumerate(const ir_kernel *k, const ir_stmt *s, int threads,
                              sched_space_visit_fn *visit, void *user) {
  enumerator E = {.s = s, .threads = threads, .visit = visit, .user = user,
                  .arena = bk_arena_new()};
  sched_mapping maps[64];
  int n = s->niters <= SCHED_MAX_LOOPS ? sched_space_mappings(k, s, maps, 64) : 0;
  for (int i = 0; i < n && !E.stop; i++)
    if (mapping_is_minimal(s, maps, i))
      enumerate_mapping(&E, &maps[i]);
  if (!E.stop) {
    sched_stmt ss = {.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
    for (int i = 0; i < s->niters && i < SCHED_MAX_LOOPS; i++)
      ss.order[ss.norder++] = (sched_loop){i, false};
    emit(&E, &ss);
  }
  bk_arena_free(E.arena);
  return E.count;
}

/* ---- comparison --------------------------------------------------------------------------- */

static bool loops_equal(const sched_loop *a, const sched_loop *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i].iter != b[i].iter || a[i].tile != b[i].tile)
      return false;
  return true;
}

bool sched_stmt_is_equal(const sched_stmt *a, const sched_stmt *b) {
  if (a->stmt != b->stmt || a->brgemm != b->brgemm || a->norder != b->norder ||
      a->nbatch != b->nbatch || a->parallel != b->parallel || a->packs.len != b->packs.len ||
      a->flatten != b->flatten || (a->flatten && a->flatten_iter != b->flatten_iter) ||
      a->fused != b->fused || a->epilogue != b->epilogue || a->tail != b->tail ||
      a->tail_call != b->tail_call || a->out_transpose != b->out_transpose ||
      (a->epilogue && a->epilogue_stmt != b->epilogue_stmt))
    return false;
  for (int r = 0; r < 3 && a->brgemm; r++)
    if (a->role[r] != b->role[r] || (a->role[r] >= 0 && a->tile[r] != b->tile[r]))
      return false;
  for (int i = 0; i < a->packs.len; i++)
    if (a->packs.data[i].read != b->packs.data[i].read ||
        a->packs.data[i].kind != b->packs.data[i].kind)
      return false;
  return loops_equal(a->order, b->order, a->norder) && loops_equal(a->batch, b->batch, a->nbatch);
}
