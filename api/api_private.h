/* Private layouts of the public API's objects, shared by the files of api/. */
#ifndef BRICK_API_PRIVATE_H
#define BRICK_API_PRIVATE_H

#define BRICK_BUILDING_LIBRARY 1
#include "brick/brick.h"

#include "codegen.h"
#include "frontend.h"

struct brick_ctx {
  brick_diag_fn *diag_fn;
  void *diag_user;
  bk_strbuf last_error;
  int last_status; /* of the last failure (brick_fail), BRICK_OK after brick_begin */
};

typedef struct define {
  char *name;
  int64_t value;
} define;

struct brick_options {
  define *defines;
  int ndefines;
  char *target;   /* NULL: native */
  char *schedule; /* NULL: the default heuristic */
  int threads;    /* 0: OMP_NUM_THREADS at run time */
  char *db;       /* tuning database to take schedules from (NULL: none) */
  int64_t caches[3]; /* L1, L2, L3 data cache bytes the heuristic blocks for (0: detect) */
};

struct brick_program {
  brick_ctx *ctx;
  bk_source *src;
  bk_diag diag;
  ir_program *ir;
};

/* A bk_diag sink forwarding to the context "user" (a brick_ctx *). */
void brick_diag_sink(void *user, bk_severity sev, const char *text);
/* The schedule text to compile kernel "k" with: the options' schedule, else the best record
 * of the options' tuning database if it still applies (then also in *owned, to free), else
 * NULL (the heuristic). BRICK_ERR_IO when the database cannot be used. (tune.c) */
int brick_schedule_text(brick_ctx *ctx, const ir_kernel *k, isl_ctx *ictx,
                        const brick_options *opts, const char **text, char **owned);
/* Set the context's last error to the formatted message and return "status". */
int brick_fail(brick_ctx *ctx, int status, const char *fmt, ...) BK_PRINTF(3, 4);
/* At the start of every API call that reports errors: the last error becomes the call's own
 * (brick_ctx_last_error is "" after a success). */
void brick_begin(brick_ctx *ctx);
/* BRICK_OK if "k" is a kernel of "prog" (or -1 when "all" allows every kernel), else a usage
 * error. */
int brick_check_kernel(brick_ctx *ctx, const brick_program *prog, int k, bool all);

#endif
