/*
 * libbrick: the public API of include/brick/brick.h over the modules. It owns the context
 * (diagnostic sink, last error) and wraps a parsed program with its source.
 */
#define BRICK_BUILDING_LIBRARY 1
#include "brick/brick.h"

#include "api_private.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *brick_version(void) { return BRICK_VERSION_STRING; }

brick_ctx *brick_ctx_new(void) { return calloc(1, sizeof(brick_ctx)); }

void brick_ctx_free(brick_ctx *ctx) {
  if (!ctx)
    return;
  bk_strbuf_release(&ctx->last_error);
  free(ctx);
}

void brick_ctx_set_diag_callback(brick_ctx *ctx, brick_diag_fn *fn, void *user) {
  ctx->diag_fn = fn;
  ctx->diag_user = user;
}

const char *brick_ctx_last_error(const brick_ctx *ctx) { return bk_strbuf_cstr(&ctx->last_error); }

int brick_ctx_last_status(const brick_ctx *ctx) { return ctx->last_status; }

void brick_begin(brick_ctx *ctx) {
  bk_strbuf_clear(&ctx->last_error);
  ctx->last_status = BRICK_OK;
}

int brick_check_kernel(brick_ctx *ctx, const brick_program *prog, int k, bool all) {
  int n = prog->ir->kernels.len;
  if ((k >= 0 && k < n) || (all && k == -1))
    return BRICK_OK;
  return brick_fail(ctx, BRICK_ERR_USAGE, "no kernel %d (the program has %d%s)", k, n,
                    all ? "; -1 means all" : "");
}

int brick_fail(brick_ctx *ctx, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctx->last_error.len = 0;
  bk_strbuf_vprintf(&ctx->last_error, fmt, ap);
  va_end(ap);
  ctx->last_status = status;
  return status;
}

brick_options *brick_options_new(void) { return calloc(1, sizeof(brick_options)); }

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = v ? strdup(v) : NULL;
}

void brick_options_set_target(brick_options *opts, const char *target) { set_str(&opts->target, target); }
void brick_options_set_schedule(brick_options *opts, const char *s) { set_str(&opts->schedule, s); }
void brick_options_set_threads(brick_options *opts, int threads) { opts->threads = threads > 0 ? threads : 0; }

void brick_options_set_caches(brick_options *opts, int64_t l1, int64_t l2, int64_t l3) {
  opts->caches[0] = l1 > 0 ? l1 : 0;
  opts->caches[1] = l2 > 0 ? l2 : 0;
  opts->caches[2] = l3 > 0 ? l3 : 0;
}

void brick_options_free(brick_options *opts) {
  if (!opts)
    return;
  free(opts->target);
  free(opts->schedule);
  free(opts->db);
  for (int i = 0; i < opts->ndefines; i++)
    free(opts->defines[i].name);
  free(opts->defines);
  free(opts);
}

void brick_options_define(brick_options *opts, const char *name, int64_t value) {
  define *d = realloc(opts->defines, sizeof(define) * (size_t)(opts->ndefines + 1));
  if (!d)
    abort();
  opts->defines = d;
  d[opts->ndefines].name = strdup(name);
  d[opts->ndefines++].value = value;
}

/* Forward each diagnostic to the context's callback (or stderr); remember the last error. */
void brick_diag_sink(void *user, bk_severity sev, const char *text) {
  brick_ctx *ctx = user;
  if (sev == BK_SEV_ERROR && ctx->last_error.len == 0) /* the call's first error */
    bk_strbuf_puts(&ctx->last_error, text);
  if (ctx->diag_fn)
    ctx->diag_fn(ctx->diag_user, (brick_severity)sev, text);
  else
    fputs(text, stderr);
}

/* Diagnostics of one source stop after this many errors (a binary file passed by mistake would
 * otherwise print one error per stray byte, each with its source line). */
#define BRICK_MAX_ERRORS 50

/* Parse "src" (taken) into a new program. */
static int parse_source(brick_ctx *ctx, bk_source *src, const brick_options *opts,
                        brick_program **out) {
  brick_program *p = calloc(1, sizeof(*p));
  if (!p)
    abort();
  p->ctx = ctx;
  p->src = src;
  bk_diag_init(&p->diag, brick_diag_sink, ctx);
  p->diag.max_errors = BRICK_MAX_ERRORS;
  p->ir = ir_program_new(&p->diag, NULL);
  for (int i = 0; opts && i < opts->ndefines; i++)
    ir_program_override_size(p->ir, opts->defines[i].name, opts->defines[i].value);
  bool ok = fe_parse(p->ir, src);
  int status = ok ? BRICK_OK : BRICK_ERR_INPUT;
  if (ok && !ir_program_check_overrides(p->ir))
    status = BRICK_ERR_USAGE;
  if (status != BRICK_OK) {
    brick_program_free(p);
    *out = NULL;
    return status;
  }
  *out = p;
  return BRICK_OK;
}

