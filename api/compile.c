/*
 * The compiling half of the public API: schedule (given text completed by the heuristic),
 * lower, check legality, generate IR for one or all kernels of a program into one module;
 * then emit files, a header, or JIT-compile and look up symbols.
 */
#include "api_private.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <isl/ast.h>
#include <isl/ast_build.h>
#include <isl/space.h>
#include <stdlib.h>
#include <string.h>

struct brick_module {
  cg_target target;
  cg_module *cg; /* NULL once handed to the JIT */
  cg_jit *jit;
  bool optimized;
  int n;
  const ir_kernel **ks;
  char **names; /* the kernels' names when compiled (brick_program_rename_kernel may change
                 * them later; the object keeps these) */
  bool *parallel; /* the kernel's code forks an OpenMP team */
  bool jit_failed;  /* a lookup could not JIT-compile it (the LLVM module is gone) */
  sched_kernel **sks;
};

/* Size in bytes of the data or unified cache of "level" of CPU 0 (sysfs), or 0. */
static int64_t sysfs_cache(int level) {
  for (int i = 0; i < 8; i++) {
    char path[128], buf[64];
    int64_t lv = 0, size = 0;
    bool data = false;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *f = fopen(path, "r");
    if (!f)
      break;
    if (fgets(buf, sizeof buf, f))
      lv = strtoll(buf, NULL, 10);
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    if ((f = fopen(path, "r"))) {
      data = fgets(buf, sizeof buf, f) && (strncmp(buf, "Data", 4) == 0 || strncmp(buf, "Unified", 7) == 0);
      fclose(f);
    }
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    if ((f = fopen(path, "r"))) {
      char *end = NULL;
      if (fgets(buf, sizeof buf, f))
        size = strtoll(buf, &end, 10) * (end && *end == 'K' ? 1024 : end && *end == 'M' ? 1 << 20 : 1);
      fclose(f);
    }
    if (lv == level && data)
      return size;
  }
  return 0;
}

/* Size of the data or unified cache of "level" from CPUID's deterministic cache parameters
 * (leaf 4 on Intel, 0x8000001D on AMD: the same layout), or 0. */
static int64_t cpuid_cache(int level) {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
  __get_cpuid(0, &max, &b, &c, &d);
  bool amd = b == 0x68747541; /* "Auth" */
  unsigned leaf = amd ? 0x8000001Du : 4u;
  if (!amd && max < 4)
    return 0;
  for (unsigned i = 0; i < 8; i++) {
    __cpuid_count(leaf, i, a, b, c, d);
    unsigned type = a & 31, lv = (a >> 5) & 7;
    if (type == 0)
      break;
    if (lv == (unsigned)level && (type == 1 || type == 3))
      return (int64_t)((b >> 22) + 1) * (((b >> 12) & 1023) + 1) * ((b & 4095) + 1) * (c + 1);
  }
  if (amd && level == 1 && __get_cpuid(0x80000005u, &a, &b, &c, &d)) /* legacy AMD leaves */
    return (int64_t)(c >> 24) << 10;
  if (amd && level == 2 && __get_cpuid(0x80000006u, &a, &b, &c, &d))
    return (int64_t)(c >> 16) << 10;
#endif
  return 0;
}

/* What the heuristic knows of the target: the caches it blocks for (the options' sizes,
 * --caches, else the host's when compiling for it, else the defaults) and whether the target
 * ISA has mask registers. */
static sched_target heuristic_target(const brick_options *opts) {
  sched_target t = sched_target_default();
  if (!opts || !opts->target || strcmp(opts->target, "native") == 0) {
    int64_t l1 = sysfs_cache(1), l2 = sysfs_cache(2), l3 = sysfs_cache(3);
    l1 = l1 ? l1 : cpuid_cache(1);
    l2 = l2 ? l2 : cpuid_cache(2);
    l3 = l3 ? l3 : cpuid_cache(3);
    t.l1 = l1 >= 8192 ? l1 : t.l1;
    t.l2 = l2 >= 65536 ? l2 : t.l2;
    t.l3 = l3 >= 65536 ? l3 : t.l3;
  }
  if (opts) {
    t.l1 = opts->caches[0] ? opts->caches[0] : t.l1;
    t.l2 = opts->caches[1] ? opts->caches[1] : t.l2;
    t.l3 = opts->caches[2] ? opts->caches[2] : t.l3;
  }
  cg_target target;
  char *err = NULL;
  if (cg_target_init(&target, opts ? opts->target : NULL, &err) == 0) {
    t.mask_registers = target.isa == BRG_ISA_AVX512;
    cg_target_release(&target);
  }
  free(err);
  return t;
}

