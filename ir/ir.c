/*
 * The IR's data and its builder. The front end calls these functions as it parses; names stay
 * unresolved strings until sema.c checks a kernel. Sizes are evaluated as soon as they are
 * declared, so dims and later sizes can use them. Everything lives in the program's arena,
 * except the isl objects, which ir_program_free releases.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct override {
  const char *name;
  int64_t value;
  bool used;
} override;

typedef struct ir_program_private {
  ir_program pub;
  BK_VEC(override) overrides;
} ir_program_private;

static const char *const op_spelling[] = {
#define IR_OP(name, spelling, arity) spelling,
#include "ops.h"
};
static const int op_arity[] = {
#define IR_OP(name, spelling, arity) arity,
#include "ops.h"
};

const char *ir_op_spelling(ir_op op) { return op_spelling[op]; }
int ir_op_arity(ir_op op) { return op_arity[op]; }

int ir_op_lookup_function(const char *name) {
  for (int i = IR_OP_RELU; i < IR_OP_COUNT; i++)
    if (strcmp(op_spelling[i], name) == 0)
      return i;
  return -1;
}

ir_program *ir_program_new(bk_diag *diag, isl_ctx *isl) {
  bk_arena *a = bk_arena_new();
  ir_program_private *pp = bk_arena_alloc(a, sizeof(*pp));
  ir_program *p = &pp->pub;
  p->arena = a;
  p->diag = diag;
  p->owns_isl = isl == NULL;
  p->isl = isl ? isl : isl_ctx_alloc();
  if (p->owns_isl)
    isl_options_set_on_error(p->isl, ISL_ON_ERROR_CONTINUE);
  return p;
}

static void stmt_free_isl(ir_stmt *s) {
  isl_set_free(s->domain);
  isl_map_free(s->write);
  for (int i = 0; s->read && i < s->nreads; i++)
    isl_map_free(s->read[i]);
  s->domain = NULL;
  s->write = NULL;
}

void ir_program_free(ir_program *p) {
  if (!p)
    return;
  for (int k = 0; k < p->kernels.len; k++)
    for (int i = 0; i < p->kernels.data[k]->stmts.len; i++)
      stmt_free_isl(p->kernels.data[k]->stmts.data[i]);
  if (p->owns_isl)
    isl_ctx_free(p->isl);
  bk_arena_free(p->arena);
}

static ir_expr *expr_new(ir_program *p, ir_expr_kind kind, bk_loc loc) {
  ir_expr *e = bk_arena_alloc(p->arena, sizeof(*e));
  e->kind = kind;
  e->loc = loc;
  e->read_id = -1;
  return e;
}

static ir_expr **copy_args(ir_program *p, ir_expr **args, int n) {
  if (n == 0)
    return NULL;
  ir_expr **a = bk_arena_alloc(p->arena, sizeof(*a) * (size_t)n);
  memcpy(a, args, sizeof(*a) * (size_t)n);
  return a;
}

ir_expr *ir_expr_num(ir_program *p, bk_loc loc, double v, bool is_int, int64_t iv) {
  ir_expr *e = expr_new(p, IR_EXPR_NUM, loc);
  e->num = v;
  e->is_int = is_int;
  e->inum = iv;
  return e;
}

ir_expr *ir_expr_name(ir_program *p, bk_loc loc, const char *name) {
  ir_expr *e = expr_new(p, IR_EXPR_NAME, loc);
  e->name = bk_arena_strdup(p->arena, name);
  return e;
}

ir_expr *ir_expr_access(ir_program *p, bk_loc loc, const char *tensor, ir_expr **idx, int n) {
  ir_expr *e = expr_new(p, IR_EXPR_ACCESS, loc);
  e->name = bk_arena_strdup(p->arena, tensor);
  e->args = copy_args(p, idx, n);
  e->nargs = n;
  return e;
}

ir_expr *ir_expr_op(ir_program *p, bk_loc loc, ir_op op, ir_expr **args, int n) {
  ir_expr *e = expr_new(p, IR_EXPR_OP, loc);
  e->op = op;
  e->args = copy_args(p, args, n);
  e->nargs = n;
  return e;
}

ir_size *ir_program_find_size(const ir_program *p, const char *name) {
  for (int i = 0; i < p->sizes.len; i++)
    if (strcmp(p->sizes.data[i]->name, name) == 0)
      return p->sizes.data[i];
  return NULL;
}

void ir_program_override_size(ir_program *p, const char *name, int64_t value) {
  ir_program_private *pp = (ir_program_private *)p;
  for (int i = 0; i < pp->overrides.len; i++)
    if (strcmp(pp->overrides.data[i].name, name) == 0) {
      pp->overrides.data[i].value = value;
      return;
    }
  override o = {bk_arena_strdup(p->arena, name), value, false};
  bk_vec_push(p->arena, &pp->overrides, o);
}

bool ir_program_check_overrides(ir_program *p) {
  ir_program_private *pp = (ir_program_private *)p;
  bool ok = true;
  for (int i = 0; i < pp->overrides.len; i++)
    if (!pp->overrides.data[i].used) {
      bk_error(p->diag, BK_NO_LOC, "-D %s: no size named '%s' is declared",
               pp->overrides.data[i].name, pp->overrides.data[i].name);
      ok = false;
    }
  return ok;
}

static override *find_override(ir_program *p, const char *name) {
  ir_program_private *pp = (ir_program_private *)p;
  for (int i = 0; i < pp->overrides.len; i++)
    if (strcmp(pp->overrides.data[i].name, name) == 0)
      return &pp->overrides.data[i];
  return NULL;
}

/* Is "name" already used by a size, kernel, or (in "k") a tensor? Report if so. */
static bool check_fresh(ir_program *p, const ir_kernel *k, bk_loc loc, const char *name) {
  bk_loc prev = BK_NO_LOC;
  const char *what = NULL;
  ir_size *s = ir_program_find_size(p, name);
  ir_tensor *t = k ? ir_kernel_find_tensor(k, name) : NULL;
  ir_kernel *kk = k ? NULL : ir_program_find_kernel(p, name);
  if (s)
    prev = s->loc, what = "size";
  else if (t)
    prev = t->loc, what = "tensor";
  else if (kk)
    prev = kk->loc, what = "kernel";
  if (!what)
    return true;
  bk_error(p->diag, loc, "redefinition of '%s'", name);
  bk_note(p->diag, prev, "previous definition of %s '%s' is here", what, name);
  return false;
}