int brick_program_parse_file(brick_ctx *ctx, const char *path, const brick_options *opts,
                             brick_program **out) {
  brick_begin(ctx);
  *out = NULL;
  bk_source *src = bk_source_read_file(path);
  if (!src) {
    bk_strbuf msg, text;
    bk_strbuf_init(&msg);
    bk_strbuf_init(&text);
    bk_strbuf_printf(&msg, "cannot read '%s': %s%s", strcmp(path, "-") ? path : "<stdin>",
                     strerror(errno),
                     errno == EFBIG ? " (a source file may have at most 64 MiB)" : "");
    bk_diag_format(&text, BK_SEV_ERROR, BK_NO_LOC, bk_strbuf_cstr(&msg));
    brick_diag_sink(ctx, BK_SEV_ERROR, bk_strbuf_cstr(&text));
    bk_strbuf_release(&msg);
    bk_strbuf_release(&text);
    return BRICK_ERR_IO;
  }
  return parse_source(ctx, src, opts, out);
}

int brick_program_parse_string(brick_ctx *ctx, const char *name, const char *text,
                               const brick_options *opts, brick_program **out) {
  brick_begin(ctx);
  *out = NULL;
  return parse_source(ctx, bk_source_new(name, text, strlen(text)), opts, out);
}

void brick_program_free(brick_program *prog) {
  if (!prog)
    return;
  ir_program_free(prog->ir);
  bk_source_free(prog->src);
  free(prog);
}

int brick_program_kernel_count(const brick_program *prog) { return prog->ir->kernels.len; }

int brick_program_find_kernel(const brick_program *prog, const char *name) {
  for (int i = 0; i < prog->ir->kernels.len; i++)
    if (strcmp(prog->ir->kernels.data[i]->name, name) == 0)
      return i;
  return -1;
}

int brick_program_rename_kernel(brick_ctx *ctx, brick_program *prog, int k, const char *name) {
  brick_begin(ctx);
  if (k < 0 || k >= prog->ir->kernels.len)
    return brick_fail(ctx, BRICK_ERR_USAGE, "no kernel %d", k);
  bool ident = *name && !isdigit((unsigned char)*name);
  for (const char *p = name; *p; p++)
    ident &= isalnum((unsigned char)*p) || *p == '_';
  if (!ident)
    return brick_fail(ctx, BRICK_ERR_USAGE, "'%s' is not a C identifier", name);
  const char *why = ir_c_name_problem(name, true);
  if (why)
    return brick_fail(ctx, BRICK_ERR_USAGE, "'%s' cannot name a kernel: %s", name, why);
  int other = brick_program_find_kernel(prog, name);
  if (other >= 0 && other != k)
    return brick_fail(ctx, BRICK_ERR_USAGE, "the program already has a kernel named '%s'", name);
  prog->ir->kernels.data[k]->name = bk_arena_strdup(prog->ir->arena, name);
  return BRICK_OK;
}

static const ir_kernel *kernel_at(const brick_program *prog, int k) {
  return prog->ir->kernels.data[k];
}
static const ir_tensor *param_at(const brick_program *prog, int k, int i) {
  return kernel_at(prog, k)->params.data[i];
}

const char *brick_kernel_name(const brick_program *prog, int k) { return kernel_at(prog, k)->name; }
int brick_kernel_param_count(const brick_program *prog, int k) {
  return kernel_at(prog, k)->params.len;
}
int brick_kernel_input_count(const brick_program *prog, int k) {
  return kernel_at(prog, k)->ninputs;
}
const char *brick_kernel_param_name(const brick_program *prog, int k, int i) {
  return param_at(prog, k, i)->name;
}
int brick_kernel_param_rank(const brick_program *prog, int k, int i) {
  return param_at(prog, k, i)->rank;
}
int64_t brick_kernel_param_dim(const brick_program *prog, int k, int i, int d) {
  return param_at(prog, k, i)->dims[d];
}
int64_t brick_kernel_param_elems(const brick_program *prog, int k, int i) {
  return param_at(prog, k, i)->nelems;
}
double brick_kernel_flops(const brick_program *prog, int k) { return kernel_at(prog, k)->flops; }

int brick_kernel_interpret(brick_ctx *ctx, const brick_program *prog, int k, float *const *args) {
  brick_begin(ctx);
  if (brick_check_kernel(ctx, prog, k, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  if (ir_interp_run(kernel_at(prog, k), args) != 0)
    return brick_fail(ctx, BRICK_ERR_INTERNAL, "out of memory in the interpreter");
  return BRICK_OK;
}

void brick_program_print_ir(const brick_program *prog, FILE *out) {
  ir_program_print(prog->ir, out);
}
