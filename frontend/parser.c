/*
 * Recursive-descent parser for the .bk language. Grammar (EBNF; END is a newline or ';'):
 *
 *   program  = { END | size | kernel } EOF
 *   size     = "size" IDENT "=" expr END
 *   kernel   = "kernel" IDENT "(" [params] ")" "->" "(" [params] ")" "{" { END | local | stmt } "}"
 *   params   = param { "," param }
 *   param    = IDENT ":" type
 *   type     = "f32" "[" [ expr { "," expr } ] "]"
 *   local    = "local" IDENT ":" type END
 *   stmt     = [ IDENT ":" ] access ( "=" | "+=" | "max=" ) expr [ where ] END
 *   where    = "where" range { "," range }
 *   range    = IDENT "in" expr ".." expr
 *   expr     = term { ("+" | "-") term }
 *   term     = unary { ("*" | "/") unary }
 *   unary    = "-" unary | primary
 *   primary  = NUMBER | IDENT | access | IDENT "(" [ expr { "," expr } ] ")" | "(" expr ")"
 *   access   = IDENT "[" [ expr { "," expr } ] "]"
 *
 * The parser builds IR through ir/'s builder as it goes. On a syntax error it reports, skips
 * to the end of the statement (or, at the top level, to the next "size"/"kernel"), and goes on,
 * so one run reports several errors. A kernel is checked by ir/ only if it parsed cleanly.
 */
#include "frontend.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct parser {
  ir_program *p;
  bk_diag *diag;
  fe_token *tok;
  int pos, len;
  const fe_tokens *toks;
  int next_lex_error; /* the first lexical error not yet reported */
  int lex_error_tok;  /* the token that follows the last reported lexical error */
  int nesting;        /* of parentheses, brackets and unary minus in the current expression */
  int nops;           /* operations in the current declaration or statement */
  bool failed;        /* the current statement or declaration has a syntax error */
} parser;

#define MAX_LIST 64
#define MAX_NESTING 256
#define MAX_OPS 10000

static fe_token *peek(parser *P) { return &P->tok[P->pos]; }
static fe_token *peek2(parser *P) {
  return &P->tok[P->pos + 1 < P->len ? P->pos + 1 : P->pos];
}
static bool at(parser *P, fe_token_kind k) { return peek(P)->kind == k; }
static bool at_word(parser *P, const char *w) {
  return at(P, TK_IDENT) && strcmp(peek(P)->text, w) == 0;
}

/* Report the lexical errors that come before the current token. */
static void flush_lex_errors(parser *P) {
  while (P->next_lex_error < P->toks->errors.len &&
         P->toks->errors.data[P->next_lex_error].before <= P->pos) {
    const fe_lex_error *e = &P->toks->errors.data[P->next_lex_error++];
    bk_error(P->diag, e->loc, "%s", e->msg);
    P->lex_error_tok = e->before;
  }
}

static fe_token *advance(parser *P) {
  fe_token *t = peek(P);
  if (t->kind != TK_EOF)
    P->pos++;
  flush_lex_errors(P);
  return t;
}

static bool accept(parser *P, fe_token_kind k) {
  if (!at(P, k))
    return false;
  advance(P);
  return true;
}

/* Is there a line break between the end of "a" and the start of "b"? */
static bool lines_apart(bk_loc a, bk_loc b) {
  size_t end = (size_t)a.offset + a.len;
  return b.offset > end && memchr(a.src->text + end, '\n', b.offset - end) != NULL;
}

/* Report "expected WHAT" at the current token, once per statement, and not right after a
 * lexical error (the dropped characters are the likely cause). When the current token starts
 * a later line (the line break was swallowed inside brackets or after an operator), the
 * problem is at the end of the previous line, so report it there. Returns the location
 * reported at, or BK_NO_LOC if nothing was reported. */
