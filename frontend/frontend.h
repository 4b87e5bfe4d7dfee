/*
 * frontend: the lexer and the recursive-descent parser of the .bk language (DESIGN.md,
 * "The language"). The parser builds the program through ir/'s builder, then has ir/ check
 * each kernel; every problem is reported through the program's diagnostics.
 *
 * - lexer.c:  tokens, with newline handling (a newline ends a statement except inside () or
 *             [] and after a binary operator or ',').
 * - parser.c: the grammar, error recovery at statement boundaries.
 */
#ifndef BRICK_FRONTEND_H
#define BRICK_FRONTEND_H

#include "ir.h"

/* ---- lexer.c ---------------------------------------------------------------- */

typedef enum fe_token_kind {
  TK_EOF,
  TK_NEWLINE,
  TK_IDENT,
  TK_INT,
  TK_FLOAT,
  TK_LPAREN,
  TK_RPAREN,
  TK_LBRACKET,
  TK_RBRACKET,
  TK_LBRACE,
  TK_RBRACE,
  TK_COMMA,
  TK_COLON,
  TK_SEMI,
  TK_ARROW,
  TK_DOTDOT,
  TK_PLUS,
  TK_MINUS,
  TK_STAR,
  TK_SLASH,
  TK_ASSIGN,
  TK_PLUS_ASSIGN,
  TK_MAX_ASSIGN,
} fe_token_kind;

typedef struct fe_token {
  fe_token_kind kind;
  bk_loc loc;
  const char *text; /* identifiers: NUL-terminated copy in the arena */
  double fval;
  int64_t ival;
} fe_token;

/* A lexical error, held back until the parser reaches token "before" (the token that follows
 * the bad characters, or the bad number itself), so that diagnostics come out in source order. */
typedef struct fe_lex_error {
  int before;
  bk_loc loc;
  const char *msg;
} fe_lex_error;

typedef struct fe_tokens {
  fe_token *data;
  int len, cap;
  BK_VEC(fe_lex_error) errors; /* in source order */
} fe_tokens;

/* Split "src" into tokens (always ending in TK_EOF) and lexical errors. */
fe_tokens fe_lex(bk_arena *arena, const bk_source *src);
/* How a token of "kind" reads in a message: "'('", "end of line", ... */
const char *fe_token_kind_name(fe_token_kind kind);

/* ---- parser.c --------------------------------------------------------------- */

/* Parse "src" into "p" and check every kernel. True when there was no error. */
bool fe_parse(ir_program *p, const bk_source *src);

#endif
