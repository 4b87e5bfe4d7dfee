/*
 * The tuning half of the public API: tuning a kernel (brick_tune, over tuner/), reading the
 * tuning database (the best record of a kernel, a listing), and the hook through which
 * brick_compile and friends take a kernel's schedule from the database named in the options.
 *
 * A record applies to a kernel when the key matches: the kernel's normalized text with its
 * sizes, the target triple, CPU and features the options compile for, the thread count and
 * the schedule format. A record whose schedule no longer lowers (the scheduler changed under
 * the same format version) is skipped with a warning, never an error.
 */
#include "api_private.h"
#include "tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct brick_tune_options {
  char *db, *worker;
  tune_strategy strategy;
  int trials;
  double seconds, timeout;
  uint64_t seed;
  const volatile sig_atomic_t *stop;
  brick_tune_progress_fn *progress;
  void *user;
};

static void discard(void *user, bk_severity sev, const char *text) {}

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = v ? strdup(v) : NULL;
}

void brick_options_set_db(brick_options *opts, const char *path) { set_str(&opts->db, path); }

char *brick_tune_default_db(void) { return tune_db_default_path(); }

/* ---- reading the database ------------------------------------------------------------------ */

/* The target the options compile for, into "t". */
static int options_target(brick_ctx *ctx, const brick_options *opts, cg_target *t) {
  char *err = NULL;
  if (cg_target_init(t, opts ? opts->target : NULL, &err) == 0)
    return BRICK_OK;
  int st = brick_fail(ctx, BRICK_ERR_USAGE, "%s", err);
  free(err);
  return st;
}

/* The best record of "k" in "path" for "opts" into *r (*found). */
static int db_best(brick_ctx *ctx, const ir_kernel *k, const brick_options *opts,
                   const char *path, tune_record *r, bool *found) {
  cg_target t;
  int st = options_target(ctx, opts, &t);
  if (st != BRICK_OK)
    return st;
  char *err = NULL;
  tune_db *db = tune_db_open(path, false, &err);
  if (db) {
    tune_key key;
    tune_key_init(&key, k, &t, opts ? opts->threads : 0);
    tune_db_best(db, &key, r, found, &err);
    tune_key_release(&key);
    tune_db_close(db);
  }
  cg_target_release(&t);
  if (err) {
    st = brick_fail(ctx, BRICK_ERR_IO, "%s", err);
    free(err);
  }
  return st;
}

static char *describe(const tune_record *r, const char *path) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  char standing[64];
  bk_strbuf_printf(&sb, "record %lld of %s: %.2f GFLOP/s (%.4g ms; %s), measured %s UTC by %s",
                   (long long)r->id, path, r->gflops, r->ms,
                   tune_standing_text(standing, sizeof standing, r->measurements, r->confirmed),
                   r->created ? r->created : "?", r->strategy ? r->strategy : "?");
  return bk_strbuf_take(&sb);
}