/* The complete schedule of "k": the options' text (or the tuning database's record, if any)
 * completed by the heuristic. */
static int schedule_of(brick_ctx *ctx, const brick_program *prog, const ir_kernel *k,
                       const brick_options *opts, bk_diag *diag, sched_schedule **out,
                       bk_source **src_out) {
  sched_schedule *given = NULL;
  const char *text;
  char *owned;
  *out = NULL;
  if (src_out)
    *src_out = NULL;
  int st = brick_schedule_text(ctx, k, prog->ir->isl, opts, &text, &owned);
  if (st != BRICK_OK)
    return st;
  bk_source *src = text ? bk_source_new("<schedule>", text, strlen(text)) : NULL;
  free(owned);
  if (src) {
    given = sched_schedule_parse_in(prog->ir, k, src, diag);
    if (!given) {
      bk_source_free(src);
      return BRICK_ERR_USAGE;
    }
  }
  sched_target target = heuristic_target(opts);
  *out = sched_complete_for(k, given, opts ? opts->threads : 0, &target);
  sched_schedule_free(given);
  /* The schedule's locations point into "src": the caller keeps it while it reports on them. */
  if (src_out)
    *src_out = src;
  else
    bk_source_free(src);
  return BRICK_OK;
}

/* Lower kernel "k" with its schedule; schedule problems are reported as usage errors. */
static int lower_kernel(brick_ctx *ctx, const brick_program *prog, const ir_kernel *k,
                        const brick_options *opts, sched_kernel **out) {
  bk_diag diag;
  bk_diag_init(&diag, brick_diag_sink, ctx);
  *out = NULL;
  sched_schedule *s;
  bk_source *src;
  int st = schedule_of(ctx, prog, k, opts, &diag, &s, &src);
  if (st != BRICK_OK)
    return st;
  sched_kernel *sk = sched_lower(k, s, prog->ir->isl, &diag);
  if (sk && !sched_check_legality(sk, prog->ir->isl, &diag)) {
    sched_kernel_free(sk);
    sk = NULL;
  }
  sched_schedule_free(s);
  bool given = src != NULL;
  bk_source_free(src);
  if (!sk)
    return given ? BRICK_ERR_USAGE : BRICK_ERR_INTERNAL;
  *out = sk;
  return BRICK_OK;
}

void brick_module_free(brick_module *mod) {
  if (!mod)
    return;
  for (int i = 0; i < mod->n; i++) {
    sched_kernel_free(mod->sks[i]);
    free(mod->names ? mod->names[i] : NULL);
  }
  free(mod->sks);
  free(mod->names);
  free(mod->parallel);
  free(mod->ks);
  cg_module_free(mod->cg);
  cg_jit_free(mod->jit);
  cg_target_release(&mod->target);
  free(mod);
}

static int emit_kernels(brick_ctx *ctx, const brick_program *prog, brick_module *m,
                        const brick_options *opts) {
  cg_options o = {.threads = opts ? opts->threads : 0, .target = &m->target,
                  .l2 = heuristic_target(opts).l2};
  for (int i = 0; i < m->n; i++) {
    int st = lower_kernel(ctx, prog, m->ks[i], opts, &m->sks[i]);
    if (st != BRICK_OK)
      return st;
    char *err = NULL;
    if (cg_kernel_emit(m->cg, m->sks[i], prog->ir->isl, &o, &m->parallel[i], &err) != 0) {
      st = brick_fail(ctx, BRICK_ERR_INTERNAL, "%s", err);
      free(err);
      return st;
    }
  }
  return BRICK_OK;
}

/* The symbols of a kernel NAME in its object: NAME, NAME_ws, NAME_flops,
 * NAME_workspace_bytes (codegen/kernel.c). */
static const char *const symbol_suffixes[4] = {"", "_ws", "_flops", "_workspace_bytes"};

/* The names kernel "k" defines in an object and its header (codegen/emit.c): NAME, NAME_ws,
 * NAME_flops, NAME_workspace_bytes, NAME_T_rank and NAME_T_dims for each tensor T; "*n" of
 * them, in "a". */
