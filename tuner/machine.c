/*
 * The machine as the cost model sees it, and the key of a tuning record.
 *
 * Cache sizes come from sysfs (/sys/devices/system/cpu/cpu0/cache/index*: level, type, size),
 * else from sysconf (glibc reads CPUID), else from defaults that fit recent x86 server cores,
 * clamped to plausible sizes.
 * The key names what a record is valid for: the computation (the kernel's normalized text, with
 * every size substituted, so that comments, spacing, size names and the kernel's own name do
 * not matter), the target triple, the CPU and its features, the thread count and the version
 * of the schedule format. Not a build hash: a rebuilt brick keeps its records.
 */
#include "tuner.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int64_t default_cache[3] = {48 << 10, 1 << 20, 32 << 20};
static const int default_ways[3] = {12, 16, 16};
/* Plausible sizes per level: virtual machines report odd ones (a 508 MB L3 was seen). */
static const int64_t min_cache[3] = {8 << 10, 128 << 10, 1 << 20};
static const int64_t max_cache[3] = {256 << 10, 8 << 20, 128 << 20};

/* The first line of "path" as an integer with an optional K/M/G suffix, or -1. */
static int64_t read_size(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char buf[64] = {0};
  bool ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  char *end;
  long long v = strtoll(buf, &end, 10);
  if (end == buf)
    return -1;
  int64_t mul = *end == 'K' ? 1 << 10 : *end == 'M' ? 1 << 20 : *end == 'G' ? 1 << 30 : 1;
  return (int64_t)v * mul;
}

static bool read_word(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  bool ok = fgets(buf, (int)n, f) != NULL;
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  return ok;
}

/* Fill "cache" and "ways" from sysfs where it says; entries it does not give stay as they were. */
static void caches_from_sysfs(int64_t *cache, int *ways) {
  for (int i = 0; i < 8; i++) {
    char path[128], type[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    int64_t level = read_size(path);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    if (level < 1 || level > 3 || !read_word(path, type, sizeof type) ||
        strcmp(type, "Instruction") == 0)
      continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    int64_t size = read_size(path);
    if (size > 0)
      cache[level - 1] = size;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/ways_of_associativity", i);
    int64_t w = read_size(path);
    if (w > 0 && w <= 64)
      ways[level - 1] = (int)w;
  }
}

static void caches_from_sysconf(int64_t *cache) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
  const int names[3] = {_SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE};
  for (int i = 0; i < 3; i++) {
    long v = sysconf(names[i]);
    if (v > 0)
      cache[i] = v;
  }
#endif
}

void tune_machine_host(tune_machine *m, const cg_target *t) {
  int64_t sysfs[3] = {-1, -1, -1}, conf[3] = {-1, -1, -1};
  int ways[3] = {0, 0, 0};
  caches_from_sysfs(sysfs, ways);
  caches_from_sysconf(conf);
#ifdef _SC_LEVEL1_DCACHE_ASSOC
  const int assoc[3] = {_SC_LEVEL1_DCACHE_ASSOC, _SC_LEVEL2_CACHE_ASSOC, _SC_LEVEL3_CACHE_ASSOC};
  for (int i = 0; i < 3; i++) {
    long v = ways[i] ? 0 : sysconf(assoc[i]);
    ways[i] = ways[i] ? ways[i] : v > 0 && v <= 64 ? (int)v : default_ways[i];
  }
#endif
  for (int i = 0; i < 3; i++)
    m->ways[i] = ways[i] ? ways[i] : default_ways[i];
  for (int i = 0; i < 3; i++)
    m->cache[i] = sysfs[i] > 0 ? sysfs[i] : conf[i] > 0 ? conf[i] : default_cache[i];
  for (int i = 0; i < 3; i++)
    m->cache[i] = m->cache[i] < min_cache[i] ? min_cache[i] : m->cache[i] > max_cache[i] ? max_cache[i] : m->cache[i];
  brg_isa_info info = brg_isa_get_info(t ? t->isa : BRG_ISA_GENERIC, t ? t->vlen : 4);
  m->vlen = info.vlen;
  m->nregs = info.nregs;
  m->opmask = info.has_opmask;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m->cores = n > 0 ? (int)n : 1;
}

/* ---- the key ------------------------------------------------------------------------------ */