static bk_loc expected(parser *P, const char *what) {
  if (P->failed || P->pos == P->lex_error_tok) {
    P->failed = true;
    return BK_NO_LOC;
  }
  P->failed = true;
  fe_token *t = peek(P), *prev = &P->tok[P->pos > 0 ? P->pos - 1 : 0];
  if (t->kind != TK_EOF && P->pos > 0 && prev->kind != TK_NEWLINE &&
      lines_apart(prev->loc, t->loc)) {
    bk_loc end = {prev->loc.src, prev->loc.offset + prev->loc.len, 0};
    bk_error(P->diag, end, "expected %s at the end of this line", what);
    return end;
  }
  if (t->kind == TK_IDENT)
    bk_error(P->diag, t->loc, "expected %s, found '%s'", what, t->text);
  else if (t->kind == TK_INT || t->kind == TK_FLOAT)
    bk_error(P->diag, t->loc, "expected %s, found number '%.*s'", what, (int)t->loc.len,
             t->loc.src->text + t->loc.offset);
  else
    bk_error(P->diag, t->loc, "expected %s, found %s", what, fe_token_kind_name(t->kind));
  return t->loc;
}

/* Report a missing closing bracket "what"; point at the opening one "open" too if it is on
 * another line. */
static void expected_closing(parser *P, const char *what, const fe_token *open) {
  bk_loc at = expected(P, what);
  if (at.src && lines_apart(open->loc, at))
    bk_note(P->diag, open->loc, "to match this %s", fe_token_kind_name(open->kind));
}

static fe_token *expect(parser *P, fe_token_kind k, const char *what) {
  if (at(P, k))
    return advance(P);
  (void)expected(P, what);
  return NULL;
}

static void skip_newlines(parser *P) {
  while (at(P, TK_NEWLINE))
    advance(P);
}

/* Skip to the end of the current statement (not past a '}'). */
static void sync_stmt(parser *P) {
  while (!at(P, TK_EOF) && !at(P, TK_NEWLINE) && !at(P, TK_SEMI) && !at(P, TK_RBRACE))
    advance(P);
  P->failed = false;
}

static bk_loc prev_loc(parser *P) { return P->tok[P->pos > 0 ? P->pos - 1 : 0].loc; }

/* ---- expressions -------------------------------------------------------------- */

static ir_expr *parse_expr(parser *P);

/* "(" or "[" already consumed: parse a comma list up to "close" into "out". */
static int parse_list(parser *P, fe_token_kind close, const char *what, ir_expr **out) {
  const fe_token *open = &P->tok[P->pos - 1];
  int n = 0;
  if (accept(P, close))
    return 0;
  for (;;) {
    ir_expr *e = parse_expr(P);
    if (!e)
      return -1;
    if (n == MAX_LIST && strcmp(what, "dimensions") == 0) { /* not the list's limit: a rank's */
      bk_error(P->diag, e->loc, "too many dimensions (a tensor has at most %d)", IR_MAX_RANK);
      P->failed = true;
      return -1;
    }
    if (n == MAX_LIST) {
      bk_error(P->diag, e->loc, "too many %s (at most %d)", what, MAX_LIST);
      P->failed = true;
      return -1;
    }
    out[n++] = e;
    if (accept(P, close))
      return n;
    if (!accept(P, TK_COMMA)) {
      expected_closing(P, close == TK_RBRACKET ? "',' or ']'" : "',' or ')'", open);
      return -1;
    }
  }
}

/* Count one more operation; false (reported) when the expression has too many. */
static bool count_op(parser *P, bk_loc loc) {
  if (++P->nops <= MAX_OPS)
    return true;
  if (!P->failed)
    bk_error(P->diag, loc, "expression is too long (more than %d operations)", MAX_OPS);
  P->failed = true;
  return false;
}

/* A call of a built-in function: the name is known and the argument count right. */
static ir_expr *parse_call(parser *P, fe_token *name) {
  ir_expr *args[MAX_LIST];
  int n = parse_list(P, TK_RPAREN, "arguments", args);
  if (n < 0)
    return NULL;
  bk_loc loc = bk_loc_join(name->loc, prev_loc(P));
  if (!count_op(P, name->loc))
    return NULL;
  int op = ir_op_lookup_function(name->text);
  if (op < 0) {
    bk_error(P->diag, name->loc, "unknown function '%s'", name->text);
    bk_note(P->diag, name->loc, "the functions are relu, sigmoid, tanh, exp, sqrt, max, min");
    P->failed = true;
    return NULL;
  }
  if (n != ir_op_arity(op)) {
    bk_error(P->diag, loc, "'%s' takes %d argument%s, but %d %s given", name->text,
             ir_op_arity(op), ir_op_arity(op) == 1 ? "" : "s", n, n == 1 ? "was" : "were");
    P->failed = true;
    return NULL;
  }
  return ir_expr_op(P->p, loc, (ir_op)op, args, n);
}