static char **kernel_names(bk_arena *a, const ir_kernel *k, int *n) {
  char **out = bk_arena_alloc(a, sizeof(char *) * (size_t)(4 + 2 * k->params.len));
  *n = 0;
  for (int i = 0; i < 4; i++)
    out[(*n)++] = bk_arena_printf(a, "%s%s", k->name, symbol_suffixes[i]);
  for (int i = 0; i < k->params.len; i++) {
    out[(*n)++] = bk_arena_printf(a, "%s_%s_rank", k->name, k->params.data[i]->name);
    out[(*n)++] = bk_arena_printf(a, "%s_%s_dims", k->name, k->params.data[i]->name);
  }
  return out;
}

/* Do two kernels of "m" define the same name (kernels "mm" and "mm_ws", say)? The object
 * would get one renamed by LLVM and the header would not compile. */
static int check_names(brick_ctx *ctx, const brick_module *m) {
  bk_diag diag;
  bk_diag_init(&diag, brick_diag_sink, ctx);
  bk_arena *arena = bk_arena_new();
  char ***names = bk_arena_alloc(arena, sizeof(char **) * (size_t)m->n);
  int *count = bk_arena_alloc(arena, sizeof(int) * (size_t)m->n);
  for (int i = 0; i < m->n; i++)
    names[i] = kernel_names(arena, m->ks[i], &count[i]);
  int st = BRICK_OK;
  for (int j = 1; j < m->n; j++)
    for (int i = 0; i < j; i++) {
      const char *same = NULL;
      for (int x = 0; x < count[i] && !same; x++)
        for (int y = 0; y < count[j] && !same; y++)
          if (strcmp(names[i][x], names[j][y]) == 0)
            same = names[i][x];
      if (same) {
        bk_error(&diag, m->ks[j]->loc, "kernels '%s' and '%s' would both define '%s' in the "
                 "object or its header; rename one", m->ks[i]->name, m->ks[j]->name, same);
        st = BRICK_ERR_INPUT;
      }
    }
  bk_arena_free(arena);
  return st;
}

int brick_options_check_schedule(brick_ctx *ctx, const brick_program *prog, int kernel,
                                 const brick_options *opts) {
  brick_begin(ctx);
  int nk = prog->ir->kernels.len;
  if (!opts || !opts->schedule || kernel >= 0 || nk < 2)
    return BRICK_OK;
  if (!sched_text_names_kernels(opts->schedule))
    return brick_fail(ctx, BRICK_ERR_USAGE, "the schedule names no kernel, but %s has %d: start "
                      "each kernel's part with 'KERNEL:' (as 'brick show --schedule' prints "
                      "them), or choose one kernel (the kernel argument; --kernel in the CLI)",
                      prog->src->name, nk);
  /* every kernel's part, before any kernel runs (found by a review: 'brick run' ran and timed
   * the first kernel, then stopped on the second's part) */
  bk_diag diag;
  bk_diag_init(&diag, brick_diag_sink, ctx);
  bk_source *src = bk_source_new("<schedule>", opts->schedule, strlen(opts->schedule));
  int st = BRICK_OK;
  for (int i = 0; i < nk && st == BRICK_OK; i++) {
    sched_schedule *given = sched_schedule_parse_in(prog->ir, prog->ir->kernels.data[i], src, &diag);
    st = given ? BRICK_OK : BRICK_ERR_USAGE;
    sched_schedule_free(given);
  }
  bk_source_free(src);
  return st;
}

int brick_compile(brick_ctx *ctx, const brick_program *prog, int kernel, const brick_options *opts,
                  brick_module **out) {
  brick_begin(ctx);
  *out = NULL;
  if (brick_check_kernel(ctx, prog, kernel, true) != BRICK_OK)
    return BRICK_ERR_USAGE;
  brick_module *m = calloc(1, sizeof(*m));
  char *err = NULL;
  if (cg_target_init(&m->target, opts ? opts->target : NULL, &err) != 0) {
    int st = brick_fail(ctx, BRICK_ERR_USAGE, "%s", err);
    free(err);
    free(m);
    return st;
  }
  int nk = prog->ir->kernels.len;
  if (brick_options_check_schedule(ctx, prog, kernel, opts) != BRICK_OK) {
    brick_module_free(m);
    return BRICK_ERR_USAGE;
  }
  m->n = kernel < 0 ? nk : 1;
  m->ks = calloc((size_t)m->n, sizeof(*m->ks));
  m->sks = calloc((size_t)m->n, sizeof(*m->sks));
  m->names = calloc((size_t)m->n, sizeof(*m->names));
  m->parallel = calloc((size_t)m->n, sizeof(*m->parallel));
  for (int i = 0; i < m->n; i++) {
    m->ks[i] = prog->ir->kernels.data[kernel < 0 ? i : kernel];
    m->names[i] = strdup(m->ks[i]->name);
  }
  int st = check_names(ctx, m);
  if (st == BRICK_OK) {
    m->cg = cg_module_new(prog->src->name, &m->target, &err);
    st = m->cg ? emit_kernels(ctx, prog, m, opts) : brick_fail(ctx, BRICK_ERR_INTERNAL, "%s", err);
  }
  free(err);
  if (st != BRICK_OK) {
    if (!*brick_ctx_last_error(ctx))
      brick_fail(ctx, st, "invalid schedule");
    brick_module_free(m);
    return st;
  }
  *out = m;
  return BRICK_OK;
}

