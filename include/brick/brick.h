/*
 * brick: a tensor compiler backend. Public C API (library libbrick).
 *
 * A context (brick_ctx) carries the diagnostics and the last error; programs, options and
 * modules are separate objects, each freed by its own function (freeing a context frees none of
 * them, and a program may be used with another context than the one that parsed it). Nothing
 * is shared between contexts but LLVM's target registry, initialised once behind a lock, so
 * separate contexts may be used from separate threads. Functions that take a context return
 * BRICK_OK (0) or a negative brick_status, with the message in brick_ctx_last_error();
 * diagnostics about the input (gcc style, with the source line and a caret) go to the
 * context's callback, by default to stderr. A kernel index out of range is BRICK_ERR_USAGE
 * where a context is given; the accessors without one (brick_kernel_name, ...) need a valid
 * index.
 *
 *   brick_ctx *ctx = brick_ctx_new();
 *   brick_program *prog;
 *   if (brick_program_parse_file(ctx, "conv.bk", NULL, &prog) == BRICK_OK) {
 *     int k = brick_program_find_kernel(prog, "conv");
 *     ...
 *     brick_program_free(prog);
 *   }
 *   brick_ctx_free(ctx);
 */
#ifndef BRICK_BRICK_H
#define BRICK_BRICK_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BRICK_BUILDING_LIBRARY)
#define BRICK_API __attribute__((visibility("default")))
#else
#define BRICK_API
#endif

#define BRICK_VERSION_STRING "0.1.0"

typedef enum brick_status {
  BRICK_OK = 0,
  BRICK_ERR_INPUT = -1,    /* errors in the source (reported as diagnostics) */
  BRICK_ERR_USAGE = -2,    /* bad options or calls: -D of an undeclared size, bad target, a
                              kernel index out of range, a symbol the module lacks, ... (a -D
                              that makes a dimension < 1 is an error of the source, INPUT) */
  BRICK_ERR_IO = -3,       /* a file cannot be read or written */
  BRICK_ERR_CHECK = -4,    /* a result failed its check (the brick tool's exit status 3;
                              brick_kernel_check reports the error and leaves the verdict to
                              the caller) */
  BRICK_ERR_INTERNAL = -5, /* a bug in brick; please report it */
} brick_status;

typedef enum brick_severity { BRICK_NOTE, BRICK_WARNING, BRICK_ERROR } brick_severity;

typedef struct brick_ctx brick_ctx;
typedef struct brick_options brick_options;
typedef struct brick_program brick_program;

/* Receives each diagnostic as formatted text (one or more lines ending in '\n'). */
typedef void brick_diag_fn(void *user, brick_severity severity, const char *text);

BRICK_API const char *brick_version(void);

/* ---- context ------------------------------------------------------------------------ */

BRICK_API brick_ctx *brick_ctx_new(void);
BRICK_API void brick_ctx_free(brick_ctx *ctx);
/* Send diagnostics to "fn" (NULL: back to stderr). */
BRICK_API void brick_ctx_set_diag_callback(brick_ctx *ctx, brick_diag_fn *fn, void *user);
/* The message of the last call's failure (its first error), or "" after a success (valid
 * until the next call on "ctx"): a sentence, or for an error reported as a diagnostic the
 * diagnostic's text as the callback got it ("file:line:col: error: ..." with the source line
 * and caret, or "brick: error: ..." when it has no place in a file), ending in '\n'. */
BRICK_API const char *brick_ctx_last_error(const brick_ctx *ctx);
/* The brick_status of the last call's failure, BRICK_OK after a success, for the calls that
 * return a pointer rather than a status: brick_module_lookup's NULL is BRICK_ERR_USAGE for a
 * name the module lacks or a module this process cannot run (another target), else
 * BRICK_ERR_INTERNAL (the JIT failed). */
BRICK_API int brick_ctx_last_status(const brick_ctx *ctx);

/* ---- options -------------------------------------------------------------------------- */

