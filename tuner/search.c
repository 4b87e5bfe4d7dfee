/*
 * The tuning loop: the default schedule first (the baseline every run reports), then the
 * strategy's candidates, best modelled first, each measured in a worker and recorded in the
 * database at once; at the end the default and the best few are measured again in interleaved
 * rounds (a loaded machine makes single measurements noisy) and the best median wins; those
 * records confirm the finalists, which the database then ranks above schedules measured once.
 *
 * Strategies draw from pools of candidates ranked by the cost model:
 *
 *  - exhaustive: the scheduler's pruned space (plus flatten and M-tail variants), in model order;
 *  - random: a few thousand random samples, in model order;
 *  - evolutionary: a frontier of unmeasured candidates, seeded with random samples (and the
 *    pruned space when it is small) and refilled each generation with mutations and crossovers
 *    of the best measured schedules (this run's and the database's); each generation measures
 *    the frontier's three best by the model and one of its next best at random, so that the
 *    search does not trust the model blindly;
 *  - auto: exhaustive when the pruned space fits the budget, else evolutionary;
 *  - model report: random samples measured in random order, to see how well the model ranks
 *    them (Spearman's rank correlation of modelled cycles and measured time).
 *
 * Candidates the database already holds for the key are never measured again; a second tuner
 * on the same key therefore explores elsewhere. The budget is a number of measurements, a
 * number of seconds, or both; the stop flag (Ctrl-C) ends the loop between two measurements or
 * kills the worker of the current one, which then is not recorded.
 */
#include "tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POPULATION 8
#define FRONTIER_MAX 6000
#define SEED_POOL 2500
#define CONFIRM_TOP 3      /* schedules measured again beside the default */
#define CONFIRM_ROUNDS 2
#define SLOW_FACTOR 5.0    /* candidates this much slower than the best are timed once */
#define EXPLORE_TOP 20     /* the exploration pick comes from this many best modelled (or 5%) */

typedef struct entry {
  tune_cand *c;
  tune_status st;
  double gflops, ms;
} entry;

typedef struct pool {
  tune_cand **c;
  int n, cap;
} pool;

typedef struct tuner {
  const tune_config *cfg;
  tune_space sp;
  tune_db *db;
  tune_key key;
  tune_worker w;
  tune_result *res;
  double t0, reserve, measure_seconds;
  entry *hist; /* measured this run, and the database's best (origin TUNE_ORIGIN_DB) */
  int nhist, caphist;
  int best, def; /* indices into hist, -1 for none */
  int confirmed;  /* this run's best after the confirmation, -1 before */
  bool stop;
  char *err;
} tuner;

static const char *const strategy_names[] = {"auto", "exhaustive", "random", "evolutionary",
                                             "model-report"};

const char *tune_strategy_name(tune_strategy s) { return strategy_names[s]; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double elapsed(const tuner *T) { return now() - T->t0; }

/* ---- pools ------------------------------------------------------------------------------------ */

static void pool_push(pool *p, tune_cand *c) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 256;
    p->c = realloc(p->c, sizeof(tune_cand *) * (size_t)p->cap);
    if (!p->c)
      abort();
  }
  tune_cand_shrink(c);
  p->c[p->n++] = c;
}

static void pool_release(pool *p) {
  for (int i = 0; i < p->n; i++)
    tune_cand_free(p->c[i]);
  free(p->c);
  *p = (pool){0};
}

static int cmp_cost(const void *a, const void *b) {
  double x = (*(tune_cand *const *)a)->cost.total, y = (*(tune_cand *const *)b)->cost.total;
  return (x > y) - (x < y);
}

static void pool_sort(pool *p) {
  if (p->n > 1)
    qsort(p->c, (size_t)p->n, sizeof(tune_cand *), cmp_cost);
}

/* Remove and return entry "i" of "p". */
static tune_cand *pool_take(pool *p, int i) {
  tune_cand *c = p->c[i];
  memmove(p->c + i, p->c + i + 1, sizeof(tune_cand *) * (size_t)(p->n - i - 1));
  p->n--;
  return c;
}

/* Keep the "max" best modelled entries of "p". */
static void pool_trim(pool *p, int max) {
  pool_sort(p);
  while (p->n > max)
    tune_cand_free(p->c[--p->n]);
}

/* ---- events and budget ------------------------------------------------------------------------ */