static int optimize(brick_ctx *ctx, brick_module *mod) {
  if (!mod->cg)
    return brick_fail(ctx, BRICK_ERR_USAGE, "the module was already JIT-compiled");
  if (mod->optimized)
    return BRICK_OK;
  char *err = NULL;
  if (cg_module_optimize(mod->cg, &err) != 0) {
    int st = brick_fail(ctx, BRICK_ERR_INTERNAL, "%s", err);
    free(err);
    return st;
  }
  mod->optimized = true;
  return BRICK_OK;
}

int brick_module_emit(brick_ctx *ctx, brick_module *mod, brick_emit_kind kind, const char *path) {
  brick_begin(ctx);
  int st = optimize(ctx, mod);
  if (st != BRICK_OK)
    return st;
  char *err = NULL;
  if (cg_module_write(mod->cg, path, (cg_file_kind)kind, &err) != 0) {
    st = brick_fail(ctx, BRICK_ERR_IO, "%s", err);
    free(err);
  }
  return st;
}

int brick_module_write_header(brick_ctx *ctx, brick_module *mod, const char *path) {
  brick_begin(ctx);
  bk_strbuf guard;
  bk_strbuf_init(&guard);
  bk_strbuf_puts(&guard, "BRICK_GENERATED_");
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  for (const char *p = base; *p; p++)
    bk_strbuf_printf(&guard, "%c", (*p >= 'a' && *p <= 'z') ? *p - 32
                                    : ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '_');
  char *err = NULL;
  int st = cg_header_write(path, bk_strbuf_cstr(&guard), mod->ks, (const char *const *)mod->names,
                           mod->parallel, (const sched_kernel *const *)mod->sks, mod->n, &err);
  bk_strbuf_release(&guard);
  if (st != 0) {
    st = brick_fail(ctx, BRICK_ERR_IO, "%s", err ? err : "cannot write the header");
    free(err);
  }
  return st;
}

/* Is "name" a symbol the module's object defines (NAME, NAME_ws, NAME_flops,
 * NAME_workspace_bytes of one of its kernels)? */
static bool module_symbol(const brick_module *mod, const char *name) {
  for (int i = 0; i < mod->n; i++) {
    size_t n = strlen(mod->names[i]);
    for (int s = 0; s < 4 && strncmp(name, mod->names[i], n) == 0; s++)
      if (strcmp(name + n, symbol_suffixes[s]) == 0)
        return true;
  }
  return false;
}

/* Component "i" (arch, vendor, os, environment) of normalized triple "tr", into "out". */
static void triple_part(const char *tr, int i, char *out, size_t n) {
  for (; i > 0 && *tr; i--)
    tr += strcspn(tr, "-") + (tr[strcspn(tr, "-")] == '-');
  size_t len = strcspn(tr, "-");
  snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), tr);
}

/* Can this process run code for "t"? Its architecture (the spellings of x86-64 alike), OS and
 * environment are the host's, and its vector instructions ones the host has. */
static bool host_target(const cg_target *t, char *why, size_t n) {
  char *def = LLVMGetDefaultTargetTriple(), *a = LLVMNormalizeTargetTriple(def),
       *b = LLVMNormalizeTargetTriple(t->triple);
  bool same = cg_triple_is_x86_64(a) && cg_triple_is_x86_64(b);
  for (int i = same ? 2 : 0; i < 4; i += i == 0 ? 2 : 1) {
    char pa[64], pb[64];
    triple_part(a, i, pa, sizeof pa);
    triple_part(b, i, pb, sizeof pb);
    same = strcmp(pa, pb) == 0;
    if (!same)
      break;
  }
  snprintf(why, n, "compiled for '%s', which this process (%s) cannot run", t->triple, def);
  LLVMDisposeMessage(def);
  LLVMDisposeMessage(a);
  LLVMDisposeMessage(b);
#if defined(__x86_64__)
  if (same && t->isa == BRG_ISA_AVX512 && !__builtin_cpu_supports("avx512f")) {
    snprintf(why, n, "compiled for AVX-512 ('%s'), which this CPU lacks", t->cpu);
    same = false;
  }
  if (same && t->isa == BRG_ISA_AVX2 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    snprintf(why, n, "compiled for AVX2 and FMA ('%s'), which this CPU lacks", t->cpu);
    same = false;
  }
#endif
  return same;
}