BRICK_API brick_options *brick_options_new(void);
BRICK_API void brick_options_free(brick_options *opts);
/* Override "size NAME" with "value" (-D NAME=VALUE). */
BRICK_API void brick_options_define(brick_options *opts, const char *name, int64_t value);
/* "native" (default), "x86-64-v3", "x86-64-v4" or "TRIPLE[:CPU]". */
BRICK_API void brick_options_set_target(brick_options *opts, const char *target);
/* A schedule in the text form of scheduler/README.md (NULL: the default heuristic): the
 * sections of one kernel, or parts "KERNEL: sections" for several, one a line, as
 * brick_kernel_schedule's texts prefixed with their kernel's name ('brick show --schedule');
 * a kernel without a part gets the default schedule. */
BRICK_API void brick_options_set_schedule(brick_options *opts, const char *schedule);
/* 0 (default): the team size comes from OMP_NUM_THREADS at run time; 1: serial code with no
 * OpenMP runtime dependency; N >= 2: a team of N threads. Negative values count as 0. */
BRICK_API void brick_options_set_threads(brick_options *opts, int threads);
/* The L1, L2 and L3 data cache sizes in bytes the default schedule blocks for; 0 keeps a level
 * as detected (sysfs, else CPUID, for the native target; 32 KiB / 1 MiB / 32 MiB otherwise). */
BRICK_API void brick_options_set_caches(brick_options *opts, int64_t l1, int64_t l2, int64_t l3);

/* ---- programs: parse, inspect, interpret ---------------------------------------------- */

/* Parse and check a .bk source ("path" "-": the standard input, named "<stdin>" in
 * diagnostics). "opts" may be NULL. On success *out owns the program. */
BRICK_API int brick_program_parse_file(brick_ctx *ctx, const char *path,
                                       const brick_options *opts, brick_program **out);
BRICK_API int brick_program_parse_string(brick_ctx *ctx, const char *name, const char *text,
                                         const brick_options *opts, brick_program **out);
BRICK_API void brick_program_free(brick_program *prog);

BRICK_API int brick_program_kernel_count(const brick_program *prog);
/* Index of the kernel called "name", or -1. */
BRICK_API int brick_program_find_kernel(const brick_program *prog, const char *name);
BRICK_API const char *brick_kernel_name(const brick_program *prog, int kernel);
/* Give kernel "kernel" the C name "name" (a C identifier no other kernel of the program has,
 * not a C/C++ keyword nor a C library function): in modules compiled afterwards its symbols
 * NAME, NAME_ws, NAME_workspace_bytes, NAME_flops and header names follow, so one program can
 * link the same kernel compiled at two sizes. BRICK_ERR_USAGE otherwise. */
BRICK_API int brick_program_rename_kernel(brick_ctx *ctx, brick_program *prog, int kernel,
                                          const char *name);
/* Parameters in C-signature order: inputs first, then outputs. */
BRICK_API int brick_kernel_param_count(const brick_program *prog, int kernel);
BRICK_API int brick_kernel_input_count(const brick_program *prog, int kernel);
BRICK_API const char *brick_kernel_param_name(const brick_program *prog, int kernel, int param);
BRICK_API int brick_kernel_param_rank(const brick_program *prog, int kernel, int param);
BRICK_API int64_t brick_kernel_param_dim(const brick_program *prog, int kernel, int param,
                                         int dim);
BRICK_API int64_t brick_kernel_param_elems(const brick_program *prog, int kernel, int param);
/* Useful (nominal) floating-point operations of one call. */
BRICK_API double brick_kernel_flops(const brick_program *prog, int kernel);

/* Run "kernel" with the reference interpreter: args[i] points to parameter i (floats). */
BRICK_API int brick_kernel_interpret(brick_ctx *ctx, const brick_program *prog, int kernel,
                                     float *const *args);
/* Compare the outputs in "args" (after a call of the compiled kernel on the inputs in "args")
 * with the reference interpreter: per output max|x - ref| / max|ref|, the worst into *err.
 * Kernels above "full_flops" whose outputs are computable element by element are checked on
 * "samples" random elements per output (each computed exactly, in double) plus the first and
 * last; the others are interpreted in full. "*sampled" (may be NULL) says which was done. */
BRICK_API int brick_kernel_check(brick_ctx *ctx, const brick_program *prog, int kernel,
                                 float *const *args, double full_flops, int samples,
                                 uint64_t seed, double *err, int *sampled);
/* Print the checked IR (ranges, isl domains and accesses) to "out". */
BRICK_API void brick_program_print_ir(const brick_program *prog, FILE *out);

