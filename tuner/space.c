/*
 * Candidates of the search: complete schedules of one kernel, drawn from the scheduler's space
 * (scheduler/space.c: random samples, the enumeration of its pruned space) and varied here by
 * mutation and crossover. The tuner adds two choices the scheduler's enumeration leaves out:
 * "flatten" (output rows fused into M), which the default heuristic uses on narrow images, and
 * the default's "tail" (the last few iterations of M as dot products).
 *
 * Every candidate goes through tune_space_make(): lowered (which validates its structure),
 * printed and parsed back to the same text (the worker receives the text), and costed by the
 * model. The legality check against isl's dataflow costs some milliseconds, so it runs only
 * on the candidates chosen for measurement (tune_space_check). Texts are remembered in a hash set so that no schedule is handed out twice, nor one
 * the database already holds.
 */
#include "tuner.h"

#include <stdlib.h>
#include <string.h>

static void discard(void *user, bk_severity sev, const char *text) {}
static int64_t extent(const ir_stmt *s, int it);
static void fix_loops(tune_space *sp, const ir_stmt *s, sched_stmt *ss);

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h ? h : 1;
}

/* ---- the set of seen texts ---------------------------------------------------------------- */

static bool seen_insert(tune_space *sp, uint64_t h) {
  if (2 * (sp->nseen + 1) > sp->capseen) {
    size_t cap = sp->capseen ? 2 * sp->capseen : 1024;
    uint64_t *t = calloc(cap, sizeof(uint64_t)), *old = sp->seen;
    size_t oldcap = sp->capseen;
    if (!t)
      abort();
    sp->seen = t;
    sp->capseen = cap;
    sp->nseen = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i])
        seen_insert(sp, old[i]);
    free(old);
  }
  size_t i = (size_t)h & (sp->capseen - 1);
  while (sp->seen[i] && sp->seen[i] != h)
    i = (i + 1) & (sp->capseen - 1);
  if (sp->seen[i])
    return false;
  sp->seen[i] = h;
  sp->nseen++;
  return true;
}

bool tune_space_is_seen(const tune_space *sp, const char *text) {
  if (!sp->capseen)
    return false;
  uint64_t h = hash_text(text);
  size_t i = (size_t)h & (sp->capseen - 1);
  while (sp->seen[i] && sp->seen[i] != h)
    i = (i + 1) & (sp->capseen - 1);
  return sp->seen[i] == h;
}

void tune_space_mark_seen(tune_space *sp, const char *text) { seen_insert(sp, hash_text(text)); }

void tune_space_init(tune_space *sp, const ir_kernel *k, isl_ctx *ctx, const tune_machine *m,
                     int threads, uint64_t seed) {
  *sp = (tune_space){.k = k, .ctx = ctx, .machine = *m, .threads = threads,
                     .rng = seed ^ 0x6272696b74756e65ull};
  /* the default schedule as brick compile makes it for this machine (its caches, and masks
   * only with mask registers) */
  sp->target = (sched_target){.l1 = m->cache[0], .l2 = m->cache[1], .l3 = m->cache[2],
                              .mask_registers = m->opmask != 0};
}

void tune_space_release(tune_space *sp) {
  free(sp->seen);
  *sp = (tune_space){0};
}

void tune_cand_free(tune_cand *c) {
  if (!c)
    return;
  sched_schedule_free(c->s);
  free(c->text);
  free(c);
}

/* ---- making candidates ---------------------------------------------------------------------- */

/* Set section "ss" of "dst" to a copy of "src" (packs into dst's arena, no source location). */
static void stmt_assign(sched_schedule *dst, sched_stmt *ss, const sched_stmt *src) {
  *ss = *src;
  sched_stmt_forget_source(ss);
  memset(&ss->packs, 0, sizeof ss->packs);
  for (int p = 0; p < src->packs.len; p++)
    bk_vec_push(dst->arena, &ss->packs, src->packs.data[p]);
}

/* Copy "src" into a new section of "dst". */
static sched_stmt *stmt_copy(sched_schedule *dst, const sched_stmt *src) {
  sched_stmt *ss = sched_schedule_add(dst, src->stmt);
  stmt_assign(dst, ss, src);
  return ss;
}

static sched_schedule *schedule_copy(const sched_schedule *s) {
  sched_schedule *c = sched_schedule_new();
  for (int i = 0; i < s->stmts.len; i++)
    stmt_copy(c, &s->stmts.data[i]);
  return c;
}

