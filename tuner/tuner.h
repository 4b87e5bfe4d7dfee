/*
 * tuner: schedule search for one kernel, ranked by an analytic cost model, measured in a worker
 * process, recorded in a SQLite tuning database.
 *
 * - machine.c: what the cost model knows of the machine (cache sizes from sysfs, else sysconf,
 *              else defaults; vector length and core count) and the key of a tuning record
 *              (normalized kernel text + sizes, target triple, CPU name and features, threads,
 *              schedule-format version).
 * - cost.c:    the analytic cost model (cycles of a lowered kernel: microkernel efficiency from
 *              its register blocking and K/batch length, cache traffic per level of the tile
 *              working set, parallel balance) and Spearman's rank correlation.
 * - space.c:   candidates: the default, random samples and the enumeration of the scheduler's
 *              space (scheduler/space.c), mutation and crossover; each one lowered and costed,
 *              and checked for legality before it is measured.
 * - measure.c: one measurement in a worker process (the `brick` binary, `brick __measure`),
 *              killed at the per-candidate time limit.
 * - db.c:      the tuning database (schema version, migrations, WAL, one transaction per record).
 * - search.c:  the strategies (exhaustive, random, evolutionary, and the model report) and the
 *              tuning loop with its budget, progress events and stop flag.
 */
#ifndef BRICK_TUNER_H
#define BRICK_TUNER_H

#include "codegen.h"

#include <signal.h>

/* ---- machine.c --------------------------------------------------------------------------- */

typedef struct tune_machine {
  int64_t cache[3]; /* L1 data, L2, L3 bytes (per core for L1/L2, the shared L3) */
  int ways[3];      /* their associativity */
  int vlen;         /* floats per vector register of the BRGEMM ISA */
  int nregs;        /* vector registers */
  int opmask;       /* 1: mask registers (AVX-512) */
  int cores;        /* online CPUs */
} tune_machine;

/* The host as the cost model sees it for target "t": caches from
 * /sys/devices/system/cpu/cpu0/cache/index* (else sysconf, else 48K/1M/32M). */
void tune_machine_host(tune_machine *m, const cg_target *t);

/* The key of a tuning record. */
typedef struct tune_key {
  char *kernel;      /* the kernel's name (shown, not part of the key) */
  char *text;        /* normalized kernel text with every size substituted */
  char *target;      /* target triple */
  char *cpu;         /* CPU name (LLVM's, e.g. znver4) */
  char *features;    /* CPU features (LLVM's +x,-y list) */
  int threads;       /* as given to the compiler: 0 = OMP_NUM_THREADS at run time */
  int format;        /* sched_format_version() */
} tune_key;

/* The key of kernel "k" compiled for target "t" with "threads". */
void tune_key_init(tune_key *key, const ir_kernel *k, const cg_target *t, int threads);
void tune_key_release(tune_key *key);
/* The normalized text of "k" (malloc'ed): parameters with their dims, locals, statements with
 * their iterator ranges; sizes substituted, comments and spacing gone, the kernel name left out. */
char *tune_kernel_text(const ir_kernel *k);

/* ---- cost.c ---------------------------------------------------------------------------------- */

/* The cost model's view of one lowered kernel, in core cycles (only ranks matter). */
typedef struct tune_cost {
  double total;      /* estimated cycles of one call, wall time */
  double compute;    /* microkernel and loop-nest cycles, serial */
  double memory;     /* cycles of cache traffic, serial */
  double overhead;   /* packs, fills, copies, parallel fork/join */
  double ukernel_eff;/* flop-weighted microkernel efficiency (0..1) */
  double balance;    /* flop-weighted parallel balance (0..1), 1 when serial */
} tune_cost;

/* Estimate kernel "sk" on machine "m" with "threads" (0: m->cores). */
void tune_cost_kernel(const sched_kernel *sk, const tune_machine *m, int threads,
                      tune_cost *out);