ir_size *ir_program_add_size(ir_program *p, bk_loc loc, const char *name, ir_expr *e) {
  if (!check_fresh(p, NULL, loc, name))
    return NULL;
  ir_size *s = bk_arena_alloc(p->arena, sizeof(*s));
  s->name = bk_arena_strdup(p->arena, name);
  s->expr = e;
  s->loc = loc;
  override *o = find_override(p, name);
  if (o) {
    o->used = true;
    s->value = o->value;
    s->overridden = true;
  } else if (!ir_eval_int(p, e, &s->value)) {
    s->invalid = true; /* kept, so that its uses do not each report an unknown size */
    s->value = 1;
  }
  bk_vec_push(p->arena, &p->sizes, s);
  return s;
}

ir_kernel *ir_program_find_kernel(const ir_program *p, const char *name) {
  for (int i = 0; i < p->kernels.len; i++)
    if (strcmp(p->kernels.data[i]->name, name) == 0)
      return p->kernels.data[i];
  return NULL;
}

/* Is "name" a keyword of C or C++ (the generated header is included by both)? */
static bool is_c_keyword(const char *name) {
  static const char *const keywords[] = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
      "case", "catch", "char", "char16_t", "char32_t", "char8_t", "class", "co_await",
      "co_return", "co_yield", "compl", "concept", "const", "const_cast", "consteval",
      "constexpr", "constinit", "continue", "decltype", "default", "delete", "do", "double",
      "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
      "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new",
      "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private",
      "protected", "public", "register", "reinterpret_cast", "requires", "restrict", "return",
      "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct",
      "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef",
      "typeid", "typename", "typeof", "typeof_unqual", "union", "unsigned", "using",
      "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
  };
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strcmp(name, keywords[i]) == 0)
      return true;
  /* reserved identifiers: _Bool, _Atomic, __anything */
  return name[0] == '_' && (name[1] == '_' || (name[1] >= 'A' && name[1] <= 'Z'));
}