/* Does "text" parse back into a schedule that prints as "text"? */
static bool round_trips(const ir_kernel *k, const char *text) {
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  bk_source *src = bk_source_new("<schedule>", text, strlen(text));
  sched_schedule *p = sched_schedule_parse(k, src, &diag);
  char *again = p ? sched_schedule_to_str(k, p) : NULL;
  bool ok = again && strcmp(again, text) == 0;
  free(again);
  sched_schedule_free(p);
  bk_source_free(src);
  return ok;
}

/* The complete schedule of "text", or NULL. */
static sched_schedule *schedule_of_text(const tune_space *sp, const char *text) {
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  bk_source *src = bk_source_new("<schedule>", text, strlen(text));
  sched_schedule *p = sched_schedule_parse(sp->k, src, &diag);
  sched_schedule *full = p ? sched_complete_for(sp->k, p, sp->threads, &sp->target) : NULL;
  for (int i = 0; full && i < full->stmts.len; i++) /* "src" is freed below */
    sched_stmt_forget_source(&full->stmts.data[i]);
  sched_schedule_free(p);
  bk_source_free(src);
  return full;
}

/* Spell "ss" one way: a tile covering its whole range is no tile (so "k/128" of a range of 64
 * and "k" are one candidate, not two). M is left alone under flatten (its range grows). */
static void normalize(tune_space *sp, const ir_stmt *st, sched_stmt *ss) {
  bool changed = false;
  for (int r = 0; r < 3 && ss->brgemm; r++) {
    int it = ss->role[r];
    if (it >= 0 && ss->tile[r] >= extent(st, it) && !(r == SCHED_M && ss->flatten)) {
      ss->tile[r] = 0;
      changed = true;
    }
  }
  if (changed)
    fix_loops(sp, st, ss);
}

tune_cand *tune_space_make(tune_space *sp, sched_schedule *s, int origin, bool fresh) {
  for (int i = 0; i < s->stmts.len; i++) {
    if (sp->threads == 1)
      s->stmts.data[i].parallel = -1;
    if (origin != TUNE_ORIGIN_DEFAULT && origin != TUNE_ORIGIN_DB)
      normalize(sp, sp->k->stmts.data[s->stmts.data[i].stmt], &s->stmts.data[i]);
  }
  char *text = sched_schedule_to_str(sp->k, s);
  if (fresh && tune_space_is_seen(sp, text)) {
    free(text);
    sched_schedule_free(s);
    return NULL;
  }
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  sched_kernel *sk = sched_lower(sp->k, s, sp->ctx, &diag);
  bool ok = sk && round_trips(sp->k, text);
  tune_cand *c = NULL;
  if (ok) {
    c = calloc(1, sizeof(*c));
    c->s = s;
    c->text = text;
    c->origin = origin;
    tune_cost_kernel(sk, &sp->machine, sp->threads, &c->cost);
    tune_space_mark_seen(sp, text);
  } else {
    free(text);
    sched_schedule_free(s);
  }
  sched_kernel_free(sk);
  return c;
}

bool tune_space_check(tune_space *sp, const tune_cand *c) {
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  sched_schedule *own = c->s ? NULL : schedule_of_text(sp, c->text);
  const sched_schedule *s = c->s ? c->s : own;
  sched_kernel *sk = s ? sched_lower(sp->k, s, sp->ctx, &diag) : NULL;
  bool ok = sk && sched_check_legality(sk, sp->ctx, &diag);
  sched_kernel_free(sk);
  sched_schedule_free(own);
  return ok;
}

void tune_cand_shrink(tune_cand *c) {
  sched_schedule_free(c->s);
  c->s = NULL;
}

bool tune_cand_restore(tune_space *sp, tune_cand *c) {
  if (!c->s)
    c->s = schedule_of_text(sp, c->text);
  return c->s != NULL;
}

tune_cand *tune_space_default(tune_space *sp) {
  return tune_space_make(sp, sched_complete_for(sp->k, NULL, sp->threads, &sp->target), TUNE_ORIGIN_DEFAULT, false);
}

tune_cand *tune_space_parse(tune_space *sp, const char *text, int origin) {
  sched_schedule *full = schedule_of_text(sp, text);
  return full ? tune_space_make(sp, full, origin, false) : NULL;
}

/* ---- flatten --------------------------------------------------------------------------------- */