static ir_expr *parse_access_rest(parser *P, fe_token *name) {
  ir_expr *idx[MAX_LIST];
  int n = parse_list(P, TK_RBRACKET, "indices", idx);
  if (n < 0)
    return NULL;
  return ir_expr_access(P->p, bk_loc_join(name->loc, prev_loc(P)), name->text, idx, n);
}

/* primary = NUMBER | IDENT | access | call | "(" expr ")" */
static ir_expr *parse_primary(parser *P) {
  fe_token *t = peek(P);
  /* values are f32: the interpreter computes with the literal as the kernel does */
  if (accept(P, TK_INT))
    return ir_expr_num(P->p, t->loc, (double)(float)t->ival, true, t->ival);
  if (accept(P, TK_FLOAT)) {
    bool big = isinf((float)t->fval); /* what rounds to FLT_MAX, as in C, is fine */
    if (big) /* reported; parsing goes on with the number as 0 */
      bk_error(P->diag, t->loc, "number '%.*s' is out of the range of f32 (at most %.9g)",
               (int)t->loc.len, t->loc.src->text + t->loc.offset, (double)FLT_MAX);
    return ir_expr_num(P->p, t->loc, big ? 0.0 : (double)(float)t->fval, false, 0);
  }
  if (accept(P, TK_LPAREN)) {
    ir_expr *e = parse_expr(P);
    if (e && !accept(P, TK_RPAREN)) {
      expected_closing(P, "')'", t);
      return NULL;
    }
    return e;
  }
  if (!at(P, TK_IDENT) || at_word(P, "size") || at_word(P, "kernel") || at_word(P, "where")) {
    expected(P, "an expression"); /* the keywords: most likely a dangling operator before */
    return NULL;
  }
  advance(P);
  if (accept(P, TK_LBRACKET))
    return parse_access_rest(P, t);
  if (accept(P, TK_LPAREN))
    return parse_call(P, t);
  return ir_expr_name(P->p, t->loc, t->text);
}

static ir_expr *parse_unary_nested(parser *P);

/* unary = "-" unary | primary; every nested expression passes through here. */
static ir_expr *parse_unary(parser *P) {
  if (P->nesting == MAX_NESTING) {
    if (!P->failed)
      bk_error(P->diag, peek(P)->loc, "expression is nested too deeply (more than %d levels)",
               MAX_NESTING);
    P->failed = true;
    return NULL;
  }
  P->nesting++;
  ir_expr *e = parse_unary_nested(P);
  P->nesting--;
  return e;
}

static ir_expr *parse_unary_nested(parser *P) {
  fe_token *t = peek(P);
  if (!accept(P, TK_MINUS))
    return parse_primary(P);
  ir_expr *e = parse_unary(P);
  if (!e)
    return NULL;
  if (e->kind == IR_EXPR_NUM)
    return ir_expr_num(P->p, bk_loc_join(t->loc, e->loc), -e->num, e->is_int, -e->inum);
  if (!count_op(P, t->loc))
    return NULL;
  return ir_expr_op(P->p, bk_loc_join(t->loc, e->loc), IR_OP_NEG, &e, 1);
}

/* Left-associative binary level: "sub" operands joined by "k1"/"k2" (ops "o1"/"o2"). */
static ir_expr *parse_binary(parser *P, ir_expr *(*sub)(parser *), fe_token_kind k1, ir_op o1,
                             fe_token_kind k2, ir_op o2) {
  ir_expr *lhs = sub(P);
  while (lhs && (at(P, k1) || at(P, k2))) {
    fe_token *op_tok = advance(P);
    ir_op op = op_tok->kind == k1 ? o1 : o2;
    ir_expr *rhs = sub(P);
    if (!rhs || !count_op(P, op_tok->loc))
      return NULL;
    ir_expr *args[2] = {lhs, rhs};
    lhs = ir_expr_op(P->p, bk_loc_join(lhs->loc, rhs->loc), op, args, 2);
  }
  return lhs;
}

static ir_expr *parse_term(parser *P) {
  return parse_binary(P, parse_unary, TK_STAR, IR_OP_MUL, TK_SLASH, IR_OP_DIV);
}

static ir_expr *parse_expr(parser *P) {
  return parse_binary(P, parse_term, TK_PLUS, IR_OP_ADD, TK_MINUS, IR_OP_SUB);
}