/* ---- compiling ------------------------------------------------------------------------ */

typedef struct brick_module brick_module;

typedef enum brick_emit_kind { BRICK_EMIT_OBJ, BRICK_EMIT_ASM, BRICK_EMIT_LLVM } brick_emit_kind;

/* Compile kernel "kernel" of "prog" (-1: every kernel) into a module. "prog" must outlive it. */
BRICK_API int brick_compile(brick_ctx *ctx, const brick_program *prog, int kernel,
                            const brick_options *opts, brick_module **out);
BRICK_API void brick_module_free(brick_module *mod);
/* Write the module as an object file, assembly or LLVM IR (before any lookup). */
BRICK_API int brick_module_emit(brick_ctx *ctx, brick_module *mod, brick_emit_kind kind,
                                const char *path);
/* Write the C header declaring the module's kernels, under the names they were compiled with
 * (a later brick_program_rename_kernel changes neither the object nor the header). */
BRICK_API int brick_module_write_header(brick_ctx *ctx, brick_module *mod, const char *path);
/* JIT-compile the module (once) and return the address of "name", one of the symbols its
 * object defines (a kernel's NAME, NAME_ws, NAME_flops, NAME_workspace_bytes); NULL with
 * BRICK_ERR_USAGE in the last error for any other name, or for a module compiled for another
 * architecture than this process's. */
BRICK_API void *brick_module_lookup(brick_ctx *ctx, brick_module *mod, const char *name);
/* Bytes of workspace kernel "kernel" of the module needs (see NAME_ws). */
BRICK_API int64_t brick_module_workspace_bytes(const brick_module *mod, const char *kernel);

/* Does the options' schedule fit "kernel" (-1: every kernel of "prog", as brick_compile)? A
 * schedule without "KERNEL:" parts is for one kernel, so not for all of a program with several:
 * BRICK_ERR_USAGE, with the message in the context; with parts, each kernel's part is parsed
 * and checked, its errors reported as diagnostics. brick_compile checks this itself; a caller
 * that compiles several kernels one at a time calls it first. */
BRICK_API int brick_options_check_schedule(brick_ctx *ctx, const brick_program *prog, int kernel,
                                           const brick_options *opts);
/* The complete schedule of "kernel" (the given one completed by the heuristic), malloc'ed. */
BRICK_API int brick_kernel_schedule(brick_ctx *ctx, const brick_program *prog, int kernel,
                                    const brick_options *opts, char **out);
/* The scheduled loop nest of "kernel" as C (BRGEMM calls as "brgemm" marks), malloc'ed. */
BRICK_API int brick_kernel_loops(brick_ctx *ctx, const brick_program *prog, int kernel,
                                 const brick_options *opts, char **out);

/* The FP32 FMA peak of one core in GFLOP/s, measured now in this process (the best of a few
 * runs, under 0.2 s; an underestimate when other processes share the core). */
BRICK_API double brick_measure_peak_gflops(void);

/* ---- tuning ------------------------------------------------------------------------------ */

/* Take schedules from the tuning database "path" (NULL: none, the default): brick_compile,
 * brick_kernel_schedule and brick_kernel_loops then compile each kernel that has no given
 * schedule with its best record for the options' target and thread count, if there is one.
 * The file must exist and be a tuning database (else BRICK_ERR_IO), so that a mistyped path
 * does not silently mean the default schedules. */
BRICK_API void brick_options_set_db(brick_options *opts, const char *path);
/* The default tuning database, $XDG_CACHE_HOME/brick/tune.db, else ~/.cache/brick/tune.db
 * (malloc'ed). */
BRICK_API char *brick_tune_default_db(void);
/* The best record of "kernel" in the database "path" for the target and threads of "opts":
 * *schedule (malloc'ed), or NULL when there is none; *record (malloc'ed; "record" may be NULL)
 * says which record it is. BRICK_ERR_IO when the file cannot be used as a tuning database. */
BRICK_API int brick_db_lookup(brick_ctx *ctx, const brick_program *prog, int kernel,
                              const brick_options *opts, const char *path, char **schedule,
                              char **record);
/* Print what the tuning database "path" holds, one entry per key, to "out". */
BRICK_API int brick_db_list(brick_ctx *ctx, const char *path, int verbose, FILE *out);

typedef struct brick_tune_options brick_tune_options;