/* The output row iterator that "flatten" would fuse into M, or -1 when it cannot. */
static int flatten_candidate(const ir_stmt *s, const sched_stmt *ss) {
  int rank = s->lhs->nargs, p = -1;
  if (!ss->brgemm || rank < 2 || ss->role[SCHED_M] < 0)
    return -1;
  for (int i = 0; i < s->niters; i++)
    if (s->lhs->index[rank - 2].coef[i])
      p = i;
  return p >= 0 && sched_flatten_pitch(s, ss, p) != 0 ? p : -1;
}

/* Turn flatten on or off in "ss" (when it applies). */
static bool toggle_flatten(const ir_stmt *s, sched_stmt *ss) {
  if (ss->out_transpose) /* lower.c: not with a transposed target */
    return false;
  if (ss->flatten) {
    ss->flatten = false;
    return true;
  }
  int p = flatten_candidate(s, ss);
  if (p < 0)
    return false;
  ss->flatten = true;
  ss->flatten_iter = p;
  return true;
}

/* Give every BRGEMM statement of "s" the default's M tail ("tail", lower.c) for its mapping;
 * false when none gets one. */
static bool add_tails(const ir_kernel *k, sched_schedule *s) {
  bool changed = false;
  for (int i = 0; i < s->stmts.len; i++) {
    sched_stmt *ss = &s->stmts.data[i];
    int64_t t = ss->tail ? ss->tail : sched_default_tail(k->stmts.data[ss->stmt], ss);
    if (ss->out_transpose && !ss->tail_call && t > SCHED_MAX_CALL_TAIL)
      t = 0; /* lower.c: a transposed target takes only tails inside the calls */
    changed |= t != ss->tail;
    if (ss->out_transpose && t != ss->tail)
      ss->tail_call = true;
    ss->tail = t;
  }
  return changed;
}

/* ---- random ----------------------------------------------------------------------------------- */

static bool chance(tune_space *sp, int percent) { return sched_rng_below(&sp->rng, 100) < percent; }

tune_cand *tune_space_random(tune_space *sp, int tries) {
  for (int t = 0; t < tries; t++) {
    sched_schedule *s = sched_space_random(sp->k, &sp->rng);
    for (int i = 0; i < s->stmts.len; i++)
      if (chance(sp, 40))
        toggle_flatten(sp->k->stmts.data[s->stmts.data[i].stmt], &s->stmts.data[i]);
    if (chance(sp, 40))
      add_tails(sp->k, s);
    tune_cand *c = tune_space_make(sp, s, TUNE_ORIGIN_RANDOM, true);
    if (c)
      return c;
  }
  return NULL;
}

/* ---- enumeration ------------------------------------------------------------------------------- */

typedef struct stmt_list {
  sched_schedule *holder; /* owns the copies (one section per entry) */
} stmt_list;

static bool collect(void *user, const sched_stmt *ss) {
  stmt_list *l = user;
  stmt_copy(l->holder, ss);
  return true;
}

/* The statement with the most flops (the one worth enumerating when the product is too big). */
static int main_stmt(const ir_kernel *k) {
  int best = 0;
  for (int i = 1; i < k->stmts.len; i++)
    if (k->stmts.data[i]->flops > k->stmts.data[best]->flops)
      best = i;
  return best;
}

/* Candidates of the combination "idx" of "lists" (with and without flatten, with and without
 * the default's M tails). */
static bool visit_combination(tune_space *sp, stmt_list *lists, const int *idx,
                              bool (*visit)(void *, tune_cand *), void *user) {
  int n = sp->k->stmts.len;
  for (int v = 0; v < 4; v++) { /* bit 0: flatten toggled, bit 1: the default's tails */
    sched_schedule *s = sched_schedule_new();
    bool changed = false;
    for (int i = 0; i < n; i++) {
      sched_stmt *ss = stmt_copy(s, &lists[i].holder->stmts.data[idx[i]]);
      if (v & 1)
        changed |= toggle_flatten(sp->k->stmts.data[i], ss);
    }
    if (((v & 1) && !changed) || ((v & 2) && !add_tails(sp->k, s))) {
      sched_schedule_free(s);
      continue;
    }
    tune_cand *c = tune_space_make(sp, s, TUNE_ORIGIN_ENUM, true);
    if (c && !visit(user, c))
      return false;
  }
  return true;
}

