/*
 * End-to-end driver: one example compiled to an object by `brick compile` at build time and
 * linked into this program (CMake, the system C compiler). For each kernel of the object (the
 * table glue.cmake generated from the object's header) it fills the inputs with seeded random
 * values and the outputs with NaN, calls NAME and then NAME_ws with a NaN-filled workspace of
 * NAME_workspace_bytes, twice each, and compares every output with the reference interpreter
 * (ir_interp_run_double) to 1e-4 relative. It also checks NAME_flops and that the inputs are
 * left untouched.
 *
 *   e2e_NAME FILE.bk [-D NAME=VALUE]...    (the -D options the object was compiled with)
 */
#include "e2e.h"
#include "frontend.h"
#include "oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Parse "path" with the overrides of "argv" ("-D" "NAME=VALUE" pairs). */
static ir_program *load(const char *path, int argc, char **argv, bk_diag *diag,
                        bk_source **src) {
  *src = bk_source_read_file(path);
  if (!*src) {
    fprintf(stderr, "e2e: cannot read %s\n", path);
    return NULL;
  }
  ir_program *p = ir_program_new(diag, NULL);
  for (int i = 0; i + 1 < argc; i += 2) {
    char *eq = strchr(argv[i + 1], '=');
    if (strcmp(argv[i], "-D") != 0 || !eq) {
      fprintf(stderr, "e2e: expected -D NAME=VALUE, got '%s %s'\n", argv[i], argv[i + 1]);
      ir_program_free(p);
      return NULL;
    }
    *eq = '\0';
    ir_program_override_size(p, argv[i + 1], strtoll(eq + 1, NULL, 10));
  }
  if (!fe_parse(p, *src) || !ir_program_check_overrides(p)) {
    ir_program_free(p);
    return NULL;
  }
  return p;
}

typedef struct tensors {
  int n;
  float **args, **inputs_copy;
} tensors;

static tensors tensors_new(const ir_kernel *k, uint64_t seed) {
  tensors t = {.n = k->params.len};
  t.args = calloc((size_t)t.n, sizeof(float *));
  t.inputs_copy = calloc((size_t)t.n, sizeof(float *));
  for (int i = 0; i < t.n; i++) {
    int64_t n = k->params.data[i]->nelems;
    t.args[i] = malloc(sizeof(float) * (size_t)n);
    if (i < k->ninputs) {
      oracle_fill(t.args[i], n, &seed);
      t.inputs_copy[i] = malloc(sizeof(float) * (size_t)n);
      memcpy(t.inputs_copy[i], t.args[i], sizeof(float) * (size_t)n);
    }
  }
  return t;
}

static void tensors_free(tensors *t) {
  for (int i = 0; i < t->n; i++) {
    free(t->args[i]);
    free(t->inputs_copy[i]);
  }
  free(t->args);
  free(t->inputs_copy);
}

static void fill_outputs_nan(const ir_kernel *k, tensors *t) {
  for (int i = k->ninputs; i < t->n; i++)
    oracle_fill_nan(t->args[i], k->params.data[i]->nelems);
}

/* Were the inputs left as they were? */
static bool inputs_intact(const ir_kernel *k, const tensors *t, const char *what) {
  for (int i = 0; i < k->ninputs; i++)
    if (memcmp(t->args[i], t->inputs_copy[i], sizeof(float) * (size_t)k->params.data[i]->nelems)) {
      fprintf(stderr, "%s: input '%s' was modified\n", what, k->params.data[i]->name);
      return false;
    }
  return true;
}

/* Run kernel "e" (IR "k") through NAME and NAME_ws, twice each; true if every result matches. */
static bool check_kernel(const e2e_kernel *e, const ir_kernel *k) {
  bool ok = true;
  if (e->nparams != k->params.len || *e->flops != k->flops) {
    fprintf(stderr, "%s: the object has %d parameters and %g flops, the source %d and %g\n",
            e->name, e->nparams, *e->flops, k->params.len, k->flops);
    return false;
  }
  tensors t = tensors_new(k, 0x5eed0000u + (uint64_t)k->params.len);
  double **ref = oracle_reference(k, t.args);
  size_t wsb = ((size_t)*e->workspace_bytes + 63) / 64 * 64 + 64;
  void *ws = aligned_alloc(64, wsb);
  double worst = 0;
  for (int run = 0; run < 4; run++) {
    char what[256];
    snprintf(what, sizeof what, "%s%s (call %d)", e->name, run < 2 ? "" : "_ws", run % 2 + 1);
    fill_outputs_nan(k, &t);
    if (run < 2) {
      e->call(t.args);
    } else {
      memset(ws, 0xff, wsb); /* NaN bit patterns: the kernel must not read what it did not write */
      e->call_ws(t.args, ws);
    }
    double err = oracle_check(k, t.args, ref, what);
    ok &= err <= ORACLE_TOLERANCE && inputs_intact(k, &t, what);
    worst = err > worst || isnan(err) ? err : worst;
  }
  printf("kernel %s: %s, max rel. error %.3g (NAME and NAME_ws, workspace %llu bytes)\n", e->name,
         ok ? "ok" : "FAILED", worst, (unsigned long long)*e->workspace_bytes);
  free(ws);
  oracle_reference_free(k, ref);
  tensors_free(&t);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE.bk [-D NAME=VALUE]...\n", argv[0]);
    return 2;
  }
  bk_diag diag;
  bk_diag_init(&diag, NULL, NULL);
  bk_source *src;
  ir_program *p = load(argv[1], argc - 2, argv + 2, &diag, &src);
  if (!p)
    return 1;
  int failed = 0, n = 0;
  for (const e2e_kernel *e = e2e_kernels; e->name; e++, n++) {
    const ir_kernel *k = ir_program_find_kernel(p, e->name);
    if (!k) {
      fprintf(stderr, "%s: no kernel '%s' in the source\n", argv[1], e->name);
      failed++;
      continue;
    }
    failed += !check_kernel(e, k);
  }
  if (n != p->kernels.len) {
    fprintf(stderr, "%s: the object has %d kernels, the source %d\n", argv[1], n, p->kernels.len);
    failed++;
  }
  ir_program_free(p);
  bk_source_free(src);
  return failed ? 1 : 0;
}