static void emit(tuner *T, const tune_event *ev) {
  if (T->cfg->progress)
    T->cfg->progress(T->cfg->user, ev);
}

static void note(tuner *T, const char *fmt, ...) BK_PRINTF(2, 3);
static void note(tuner *T, const char *fmt, ...) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  va_list ap;
  va_start(ap, fmt);
  bk_strbuf_vprintf(&sb, fmt, ap);
  va_end(ap);
  tune_event ev = {.done = T->res->measured, .total = T->cfg->trials, .elapsed = elapsed(T),
                   .eta = -1, .note = bk_strbuf_cstr(&sb),
                   .best_gflops = T->best >= 0 ? T->hist[T->best].gflops : 0,
                   .default_gflops = T->def >= 0 ? T->hist[T->def].gflops : 0};
  emit(T, &ev);
  bk_strbuf_release(&sb);
}

static bool stop_requested(tuner *T) {
  if (T->cfg->stop && *T->cfg->stop)
    T->res->interrupted = true;
  return T->stop || T->res->interrupted;
}

static bool budget_left(tuner *T) {
  if (stop_requested(T))
    return false;
  if (T->cfg->trials > 0 && T->res->measured >= T->cfg->trials)
    return false;
  return !(T->cfg->seconds > 0 && elapsed(T) + T->reserve >= T->cfg->seconds);
}

static double eta(const tuner *T) {
  double e = -1, avg = T->res->measured ? elapsed(T) / T->res->measured : 0;
  if (T->cfg->trials > 0 && avg > 0)
    e = avg * (T->cfg->trials - T->res->measured);
  if (T->cfg->seconds > 0) {
    double left = T->cfg->seconds - elapsed(T);
    e = e < 0 || left < e ? left : e;
  }
  return e < 0 && e != -1 ? 0 : e;
}

/* ---- measuring one candidate ---------------------------------------------------------------------- */

static int hist_push(tuner *T, entry e) {
  if (T->nhist == T->caphist) {
    T->caphist = T->caphist ? 2 * T->caphist : 64;
    T->hist = realloc(T->hist, sizeof(entry) * (size_t)T->caphist);
    if (!T->hist)
      abort();
  }
  T->hist[T->nhist] = e;
  if (e.st == TUNE_OK && (T->best < 0 || e.gflops > T->hist[T->best].gflops))
    T->best = T->nhist;
  return T->nhist++;
}

/* Record "m" of candidate "c" found by "strategy". False when the database failed. */
static bool record(tuner *T, const tune_cand *c, const tune_measurement *m, const char *strategy) {
  tune_record r = {.schedule = c->text, .status = m->status, .gflops = m->gflops, .ms = m->ms,
                   .model = c->cost.total, .strategy = (char *)strategy,
                   .message = m->message[0] ? (char *)m->message : NULL,
                   .version = (char *)T->cfg->version};
  if (tune_db_record(T->db, &T->key, &r, NULL, &T->err) == 0)
    return true;
  T->stop = true;
  return false;
}

/* Measure candidate "c" (taken) unless it fails the legality check; returns its index in the
 * history, or -1 (not measured, or stopped). */