/* Efficiency (0..1) of one BRGEMM call of "M" x "N" x "K" with "batch" on machine "m": the
 * register blocking's use of the FMA pipes, amortised over the call's fixed costs. */
double tune_ukernel_efficiency(const tune_machine *m, int64_t M, int64_t N, int64_t K,
                               int64_t batch);
/* Spearman's rank correlation of "x" and "y" (n pairs, ties averaged); NAN if n < 3. */
double tune_spearman(const double *x, const double *y, int n);

/* ---- space.c ------------------------------------------------------------------------------------ */

/* The search space of one kernel. */
typedef struct tune_space {
  const ir_kernel *k;
  isl_ctx *ctx;
  tune_machine machine;
  sched_target target; /* the machine as the default heuristic sees it */
  int threads;
  uint64_t rng;
  uint64_t *seen;        /* hash set of the texts handed out or measured (0 = empty slot) */
  size_t nseen, capseen;
} tune_space;

/* A candidate: a complete schedule, its canonical text and its modelled cost. */
typedef struct tune_cand {
  sched_schedule *s;
  char *text;
  tune_cost cost;
  int origin;        /* TUNE_ORIGIN_* */
} tune_cand;

enum { TUNE_ORIGIN_DEFAULT, TUNE_ORIGIN_ENUM, TUNE_ORIGIN_RANDOM, TUNE_ORIGIN_MUTATION,
       TUNE_ORIGIN_CROSSOVER, TUNE_ORIGIN_DB };

void tune_space_init(tune_space *sp, const ir_kernel *k, isl_ctx *ctx, const tune_machine *m,
                     int threads, uint64_t seed);
void tune_space_release(tune_space *sp);
void tune_cand_free(BK_TAKE tune_cand *c);

/* Lower "s" (taken) and cost it: a candidate, or NULL when it does not lower or does not print
 * back to itself. "fresh": also NULL if its text was seen before (else it is marked seen). */
tune_cand *tune_space_make(tune_space *sp, BK_TAKE sched_schedule *s, int origin, bool fresh);
/* Does "c" pass the legality check (isl dataflow; some milliseconds)? */
bool tune_space_check(tune_space *sp, const tune_cand *c);
/* Drop the schedule of "c" (pools keep text and cost; the schedule is parsed again if needed). */
void tune_cand_shrink(tune_cand *c);
/* Parse the schedule of a shrunk "c" again; false if it no longer parses. */
bool tune_cand_restore(tune_space *sp, tune_cand *c);
/* The candidate of the text "text" (a stored record), or NULL if it no longer lowers. */
tune_cand *tune_space_parse(tune_space *sp, const char *text, int origin);
/* Mark "text" as seen (already measured). */
void tune_space_mark_seen(tune_space *sp, const char *text);
bool tune_space_is_seen(const tune_space *sp, const char *text);

/* The default heuristic's schedule. */
tune_cand *tune_space_default(tune_space *sp);
/* A fresh random legal candidate (NULL after "tries" misses). */
tune_cand *tune_space_random(tune_space *sp, int tries);
/* The pruned space of every statement (scheduler's enumeration), as fresh candidates through
 * "visit" (return false to stop); statements beyond the first contraction keep their default
 * when the product would exceed "cap". Returns the number of schedules in the product. */
int64_t tune_space_enumerate(tune_space *sp, int64_t cap,
                             bool (*visit)(void *user, tune_cand *c), void *user);
/* A fresh mutation of "parent" (one change: a tile, two loops, the batch, the parallel loop,
 * flatten, or a new sample of one statement), or NULL after "tries" misses. */
tune_cand *tune_space_mutate(tune_space *sp, const tune_cand *parent, int tries);
/* A fresh child of "a" and "b" (tiles of one with the loops of the other, or statements of
 * each), or NULL after "tries" misses. */
tune_cand *tune_space_crossover(tune_space *sp, const tune_cand *a, const tune_cand *b, int tries);

