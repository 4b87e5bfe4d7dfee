/*
 * libFuzzer target over the front end: the input bytes are a .bk source. Each input goes
 * through the lexer, the parser, sema (checks and range inference) and the isl builder; a
 * program that checks is also printed (to /dev/null) and, when its kernels are small, run by
 * the reference interpreter. Everything is freed, so LeakSanitizer sees any leak.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt):
 * - fuzz_frontend: with clang and -fsanitize=fuzzer (scripts/fuzz.sh);
 * - fuzz_replay:   with BRICK_FUZZ_REPLAY, an ordinary main() that feeds each file named on the
 *                  command line (or each file of a named directory) to the same function, so the
 *                  inputs that once crashed stay in the normal test suite.
 */
#include "frontend.h"

#include <stdint.h>
#include <stdlib.h>

/* Kernels whose statements together visit more points than this are not interpreted. */
#define FUZZ_MAX_POINTS 20000.0
#define FUZZ_MAX_ELEMS 20000

static void discard(void *user, bk_severity sev, const char *text) {
  (void)user, (void)sev, (void)text;
}

/* Is kernel "k" small enough to interpret quickly? */
static bool kernel_is_small(const ir_kernel *k) {
  double points = 0;
  for (int i = 0; i < k->stmts.len; i++) {
    const ir_stmt *s = k->stmts.data[i];
    double n = 1;
    for (int j = 0; j < s->niters; j++)
      n *= (double)(s->iters[j].hi - s->iters[j].lo);
    points += n;
  }
  for (int i = 0; i < k->params.len; i++)
    if (k->params.data[i]->nelems > FUZZ_MAX_ELEMS)
      return false;
  for (int i = 0; i < k->locals.len; i++)
    if (k->locals.data[i]->nelems > FUZZ_MAX_ELEMS)
      return false;
  return points <= FUZZ_MAX_POINTS;
}

/* Run kernel "k" on inputs 0.5, -0.25, 1, ... */
static void interpret(const ir_kernel *k) {
  float **args = calloc((size_t)k->params.len + 1, sizeof(float *));
  for (int i = 0; i < k->params.len; i++) {
    args[i] = malloc(sizeof(float) * (size_t)k->params.data[i]->nelems);
    for (int64_t e = 0; e < k->params.data[i]->nelems; e++)
      args[i][e] = (float)((e % 7) - 3) * 0.25f;
  }
  ir_interp_run(k, args);
  for (int i = 0; i < k->params.len; i++)
    free(args[i]);
  free(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static isl_ctx *isl;
  static FILE *devnull;
  if (!isl) {
    isl = isl_ctx_alloc();
    isl_options_set_on_error(isl, ISL_ON_ERROR_CONTINUE);
    devnull = fopen("/dev/null", "w");
  }
  bk_source *src = bk_source_new("fuzz.bk", (const char *)data, size);
  bk_diag diag;
  bk_diag_init(&diag, discard, NULL);
  ir_program *p = ir_program_new(&diag, isl);
  if (fe_parse(p, src)) {
    ir_program_print(p, devnull);
    for (int i = 0; i < p->kernels.len; i++)
      if (kernel_is_small(p->kernels.data[i]))
        interpret(p->kernels.data[i]);
  }
  ir_program_free(p);
  bk_source_free(src);
  return 0;
}

#ifdef BRICK_FUZZ_REPLAY
#include <dirent.h>
#include <string.h>

/* Feed the file "path" to the target; false if it cannot be read. */
static bool replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    bk_strbuf_append(&sb, buf, n);
  fclose(f);
  LLVMFuzzerTestOneInput((const uint8_t *)(sb.data ? sb.data : ""), sb.len);
  bk_strbuf_release(&sb);
  return true;
}

/* Replay every regular file of directory "dir" (not recursive). */
static int replay_dir(const char *dir, DIR *d) {
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    bk_strbuf path;
    bk_strbuf_init(&path);
    bk_strbuf_printf(&path, "%s/%s", dir, e->d_name);
    count += replay_file(bk_strbuf_cstr(&path));
    bk_strbuf_release(&path);
  }
  return count;
}

int main(int argc, char **argv) {
  int count = 0;
  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    if (d) {
      count += replay_dir(argv[i], d);
      closedir(d);
    } else if (replay_file(argv[i])) {
      count++;
    } else {
      fprintf(stderr, "fuzz_replay: cannot read '%s'\n", argv[i]);
      return 1;
    }
  }
  printf("fuzz_replay: %d inputs, no crash\n", count);
  return 0;
}
#endif