void *brick_module_lookup(brick_ctx *ctx, brick_module *mod, const char *name) {
  brick_begin(ctx);
  char *err = NULL;
  if (!module_symbol(mod, name)) {
    brick_fail(ctx, BRICK_ERR_USAGE, "the module defines no '%s' (a kernel's NAME, NAME_ws, "
               "NAME_flops or NAME_workspace_bytes)", name);
    return NULL;
  }
  char why[512];
  if (!mod->jit && !host_target(&mod->target, why, sizeof why)) {
    brick_fail(ctx, BRICK_ERR_USAGE, "the module is %s; emit an object instead", why);
    return NULL;
  }
  if (mod->jit_failed) {
    brick_fail(ctx, BRICK_ERR_USAGE, "the module could not be JIT-compiled (an earlier lookup "
               "said why)");
    return NULL;
  }
  if (!mod->jit) {
    if (optimize(ctx, mod) != BRICK_OK)
      return NULL;
    mod->jit = cg_jit_new(&err);
    int st = mod->jit ? cg_jit_add(mod->jit, mod->cg, &err) : -1;
    if (mod->jit)
      mod->cg = NULL; /* cg_jit_add took it, added or not */
    if (st != 0) {
      cg_jit_free(mod->jit);
      mod->jit = NULL;
      mod->jit_failed = !mod->cg;
      brick_fail(ctx, BRICK_ERR_INTERNAL, "%s", err);
      free(err);
      return NULL;
    }
  }
  void *p = cg_jit_lookup(mod->jit, name, &err);
  if (!p) {
    brick_fail(ctx, BRICK_ERR_INTERNAL, "%s", err);
    free(err);
  }
  return p;
}

int64_t brick_module_workspace_bytes(const brick_module *mod, const char *kernel) {
  for (int i = 0; i < mod->n; i++)
    if (strcmp(mod->names[i], kernel) == 0)
      return mod->sks[i]->ws_bytes;
  return -1;
}

int brick_kernel_schedule(brick_ctx *ctx, const brick_program *prog, int kernel,
                          const brick_options *opts, char **out) {
  brick_begin(ctx);
  *out = NULL;
  if (brick_check_kernel(ctx, prog, kernel, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  bk_diag diag;
  bk_diag_init(&diag, brick_diag_sink, ctx);
  const ir_kernel *k = prog->ir->kernels.data[kernel];
  sched_schedule *s = NULL;
  int st = schedule_of(ctx, prog, k, opts, &diag, &s, NULL);
  if (st != BRICK_OK)
    return st;
  *out = sched_schedule_to_str(k, s);
  sched_schedule_free(s);
  return BRICK_OK;
}

int brick_kernel_loops(brick_ctx *ctx, const brick_program *prog, int kernel,
                       const brick_options *opts, char **out) {
  brick_begin(ctx);
  *out = NULL;
  if (brick_check_kernel(ctx, prog, kernel, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  sched_kernel *sk;
  int st = lower_kernel(ctx, prog, prog->ir->kernels.data[kernel], opts, &sk);
  if (st != BRICK_OK)
    return st;
  isl_ctx *ictx = prog->ir->isl;
  isl_schedule *sch = sched_build_tree(sk, ictx, opts ? opts->threads : 0);
  isl_ast_build *build = isl_ast_build_from_context(isl_set_universe(isl_space_params_alloc(ictx, 0)));
  isl_ast_node *ast = isl_ast_build_node_from_schedule(build, sch);
  isl_ast_build_free(build);
  char *c = isl_ast_node_to_C_str(ast);
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    bk_strbuf_printf(&sb, "// O%d: %s\n", op->index,
                     op->kind == SCHED_OP_BRGEMM ? "BRGEMM call per 'brgemm' mark (loops below it are inside the call)"
                     : op->value == SCHED_VAL_COPY ? "pack" : op->value == SCHED_VAL_CONST ? "fill" : "statement");
  }
  bk_strbuf_puts(&sb, c ? c : "");
  free(c);
  isl_ast_node_free(ast);
  sched_kernel_free(sk);
  *out = bk_strbuf_take(&sb);
  return BRICK_OK;
}
