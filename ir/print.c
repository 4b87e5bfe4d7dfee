/* The textual dump of the IR behind `brick show --ir`: sizes, kernels, statements with their
 * inferred ranges, and each statement's isl domain and accesses. */
#include "ir.h"

#include <inttypes.h>
#include <stdlib.h>

static void print_affine(const ir_affine *a, const ir_stmt *s, FILE *out) {
  bool any = false;
  for (int i = 0; i < s->niters; i++) {
    int64_t c = a->coef[i];
    if (!c)
      continue;
    if (any)
      fputs(c < 0 ? " - " : " + ", out);
    else if (c < 0)
      fputs("-", out);
    if ((c < 0 ? -c : c) != 1)
      fprintf(out, "%" PRId64 "*", (c < 0 ? -c : c));
    fputs(s->iters[i].name, out);
    any = true;
  }
  if (!any)
    fprintf(out, "%" PRId64, a->c);
  else if (a->c)
    fprintf(out, " %c %" PRId64, a->c < 0 ? '-' : '+', (a->c < 0 ? -a->c : a->c));
}

static int precedence(const ir_expr *e) {
  if (e->kind != IR_EXPR_OP)
    return 4;
  switch (e->op) {
  case IR_OP_ADD:
  case IR_OP_SUB: return 1;
  case IR_OP_MUL:
  case IR_OP_DIV: return 2;
  case IR_OP_NEG: return 3;
  default: return 4;
  }
}

static void print_sub(const ir_expr *e, const ir_stmt *s, int prec, FILE *out) {
  bool paren = precedence(e) < prec;
  if (paren)
    fputc('(', out);
  ir_expr_print(e, s, out);
  if (paren)
    fputc(')', out);
}

/* Print "e"; with "s" given and the expression checked, indices print as affine forms. */
void ir_expr_print(const ir_expr *e, const ir_stmt *s, FILE *out) {
  switch (e->kind) {
  case IR_EXPR_NUM:
    if (e->is_int)
      fprintf(out, "%" PRId64, e->inum);
    else
      fprintf(out, "%.9g", e->num);
    return;
  case IR_EXPR_NAME: fputs(e->name, out); return;
  case IR_EXPR_ACCESS:
    fprintf(out, "%s[", e->name);
    for (int i = 0; i < e->nargs; i++) {
      if (i)
        fputs(", ", out);
      if (s && e->index)
        print_affine(&e->index[i], s, out);
      else
        ir_expr_print(e->args[i], s, out);
    }
    fputc(']', out);
    return;
  case IR_EXPR_OP: break;
  }
  int p = precedence(e);
  if (p == 4) {
    fprintf(out, "%s(", ir_op_spelling(e->op));
    for (int i = 0; i < e->nargs; i++) {
      if (i)
        fputs(", ", out);
      ir_expr_print(e->args[i], s, out);
    }
    fputc(')', out);
  } else if (e->op == IR_OP_NEG) {
    fputc('-', out);
    print_sub(e->args[0], s, 3, out);
  } else {
    print_sub(e->args[0], s, p, out);
    fprintf(out, " %s ", ir_op_spelling(e->op));
    print_sub(e->args[1], s, p + 1, out);
  }
}

static void print_tensor(const ir_tensor *t, FILE *out) {
  fprintf(out, "%s: f32[", t->name);
  for (int d = 0; d < t->rank; d++)
    fprintf(out, "%s%" PRId64, d ? ", " : "", t->dims[d]);
  fputc(']', out);
}

static void print_isl(const char *what, char *str, FILE *out) {
  fprintf(out, "    %-7s %s\n", what, str ? str : "(none)");
  free(str);
}

static void print_stmt(const ir_stmt *s, FILE *out) {
  static const char *const assign[] = {"=", "+=", "max="};
  fprintf(out, "  s%d%s%s: ", s->index, s->label ? " " : "", s->label ? s->label : "");
  ir_expr_print(s->lhs, s, out);
  fprintf(out, " %s ", assign[s->assign]);
  ir_expr_print(s->rhs, s, out);
  fputs(s->niters ? "\n    iters   " : "\n    iters   (none)", out);
  for (int i = 0; i < s->niters; i++)
    fprintf(out, "%s%s in %" PRId64 "..%" PRId64 "%s", i ? ", " : "", s->iters[i].name,
            s->iters[i].lo, s->iters[i].hi, s->iters[i].reduction ? " (reduction)" : "");
  fputc('\n', out);
  if (s->inits_target)
    fprintf(out, "    init    %s = %s before this statement\n", s->lhs->name,
            s->assign == IR_ASSIGN_ADD ? "0" : "-inf");
  fprintf(out, "    flops   %.0f\n", s->flops);
  if (!s->domain)
    return;
  print_isl("domain", isl_set_to_str(s->domain), out);
  print_isl("write", isl_map_to_str(s->write), out);
  for (int r = 0; r < s->nreads; r++)
    print_isl("read", isl_map_to_str(s->read[r]), out);
}

void ir_kernel_print(const ir_kernel *k, FILE *out) {
  fprintf(out, "kernel %s(", k->name);
  for (int i = 0; i < k->ninputs; i++) {
    fputs(i ? ", " : "", out);
    print_tensor(k->params.data[i], out);
  }
  fputs(") -> (", out);
  for (int i = k->ninputs; i < k->params.len; i++) {
    fputs(i > k->ninputs ? ", " : "", out);
    print_tensor(k->params.data[i], out);
  }
  fprintf(out, ") {    # %.0f flops\n", k->flops);
  for (int i = 0; i < k->locals.len; i++) {
    fputs("  local ", out);
    print_tensor(k->locals.data[i], out);
    fputc('\n', out);
  }
  for (int i = 0; i < k->stmts.len; i++)
    print_stmt(k->stmts.data[i], out);
  fputs("}\n", out);
}

void ir_program_print(const ir_program *p, FILE *out) {
  for (int i = 0; i < p->sizes.len; i++)
    fprintf(out, "size %s = %" PRId64 "%s\n", p->sizes.data[i]->name, p->sizes.data[i]->value,
            p->sizes.data[i]->overridden ? "    # -D" : "");
  for (int i = 0; i < p->kernels.len; i++) {
    if (i || p->sizes.len)
      fputc('\n', out);
    ir_kernel_print(p->kernels.data[i], out);
  }
}