/* Is "name" a function of the C standard library (or main)? A kernel of that name would
 * define the symbol and replace the library's in the program that links it. */
static bool is_c_library_function(const char *name) {
  static const char *const funcs[] = {
      "main", "abort", "abs", "aligned_alloc", "at_quick_exit", "atexit", "atof", "atoi", "atol",
      "atoll", "bsearch", "calloc", "div", "exit", "free", "getenv", "labs", "ldiv", "llabs",
      "lldiv", "malloc", "mblen", "mbstowcs", "mbtowc", "qsort", "quick_exit", "rand",
      "realloc", "srand", "strtod", "strtof", "strtol", "strtold", "strtoll", "strtoul",
      "strtoull", "system", "wcstombs", "wctomb", "memchr", "memcmp", "memcpy", "memmove",
      "memset", "strcat", "strchr", "strcmp", "strcoll", "strcpy", "strcspn", "strerror",
      "strlen", "strncat", "strncmp", "strncpy", "strpbrk", "strrchr", "strspn", "strstr",
      "strtok", "strxfrm", "strdup", "clearerr", "fclose", "feof", "ferror", "fflush", "fgetc",
      "fgetpos", "fgets", "fopen", "fprintf", "fputc", "fputs", "fread", "freopen", "fscanf",
      "fseek", "fsetpos", "ftell", "fwrite", "getc", "getchar", "perror", "printf", "putc",
      "putchar", "puts", "remove", "rename", "rewind", "scanf", "setbuf", "setvbuf",
      "snprintf", "sprintf", "sscanf", "tmpfile", "tmpnam", "ungetc", "vfprintf", "vfscanf",
      "vprintf", "vscanf", "vsnprintf", "vsprintf", "vsscanf", "asctime", "clock", "ctime",
      "difftime", "gmtime", "localtime", "mktime", "strftime", "time", "timespec_get",
      "isalnum", "isalpha", "isblank", "iscntrl", "isdigit", "isgraph", "islower", "isprint",
      "ispunct", "isspace", "isupper", "isxdigit", "tolower", "toupper", "raise", "signal",
      "longjmp", "setjmp", "localeconv", "setlocale", "read", "write", "open", "close",
  };
  /* <math.h>, each also with the suffixes f and l */
  static const char *const math[] = {
      "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "copysign",
      "cos", "cosh", "erf", "erfc", "exp", "exp2", "expm1", "fabs", "fdim", "floor", "fma",
      "fmax", "fmin", "fmod", "frexp", "hypot", "ilogb", "ldexp", "lgamma", "llrint", "llround",
      "log", "log10", "log1p", "log2", "logb", "lrint", "lround", "modf", "nan", "nearbyint",
      "nextafter", "nexttoward", "pow", "remainder", "remquo", "rint", "round", "scalbln",
      "scalbn", "sin", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc",
  };
  for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
    if (strcmp(name, funcs[i]) == 0)
      return true;
  for (size_t i = 0; i < sizeof math / sizeof math[0]; i++) {
    size_t n = strlen(math[i]);
    if (strncmp(name, math[i], n) == 0 &&
        (name[n] == 0 || ((name[n] == 'f' || name[n] == 'l') && name[n + 1] == 0)))
      return true;
  }
  return false;
}

/* Is "name" a macro of the C standard library that a program including the generated header
 * is likely to have defined before it (from <stddef.h>, <stdio.h>, <errno.h>, <assert.h>,
 * <math.h>)? The header's declarations would not compile after it. */
static bool is_c_macro(const char *name) {
  static const char *const macros[] = {"NULL",   "EOF",    "errno",    "assert",   "stdin",
                                       "stdout", "stderr", "offsetof", "INFINITY", "NAN"};
  for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
    if (strcmp(name, macros[i]) == 0)
      return true;
  return false;
}

const char *ir_c_name_problem(const char *name, bool external) {
  if (is_c_keyword(name))
    return "it is reserved in C or C++, and the kernel becomes a C function";
  if (is_c_macro(name))
    return "it is a macro of the C standard library, and the kernel becomes a C function";
  if (strncmp(name, "brick_", 6) == 0 || strncmp(name, "BRICK_", 6) == 0)
    return "names that start with 'brick_' or 'BRICK_' are the generated header's own";
  if (external && is_c_library_function(name))
    return "it is a function of the C standard library, which the kernel's symbol would replace";
  return NULL;
}