/* ---- declarations ---------------------------------------------------------------- */

/* END: a newline or ';' (a '}' or end of file also ends the last statement). */
static void expect_end(parser *P) {
  if (at(P, TK_NEWLINE) || at(P, TK_SEMI))
    advance(P);
  else if (!at(P, TK_RBRACE) && !at(P, TK_EOF))
    expected(P, "end of statement");
}

/* type = "f32" "[" [ expr { "," expr } ] "]"; returns the rank, -1 on error. */
static int parse_type(parser *P, ir_expr **dims) {
  fe_token *t = peek(P);
  if (!accept(P, TK_IDENT)) {
    expected(P, "an element type such as 'f32'");
    return -1;
  }
  if (strcmp(t->text, "f32") != 0) {
    bk_error(P->diag, t->loc, "unsupported element type '%s'; only f32 is supported", t->text);
    P->failed = true;
    return -1;
  }
  if (!expect(P, TK_LBRACKET, "'[' after 'f32'"))
    return -1;
  return parse_list(P, TK_RBRACKET, "dimensions", dims);
}

/* param = IDENT ":" type, declared in "k" with "role". */
static bool parse_tensor_decl(parser *P, ir_kernel *k, ir_role role) {
  P->nops = 0;
  fe_token *name = expect(P, TK_IDENT, "a tensor name");
  if (!name || !expect(P, TK_COLON, "':' after the tensor name"))
    return false;
  ir_expr *dims[MAX_LIST];
  int rank = parse_type(P, dims);
  if (rank < 0)
    return false;
  ir_kernel_add_tensor(P->p, k, name->loc, name->text, role, dims, rank);
  return true;
}

/* "(" [params] ")" */
static bool parse_params(parser *P, ir_kernel *k, ir_role role) {
  skip_newlines(P);
  if (!expect(P, TK_LPAREN, role == IR_ROLE_INPUT ? "'(' before the inputs"
                                                  : "'(' before the outputs"))
    return false;
  if (accept(P, TK_RPAREN))
    return true;
  do {
    if (!parse_tensor_decl(P, k, role))
      return false;
  } while (accept(P, TK_COMMA));
  return expect(P, TK_RPAREN, "',' or ')'") != NULL;
}

/* size = "size" IDENT "=" expr END */
static void parse_size(parser *P) {
  P->nops = 0;
  advance(P);
  fe_token *name = expect(P, TK_IDENT, "a size name");
  ir_expr *e = NULL;
  if (name && expect(P, TK_ASSIGN, "'=' after the size name"))
    e = parse_expr(P);
  if (e)
    expect_end(P);
  if (e && !P->failed)
    ir_program_add_size(P->p, name->loc, name->text, e);
}

/* ---- statements ---------------------------------------------------------------------- */

/* range = IDENT "in" expr ".." expr */
static bool parse_range(parser *P, ir_stmt *s) {
  fe_token *name = expect(P, TK_IDENT, "an iterator name after 'where'");
  if (!name)
    return false;
  if (!at_word(P, "in")) {
    expected(P, "'in'");
    return false;
  }
  advance(P);
  ir_expr *lo = parse_expr(P);
  if (!lo || !expect(P, TK_DOTDOT, "'..' in the range"))
    return false;
  ir_expr *hi = parse_expr(P);
  if (!hi)
    return false;
  ir_stmt_add_where(P->p, s, bk_loc_join(name->loc, hi->loc), name->text, lo, hi);
  return true;
}

static bool parse_assign_op(parser *P, ir_assign *op) {
  if (accept(P, TK_ASSIGN))
    *op = IR_ASSIGN_SET;
  else if (accept(P, TK_PLUS_ASSIGN))
    *op = IR_ASSIGN_ADD;
  else if (accept(P, TK_MAX_ASSIGN))
    *op = IR_ASSIGN_MAX;
  else {
    expected(P, "'=', '+=' or 'max='");
    return false;
  }
  return true;
}