static void print_affine(bk_strbuf *sb, const ir_affine *a, const ir_stmt *s) {
  bool any = false;
  for (int i = 0; i < s->niters; i++)
    if (a->coef[i]) {
      bk_strbuf_printf(sb, "%+" PRId64 "*%s", a->coef[i], s->iters[i].name);
      any = true;
    }
  if (a->c || !any)
    bk_strbuf_printf(sb, "%+" PRId64, a->c);
}

/* "e" in prefix form: (op args...), tensor[index,...], numbers in %.9g. */
static void print_expr(bk_strbuf *sb, const ir_expr *e, const ir_stmt *s) {
  switch (e->kind) {
  case IR_EXPR_NUM: bk_strbuf_printf(sb, "%.9g", e->num); return;
  case IR_EXPR_NAME: bk_strbuf_puts(sb, e->name); return;
  case IR_EXPR_ACCESS:
    bk_strbuf_printf(sb, "%s[", e->name);
    for (int d = 0; d < e->nargs; d++) {
      if (d)
        bk_strbuf_puts(sb, ",");
      if (e->index)
        print_affine(sb, &e->index[d], s);
      else
        print_expr(sb, e->args[d], s);
    }
    bk_strbuf_puts(sb, "]");
    return;
  case IR_EXPR_OP:
    bk_strbuf_printf(sb, "(%s%s", e->nargs == 1 && e->op == IR_OP_NEG ? "neg" : ir_op_spelling(e->op),
                     "");
    for (int i = 0; i < e->nargs; i++) {
      bk_strbuf_puts(sb, " ");
      print_expr(sb, e->args[i], s);
    }
    bk_strbuf_puts(sb, ")");
    return;
  }
}

static void print_tensor(bk_strbuf *sb, const char *what, const ir_tensor *t) {
  bk_strbuf_printf(sb, "%s %s f32[", what, t->name);
  for (int d = 0; d < t->rank; d++)
    bk_strbuf_printf(sb, "%s%" PRId64, d ? "," : "", t->dims[d]);
  bk_strbuf_puts(sb, "]\n");
}

char *tune_kernel_text(const ir_kernel *k) {
  static const char *const assign[] = {"=", "+=", "max="};
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  for (int i = 0; i < k->params.len; i++)
    print_tensor(&sb, i < k->ninputs ? "in" : "out", k->params.data[i]);
  for (int i = 0; i < k->locals.len; i++)
    print_tensor(&sb, "local", k->locals.data[i]);
  for (int i = 0; i < k->stmts.len; i++) {
    const ir_stmt *s = k->stmts.data[i];
    bk_strbuf_printf(&sb, "s%d%s%s ", i, s->label ? ":" : "", s->label ? s->label : "");
    print_expr(&sb, s->lhs, s);
    bk_strbuf_printf(&sb, " %s ", assign[s->assign]);
    print_expr(&sb, s->rhs, s);
    bk_strbuf_puts(&sb, " |");
    for (int j = 0; j < s->niters; j++)
      bk_strbuf_printf(&sb, " %s%s:%" PRId64 ":%" PRId64, s->iters[j].name,
                       s->iters[j].reduction ? "*" : "", s->iters[j].lo, s->iters[j].hi);
    bk_strbuf_puts(&sb, "\n");
  }
  return bk_strbuf_take(&sb);
}

static char *xstrdup(const char *s) {
  char *p = strdup(s ? s : "");
  if (!p)
    abort();
  return p;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "+x" entries of an LLVM feature list, sorted (the list's order is LLVM's business). */
static char *normalize_features(const char *list) {
  char *copy = xstrdup(list), **items = calloc(strlen(list) / 2 + 2, sizeof(char *));
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    if (tok[0] == '+')
      items[n++] = tok;
  qsort(items, (size_t)n, sizeof(char *), cmp_str);
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_puts(&sb, "");
  for (int i = 0; i < n; i++)
    bk_strbuf_printf(&sb, "%s%s", i ? "," : "", items[i]);
  free(items);
  free(copy);
  return bk_strbuf_take(&sb);
}

void tune_key_init(tune_key *key, const ir_kernel *k, const cg_target *t, int threads) {
  key->kernel = xstrdup(k->name);
  key->text = tune_kernel_text(k);
  key->target = xstrdup(t->triple);
  key->cpu = xstrdup(t->cpu);
  key->features = normalize_features(t->features);
  key->threads = threads;
  key->format = sched_format_version();
}

void tune_key_release(tune_key *key) {
  free(key->kernel);
  free(key->text);
  free(key->target);
  free(key->cpu);
  free(key->features);
  *key = (tune_key){0};
}