static int measure(tuner *T, tune_cand *c, const char *strategy) {
  if (!tune_space_check(&T->sp, c)) {
    tune_cand_free(c);
    return -1;
  }
  tune_worker w = T->w;
  bool cut = false;
  if (T->cfg->seconds > 0 && !T->res->interrupted) {
    double left = T->cfg->seconds - elapsed(T) + 2.0;
    cut = left < w.timeout;
    w.timeout = cut ? (left > 1 ? left : 1) : w.timeout;
  }
  tune_measurement m;
  tune_measure(&w, c->text, &m);
  if (m.status == TUNE_STOPPED || (cut && m.status == TUNE_TIMEOUT)) {
    stop_requested(T);
    T->stop = true;
    tune_cand_free(c);
    return -1;
  }
  if (c->origin == TUNE_ORIGIN_DEFAULT &&
      (m.status == TUNE_ERROR || m.status == TUNE_INVALID || m.status == TUNE_CRASH)) {
    /* the default schedule lowered here, so the worker failing on it (not an executable,
     * another program, an older brick, or a brick bug that crashes it) says nothing about
     * the schedules: the run's records would only keep those candidates from being
     * measured again by a working worker */
    size_t n = strlen(m.message) + 64;
    T->err = malloc(n);
    if (T->err)
      snprintf(T->err, n, "the worker failed on the default schedule: %s",
               m.message[0] ? m.message : "no result");
    T->stop = true;
    tune_cand_free(c);
    return -1;
  }
  T->measure_seconds += m.seconds;
  T->res->measured++;
  T->res->failed += m.status != TUNE_OK;
  if (!record(T, c, &m, strategy)) {
    tune_cand_free(c);
    return -1;
  }
  int e = hist_push(T, (entry){c, m.status, m.gflops, m.ms});
  if (c->origin == TUNE_ORIGIN_DEFAULT)
    T->def = e;
  if (m.status == TUNE_OK && (T->w.slow_ms <= 0 || SLOW_FACTOR * m.ms < T->w.slow_ms))
    T->w.slow_ms = SLOW_FACTOR * m.ms;
  tune_event ev = {.done = T->res->measured, .total = T->cfg->trials, .elapsed = elapsed(T),
                   .eta = eta(T), .schedule = c->text, .status = m.status, .gflops = m.gflops,
                   .ms = m.ms, .model = c->cost.total, .message = m.message,
                   .best_gflops = T->best >= 0 ? T->hist[T->best].gflops : 0,
                   .default_gflops = T->def >= 0 ? T->hist[T->def].gflops : 0};
  emit(T, &ev);
  if (c->origin == TUNE_ORIGIN_DEFAULT && m.status != TUNE_OK)
    note(T, "the default schedule failed (%s%s%s)", tune_status_name(m.status),
         m.message[0] ? ": " : "", m.message);
  return e;
}

/* ---- seeds: the default and the database ------------------------------------------------------------ */

static bool load_record(void *user, const tune_record *r) {
  tuner *T = user;
  tune_space_mark_seen(&T->sp, r->schedule);
  return true;
}

typedef struct top_records {
  tune_record r[POPULATION];
  int n;
} top_records;

static bool keep_top(void *user, const tune_record *r) {
  top_records *t = user;
  if (r->status != TUNE_OK)
    return true;
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->r[i].schedule, r->schedule) == 0)
      return true;
  int at = t->n < POPULATION ? t->n++ : POPULATION - 1;
  if (at == POPULATION - 1 && t->n == POPULATION && t->r[at].schedule && r->gflops <= t->r[at].gflops)
    return true;
  if (t->r[at].schedule)
    tune_record_release(&t->r[at]);
  t->r[at] = (tune_record){.schedule = strdup(r->schedule), .gflops = r->gflops, .ms = r->ms};
  for (int i = at; i > 0 && t->r[i].gflops > t->r[i - 1].gflops; i--) {
    tune_record x = t->r[i];
    t->r[i] = t->r[i - 1];
    t->r[i - 1] = x;
  }
  return true;
}

/* Mark every recorded schedule of the key as seen; the best recorded ones join the history
 * as parents (not as this run's measurements). */
static void load_db(tuner *T) {
  char *err = NULL;
  top_records top = {.n = 0};
  if (tune_db_each(T->db, &T->key, load_record, T, &err) != 0 ||
      tune_db_each(T->db, &T->key, keep_top, &top, &err) != 0) {
    T->err = err;
    T->stop = true;
  }
  int loaded = 0;
  for (int i = 0; i < top.n; i++) {
    tune_cand *c = tune_space_parse(&T->sp, top.r[i].schedule, TUNE_ORIGIN_DB);
    if (c) {
      hist_push(T, (entry){c, TUNE_OK, top.r[i].gflops, top.r[i].ms});
      loaded++;
    }
    tune_record_release(&top.r[i]);
  }
  if (loaded)
    note(T, "the database's %d best schedules for this key join the parents; fastest %.2f GFLOP/s",
         loaded, T->best >= 0 ? T->hist[T->best].gflops : 0.0);
}

static bool measure_default(tuner *T) {
  tune_cand *c = T->cfg->default_schedule
                    ? tune_space_parse(&T->sp, T->cfg->default_schedule, TUNE_ORIGIN_DEFAULT)
                    : tune_space_default(&T->sp);
  if (!c) {
    T->err = strdup("the default schedule does not lower (a bug in brick)");
    return false;
  }
  T->res->default_schedule = strdup(c->text);
  int e = measure(T, c, "default");
  if (e < 0)
    return false;
  T->def = e;
  T->res->default_gflops = T->hist[e].gflops;
  if (T->cfg->timeout <= 0) {
    double t = 8 * T->measure_seconds + 5;
    T->w.timeout = t < 10 ? 10 : t > 120 ? 120 : t;
  }
  return true;
}