int64_t tune_space_enumerate(tune_space *sp, int64_t cap, bool (*visit)(void *, tune_cand *),
                             void *user) {
  const ir_kernel *k = sp->k;
  int n = k->stmts.len, only = -1;
  stmt_list *lists = calloc((size_t)n, sizeof(stmt_list));
  int64_t product = 1;
  for (int i = 0; i < n; i++) {
    lists[i].holder = sched_schedule_new();
    sched_space_enumerate(k, k->stmts.data[i], sp->threads, collect, &lists[i]);
    int len = lists[i].holder->stmts.len;
    product = product > cap ? product : product * (len ? len : 1);
  }
  if (product > cap) { /* one statement enumerated, the others at their default */
    only = main_stmt(k);
    product = lists[only].holder->stmts.len;
    sched_schedule *def = sched_complete_for(k, NULL, sp->threads, &sp->target);
    const sched_stmt *main_def = &def->stmts.data[only];
    for (int i = 0; i < n; i++)
      if (i != only) {
        sched_schedule_free(lists[i].holder);
        lists[i].holder = sched_schedule_new();
        if (main_def->epilogue && main_def->epilogue_stmt == i) { /* its own loops: the */
          sched_stmt *ss = sched_schedule_add(lists[i].holder, i); /* enumerated ones fuse none */
          sched_default_stmt_for(k, k->stmts.data[i], sp->threads, &sp->target, ss,
                                 lists[i].holder->arena);
        } else {
          stmt_copy(lists[i].holder, &def->stmts.data[i]);
        }
      }
    sched_schedule_free(def);
  }
  int *idx = calloc((size_t)n, sizeof(int));
  bool go = true;
  while (go) {
    go = visit_combination(sp, lists, idx, visit, user);
    int i = 0;
    while (i < n && ++idx[i] >= lists[i].holder->stmts.len)
      idx[i++] = 0;
    go = go && i < n;
  }
  for (int i = 0; i < n; i++)
    sched_schedule_free(lists[i].holder);
  free(lists);
  free(idx);
  return product;
}

/* ---- mutation ------------------------------------------------------------------------------------ */

static int role_of(const sched_stmt *ss, int it) {
  for (int r = 0; r < 3; r++)
    if (ss->role[r] == it)
      return r;
  return -1;
}

static int64_t extent(const ir_stmt *s, int it) { return s->iters[it].hi - s->iters[it].lo; }

/* Is loop "l" allowed where it stands ("in_batch") under the roles and tiles of "ss"? */
static bool loop_fits(const ir_stmt *s, const sched_stmt *ss, sched_loop l, bool in_batch) {
  int r = ss->brgemm ? role_of(ss, l.iter) : -1;
  if (r >= 0)
    return l.tile && ss->tile[r] > 0 &&
           (!in_batch || (r == SCHED_K && extent(s, l.iter) % ss->tile[r] == 0));
  return !l.tile && (!in_batch || (ss->brgemm && s->iters[l.iter].reduction));
}

static bool has_loop(const sched_loop *ls, int n, sched_loop l) {
  for (int i = 0; i < n; i++)
    if (ls[i].iter == l.iter && ls[i].tile == l.tile)
      return true;
  return false;
}

/* Insert "l" at a random position of "ls". */
static void insert_random(tune_space *sp, sched_loop *ls, int *n, sched_loop l) {
  int at = (int)sched_rng_below(&sp->rng, *n + 1);
  memmove(ls + at + 1, ls + at, sizeof(sched_loop) * (size_t)(*n - at));
  ls[at] = l;
  (*n)++;
}

/* Make the loops of "ss" agree with its roles and tiles: drop loops that no longer belong,
 * add the missing ones at random places, keep the parallel loop if it survives. */
static void fix_loops(tune_space *sp, const ir_stmt *s, sched_stmt *ss) {
  sched_loop par = ss->parallel >= 0 ? ss->order[ss->parallel] : (sched_loop){-1, false};
  sched_loop order[SCHED_MAX_LOOPS], batch[SCHED_MAX_LOOPS];
  int no = 0, nb = 0;
  for (int i = 0; i < ss->norder; i++)
    if (loop_fits(s, ss, ss->order[i], false) && !has_loop(order, no, ss->order[i]))
      order[no++] = ss->order[i];
  for (int i = 0; i < ss->nbatch; i++)
    if (loop_fits(s, ss, ss->batch[i], true) && !has_loop(batch, nb, ss->batch[i]) &&
        !has_loop(order, no, ss->batch[i]))
      batch[nb++] = ss->batch[i];
  for (int i = 0; i < s->niters && i < SCHED_MAX_LOOPS; i++) {
    int r = ss->brgemm ? role_of(ss, i) : -1;
    sched_loop l = {i, r >= 0};
    if (r >= 0 && ss->tile[r] == 0)
      continue;
    if (!has_loop(order, no, l) && !has_loop(batch, nb, l))
      insert_random(sp, order, &no, l);
  }
  memcpy(ss->order, order, sizeof order);
  memcpy(ss->batch, batch, sizeof batch);
  ss->norder = no;
  ss->nbatch = nb;
  ss->parallel = -1;
  for (int i = 0; i < no && par.iter >= 0; i++)
    if (order[i].iter == par.iter && order[i].tile == par.tile)
      ss->parallel = i;
}