/* Kernels become C functions and their parameters C parameters: report a name that C or C++
 * cannot declare ("external": a kernel, whose name is also a symbol of the program that links
 * it). "what" says which it is. */
static bool check_c_name(ir_program *p, bk_loc loc, const char *name, const char *what,
                         bool external) {
  const char *why = ir_c_name_problem(name, external);
  if (!why)
    return true;
  bk_error(p->diag, loc, "'%s' cannot name %s: %s", name, what, why);
  return false;
}

ir_kernel *ir_kernel_new(ir_program *p, bk_loc loc, const char *name) {
  if (check_fresh(p, NULL, loc, name))
    check_c_name(p, loc, name, "a kernel", true);
  ir_kernel *k = bk_arena_alloc(p->arena, sizeof(*k));
  k->name = bk_arena_strdup(p->arena, name);
  k->loc = loc;
  bk_vec_push(p->arena, &p->kernels, k);
  return k;
}

ir_tensor *ir_kernel_find_tensor(const ir_kernel *k, const char *name) {
  for (int i = 0; i < k->params.len; i++)
    if (strcmp(k->params.data[i]->name, name) == 0)
      return k->params.data[i];
  for (int i = 0; i < k->locals.len; i++)
    if (strcmp(k->locals.data[i]->name, name) == 0)
      return k->locals.data[i];
  return NULL;
}

/* After an error about the value of "e": say which sizes in it, directly or through other
 * sizes, come from -D. */
static void note_overrides(ir_program *p, const ir_expr *e) {
  if (e->kind == IR_EXPR_NAME) {
    const ir_size *s = ir_program_find_size(p, e->name);
    if (s && s->overridden)
      bk_note(p->diag, BK_NO_LOC, "size '%s' is %lld, from -D %s=%lld", s->name,
              (long long)s->value, s->name, (long long)s->value);
    else if (s && s->expr) /* sizes only name earlier sizes: this ends */
      note_overrides(p, s->expr);
    return;
  }
  for (int i = 0; i < e->nargs; i++)
    note_overrides(p, e->args[i]);
}

/* Evaluate the dims of "t"; each must be an integer >= 1. */
static bool eval_dims(ir_program *p, ir_tensor *t) {
  bool ok = true;
  t->nelems = 1;
  for (int i = 0; i < t->rank; i++) {
    int64_t v = 1;
    int errors = p->diag->nerrors;
    if (!ir_eval_int(p, t->dim_exprs[i], &v)) {
      /* a size whose definition failed (reported there): the tensor stays, with this dim 1,
       * so that its uses do not report it unknown */
      ok = p->diag->nerrors == errors ? ok : false;
      v = 1;
    } else if (v < 1) {
      bk_error(p->diag, t->dim_exprs[i]->loc,
               "dimension %d of '%s' is %lld; every dimension must be at least 1", i, t->name,
               (long long)v);
      note_overrides(p, t->dim_exprs[i]);
      ok = false;
      v = 1;
    } else if (v > ((int64_t)1 << 40) / t->nelems) {
      bk_error(p->diag, t->dim_exprs[i]->loc, "tensor '%s' is too large (more than 2^40 "
               "elements)", t->name);
      note_overrides(p, t->dim_exprs[i]);
      ok = false;
      v = 1;
    }
    t->dims[i] = v;
    t->nelems *= v;
  }
  return ok;
}