/* ---- measure.c ------------------------------------------------------------------------------ */

typedef enum tune_status {
  TUNE_OK,       /* checked and timed */
  TUNE_WRONG,    /* differs from the reference interpreter */
  TUNE_INVALID,  /* the worker rejected the schedule */
  TUNE_CRASH,    /* the worker died of a signal */
  TUNE_TIMEOUT,  /* killed at the time limit */
  TUNE_ERROR,    /* anything else (cannot start, bad output) */
  TUNE_STOPPED,  /* the stop flag was raised while measuring: not a result */
} tune_status;

const char *tune_status_name(tune_status st);
/* The status called "name", or -1. */
int tune_status_from_name(const char *name);

/* How a worker is started. */
typedef struct tune_worker {
  const char *binary;       /* the brick executable */
  int source_fd;            /* a readable file holding the program text (seekable) */
  const char *kernel;
  const char *const *defines; /* "NAME=VALUE" */
  int ndefines;
  int threads;
  double timeout;           /* seconds before SIGKILL */
  double repeat_seconds;    /* timing budget inside the worker */
  double slow_ms;           /* a warm call slower than this is timed once, not repeated (0: off) */
  const volatile sig_atomic_t *stop;
} tune_worker;

typedef struct tune_measurement {
  tune_status status;
  double ms, gflops, err, seconds; /* median time of one call; wall time of the worker */
  char message[512];               /* the worker's last error line, or why it failed */
} tune_measurement;

/* Measure schedule "schedule" in a new worker process. */
void tune_measure(const tune_worker *w, const char *schedule, tune_measurement *out);

/* ---- db.c ---------------------------------------------------------------------------------------- */

#define TUNE_DB_VERSION 2

typedef struct tune_db tune_db;

/* A recorded measurement. */
typedef struct tune_record {
  int64_t id;
  char *schedule;
  tune_status status;
  double gflops, ms, model;
  char *strategy, *message, *created, *version;
  int measurements;   /* tune_db_best: the 'ok' records of its schedule */
  bool confirmed;     /* tune_db_best: a final round confirmed its schedule */
} tune_record;

/* The strategy of the records a tuner's final round adds: it confirms the schedules measured. */
#define TUNE_CONFIRM_STRATEGY "confirm"

/* Open (and with "create", create or migrate) the tuning database at "path". NULL with a
 * message in *err (malloc'ed, without the "brick: error: " prefix) when it cannot be opened,
 * is not a brick tuning database, is corrupt or comes from a newer brick. */
tune_db *tune_db_open(const char *path, bool create, char **err);
void tune_db_close(BK_TAKE tune_db *db);
/* The schema version of the open database. */
int tune_db_version(tune_db *db);
/* The SQL that takes the schema from version "to" - 1 to "to" (1 <= to <= TUNE_DB_VERSION). */
const char *tune_db_migration(int to);
/* $XDG_CACHE_HOME/brick/tune.db, else $HOME/.cache/brick/tune.db (malloc'ed). */
char *tune_db_default_path(void);
/* Create the directories above "path" that are missing. */
int tune_db_make_dirs(const char *path, char **err);

/* Record one measurement under "key" in one transaction; the best per key follows: never a
 * schedule once recorded wrong; a schedule confirmed by a final round (a record of strategy
 * TUNE_CONFIRM_STRATEGY, none of them failed) over any that was not; then the greatest median
 * GFLOP/s over the schedule's 'ok' records (then the least median time). */
int tune_db_record(tune_db *db, const tune_key *key, const tune_record *r, int64_t *id,
                   char **err);
/* Record "schedule" as the winner of a tuner's final round for "key" and recompute the best:
 * while that schedule stays confirmed and never wrong it is the best, whatever the medians of
 * records from other runs (the round measured the database's best before it beside it, in the
 * same conditions; medians from runs at other times, under other loads, are not comparable);
 * otherwise it wins a tie (timings of a kernel of a few microseconds come in steps, so two
 * finalists can have equal medians). The summary names it as what compile --db uses. */