/* ---- pools of candidates ---------------------------------------------------------------------------- */

static void fill_random(tuner *T, pool *p, int want, double max_seconds) {
  double t0 = now();
  for (int i = 0; i < want && now() - t0 < max_seconds && !stop_requested(T); i++) {
    tune_cand *c = tune_space_random(&T->sp, 20);
    if (c)
      pool_push(p, c);
  }
}

typedef struct enum_ctx {
  pool *p;
  int64_t max;
} enum_ctx;

static bool enum_visit(void *user, tune_cand *c) {
  enum_ctx *e = user;
  pool_push(e->p, c);
  return e->p->n < e->max;
}

/* The pruned space into "p" (at most "max"); returns its size (-1 when it exceeds "max"). */
static int64_t fill_enumerated(tuner *T, pool *p, int64_t max) {
  enum_ctx e = {p, max + 1};
  int before = p->n;
  tune_space_enumerate(&T->sp, 100000, enum_visit, &e);
  return p->n - before > max ? -1 : p->n - before;
}

/* Measure the entries of sorted "p" from the front until the budget ends. */
static void measure_in_order(tuner *T, pool *p, const char *strategy) {
  while (p->n > 0 && budget_left(T))
    measure(T, pool_take(p, 0), strategy);
}

/* ---- strategies ------------------------------------------------------------------------------------ */

/* Time to spend filling a pool: a small share of the budget. */
static double pool_seconds(const tuner *T) {
  double s = T->cfg->seconds > 0 ? 0.08 * T->cfg->seconds : 0.1 * T->cfg->trials;
  if (T->cfg->seconds > 0 && T->cfg->trials > 0 && 0.1 * T->cfg->trials < s)
    s = 0.1 * T->cfg->trials;
  return s < 0.5 ? 0.5 : s > 5 ? 5 : s;
}

static void run_exhaustive(tuner *T) {
  pool p = {0};
  int64_t n = fill_enumerated(T, &p, 200000);
  T->res->space = n < 0 ? p.n : n;
  note(T, "exhaustive: %d schedules in the pruned space (with flatten variants), best modelled first",
       p.n);
  pool_sort(&p);
  measure_in_order(T, &p, "exhaustive");
  pool_release(&p);
}

static void run_random(tuner *T) {
  pool p = {0};
  double t0 = now();
  fill_random(T, &p, 5000, pool_seconds(T));
  T->res->space = p.n;
  note(T, "random: %d samples ranked by the model in %.1f s", p.n, now() - t0);
  pool_sort(&p);
  measure_in_order(T, &p, "random");
  pool_release(&p);
}

/* A parent from the best measured: rank-weighted (the best is chosen most often). */
static const tune_cand *pick_parent(tuner *T, const entry **par, int n) {
  double total = 0, r;
  for (int i = 0; i < n; i++)
    total += 1.0 / (i + 1);
  r = (double)sched_rng_below(&T->sp.rng, 1000000) / 1e6 * total;
  for (int i = 0; i < n; i++) {
    r -= 1.0 / (i + 1);
    if (r <= 0)
      return par[i]->c;
  }
  return par[n - 1]->c;
}

static int cmp_entry_gflops(const void *a, const void *b) {
  double x = (*(const entry *const *)a)->gflops, y = (*(const entry *const *)b)->gflops;
  return (x < y) - (x > y);
}

/* The best measured entries (at most POPULATION) into "par". */
static int parents(tuner *T, const entry **par) {
  const entry **all = malloc(sizeof(entry *) * (size_t)(T->nhist + 1));
  int n = 0;
  for (int i = 0; i < T->nhist; i++)
    if (T->hist[i].st == TUNE_OK)
      all[n++] = &T->hist[i];
  qsort(all, (size_t)n, sizeof(entry *), cmp_entry_gflops);
  int np = 0;
  for (int i = 0; i < n && np < POPULATION; i++)
    if (tune_cand_restore(&T->sp, all[i]->c))
      par[np++] = all[i];
  free(all);
  return np;
}

