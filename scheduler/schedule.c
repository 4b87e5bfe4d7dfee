/*
 * Schedules as data and their text form (documented in scheduler/README.md):
 *
 *   s0{brgemm(m=q/28,n=k/64,k=c/64;batch=c/64,r,s);order=n,k/64,p,q/28;parallel=k/64;pack=I:pad}
 *   s1{order=n,j;parallel=n}
 *
 * One section per statement ("sN" or the statement's label), items separated by ';'. A role
 * "m=q/28" makes q the BRGEMM's M with tiles of 28 (no "/T": the whole range); a loop "q/28" is
 * the loop over q's tiles, a loop "r" the full loop of r. Every loop outside the call is listed
 * in "order" (outermost first); "batch" lists the reduction loops inside the call. Printing
 * gives the same canonical text back (brgemm, order, parallel, pack).
 */
#include "scheduler.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest tile or tail a schedule may write (a bigger one would only mean the whole range). */
#define SCHED_MAX_NUMBER INT32_MAX

sched_schedule *sched_schedule_new(void) {
  bk_arena *a = bk_arena_new();
  sched_schedule *s = bk_arena_alloc(a, sizeof(*s));
  s->arena = a;
  return s;
}

void sched_schedule_free(sched_schedule *s) {
  if (s)
    bk_arena_free(s->arena);
}

int sched_format_version(void) { return SCHED_FORMAT_VERSION; }

sched_stmt *sched_schedule_find(sched_schedule *s, int stmt) {
  for (int i = 0; i < s->stmts.len; i++)
    if (s->stmts.data[i].stmt == stmt)
      return &s->stmts.data[i];
  return NULL;
}

void sched_stmt_forget_source(sched_stmt *ss) {
  ss->loc = ss->tail_loc = ss->out_loc = ss->flatten_loc = ss->epilogue_loc = BK_NO_LOC;
  for (int r = 0; r < 3; r++)
    ss->role_loc[r] = BK_NO_LOC;
}