int tune_db_prefer(tune_db *db, const tune_key *key, const char *schedule, char **err);
/* The best record of "key" into *r (strings malloc'ed; its measurements and confirmed set);
 * *found false when there is none. */
int tune_db_best(tune_db *db, const tune_key *key, tune_record *r, bool *found, char **err);
/* Every record of "key", oldest first, through "fn" (return false to stop). */
int tune_db_each(tune_db *db, const tune_key *key, bool (*fn)(void *user, const tune_record *r),
                 void *user, char **err);
/* A summary of the database: per key, its kernel, target, CPU, threads, counts and best. */
int tune_db_list(tune_db *db, FILE *out, bool verbose, char **err);
void tune_record_release(tune_record *r);
/* "median of N measurements, confirmed" or "1 measurement, not confirmed", into "buf". */
const char *tune_standing_text(char *buf, size_t size, int measurements, bool confirmed);

/* ---- search.c ------------------------------------------------------------------------------------ */

typedef enum tune_strategy {
  TUNE_AUTO,         /* exhaustive when the pruned space is small, else evolutionary */
  TUNE_EXHAUSTIVE,   /* the pruned space, best modelled first */
  TUNE_RANDOM,       /* random samples, best modelled first */
  TUNE_EVOLUTIONARY, /* mutation and crossover of the best measured, children ranked by the model */
  TUNE_MODEL_REPORT, /* random samples measured in random order; Spearman of model vs time */
} tune_strategy;

const char *tune_strategy_name(tune_strategy s);

/* One finished measurement, for progress display. */
typedef struct tune_event {
  int done, total;           /* measurements so far; budget (0: none) */
  double elapsed, eta;       /* seconds; eta < 0 when unknown */
  const char *schedule;
  tune_status status;
  double gflops, ms, model;  /* model: modelled cycles */
  double best_gflops, default_gflops;
  const char *message;
  const char *note;          /* a line of news ("space: 1234 schedules"), else NULL */
} tune_event;

typedef struct tune_config {
  const char *db_path;
  tune_strategy strategy;
  int trials;                /* measurements at most (0: no limit) */
  double seconds;            /* wall-clock budget (0: none) */
  double timeout;            /* per-candidate limit (0: automatic) */
  uint64_t seed;
  tune_worker worker;        /* binary, source, kernel, defines, threads */
  const char *version;       /* brick's version, stored with each record */
  const char *default_schedule; /* the compiler's default for this kernel (NULL: the heuristic's) */
  const volatile sig_atomic_t *stop;
  void (*progress)(void *user, const tune_event *ev);
  void *user;
} tune_config;

typedef struct tune_result {
  int measured, failed;
  bool interrupted;
  double seconds;
  char *default_schedule, *best_schedule; /* this run's */
  double default_gflops, best_gflops;     /* as measured during the search */
  double confirm_default, confirm_best;   /* measured again at the end (0: not done) */
  int64_t space;                          /* schedules in the pool the strategy drew from */
  double spearman, spearman_near;         /* model report: all, and those within 4x of the best */
  int spearman_n, spearman_near_n;
  double fastest_gflops;                  /* this run's fastest single measurement */
  bool confirmed;                         /* best_schedule won this run's final round */
  char *db_best_schedule;                 /* the database's best for the key after the run: */
  double db_best_gflops;                  /* what compile --db uses */
  int64_t db_best_record;
  int db_best_measurements;
  bool db_best_confirmed;
} tune_result;

/* Tune kernel "k" (checked, with isl context "ctx") for the host with "cfg". Returns 0, or -1
 * with *err (malloc'ed) when the database or the worker cannot be used at all. */
int tune_run(const tune_config *cfg, const ir_kernel *k, isl_ctx *ctx, tune_result *res,
             char **err);
void tune_result_release(tune_result *res);

#endif