/* One generation's children into "frontier". */
static void breed(tuner *T, pool *frontier) {
  const entry *par[POPULATION];
  int np = parents(T, par);
  for (int i = 0; i < 120 && np > 0; i++) {
    tune_cand *c = tune_space_mutate(&T->sp, pick_parent(T, par, np), 10);
    if (c)
      pool_push(frontier, c);
  }
  for (int i = 0; i < 40 && np > 1; i++) {
    const tune_cand *a = pick_parent(T, par, np), *b = pick_parent(T, par, np);
    tune_cand *c = a != b ? tune_space_crossover(&T->sp, a, b, 5) : NULL;
    if (c)
      pool_push(frontier, c);
  }
  fill_random(T, frontier, 30, 1.0);
}

static void run_evolutionary(tuner *T, pool *seed) {
  pool frontier = *seed;
  *seed = (pool){0};
  fill_random(T, &frontier, SEED_POOL, pool_seconds(T));
  T->res->space = frontier.n;
  note(T, "evolutionary: %d seed candidates ranked by the model", frontier.n);
  pool_sort(&frontier);
  for (int i = 0; i < 4 && frontier.n > 0 && budget_left(T); i++)
    measure(T, pool_take(&frontier, 0), "evolutionary");
  for (int gen = 1; budget_left(T); gen++) {
    breed(T, &frontier);
    pool_trim(&frontier, FRONTIER_MAX);
    for (int i = 0; i < 3 && frontier.n > 0 && budget_left(T); i++)
      measure(T, pool_take(&frontier, 0), "evolutionary");
    int top = frontier.n / 20 > EXPLORE_TOP ? frontier.n / 20 : EXPLORE_TOP;
    top = top < frontier.n - 1 ? top : frontier.n - 1;
    if (top > 0 && budget_left(T))
      measure(T, pool_take(&frontier, 1 + (int)sched_rng_below(&T->sp.rng, top)), "evolutionary");
    if (frontier.n == 0 && parents(T, (const entry *[POPULATION]){0}) == 0)
      break;
  }
  pool_release(&frontier);
}

static void run_auto(tuner *T) {
  int64_t small = T->cfg->trials > 0 ? 2 * T->cfg->trials : 300;
  pool p = {0};
  int64_t n = fill_enumerated(T, &p, small);
  if (n > 0) {
    T->res->space = n;
    note(T, "auto: the pruned space has %lld schedules: exhaustive, best modelled first",
         (long long)n);
    pool_sort(&p);
    measure_in_order(T, &p, "exhaustive");
    pool_release(&p);
    return;
  }
  note(T, "auto: the pruned space has more than %lld schedules: evolutionary", (long long)small);
  run_evolutionary(T, &p);
}

static void model_report(tuner *T) {
  pool p = {0};
  fill_random(T, &p, 3000, pool_seconds(T));
  T->res->space = p.n;
  note(T, "model report: %d random samples; measuring them in random order", p.n);
  int first = T->nhist;
  while (p.n > 0 && budget_left(T))
    measure(T, pool_take(&p, (int)sched_rng_below(&T->sp.rng, p.n)), "model-report");
  pool_release(&p);
  double *x = malloc(sizeof(double) * (size_t)(T->nhist + 1)), *y = malloc(sizeof(double) * (size_t)(T->nhist + 1));
  double best = INFINITY;
  for (int pass = 0; pass < 3; pass++) {
    int n = 0;
    for (int i = first; i < T->nhist; i++) {
      const entry *e = &T->hist[i];
      if (e->st != TUNE_OK)
        continue;
      if (pass == 0)
        best = e->ms < best ? e->ms : best;
      else if (pass == 1 || e->ms <= 4 * best) {
        x[n] = e->c->cost.total;
        y[n++] = e->ms;
      }
    }
    if (pass == 1) {
      T->res->spearman = tune_spearman(x, y, n);
      T->res->spearman_n = n;
    } else if (pass == 2) {
      T->res->spearman_near = tune_spearman(x, y, n);
      T->res->spearman_near_n = n;
    }
  }
  free(x);
  free(y);
}