int brick_db_lookup(brick_ctx *ctx, const brick_program *prog, int kernel,
                    const brick_options *opts, const char *path, char **schedule, char **record) {
  brick_begin(ctx);
  *schedule = NULL;
  if (record)
    *record = NULL;
  if (brick_check_kernel(ctx, prog, kernel, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  tune_record r;
  bool found = false;
  int st = db_best(ctx, prog->ir->kernels.data[kernel], opts, path, &r, &found);
  if (st != BRICK_OK || !found)
    return st;
  *schedule = strdup(r.schedule);
  if (record)
    *record = describe(&r, path);
  tune_record_release(&r);
  return BRICK_OK;
}

int brick_db_list(brick_ctx *ctx, const char *path, int verbose, FILE *out) {
  brick_begin(ctx);
  char *err = NULL;
  tune_db *db = tune_db_open(path, false, &err);
  if (db)
    tune_db_list(db, out, verbose != 0, &err);
  tune_db_close(db);
  if (!err)
    return BRICK_OK;
  int st = brick_fail(ctx, BRICK_ERR_IO, "%s", err);
  free(err);
  return st;
}

/* Does "text" lower and pass the legality check for "k"? */
static bool schedule_applies(const ir_kernel *k, isl_ctx *ictx, const char *text, int threads) {
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  bk_source *src = bk_source_new("<schedule>", text, strlen(text));
  sched_schedule *given = sched_schedule_parse(k, src, &diag);
  sched_schedule *s = given ? sched_complete(k, given, threads) : NULL;
  sched_kernel *sk = s ? sched_lower(k, s, ictx, &diag) : NULL;
  bool ok = sk && sched_check_legality(sk, ictx, &diag);
  sched_kernel_free(sk);
  sched_schedule_free(s);
  sched_schedule_free(given);
  bk_source_free(src);
  return ok;
}

int brick_schedule_text(brick_ctx *ctx, const ir_kernel *k, isl_ctx *ictx,
                        const brick_options *opts, const char **text, char **owned) {
  *text = opts ? opts->schedule : NULL;
  *owned = NULL;
  /* a schedule of parts with none for "k": the database's record for it, as for a kernel
   * without a schedule (else the default) */
  if (*text && opts->db && sched_text_names_kernels(*text) && !sched_text_has_part(*text, k->name))
    *text = NULL;
  if (*text || !opts || !opts->db)
    return BRICK_OK;
  tune_record r;
  bool found = false;
  int st = db_best(ctx, k, opts, opts->db, &r, &found);
  if (st != BRICK_OK || !found)
    return st;
  if (schedule_applies(k, ictx, r.schedule, opts->threads)) {
    *text = *owned = strdup(r.schedule);
  } else {
    bk_strbuf msg;
    bk_strbuf_init(&msg);
    bk_strbuf_printf(&msg, "brick: warning: ignoring record %lld of %s for kernel %s: its "
                     "schedule no longer applies; using the default\n", (long long)r.id,
                     opts->db, k->name);
    brick_diag_sink(ctx, BK_SEV_WARNING, bk_strbuf_cstr(&msg));
    bk_strbuf_release(&msg);
  }
  tune_record_release(&r);
  return BRICK_OK;
}

/* ---- tuning options ----------------------------------------------------------------------- */

brick_tune_options *brick_tune_options_new(void) {
  brick_tune_options *t = calloc(1, sizeof(*t));
  if (t)
    t->seed = 1;
  return t;
}

void brick_tune_options_free(brick_tune_options *t) {
  if (!t)
    return;
  free(t->db);
  free(t->worker);
  free(t);
}

void brick_tune_options_set_db(brick_tune_options *t, const char *path) { set_str(&t->db, path); }
void brick_tune_options_set_worker(brick_tune_options *t, const char *path) {
  set_str(&t->worker, path);
}
void brick_tune_options_set_trials(brick_tune_options *t, int trials) { t->trials = trials; }
void brick_tune_options_set_seconds(brick_tune_options *t, double s) { t->seconds = s; }
void brick_tune_options_set_timeout(brick_tune_options *t, double s) { t->timeout = s; }
void brick_tune_options_set_seed(brick_tune_options *t, uint64_t seed) { t->seed = seed; }
void brick_tune_options_set_stop_flag(brick_tune_options *t, const volatile sig_atomic_t *flag) {
  t->stop = flag;
}
void brick_tune_options_set_progress(brick_tune_options *t, brick_tune_progress_fn *fn,
                                     void *user) {
  t->progress = fn;
  t->user = user;
}

int brick_tune_options_set_strategy(brick_tune_options *t, const char *name) {
  for (int s = TUNE_AUTO; s <= TUNE_MODEL_REPORT; s++)
    if (strcmp(name, tune_strategy_name((tune_strategy)s)) == 0) {
      t->strategy = (tune_strategy)s;
      return BRICK_OK;
    }
  return BRICK_ERR_USAGE;
}

/* ---- tuning ---------------------------------------------------------------------------------- */

typedef struct relay {
  const brick_tune_options *t;
} relay;

static void relay_event(void *user, const tune_event *ev) {
  const relay *r = user;
  brick_tune_event e = {
      .done = ev->done, .total = ev->total, .elapsed = ev->elapsed, .eta = ev->eta,
      .schedule = ev->schedule, .status = ev->schedule ? tune_status_name(ev->status) : NULL,
      .gflops = ev->gflops, .ms = ev->ms, .model = ev->model, .best_gflops = ev->best_gflops,
      .default_gflops = ev->default_gflops, .message = ev->message, .note = ev->note};
  r->t->progress(r->t->user, &e);
}

/* The program text as an unlinked temporary file for the workers (descriptor 3 there). */
static FILE *source_file(brick_ctx *ctx, const brick_program *prog) {
  FILE *f = tmpfile();
  if (f && fwrite(prog->src->text, 1, prog->src->len, f) == prog->src->len && fflush(f) == 0)
    return f;
  if (f)
    fclose(f);
  brick_fail(ctx, BRICK_ERR_IO, "cannot write a temporary copy of %s for the workers",
             prog->src->name);
  return NULL;
}

static void copy_result(const tune_result *in, const char *db, brick_tune_result *out) {
  *out = (brick_tune_result){
      .measured = in->measured, .failed = in->failed, .interrupted = in->interrupted,
      .seconds = in->seconds, .default_gflops = in->default_gflops,
      .best_gflops = in->best_gflops, .confirm_default = in->confirm_default,
      .confirm_best = in->confirm_best, .space = in->space, .spearman = in->spearman,
      .spearman_n = in->spearman_n, .spearman_near = in->spearman_near,
      .spearman_near_n = in->spearman_near_n, .db_best_gflops = in->db_best_gflops,
      .db_best_record = in->db_best_record, .fastest_gflops = in->fastest_gflops,
      .confirmed = in->confirmed, .db_best_measurements = in->db_best_measurements,
      .db_best_confirmed = in->db_best_confirmed};
  out->default_schedule = in->default_schedule ? strdup(in->default_schedule) : NULL;
  out->best_schedule = in->best_schedule ? strdup(in->best_schedule) : NULL;
  out->db_best_schedule = in->db_best_schedule ? strdup(in->db_best_schedule) : NULL;
  out->db = strdup(db);
}

/* "NAME=VALUE" strings of the options' -D (in "store", freed by the caller). */
static char **define_strings(const brick_options *opts) {
  char **d = calloc((size_t)opts->ndefines + 1, sizeof(char *));
  for (int i = 0; i < opts->ndefines; i++) {
    bk_strbuf sb;
    bk_strbuf_init(&sb);
    bk_strbuf_printf(&sb, "%s=%lld", opts->defines[i].name, (long long)opts->defines[i].value);
    d[i] = bk_strbuf_take(&sb);
  }
  return d;
}

int brick_tune(brick_ctx *ctx, const brick_program *prog, int kernel, const brick_options *opts,
               const brick_tune_options *t, brick_tune_result *result) {
  brick_begin(ctx);
  *result = (brick_tune_result){.spearman = NAN, .spearman_near = NAN};
  if (brick_check_kernel(ctx, prog, kernel, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  if (!t->worker)
    return brick_fail(ctx, BRICK_ERR_USAGE, "brick_tune needs a worker (the brick executable)");
  if (opts && opts->target && strcmp(opts->target, "native") != 0)
    return brick_fail(ctx, BRICK_ERR_USAGE, "brick tune measures on this machine: a --target "
                      "other than native cannot be tuned here");
  if (opts && opts->schedule)
    return brick_fail(ctx, BRICK_ERR_USAGE, "brick tune searches the schedule: --schedule "
                      "cannot be given");
  const ir_kernel *k = prog->ir->kernels.data[kernel];
  char *db = t->db ? strdup(t->db) : tune_db_default_path(), *err = NULL;
  if (!t->db && tune_db_make_dirs(db, &err) != 0) {
    int st = brick_fail(ctx, BRICK_ERR_IO, "%s", err);
    free(err);
    free(db);
    return st;
  }
  FILE *src = source_file(ctx, prog);
  if (!src) {
    free(db);
    return BRICK_ERR_IO;
  }
  brick_options none = {.threads = opts ? opts->threads : 0, .target = opts ? opts->target : NULL};
  char *def = NULL;
  int st = brick_kernel_schedule(ctx, prog, kernel, &none, &def);
  char **defines = opts ? define_strings(opts) : calloc(1, sizeof(char *));
  relay r = {t};
  tune_config cfg = {
      .db_path = db, .strategy = t->strategy, .trials = t->trials, .seconds = t->seconds,
      .timeout = t->timeout, .seed = t->seed, .stop = t->stop,
      .progress = t->progress ? relay_event : NULL, .user = &r, .version = BRICK_VERSION_STRING,
      .default_schedule = def,
      .worker = {.binary = t->worker, .source_fd = fileno(src), .kernel = k->name,
                 .defines = (const char *const *)defines, .ndefines = opts ? opts->ndefines : 0,
                 .threads = opts ? opts->threads : 0}};
  tune_result res;
  bool ran = st == BRICK_OK;
  if (ran && tune_run(&cfg, k, prog->ir->isl, &res, &err) != 0) {
    st = brick_fail(ctx, BRICK_ERR_IO, "%s", err);
    free(err);
  }
  if (st == BRICK_OK)
    copy_result(&res, db, result);
  if (ran)
    tune_result_release(&res);
  for (int i = 0; opts && i < opts->ndefines; i++)
    free(defines[i]);
  free(defines);
  free(def);
  fclose(src);
  free(db);
  return st;
}

void brick_tune_result_release(brick_tune_result *r) {
  free(r->default_schedule);
  free(r->best_schedule);
  free(r->db_best_schedule);
  free(r->db);
  *r = (brick_tune_result){0};
}