ir_tensor *ir_kernel_add_tensor(ir_program *p, ir_kernel *k, bk_loc loc, const char *name,
                                ir_role role, ir_expr **dims, int rank) {
  if (rank > IR_MAX_RANK) {
    bk_error(p->diag, loc, "tensor '%s' has rank %d; at most %d is supported", name, rank,
             IR_MAX_RANK);
    return NULL;
  }
  if (!check_fresh(p, k, loc, name))
    return NULL;
  const char *what = role == IR_ROLE_INPUT ? "an input" : "an output";
  if (role != IR_ROLE_LOCAL && !check_c_name(p, loc, name, what, false))
    return NULL;
  ir_tensor *t = bk_arena_alloc(p->arena, sizeof(*t));
  t->name = bk_arena_strdup(p->arena, name);
  t->role = role;
  t->rank = rank;
  t->dim_exprs = copy_args(p, dims, rank);
  t->loc = loc;
  t->param_index = -1;
  if (!eval_dims(p, t))
    return NULL;
  if (role == IR_ROLE_LOCAL) {
    bk_vec_push(p->arena, &k->locals, t);
    return t;
  }
  t->param_index = k->params.len;
  bk_vec_push(p->arena, &k->params, t);
  if (role == IR_ROLE_INPUT)
    k->ninputs++;
  else
    k->noutputs++;
  return t;
}

ir_stmt *ir_kernel_add_stmt(ir_program *p, ir_kernel *k, bk_loc loc, const char *label,
                            ir_expr *lhs, ir_assign assign, bk_loc assign_loc, ir_expr *rhs) {
  ir_stmt *s = bk_arena_alloc(p->arena, sizeof(*s));
  s->index = k->stmts.len;
  s->label = label ? bk_arena_strdup(p->arena, label) : NULL;
  s->lhs = lhs;
  s->assign = assign;
  s->assign_loc = assign_loc;
  s->rhs = rhs;
  s->loc = loc;
  bk_vec_push(p->arena, &k->stmts, s);
  return s;
}

void ir_stmt_add_where(ir_program *p, ir_stmt *s, bk_loc loc, const char *name, ir_expr *lo,
                       ir_expr *hi) {
  ir_where w = {bk_arena_strdup(p->arena, name), lo, hi, loc};
  bk_vec_push(p->arena, &s->wheres, w);
}

/* ---- the skipped terms of a product ---------------------------------------------------- */

static void mark_factors(const ir_expr *e, bool *is_factor) {
  if (e->kind == IR_EXPR_ACCESS)
    is_factor[e->read_id] = true;
  else if (e->kind == IR_EXPR_OP && e->op == IR_OP_MUL)
    for (int i = 0; i < e->nargs; i++)
      mark_factors(e->args[i], is_factor);
}

void ir_product_factors(const ir_stmt *s, bool *is_factor) {
  for (int r = 0; r < s->nreads; r++)
    is_factor[r] = false;
  if (s->product_of_reads)
    mark_factors(s->rhs, is_factor);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

void ir_inside_range(int64_t c, int64_t rmin, int64_t rmax, int64_t dim, int64_t *lo, int64_t *hi) {
  int64_t l, h; /* 0 <= c * v + rmin and c * v + rmax <= dim - 1 */
  if (c > 0) {
    l = ceil_div(-rmin, c);
    h = floor_div(dim - 1 - rmax, c) + 1;
  } else {
    l = ceil_div(dim - 1 - rmax, c);
    h = floor_div(-rmin, c) + 1;
  }
  *lo = l > *lo ? l : *lo;
  *hi = h < *hi ? h : *hi;
}

/* In a '+=' of a product, the values of a reduction iterator at which a factor's index along
 * some dimension (that iterator alone, times a coefficient, plus a constant) leaves the
 * tensor add nothing: narrow [lo[i], hi[i]) to the others, so that a 'where' range far past
 * the tensors does not run its skipped points (B[i] += A[j] where j in 0..2^40, A of 4
 * elements, ran for hours; found by a trial). False when no point is left. */
bool ir_clip_skipped(const ir_stmt *s, const bool *factor, int64_t *lo, int64_t *hi) {
  for (int r = 0; r < s->nreads; r++) {
    const ir_expr *e = s->reads[r];
    for (int d = 0; factor[r] && d < e->tensor->rank; d++) {
      const ir_affine *a = &e->index[d];
      int it = -1;
      for (int i = 0; i < s->niters; i++)
        if (a->coef[i] != 0)
          it = it == -1 ? i : -2;
      if (it < 0 || !s->iters[it].reduction)
        continue;
      ir_inside_range(a->coef[it], a->c, a->c, e->tensor->dims[d], &lo[it], &hi[it]);
      if (lo[it] >= hi[it])
        return false;
    }
  }
  return true;
}