/* The best of this run's measurements, or -1. */
static int run_best(const tuner *T) {
  int b = -1;
  for (int i = 0; i < T->nhist; i++)
    if (T->hist[i].st == TUNE_OK && T->hist[i].c->origin != TUNE_ORIGIN_DB &&
        (b < 0 || T->hist[i].gflops > T->hist[b].gflops))
      b = i;
  return b;
}

/* The "max" fastest distinct schedules of this run other than the default, into "top". */
static int run_top(const tuner *T, int *top, int max) {
  int n = 0;
  for (int i = 0; i < T->nhist; i++) {
    const entry *e = &T->hist[i];
    if (e->st != TUNE_OK || e->c->origin == TUNE_ORIGIN_DB || i == T->def)
      continue;
    int at = n < max ? n++ : max;
    if (at == max && e->gflops <= T->hist[top[max - 1]].gflops)
      continue;
    at = at == max ? max - 1 : at;
    top[at] = i;
    for (int j = at; j > 0 && T->hist[top[j]].gflops > T->hist[top[j - 1]].gflops; j--) {
      int x = top[j];
      top[j] = top[j - 1];
      top[j - 1] = x;
    }
  }
  return n;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The history entry of the schedule the database holds as the best of the key (loaded as a
 * parent, else parsed now), or -1: none, or it no longer parses. */
static int db_best_entry(tuner *T) {
  tune_record r;
  bool found = false;
  char *err = NULL;
  if (tune_db_best(T->db, &T->key, &r, &found, &err) != 0 || !found) {
    free(err);
    return -1;
  }
  int at = -1;
  for (int i = 0; i < T->nhist && at < 0; i++)
    if (T->hist[i].st == TUNE_OK && strcmp(T->hist[i].c->text, r.schedule) == 0)
      at = i;
  if (at < 0) {
    tune_cand *c = tune_space_parse(&T->sp, r.schedule, TUNE_ORIGIN_DB);
    if (c)
      at = hist_push(T, (entry){c, TUNE_OK, r.gflops, r.ms});
  }
  tune_record_release(&r);
  return at;
}

/* Measure the default and this run's best few again, in interleaved rounds: single
 * measurements on a shared machine scatter by several percent both ways, so each finalist is
 * judged by the median of its measurements in this run. The database's best from earlier runs
 * joins them, measured as often in this run (its own records come from other times, under
 * other loads). A finalist that fails one of them is out (the database does not count it as
 * confirmed either). The winner is recorded as the database's best (tune_db_prefer): it beat
 * the best before it in the same conditions. */
static void confirm(tuner *T) {
  int ids[CONFIRM_TOP + 2], n = 1 + run_top(T, ids + 1, CONFIRM_TOP);
  ids[0] = T->def;
  if (n < 2 || T->def < 0 || T->hist[T->def].st != TUNE_OK || stop_requested(T))
    return;
  int prev = db_best_entry(T);
  for (int i = 0; i < n && prev >= 0; i++)
    if (ids[i] == prev)
      prev = -1;
  if (prev >= 0)
    ids[n++] = prev;
  double g[CONFIRM_TOP + 2][CONFIRM_ROUNDS + 2], med[CONFIRM_TOP + 2];
  int cnt[CONFIRM_TOP + 2];
  bool failed[CONFIRM_TOP + 2] = {false};
  for (int i = 0; i < n; i++) { /* the search's measurement; one more of the earlier best */
    cnt[i] = 0;
    if (ids[i] != prev) {
      g[i][cnt[i]++] = T->hist[ids[i]].gflops;
      continue;
    }
    tune_measurement m;
    tune_measure(&T->w, T->hist[prev].c->text, &m);
    if (m.status == TUNE_STOPPED || !record(T, T->hist[prev].c, &m, TUNE_CONFIRM_STRATEGY))
      return;
    if (m.status == TUNE_OK)
      g[i][cnt[i]++] = m.gflops;
    else
      failed[i] = true;
  }
  for (int round = 0; round < CONFIRM_ROUNDS && !stop_requested(T); round++)
    for (int i = 0; i < n && !stop_requested(T); i++) {
      const tune_cand *c = T->hist[ids[i]].c;
      tune_measurement m;
      tune_measure(&T->w, c->text, &m);
      if (m.status == TUNE_STOPPED || !record(T, c, &m, TUNE_CONFIRM_STRATEGY))
        return;
      if (m.status == TUNE_OK)
        g[i][cnt[i]++] = m.gflops;
      else
        failed[i] = true;
    }
  int best = -1; /* the default stays the best unless a finalist beats it */
  for (int i = 0; i < n; i++) {
    med[i] = cnt[i] ? median(g[i], cnt[i]) : 0;
    if (!failed[i] && (best < 0 || med[i] > med[best]))
      best = i;
  }
  if (best < 0)
    return;
  T->res->confirm_default = failed[0] ? 0 : med[0];
  T->res->confirm_best = med[best];
  T->confirmed = ids[best];
  /* the database takes this winner (also on a tie of medians: found by CI, two finalists of a
   * 64^3 matmul with equal medians, and the database took the other one) */
  char *err = NULL;
  if (tune_db_prefer(T->db, &T->key, T->hist[ids[best]].c->text, &err) != 0)
    note(T, "%s", err);
  free(err);
}

/* ---- the run ---------------------------------------------------------------------------------------------- */

static void finish(tuner *T) {
  tune_result *res = T->res;
  int b = T->confirmed >= 0 ? T->confirmed : run_best(T);
  if (b >= 0) {
    res->best_schedule = strdup(T->hist[b].c->text);
    res->best_gflops = T->hist[b].gflops;
    res->confirmed = T->confirmed >= 0;
  }
  int fastest = run_best(T);
  res->fastest_gflops = fastest >= 0 ? T->hist[fastest].gflops : 0;
  tune_record r;
  bool found = false;
  char *err = NULL;
  if (tune_db_best(T->db, &T->key, &r, &found, &err) == 0 && found) {
    res->db_best_schedule = strdup(r.schedule);
    res->db_best_gflops = r.gflops;
    res->db_best_record = r.id;
    res->db_best_measurements = r.measurements;
    res->db_best_confirmed = r.confirmed;
  }
  free(err);
  if (found)
    tune_record_release(&r);
  res->seconds = elapsed(T);
}

static void run(tuner *T) {
  load_db(T);
  if (T->stop || !measure_default(T))
    return;
  if (T->cfg->seconds > 0 && T->cfg->strategy != TUNE_MODEL_REPORT)
    T->reserve = (CONFIRM_ROUNDS * (CONFIRM_TOP + 2) + 1) * T->measure_seconds;
  switch (T->cfg->strategy) {
  case TUNE_EXHAUSTIVE: run_exhaustive(T); break;
  case TUNE_RANDOM: run_random(T); break;
  case TUNE_EVOLUTIONARY: {
    pool none = {0};
    run_evolutionary(T, &none);
    break;
  }
  case TUNE_MODEL_REPORT: model_report(T); break;
  default: run_auto(T); break;
  }
  if (T->cfg->strategy != TUNE_MODEL_REPORT && !T->err)
    confirm(T);
}

int tune_run(const tune_config *cfg, const ir_kernel *k, isl_ctx *ctx, tune_result *res,
             char **err) {
  *res = (tune_result){.spearman = NAN, .spearman_near = NAN};
  *err = NULL;
  cg_target t;
  char *terr = NULL;
  if (cg_target_init(&t, NULL, &terr) != 0) {
    *err = terr;
    return -1;
  }
  tuner T = {.cfg = cfg, .res = res, .w = cfg->worker, .t0 = now(), .best = -1, .def = -1,
             .confirmed = -1};
  T.w.stop = cfg->stop;
  T.w.timeout = cfg->timeout > 0 ? cfg->timeout : 60;
  T.db = tune_db_open(cfg->db_path, true, err);
  if (!T.db) {
    cg_target_release(&t);
    return -1;
  }
  tune_machine m;
  tune_machine_host(&m, &t);
  tune_key_init(&T.key, k, &t, cfg->worker.threads);
  tune_space_init(&T.sp, k, ctx, &m, cfg->worker.threads, cfg->seed);
  run(&T);
  finish(&T);
  for (int i = 0; i < T.nhist; i++)
    tune_cand_free(T.hist[i].c);
  free(T.hist);
  tune_space_release(&T.sp);
  tune_key_release(&T.key);
  tune_db_close(T.db);
  cg_target_release(&t);
  if (T.err) {
    *err = T.err;
    return -1;
  }
  return 0;
}

void tune_result_release(tune_result *res) {
  free(res->default_schedule);
  free(res->best_schedule);
  free(res->db_best_schedule);
  *res = (tune_result){0};
}