BRICK_API brick_tune_options *brick_tune_options_new(void);
BRICK_API void brick_tune_options_free(brick_tune_options *t);
/* The database to record into (NULL, the default: brick_tune_default_db()). */
BRICK_API void brick_tune_options_set_db(brick_tune_options *t, const char *path);
/* The brick executable that measures candidates ("brick __measure"); required. */
BRICK_API void brick_tune_options_set_worker(brick_tune_options *t, const char *path);
/* "auto" (default), "exhaustive", "random", "evolutionary" or "model-report" (random samples
 * measured in random order, for the cost model's Spearman correlation); else BRICK_ERR_USAGE. */
BRICK_API int brick_tune_options_set_strategy(brick_tune_options *t, const char *name);
/* Budget: at most "trials" measurements, at most "seconds" of wall time (0: no limit). */
BRICK_API void brick_tune_options_set_trials(brick_tune_options *t, int trials);
BRICK_API void brick_tune_options_set_seconds(brick_tune_options *t, double seconds);
/* Kill a candidate's worker after "seconds" (0, the default: from the default's time). */
BRICK_API void brick_tune_options_set_timeout(brick_tune_options *t, double seconds);
BRICK_API void brick_tune_options_set_seed(brick_tune_options *t, uint64_t seed);
/* Stop when "*flag" becomes nonzero (set it from a SIGINT handler): the worker measuring then
 * is killed and not recorded; every finished measurement stays in the database. */
BRICK_API void brick_tune_options_set_stop_flag(brick_tune_options *t,
                                                const volatile sig_atomic_t *flag);

/* One finished measurement (schedule != NULL) or a note, for progress display. */
typedef struct brick_tune_event {
  int done, total;          /* measurements so far; the budget's count (0: none) */
  double elapsed, eta;      /* seconds; eta < 0 when unknown */
  const char *schedule;     /* the candidate */
  const char *status;       /* "ok", "wrong", "invalid", "crash", "timeout", "error" */
  double gflops, ms, model; /* model: the cost model's estimate in cycles */
  double best_gflops, default_gflops;
  const char *message;      /* why a candidate failed */
  const char *note;         /* news from the search, else NULL */
} brick_tune_event;

typedef void brick_tune_progress_fn(void *user, const brick_tune_event *ev);
BRICK_API void brick_tune_options_set_progress(brick_tune_options *t, brick_tune_progress_fn *fn,
                                               void *user);

/* A run's result. best_schedule is the winner of the final round (confirmed: the default
 * and the search's fastest few, each by its median of interleaved measurements), else (no
 * final round: interrupted, or nothing beside the default) the fastest single measurement.
 * db_best_* is what compile --db uses: the database ranks confirmed schedules above those
 * measured only in a search, so it is best_schedule unless a run confirmed a faster one. */
typedef struct brick_tune_result {
  int measured, failed, interrupted;
  double seconds;
  char *default_schedule, *best_schedule;  /* this run's */
  double default_gflops, best_gflops;      /* as measured during the search */
  double confirm_default, confirm_best;    /* medians of the final round (0: not done) */
  int64_t space;                           /* candidates the strategy ranked */
  double spearman, spearman_near;          /* model-report: all, and those within 4x of the best */
  int spearman_n, spearman_near_n;
  char *db;                                /* the database written */
  char *db_best_schedule;                  /* its best record for the key after the run */
  double db_best_gflops;                   /* that record's (the median one of its schedule) */
  int64_t db_best_record;
  double fastest_gflops;                   /* this run's fastest single measurement */
  int confirmed;                           /* best_schedule won the final round */
  int db_best_measurements;                /* the successful measurements of db_best_schedule */
  int db_best_confirmed;                   /* a final round confirmed db_best_schedule */
} brick_tune_result;

/* Search schedules for "kernel" on this machine, each measured in a worker process (the
 * executable set with brick_tune_options_set_worker), checked against the reference
 * interpreter and recorded in the tuning database. */
BRICK_API int brick_tune(brick_ctx *ctx, const brick_program *prog, int kernel,
                         const brick_options *opts, const brick_tune_options *t,
                         brick_tune_result *result);
BRICK_API void brick_tune_result_release(brick_tune_result *r);

#ifdef __cplusplus
}
#endif
#endif