sched_stmt *sched_schedule_add(sched_schedule *s, int stmt) {
  sched_stmt st = {.stmt = stmt, .role = {-1, -1, -1}, .parallel = -1};
  sched_stmt_forget_source(&st);
  bk_vec_push(s->arena, &s->stmts, st);
  return &s->stmts.data[s->stmts.len - 1];
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct sparser {
  const ir_kernel *k;
  const ir_stmt *st;
  const bk_source *src;
  bk_diag *diag;
  sched_schedule *out;
  size_t pos;
  bool failed;
} sparser;

static bk_loc here(const sparser *P, size_t len) {
  return (bk_loc){P->src, (uint32_t)P->pos, (uint32_t)len};
}

static void serror(sparser *P, bk_loc loc, const char *fmt, ...) BK_PRINTF(3, 4);
static void serror(sparser *P, bk_loc loc, const char *fmt, ...) {
  if (P->failed)
    return;
  va_list ap;
  va_start(ap, fmt);
  bk_diag_vreport(P->diag, BK_SEV_ERROR, loc, fmt, ap);
  va_end(ap);
  P->failed = true;
}

static char cur(const sparser *P) { return P->pos < P->src->len ? P->src->text[P->pos] : '\0'; }

static void skip_space(sparser *P) {
  while (isspace((unsigned char)cur(P)))
    P->pos++;
}

static bool eat(sparser *P, char c) {
  if (cur(P) != c)
    return false;
  P->pos++;
  return true;
}

static bool expect_char(sparser *P, char c) {
  if (eat(P, c))
    return true;
  if (cur(P))
    serror(P, here(P, 1), "expected '%c', found '%c'", c, cur(P));
  else
    serror(P, here(P, 1), "expected '%c' at the end of the schedule", c);
  return false;
}

/* An identifier; returns its length (0 if none) and its start in "start". */
static size_t ident(sparser *P, const char **start) {
  size_t b = P->pos;
  while (isalnum((unsigned char)cur(P)) || cur(P) == '_')
    P->pos++;
  *start = P->src->text + b;
  return P->pos - b;
}

static bool word_is(const char *s, size_t n, const char *w) {
  return strlen(w) == n && strncmp(s, w, n) == 0;
}

static int find_iter(const ir_stmt *st, const char *s, size_t n) {
  for (int i = 0; i < st->niters; i++)
    if (word_is(s, n, st->iters[i].name))
      return i;
  return -1;
}

/* loop = IDENT [ "/" INT ]; "tile" receives INT, 0 without it. */
static bool parse_loop(sparser *P, int *iter, int64_t *tile) {
  size_t b = P->pos;
  const char *s;
  size_t n = ident(P, &s);
  if (n == 0) {
    serror(P, here(P, 1), "expected an iterator name");
    return false;
  }
  *iter = find_iter(P->st, s, n);
  if (*iter < 0) {
    serror(P, (bk_loc){P->src, (uint32_t)b, (uint32_t)n},
           "statement s%d has no iterator '%.*s'", P->st->index, (int)n, s);
    return false;
  }
  *tile = 0;
  if (!eat(P, '/'))
    return true;
  size_t tb = P->pos;
  char *end;
  errno = 0;
  long long v = strtoll(P->src->text + P->pos, &end, 10);
  P->pos = (size_t)(end - P->src->text);
  if (P->pos == tb) {
    serror(P, here(P, 1), "expected a tile size after '/'");
    return false;
  }
  if (errno == ERANGE || v > SCHED_MAX_NUMBER) {
    serror(P, (bk_loc){P->src, (uint32_t)tb, (uint32_t)(P->pos - tb)},
           "tile size '%.*s' of '%s' is out of range (at most %lld)", (int)(P->pos - tb),
           P->src->text + tb, P->st->iters[*iter].name, (long long)SCHED_MAX_NUMBER);
    return false;
  }
  if (v <= 0) {
    serror(P, (bk_loc){P->src, (uint32_t)tb, (uint32_t)(P->pos - tb)},
           "tile size %lld of '%s' must be positive", v, P->st->iters[*iter].name);
    return false;
  }
  *tile = v;
  return true;
}

/* A comma list of loops into "loops"/"n"; "tiles" gets each loop's tile size, "locs" its
 * place in the text. */
static bool parse_loop_list(sparser *P, sched_loop *loops, int64_t *tiles, bk_loc *locs, int *n) {
  *n = 0;
  do {
    int it;
    int64_t t;
    size_t b = P->pos;
    if (!parse_loop(P, &it, &t))
      return false;
    if (*n < SCHED_MAX_LOOPS)
      locs[*n] = (bk_loc){P->src, (uint32_t)b, (uint32_t)(P->pos - b)};
    if (*n == SCHED_MAX_LOOPS) {
      serror(P, here(P, 1), "too many loops (at most %d)", SCHED_MAX_LOOPS);
      return false;
    }
    tiles[*n] = t;
    loops[(*n)++] = (sched_loop){it, t > 0};
  } while (eat(P, ','));
  return true;
}

/* Tile sizes written on loops, kept until the section is complete and checked. */
typedef struct loop_tiles {
  int64_t order[SCHED_MAX_LOOPS], batch[SCHED_MAX_LOOPS], parallel;
  bk_loc order_locs[SCHED_MAX_LOOPS], batch_locs[SCHED_MAX_LOOPS], parallel_loc;
  unsigned seen; /* the items of the section so far (item_bit) */
} loop_tiles;

/* The bit of item keyword "s" (n characters) in loop_tiles.seen, 0 for "pack" (several
 * allowed) and unknown words; brgemm, loops and fused share one: a section has one kind. */
static unsigned item_bit(const char *s, size_t n) {
  static const char *const items[] = {"brgemm", "order", "parallel", "flatten", "tail", "epilogue"};
  if (word_is(s, n, "loops") || word_is(s, n, "fused"))
    return 1;
  for (unsigned i = 0; i < sizeof items / sizeof items[0]; i++)
    if (word_is(s, n, items[i]))
      return i ? 1u << i : 1;
  return 0;
}

/* brgemm "(" "m=" loop ["," "n=" loop] ["," "k=" loop] [";" "batch=" loops] ")" */
static bool parse_brgemm(sparser *P, sched_stmt *ss, loop_tiles *lt) {
  ss->brgemm = true;
  if (!expect_char(P, '('))
    return false;
  do {
    char c = cur(P);
    bk_loc role_loc = here(P, 1);
    int r = c == 'm' ? SCHED_M : c == 'n' ? SCHED_N : c == 'k' ? SCHED_K : -1;
    if (r < 0 || (P->pos++, !eat(P, '='))) {
      serror(P, role_loc, "expected 'm=', 'n=' or 'k=' in brgemm(...)");
      return false;
    }
    if (ss->role[r] >= 0) {
      serror(P, role_loc, "role '%c' is given twice", c);
      return false;
    }
    if (!parse_loop(P, &ss->role[r], &ss->tile[r]))
      return false;
    ss->role_loc[r] = (bk_loc){P->src, role_loc.offset, (uint32_t)(P->pos - role_loc.offset)};
  } while (eat(P, ','));
  if (ss->role[SCHED_M] < 0) {
    serror(P, here(P, 1), "brgemm(...) needs an M iterator ('m=')");
    return false;
  }
  if (eat(P, ';')) {
    const char *s;
    bk_loc batch_loc = here(P, 1);
    size_t n = ident(P, &s);
    if (!word_is(s, n, "batch") || !eat(P, '=')) {
      serror(P, batch_loc, "expected 'batch=' in brgemm(...)");
      return false;
    }
    if (!parse_loop_list(P, ss->batch, lt->batch, lt->batch_locs, &ss->nbatch))
      return false;
  }
  return expect_char(P, ')');
}

const char *sched_pack_name(sched_pack kind) {
  return kind == SCHED_PACK_PAD ? "pad" : kind == SCHED_PACK_IM2COL ? "im2col"
       : kind == SCHED_PACK_IM2ROW ? "im2row" : kind == SCHED_PACK_MASK ? "mask" : "none";
}

/* pack "=" NAME ":" ("pad" | "im2col" | "im2row" | "mask" | "transpose") { "," ... } */
static bool parse_packs(sparser *P, sched_stmt *ss) {
  do {
    size_t b = P->pos;
    const char *s;
    size_t n = ident(P, &s);
    bool found = false;
    if (!expect_char(P, ':'))
      return false;
    const char *ks;
    size_t kn = ident(P, &ks);
    bk_loc kloc = {P->src, (uint32_t)(ks - P->src->text), (uint32_t)(kn ? kn : 1)};
    bk_loc nloc = {P->src, (uint32_t)b, (uint32_t)(n ? n : 1)};
    const char *target = P->st->lhs->name;
    bool transpose = word_is(ks, kn, "transpose");
    if (transpose) { /* the output's copy */
      if (!word_is(s, n, target)) {
        serror(P, nloc, "'transpose' packs the target of s%d ('%s'), not '%.*s'", P->st->index,
               target, (int)n, s);
        return false;
      }
      if (ss->out_transpose) {
        serror(P, nloc, "'%.*s' is packed twice", (int)n, s);
        return false;
      }
      ss->out_transpose = true;
      ss->out_loc = (bk_loc){P->src, (uint32_t)b, (uint32_t)(P->pos - b)};
      continue;
    }
    sched_pack kind = word_is(ks, kn, "pad")      ? SCHED_PACK_PAD
                      : word_is(ks, kn, "im2col") ? SCHED_PACK_IM2COL
                      : word_is(ks, kn, "im2row") ? SCHED_PACK_IM2ROW
                      : word_is(ks, kn, "mask")   ? SCHED_PACK_MASK : SCHED_PACK_NONE;
    if (kind == SCHED_PACK_NONE) {
      serror(P, kloc, "unknown packing '%.*s' (expected 'pad', 'im2col', 'im2row', 'mask' or, "
             "for the target, 'transpose')", (int)kn, ks);
      return false;
    }
    for (int i = 0; i < ss->packs.len; i++)
      if (word_is(s, n, P->st->reads[ss->packs.data[i].read]->name)) {
        serror(P, nloc, "'%.*s' is packed twice", (int)n, s);
        return false;
      }
    for (int r = 0; r < P->st->nreads; r++)
      if (word_is(s, n, P->st->reads[r]->name)) {
        struct sched_pack_rec rec = {r, kind};
        bk_vec_push(P->out->arena, &ss->packs, rec);
        found = true;
      }
    if (!found) {
      serror(P, (bk_loc){P->src, (uint32_t)b, (uint32_t)(n ? n : 1)},
             "statement s%d reads no tensor '%.*s'", P->st->index, (int)n, s);
      return false;
    }
  } while (eat(P, ','));
  return true;
}

static bool parse_item(sparser *P, sched_stmt *ss, loop_tiles *lt) {
  size_t b = P->pos;
  const char *s;
  size_t n = ident(P, &s);
  bk_loc loc = {P->src, (uint32_t)b, (uint32_t)(n ? n : 1)};
  unsigned bit = item_bit(s, n);
  if (bit & lt->seen) {
    serror(P, loc, bit == 1 ? "'%.*s': the section already says brgemm, loops or fused"
                            : "'%.*s' is given twice in this section", (int)n, s);
    return false;
  }
  lt->seen |= bit;
  if (word_is(s, n, "brgemm"))
    return parse_brgemm(P, ss, lt);
  if (word_is(s, n, "loops")) {
    ss->brgemm = false;
    return true;
  }
  if (word_is(s, n, "fused")) {
    ss->fused = true;
    return true;
  }
  if (word_is(s, n, "epilogue")) {
    if (!expect_char(P, '='))
      return false;
    size_t b2 = P->pos;
    const char *w;
    size_t wn = ident(P, &w);
    ss->epilogue_stmt = -1;
    for (int i = 0; i < P->k->stmts.len; i++) {
      char sid[32];
      snprintf(sid, sizeof sid, "s%d", i);
      if (word_is(w, wn, sid) || (P->k->stmts.data[i]->label && word_is(w, wn, P->k->stmts.data[i]->label)))
        ss->epilogue_stmt = i;
    }
    if (ss->epilogue_stmt < 0) {
      serror(P, (bk_loc){P->src, (uint32_t)b2, (uint32_t)(wn ? wn : 1)},
             "kernel '%s' has no statement '%.*s'", P->k->name, (int)wn, w);
      return false;
    }
    ss->epilogue = true;
    ss->epilogue_loc = (bk_loc){P->src, loc.offset, (uint32_t)(P->pos - loc.offset)};
    return true;
  }
  if (!word_is(s, n, "order") && !word_is(s, n, "parallel") && !word_is(s, n, "pack") &&
      !word_is(s, n, "flatten") && !word_is(s, n, "tail")) {
    serror(P, loc, "unknown schedule item '%.*s' (expected brgemm, flatten, tail, epilogue, "
           "order, parallel, pack, loops or fused)", (int)n, s);
    return false;
  }
  if (!expect_char(P, '='))
    return false;
  if (word_is(s, n, "flatten")) {
    int64_t tile;
    bk_loc at = here(P, 1);
    if (!parse_loop(P, &ss->flatten_iter, &tile))
      return false;
    if (tile) {
      serror(P, at, "'flatten' takes an iterator, not a tile");
      return false;
    }
    ss->flatten = true;
    ss->flatten_loc = (bk_loc){P->src, loc.offset, (uint32_t)(P->pos - loc.offset)};
    return true;
  }
  if (word_is(s, n, "tail")) {
    size_t tb = P->pos;
    char *end;
    errno = 0;
    long long v = isdigit((unsigned char)cur(P)) ? strtoll(P->src->text + P->pos, &end, 10) : 0;
    P->pos = v > 0 ? (size_t)(end - P->src->text) : P->pos;
    if (P->pos == tb || v <= 0) {
      serror(P, (bk_loc){P->src, (uint32_t)tb, (uint32_t)(P->pos > tb ? P->pos - tb : 1)},
             "'tail' takes a positive number of M iterations");
      return false;
    }
    if (errno == ERANGE || v > SCHED_MAX_NUMBER) {
      serror(P, (bk_loc){P->src, (uint32_t)tb, (uint32_t)(P->pos - tb)},
             "'tail=%.*s' is out of range (at most %lld)", (int)(P->pos - tb), P->src->text + tb,
             (long long)SCHED_MAX_NUMBER);
      return false;
    }
    ss->tail = v;
    ss->tail_call = false;
    if (cur(P) == ':') {
      P->pos++;
      size_t wb = P->pos;
      while (isalnum((unsigned char)cur(P)) || cur(P) == '_')
        P->pos++;
      if (P->pos - wb != 4 || strncmp(P->src->text + wb, "call", 4)) {
        serror(P, (bk_loc){P->src, (uint32_t)wb, (uint32_t)(P->pos > wb ? P->pos - wb : 1)},
               "expected 'call' after 'tail=%lld:' (the dot products inside the BRGEMM calls)", v);
        return false;
      }
      ss->tail_call = true;
    }
    ss->tail_loc = (bk_loc){P->src, loc.offset, (uint32_t)(P->pos - loc.offset)}; /* the whole item */
    return true;
  }
  if (word_is(s, n, "order"))
    return parse_loop_list(P, ss->order, lt->order, lt->order_locs, &ss->norder);
  if (word_is(s, n, "parallel")) {
    lt->parallel_loc = here(P, 1);
    const char *w;
    size_t save = P->pos, wn = ident(P, &w);
    if (word_is(w, wn, "none")) {
      ss->parallel = -2; /* explicitly none */
      return true;
    }
    P->pos = save;
    int it;
    if (!parse_loop(P, &it, &lt->parallel))
      return false;
    ss->parallel = 1000 + it; /* resolved to an order position once the order is known */
    return true;
  }
  return parse_packs(P, ss);
}

static bool is_reduction(const ir_stmt *st, int it) { return st->iters[it].reduction; }

static int role_of(const sched_stmt *ss, int it) {
  for (int r = 0; r < 3; r++)
    if (ss->role[r] == it)
      return r;
  return -1;
}

/* Is the loop "l" with written tile "t" consistent with the roles? */
static bool check_loop(sparser *P, const sched_stmt *ss, sched_loop l, int64_t t, bk_loc loc) {
  const char *name = P->st->iters[l.iter].name;
  int r = role_of(ss, l.iter);
  if (!l.tile && r >= 0 && ss->brgemm) {
    serror(P, loc, "'%s' is the %c iterator: its loop is inside the BRGEMM call (write '%s/T' "
           "for the loop over its tiles)", name, "MNK"[r], name);
    return false;
  }
  if (l.tile && (r < 0 || !ss->brgemm)) {
    serror(P, loc, "only the M, N and K iterators of a BRGEMM can be tiled, not '%s'", name);
    return false;
  }
  if (l.tile && ss->tile[r] == 0) {
    serror(P, loc, "'%s/%lld' is a loop over tiles, but %c=%s is not tiled (write %c=%s/%lld)",
           name, (long long)t, "mnk"[r], name, "mnk"[r], name, (long long)t);
    return false;
  }
  if (l.tile && ss->tile[r] != t) {
    serror(P, loc, "'%s/%lld' does not match the tile size of %c=%s/%lld", name, (long long)t,
           "mnk"[r], name, (long long)ss->tile[r]);
    return false;
  }
  return true;
}

static bool loop_listed(const sched_stmt *ss, sched_loop l) {
  for (int i = 0; i < ss->norder; i++)
    if (ss->order[i].iter == l.iter && ss->order[i].tile == l.tile)
      return true;
  for (int i = 0; i < ss->nbatch; i++)
    if (ss->batch[i].iter == l.iter && ss->batch[i].tile == l.tile)
      return true;
  return false;
}

/* Check the loops of a section and complete "order" with the loops it does not list. */
static bool finish_section(sparser *P, sched_stmt *ss, const loop_tiles *lt) {
  const ir_stmt *st = P->st;
  if (ss->fused)
    return true; /* computed by another statement's epilogue: no loops of its own */
  if (ss->epilogue && !ss->brgemm) {
    serror(P, ss->epilogue_loc, "'epilogue' needs a BRGEMM statement");
    return false;
  }
  if (ss->tail && !ss->brgemm) {
    serror(P, ss->tail_loc, "'tail' needs a BRGEMM statement");
    return false;
  }
  if (ss->out_transpose && !ss->brgemm) {
    serror(P, ss->out_loc, "'pack=%s:transpose' needs a BRGEMM statement", st->lhs->name);
    return false;
  }
  if (ss->out_transpose && (ss->flatten || (ss->tail && !ss->tail_call))) {
    serror(P, ss->out_loc, "'pack=%s:transpose' cannot be combined with '%s'%s", st->lhs->name,
           ss->flatten ? "flatten" : "tail", ss->flatten ? "" : " (only with 'tail=T:call')");
    return false;
  }
  if (ss->tail && !ss->tail_call && ss->epilogue) {
    serror(P, ss->tail_loc, "'tail' cannot be combined with 'epilogue': the dot products would "
           "skip the epilogue");
    return false;
  }
  for (int r = 0; r < 3 && ss->brgemm; r++)
    for (int q = 0; q < r; q++)
      if (ss->role[r] >= 0 && ss->role[r] == ss->role[q]) {
        serror(P, ss->role_loc[r], "'%s' has two BRGEMM roles", st->iters[ss->role[r]].name);
        return false;
      }
  for (int i = 0; i < ss->norder; i++)
    if (!check_loop(P, ss, ss->order[i], lt->order[i], lt->order_locs[i]))
      return false;
  for (int i = 0; i < ss->nbatch; i++) {
    if (!check_loop(P, ss, ss->batch[i], lt->batch[i], lt->batch_locs[i]))
      return false;
    if (!is_reduction(st, ss->batch[i].iter)) {
      serror(P, lt->batch_locs[i], "'%s' cannot be in the batch: it indexes the output",
             st->iters[ss->batch[i].iter].name);
      return false;
    }
  }
  for (int i = 0; i < ss->norder + ss->nbatch; i++)
    for (int j = 0; j < i; j++) {
      sched_loop a = i < ss->norder ? ss->order[i] : ss->batch[i - ss->norder];
      sched_loop b = j < ss->norder ? ss->order[j] : ss->batch[j - ss->norder];
      if (a.iter == b.iter && a.tile == b.tile) {
        bk_loc la = i < ss->norder ? lt->order_locs[i] : lt->batch_locs[i - ss->norder];
        bk_loc lb = j < ss->norder ? lt->order_locs[j] : lt->batch_locs[j - ss->norder];
        serror(P, la.offset > lb.offset ? la : lb, "loop '%s%s' is listed twice", /* the later */
               st->iters[a.iter].name, a.tile ? "/T" : "");
        return false;
      }
    }
  for (int it = 0; it < st->niters; it++) {
    int r = ss->brgemm ? role_of(ss, it) : -1;
    sched_loop l = {it, r >= 0};
    if ((r >= 0 && ss->tile[r] == 0) || loop_listed(ss, l))
      continue;
    if (ss->norder == SCHED_MAX_LOOPS) {
      serror(P, ss->loc, "too many loops");
      return false;
    }
    ss->order[ss->norder++] = l;
  }
  return true;
}

/* Resolve "parallel=" to a position in the order. */
static bool finish_parallel(sparser *P, sched_stmt *ss, const loop_tiles *lt) {
  if (ss->parallel == -2 || ss->parallel == -1) {
    ss->parallel = -1;
    return true;
  }
  int it = ss->parallel - 1000;
  ss->parallel = -1;
  for (int i = 0; i < ss->norder; i++)
    if (ss->order[i].iter == it && ss->order[i].tile == (lt->parallel > 0))
      ss->parallel = i;
  const char *name = P->st->iters[it].name;
  if (ss->parallel < 0) {
    serror(P, lt->parallel_loc, "the parallel loop '%s%s' is not a loop of the order", name,
           lt->parallel > 0 ? "/T" : "");
    return false;
  }
  if (is_reduction(P->st, it)) {
    serror(P, lt->parallel_loc, "loop '%s' carries the reduction over '%s'; it cannot be "
           "parallel", name, name);
    return false;
  }
  return true;
}

/* section = ("s" INT | LABEL) "{" [ item { ";" item } ] "}" */
static bool parse_section(sparser *P) {
  size_t b = P->pos;
  const char *s;
  size_t n = ident(P, &s);
  bk_loc loc = {P->src, (uint32_t)b, (uint32_t)(n ? n : 1)};
  if (n == 0) {
    serror(P, loc, "expected a statement section ('sN{...}' or 'LABEL{...}'), found '%c'", cur(P));
    return false;
  }
  P->st = NULL;
  for (int i = 0; i < P->k->stmts.len; i++) {
    const ir_stmt *st = P->k->stmts.data[i];
    char sid[32];
    snprintf(sid, sizeof sid, "s%d", i);
    if (word_is(s, n, sid) || (st->label && word_is(s, n, st->label)))
      P->st = st;
  }
  if (!P->st) {
    serror(P, loc, "kernel '%s' has no statement '%.*s' (statements are s0..s%d)", P->k->name,
           (int)n, s, P->k->stmts.len - 1);
    return false;
  }
  if (sched_schedule_find(P->out, P->st->index)) {
    serror(P, loc, "statement s%d is scheduled twice", P->st->index);
    return false;
  }
  sched_stmt *ss = sched_schedule_add(P->out, P->st->index);
  ss->loc = loc;
  loop_tiles lt = {0};
  if (!expect_char(P, '{'))
    return false;
  if (!eat(P, '}')) {
    do {
      if (!parse_item(P, ss, &lt))
        return false;
    } while (eat(P, ';'));
    if (!expect_char(P, '}'))
      return false;
  }
  return finish_section(P, ss, &lt) && finish_parallel(P, ss, &lt);
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* The length of the name of a part "KERNEL:" of a schedule for several kernels that starts at
 * "t" (spaces allowed before the colon), else 0. */
static size_t part_at(const char *t) {
  size_t n = 0;
  while (ident_char(t[n]))
    n++;
  const char *c = t + n;
  while (isspace((unsigned char)*c))
    c++;
  return n && *c == ':' ? n : 0;
}

/* The next part "KERNEL:" outside braces from "t" on (t itself if one starts there), or the
 * end of the text. */
static const char *next_part(const char *t) {
  int depth = 0;
  while (*t) {
    if (depth == 0 && part_at(t))
      return t;
    if (ident_char(*t)) { /* a whole word: no part starts inside one */
      while (ident_char(*t))
        t++;
      continue;
    }
    depth += *t == '{' ? 1 : *t == '}' && depth > 0 ? -1 : 0;
    t++;
  }
  return t;
}

static bool at_kernel_part(const sparser *P) { return part_at(P->src->text + P->pos) > 0; }

/* Skip the sections of another kernel's part: up to the next "KERNEL:" outside braces. */
static void skip_part(sparser *P) {
  P->pos = (size_t)(next_part(P->src->text + P->pos) - P->src->text);
}

/* Report "KERNEL:" at "loc" naming no kernel of "prog" (NULL: of "k" alone). */
static void unknown_kernel(sparser *P, const ir_program *prog, bk_loc loc, const char *w,
                           size_t n) {
  if (!prog || prog->kernels.len == 1) {
    serror(P, loc, "this schedule is for kernel '%.*s', not '%s'", (int)n, w, P->k->name);
    return;
  }
  bk_strbuf names;
  bk_strbuf_init(&names);
  for (int i = 0; i < prog->kernels.len; i++)
    bk_strbuf_printf(&names, "%s%s", i ? ", " : "", prog->kernels.data[i]->name);
  serror(P, loc, "the program has no kernel '%.*s' (its kernels: %s)", (int)n, w,
         bk_strbuf_cstr(&names));
  bk_strbuf_release(&names);
}

/* Is "w" (of "n" bytes) the name of a kernel of "prog" (NULL: of "k" alone)? */
static bool is_kernel(const ir_program *prog, const ir_kernel *k, const char *w, size_t n) {
  for (int i = 0; prog && i < prog->kernels.len; i++)
    if (word_is(w, n, prog->kernels.data[i]->name))
      return true;
  return word_is(w, n, k->name);
}

/* schedule = KERNEL ":" { section } { KERNEL ":" { section } }: the sections of P->k's part,
 * as 'brick show --schedule' prints a schedule per kernel, one a line. */
static void parse_parts(sparser *P, const ir_program *prog) {
  enum { MAX_PARTS = 64 };
  const char *seen[MAX_PARTS];
  size_t seen_len[MAX_PARTS];
  int nseen = 0;
  while (cur(P) && !P->failed) {
    const char *w;
    size_t b = P->pos, n = ident(P, &w);
    bk_loc loc = {P->src, (uint32_t)b, (uint32_t)n};
    skip_space(P);
    P->pos++; /* the ':' (at_kernel_part) */
    skip_space(P);
    bool twice = false;
    for (int i = 0; i < nseen && !twice; i++)
      twice = seen_len[i] == n && memcmp(seen[i], w, n) == 0;
    if (nseen < MAX_PARTS) {
      seen[nseen] = w;
      seen_len[nseen++] = n;
    }
    if (!is_kernel(prog, P->k, w, n)) {
      unknown_kernel(P, prog, loc, w, n);
    } else if (twice) { /* checked in every kernel's parse, so whichever is compiled */
      serror(P, loc, "kernel '%.*s' has two parts in this schedule", (int)n, w);
    } else if (!word_is(w, n, P->k->name)) {
      skip_part(P);
    } else {
      while (cur(P) && !P->failed && !at_kernel_part(P)) {
        parse_section(P);
        skip_space(P);
      }
    }
  }
}

bool sched_text_names_kernels(const char *text) {
  while (isspace((unsigned char)*text))
    text++;
  return part_at(text) > 0;
}

bool sched_text_has_part(const char *text, const char *name) {
  for (const char *t = next_part(text); *t; t = next_part(t + part_at(t)))
    if (word_is(t, part_at(t), name))
      return true;
  return false;
}

sched_schedule *sched_schedule_parse_in(const ir_program *prog, const ir_kernel *k,
                                        const bk_source *src, bk_diag *diag) {
  sparser P = {.k = k, .src = src, .diag = diag, .out = sched_schedule_new()};
  skip_space(&P);
  if (at_kernel_part(&P)) {
    parse_parts(&P, prog);
  } else {
    while (cur(&P) && !P.failed) {
      parse_section(&P);
      skip_space(&P);
    }
  }
  for (int i = 0; i < P.out->stmts.len && !P.failed; i++) {
    const sched_stmt *c = &P.out->stmts.data[i];
    const sched_stmt *e = c->epilogue ? sched_schedule_find(P.out, c->epilogue_stmt) : NULL;
    if (e == c)
      serror(&P, c->epilogue_loc, "statement s%d cannot be its own epilogue (an epilogue is the "
             "elementwise statement right after it, on its target)", c->stmt);
    else if (e && !e->fused)
      serror(&P, e->loc, "statement s%d runs as the epilogue of s%d: schedule it as 's%d{fused}' "
             "or leave it out", c->epilogue_stmt, c->stmt, c->epilogue_stmt);
  }
  if (P.failed) {
    sched_schedule_free(P.out);
    return NULL;
  }
  return P.out;
}

sched_schedule *sched_schedule_parse(const ir_kernel *k, const bk_source *src, bk_diag *diag) {
  return sched_schedule_parse_in(NULL, k, src, diag);
}

/* ---- printing ------------------------------------------------------------------------- */

static void print_loop(bk_strbuf *sb, const ir_stmt *st, const sched_stmt *ss, sched_loop l) {
  bk_strbuf_puts(sb, st->iters[l.iter].name);
  if (l.tile)
    bk_strbuf_printf(sb, "/%lld", (long long)ss->tile[role_of(ss, l.iter)]);
}

static void print_loops(bk_strbuf *sb, const ir_stmt *st, const sched_stmt *ss,
                        const sched_loop *l, int n) {
  for (int i = 0; i < n; i++) {
    if (i)
      bk_strbuf_puts(sb, ",");
    print_loop(sb, st, ss, l[i]);
  }
}

static void print_section(bk_strbuf *sb, const ir_stmt *st, const sched_stmt *ss) {
  bk_strbuf_printf(sb, "s%d{", st->index);
  if (ss->fused) {
    bk_strbuf_puts(sb, "fused}");
    return;
  }
  if (ss->brgemm) {
    bk_strbuf_puts(sb, "brgemm(");
    for (int r = 0; r < 3; r++) {
      if (ss->role[r] < 0)
        continue;
      bk_strbuf_printf(sb, "%s%c=%s", r ? "," : "", "mnk"[r], st->iters[ss->role[r]].name);
      if (ss->tile[r])
        bk_strbuf_printf(sb, "/%lld", (long long)ss->tile[r]);
    }
    if (ss->nbatch) {
      bk_strbuf_puts(sb, ";batch=");
      print_loops(sb, st, ss, ss->batch, ss->nbatch);
    }
    bk_strbuf_puts(sb, ")");
    if (ss->flatten)
      bk_strbuf_printf(sb, ";flatten=%s", st->iters[ss->flatten_iter].name);
    if (ss->tail)
      bk_strbuf_printf(sb, ";tail=%lld%s", (long long)ss->tail, ss->tail_call ? ":call" : "");
    if (ss->epilogue)
      bk_strbuf_printf(sb, ";epilogue=s%d", ss->epilogue_stmt);
  } else {
    bk_strbuf_puts(sb, "loops");
  }
  if (ss->norder) { /* none when the call covers everything */
    bk_strbuf_puts(sb, ";order=");
    print_loops(sb, st, ss, ss->order, ss->norder);
  }
  if (ss->parallel >= 0) {
    bk_strbuf_puts(sb, ";parallel=");
    print_loop(sb, st, ss, ss->order[ss->parallel]);
  }
  for (int i = 0; i < ss->packs.len; i++) {
    const char *name = st->reads[ss->packs.data[i].read]->name;
    bool dup = false;
    for (int j = 0; j < i; j++)
      dup |= st->reads[ss->packs.data[j].read]->tensor == st->reads[ss->packs.data[i].read]->tensor;
    if (!dup)
      bk_strbuf_printf(sb, "%s%s:%s", i ? "," : ";pack=", name,
                       sched_pack_name(ss->packs.data[i].kind));
  }
  if (ss->out_transpose)
    bk_strbuf_printf(sb, "%s%s:transpose", ss->packs.len ? "," : ";pack=", st->lhs->name);
  bk_strbuf_puts(sb, "}");
}

char *sched_schedule_to_str(const ir_kernel *k, const sched_schedule *s) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  for (int i = 0; i < s->stmts.len; i++) {
    if (i)
      bk_strbuf_puts(&sb, " ");
    print_section(&sb, k->stmts.data[s->stmts.data[i].stmt], &s->stmts.data[i]);
  }
  return bk_strbuf_take(&sb);
}