/* stmt = [ IDENT ":" ] access ( "=" | "+=" | "max=" ) expr [ where ] END */
static void parse_stmt(parser *P, ir_kernel *k) {
  const char *label = NULL;
  P->nops = 0;
  fe_token *first = peek(P);
  if (at(P, TK_IDENT) && peek2(P)->kind == TK_COLON) {
    label = advance(P)->text;
    advance(P);
    if (at_word(P, "f32") && peek2(P)->kind == TK_LBRACKET) { /* "T: f32[...]" */
      bk_error(P->diag, first->loc, "missing 'local' before the declaration of '%s'", label);
      P->failed = true;
      return;
    }
  }
  fe_token *name = expect(P, TK_IDENT, "a statement");
  if (!name || !expect(P, TK_LBRACKET, "'[' after the tensor name"))
    return;
  ir_expr *lhs = parse_access_rest(P, name);
  ir_assign op;
  if (!lhs || !parse_assign_op(P, &op))
    return;
  bk_loc op_loc = prev_loc(P);
  ir_expr *rhs = parse_expr(P);
  if (!rhs)
    return;
  ir_stmt *s = ir_kernel_add_stmt(P->p, k, bk_loc_join(first->loc, rhs->loc), label, lhs, op,
                                  op_loc, rhs);
  if (at_word(P, "where")) {
    advance(P);
    do {
      if (!parse_range(P, s))
        return;
    } while (accept(P, TK_COMMA));
  }
  expect_end(P);
}

/* The body of a kernel up to its "}". */
static void parse_body(parser *P, ir_kernel *k) {
  while (!at(P, TK_RBRACE) && !at(P, TK_EOF)) {
    if (accept(P, TK_NEWLINE) || accept(P, TK_SEMI))
      continue;
    if (at_word(P, "local") && (peek2(P)->kind == TK_IDENT || peek2(P)->kind == TK_COLON)) {
      advance(P);
      if (parse_tensor_decl(P, k, IR_ROLE_LOCAL))
        expect_end(P);
    } else if (at_word(P, "kernel") || at_word(P, "size")) {
      return; /* a missing '}': parse_kernel reports it */
    } else {
      parse_stmt(P, k);
    }
    if (P->failed)
      sync_stmt(P);
  }
}

/* kernel = "kernel" IDENT "(" [params] ")" "->" "(" [params] ")" "{" body "}" */
static bool parse_kernel(parser *P) {
  int errors = P->diag->nerrors;
  advance(P);
  fe_token *name = expect(P, TK_IDENT, "a kernel name");
  if (!name)
    return false;
  ir_kernel *k = ir_kernel_new(P->p, name->loc, name->text);
  if (!parse_params(P, k, IR_ROLE_INPUT))
    return false;
  skip_newlines(P);
  if (!expect(P, TK_ARROW, "'->' before the outputs") || !parse_params(P, k, IR_ROLE_OUTPUT))
    return false;
  skip_newlines(P);
  fe_token *lbrace = expect(P, TK_LBRACE, "'{' to open the kernel body");
  if (!lbrace)
    return false;
  parse_body(P, k);
  if (!at(P, TK_RBRACE)) {
    if (expected(P, "'}' to close the kernel").src)
      bk_note(P->diag, lbrace->loc, "to match this '{'");
    return false;
  }
  advance(P);
  if (P->diag->nerrors == errors)
    ir_kernel_check(P->p, k);
  return true;
}

/* Skip to the next top-level declaration. */
static void sync_top(parser *P) {
  while (!at(P, TK_EOF) && !at_word(P, "kernel") && !at_word(P, "size"))
    advance(P);
  P->failed = false;
}

bool fe_parse(ir_program *p, const bk_source *src) {
  int errors0 = p->diag->nerrors;
  fe_tokens toks = fe_lex(p->arena, src);
  parser P = {.p = p, .diag = p->diag, .tok = toks.data, .len = toks.len, .toks = &toks,
              .lex_error_tok = -1};
  flush_lex_errors(&P);
  while (!at(&P, TK_EOF)) {
    if (accept(&P, TK_NEWLINE) || accept(&P, TK_SEMI))
      continue;
    if (at_word(&P, "size")) {
      parse_size(&P);
    } else if (at_word(&P, "kernel")) {
      if (!parse_kernel(&P))
        P.failed = true;
    } else {
      expected(&P, "'size' or 'kernel'");
    }
    if (P.failed)
      sync_top(&P); /* parse_size and parse_kernel consume their keyword: this progresses */
  }
  if (p->diag->nerrors == errors0)
    ir_program_build_isl(p);
  return p->diag->nerrors == errors0;
}