/* A new tile for a range of "ext" near "cur": halved, doubled or from a menu (0 = whole). */
static int64_t new_tile(tune_space *sp, int64_t ext, int64_t cur) {
  static const int64_t menu[] = {0, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  int64_t t;
  switch (sched_rng_below(&sp->rng, 3)) {
  case 0: t = cur > 1 ? cur / 2 : 0; break;
  case 1: t = cur ? cur * 2 : ext / 2; break;
  default: t = menu[sched_rng_below(&sp->rng, (int64_t)(sizeof menu / sizeof menu[0]))]; break;
  }
  return t >= ext ? 0 : t;
}

static bool mutate_tile(tune_space *sp, const ir_stmt *s, sched_stmt *ss) {
  int r = (int)sched_rng_below(&sp->rng, 3);
  if (!ss->brgemm || ss->role[r] < 0)
    return false;
  int64_t t = new_tile(sp, extent(s, ss->role[r]), ss->tile[r]);
  if (t == ss->tile[r])
    return false;
  ss->tile[r] = t;
  return true;
}

static bool mutate_swap(tune_space *sp, sched_stmt *ss) {
  if (ss->norder < 2)
    return false;
  int i = (int)sched_rng_below(&sp->rng, ss->norder), j = (int)sched_rng_below(&sp->rng, ss->norder);
  if (chance(sp, 50))
    j = i + 1 < ss->norder ? i + 1 : i - 1;
  if (i == j)
    return false;
  sched_loop t = ss->order[i];
  ss->order[i] = ss->order[j];
  ss->order[j] = t;
  if (ss->parallel == i || ss->parallel == j)
    ss->parallel = ss->parallel == i ? j : i;
  return true;
}

/* Move one reduction loop between the batch and the order. */
static bool mutate_batch(tune_space *sp, const ir_stmt *s, sched_stmt *ss) {
  int total = ss->norder + ss->nbatch;
  if (!ss->brgemm || total == 0)
    return false;
  int pick = (int)sched_rng_below(&sp->rng, total);
  if (pick >= ss->norder) {
    sched_loop l = ss->batch[pick - ss->norder];
    memmove(ss->batch + pick - ss->norder, ss->batch + pick - ss->norder + 1,
            sizeof(sched_loop) * (size_t)(ss->nbatch - (pick - ss->norder) - 1));
    ss->nbatch--;
    sched_loop par = ss->parallel >= 0 ? ss->order[ss->parallel] : (sched_loop){-1, false};
    insert_random(sp, ss->order, &ss->norder, l);
    for (int i = 0; par.iter >= 0 && i < ss->norder; i++)
      if (ss->order[i].iter == par.iter && ss->order[i].tile == par.tile)
        ss->parallel = i;
    return true;
  }
  sched_loop l = ss->order[pick];
  if (!loop_fits(s, ss, l, true) || pick == ss->parallel)
    return false;
  memmove(ss->order + pick, ss->order + pick + 1, sizeof(sched_loop) * (size_t)(ss->norder - pick - 1));
  ss->norder--;
  if (ss->parallel > pick)
    ss->parallel--;
  ss->batch[ss->nbatch++] = l;
  return true;
}

static bool mutate_parallel(tune_space *sp, const ir_stmt *s, sched_stmt *ss) {
  if (sp->threads == 1)
    return false;
  int cand[SCHED_MAX_LOOPS], n = 0;
  for (int i = 0; i < ss->norder; i++)
    if (!s->iters[ss->order[i].iter].reduction && i != ss->parallel)
      cand[n++] = i;
  if (n == 0)
    return false;
  ss->parallel = chance(sp, 10) ? -1 : cand[sched_rng_below(&sp->rng, n)];
  return true;
}

/* One random change to statement "i" of "s". */
static bool mutate_stmt(tune_space *sp, sched_schedule *s, int i) {
  sched_stmt *ss = &s->stmts.data[i];
  const ir_stmt *st = sp->k->stmts.data[ss->stmt];
  bool ok;
  switch (sched_rng_below(&sp->rng, 12)) {
  case 0: case 1: case 2: case 3: ok = mutate_tile(sp, st, ss); break;
  case 4: case 5: ok = mutate_swap(sp, ss); break;
  case 6: case 7: ok = mutate_batch(sp, st, ss); break;
  case 8: ok = mutate_parallel(sp, st, ss); break;
  case 9: case 10: ok = toggle_flatten(st, ss); break;
  default: {
    sched_stmt fresh;
    sched_space_sample(sp->k, st, &sp->rng, &fresh, s->arena);
    *ss = fresh;
    if (chance(sp, 40))
      toggle_flatten(st, ss);
    return true;
  }
  }
  if (ok)
    fix_loops(sp, st, ss);
  return ok;
}

tune_cand *tune_space_mutate(tune_space *sp, const tune_cand *parent, int tries) {
  for (int t = 0; t < tries; t++) {
    sched_schedule *s = schedule_copy(parent->s);
    int changes = 1 + (chance(sp, 30) ? 1 : 0);
    bool any = false;
    for (int c = 0; c < changes; c++)
      any |= mutate_stmt(sp, s, (int)sched_rng_below(&sp->rng, s->stmts.len));
    if (!any) {
      sched_schedule_free(s);
      continue;
    }
    tune_cand *c = tune_space_make(sp, s, TUNE_ORIGIN_MUTATION, true);
    if (c)
      return c;
  }
  return NULL;
}

/* ---- crossover ----------------------------------------------------------------------------------- */

/* Do "a" and "b" map the statement the same way (roles, packs, flatten)? */
static bool same_mapping(const sched_stmt *a, const sched_stmt *b) {
  if (!a->brgemm || !b->brgemm || a->flatten != b->flatten || a->packs.len != b->packs.len)
    return false;
  for (int r = 0; r < 3; r++)
    if (a->role[r] != b->role[r])
      return false;
  for (int i = 0; i < a->packs.len; i++)
    if (a->packs.data[i].read != b->packs.data[i].read || a->packs.data[i].kind != b->packs.data[i].kind)
      return false;
  return true;
}

/* The child's statement "child" (a copy of one parent's, mapped as "b"): some of "b"'s tiles,
 * or "b"'s loops with its own tiles. */
static void cross_stmt(tune_space *sp, const ir_stmt *st, sched_stmt *child, const sched_stmt *b) {
  if (chance(sp, 50)) {
    for (int r = 0; r < 3; r++)
      if (chance(sp, 50))
        child->tile[r] = b->tile[r];
  } else {
    int64_t tiles[3];
    memcpy(tiles, child->tile, sizeof tiles);
    sched_loop par = child->parallel >= 0 ? child->order[child->parallel] : (sched_loop){-1, false};
    memcpy(child->order, b->order, sizeof b->order);
    memcpy(child->batch, b->batch, sizeof b->batch);
    child->norder = b->norder;
    child->nbatch = b->nbatch;
    child->parallel = b->parallel;
    memcpy(child->tile, tiles, sizeof tiles);
    if (chance(sp, 50) && par.iter >= 0)
      for (int i = 0; i < child->norder; i++)
        if (child->order[i].iter == par.iter && child->order[i].tile == par.tile)
          child->parallel = i;
  }
  fix_loops(sp, st, child);
}

tune_cand *tune_space_crossover(tune_space *sp, const tune_cand *a, const tune_cand *b, int tries) {
  for (int t = 0; t < tries; t++) {
    sched_schedule *s = schedule_copy(a->s);
    for (int i = 0; i < s->stmts.len && i < b->s->stmts.len; i++) {
      sched_stmt *ss = &s->stmts.data[i];
      const sched_stmt *bs = &b->s->stmts.data[i];
      const ir_stmt *st = sp->k->stmts.data[ss->stmt];
      if (same_mapping(ss, bs))
        cross_stmt(sp, st, ss, bs);
      else if (chance(sp, 50) && s->stmts.len > 1)
        stmt_assign(s, ss, bs);
    }
    tune_cand *c = tune_space_make(sp, s, TUNE_ORIGIN_CROSSOVER, true);
    if (c)
      return c;
  }
  return NULL;
}
