/*
 * The lexer turns a whole source into an array of tokens up front. Newlines are tokens, but
 * only where they end a statement: inside () or [] and after a binary operator, an assignment,
 * ',', '->' or '..' they are dropped, so expressions and kernel headers may span lines.
 * '#' starts a comment to the end of the line. `max=` is one token (the reduction assignment);
 * `max(` is an ordinary identifier followed by '('.
 */
#include "frontend.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
  bk_arena *arena;
  const bk_source *src;
  size_t pos;
  int depth; /* nesting of () and [] */
  fe_tokens toks;
} lexer;

const char *fe_token_kind_name(fe_token_kind kind) {
  static const char *const names[] = {
      [TK_EOF] = "end of file", [TK_NEWLINE] = "end of line", [TK_IDENT] = "identifier",
      [TK_INT] = "integer",     [TK_FLOAT] = "number",        [TK_LPAREN] = "'('",
      [TK_RPAREN] = "')'",      [TK_LBRACKET] = "'['",        [TK_RBRACKET] = "']'",
      [TK_LBRACE] = "'{'",      [TK_RBRACE] = "'}'",          [TK_COMMA] = "','",
      [TK_COLON] = "':'",       [TK_SEMI] = "';'",            [TK_ARROW] = "'->'",
      [TK_DOTDOT] = "'..'",     [TK_PLUS] = "'+'",            [TK_MINUS] = "'-'",
      [TK_STAR] = "'*'",        [TK_SLASH] = "'/'",           [TK_ASSIGN] = "'='",
      [TK_PLUS_ASSIGN] = "'+='", [TK_MAX_ASSIGN] = "'max='",
  };
  return names[kind];
}

static bk_loc loc_at(const lexer *L, size_t start, size_t end) {
  return (bk_loc){L->src, (uint32_t)start, (uint32_t)(end - start)};
}

static void push(lexer *L, fe_token t) { bk_vec_push(L->arena, &L->toks, t); }

/* Record an error at "loc", to be reported before the next token is parsed. */
static void lex_error(lexer *L, bk_loc loc, const char *fmt, ...) BK_PRINTF(3, 4);
static void lex_error(lexer *L, bk_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  bk_strbuf_vprintf(&sb, fmt, ap);
  va_end(ap);
  fe_lex_error e = {L->toks.len, loc, bk_arena_strdup(L->arena, bk_strbuf_cstr(&sb))};
  bk_strbuf_release(&sb);
  bk_vec_push(L->arena, &L->toks.errors, e);
}

/* Does a newline after a token of "kind" continue the statement? */
static bool continues_line(fe_token_kind kind) {
  switch (kind) {
  case TK_PLUS: case TK_MINUS: case TK_STAR: case TK_SLASH: case TK_COMMA:
  case TK_ASSIGN: case TK_PLUS_ASSIGN: case TK_MAX_ASSIGN: case TK_ARROW: case TK_DOTDOT:
    return true;
  default:
    return false;
  }
}

static void lex_newline(lexer *L, size_t start) {
  if (L->depth > 0 || L->toks.len == 0)
    return;
  fe_token_kind prev = L->toks.data[L->toks.len - 1].kind;
  if (prev == TK_NEWLINE || continues_line(prev))
    return;
  push(L, (fe_token){.kind = TK_NEWLINE, .loc = loc_at(L, start, start + 1)});
}

/* number := digits ['.' digits] [('e'|'E') ['+'|'-'] digits] ['f'] | '.' digits ... */
static void lex_number(lexer *L) {
  const char *s = L->src->text;
  size_t start = L->pos, p = L->pos;
  bool is_float = false;
  while (isdigit((unsigned char)s[p]))
    p++;
  if (s[p] == '.' && s[p + 1] != '.') {
    is_float = true;
    p++;
    while (isdigit((unsigned char)s[p]))
      p++;
  }
  if ((s[p] == 'e' || s[p] == 'E') &&
      (isdigit((unsigned char)s[p + 1]) ||
       ((s[p + 1] == '+' || s[p + 1] == '-') && isdigit((unsigned char)s[p + 2])))) {
    is_float = true;
    p += 2;
    while (isdigit((unsigned char)s[p]))
      p++;
  }
  fe_token t = {.kind = is_float ? TK_FLOAT : TK_INT, .loc = loc_at(L, start, p)};
  char *text = bk_arena_strndup(L->arena, s + start, p - start);
  if (s[p] == 'f' && is_float)
    p++;
  errno = 0;
  if (is_float) {
    t.fval = strtod(text, NULL);
  } else {
    t.ival = strtoll(text, NULL, 10);
    t.fval = (double)t.ival;
    if (errno == ERANGE || t.ival > ((int64_t)1 << 40))
      lex_error(L, t.loc, "integer literal '%s' is too large", text);
  }
  if (isalpha((unsigned char)s[p]) || s[p] == '_') {
    size_t e = p;
    while (isalnum((unsigned char)s[e]) || s[e] == '_')
      e++;
    lex_error(L, loc_at(L, start, e), "invalid suffix '%.*s' on number", (int)(e - p), s + p);
    p = e;
  }
  t.loc = loc_at(L, start, p);
  L->pos = p;
  push(L, t);
}

static void lex_ident(lexer *L) {
  const char *s = L->src->text;
  size_t start = L->pos, p = L->pos;
  while (isalnum((unsigned char)s[p]) || s[p] == '_')
    p++;
  L->pos = p;
  if (p - start == 3 && memcmp(s + start, "max", 3) == 0 && s[p] == '=' && s[p + 1] != '=') {
    L->pos = p + 1;
    push(L, (fe_token){.kind = TK_MAX_ASSIGN, .loc = loc_at(L, start, p + 1)});
    return;
  }
  push(L, (fe_token){.kind = TK_IDENT, .loc = loc_at(L, start, p),
                     .text = bk_arena_strndup(L->arena, s + start, p - start)});
}

/* Punctuation: the two-character tokens first. Returns false for a stray character. */
static bool lex_punct(lexer *L) {
  static const struct { const char *s; fe_token_kind k; int depth; } table[] = {
      {"->", TK_ARROW, 0}, {"..", TK_DOTDOT, 0}, {"+=", TK_PLUS_ASSIGN, 0},
      {"(", TK_LPAREN, 1}, {")", TK_RPAREN, -1}, {"[", TK_LBRACKET, 1}, {"]", TK_RBRACKET, -1},
      {"{", TK_LBRACE, 0}, {"}", TK_RBRACE, 0}, {",", TK_COMMA, 0},      {":", TK_COLON, 0},
      {";", TK_SEMI, 0},   {"+", TK_PLUS, 0},   {"-", TK_MINUS, 0},      {"*", TK_STAR, 0},
      {"/", TK_SLASH, 0},  {"=", TK_ASSIGN, 0},
  };
  const char *s = L->src->text + L->pos;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    size_t n = strlen(table[i].s);
    if (strncmp(s, table[i].s, n) != 0)
      continue;
    push(L, (fe_token){.kind = table[i].k, .loc = loc_at(L, L->pos, L->pos + n)});
    L->pos += n;
    L->depth += table[i].depth;
    if (L->depth < 0)
      L->depth = 0;
    if (table[i].k == TK_LBRACE || table[i].k == TK_RBRACE)
      L->depth = 0; /* braces reset nesting so one unbalanced '(' does not eat a kernel */
    return true;
  }
  return false;
}

static void lex_stray(lexer *L) {
  const unsigned char c = (unsigned char)L->src->text[L->pos];
  size_t n = 1;
  if (c == '%') { /* C's modulo: the likeliest stray character, and it deserves a word */
    lex_error(L, loc_at(L, L->pos, L->pos + 1), "'%%' (modulo) is not supported in brick's "
              "language");
    L->pos++;
    return;
  }
  while (c >= 0x80 && (L->src->text[L->pos + n] & 0xC0) == 0x80)
    n++; /* one whole UTF-8 sequence */
  if (isprint(c) || (n > 1 && c >= 0xC2 && c <= 0xF4)) /* ASCII, or a whole UTF-8 character */
    lex_error(L, loc_at(L, L->pos, L->pos + n), "stray '%.*s' in program", (int)n,
              L->src->text + L->pos);
  else
    lex_error(L, loc_at(L, L->pos, L->pos + 1), "stray byte 0x%02x in program", c);
  L->pos += n;
}

fe_tokens fe_lex(bk_arena *arena, const bk_source *src) {
  lexer L = {.arena = arena, .src = src};
  const char *s = src->text;
  while (L.pos < src->len) {
    char c = s[L.pos];
    if (c == '\n') {
      lex_newline(&L, L.pos++);
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      L.pos++;
    } else if (c == '#') {
      while (L.pos < src->len && s[L.pos] != '\n')
        L.pos++;
    } else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[L.pos + 1]))) {
      lex_number(&L);
    } else if (isalpha((unsigned char)c) || c == '_') {
      lex_ident(&L);
    } else if (c == '\0' || !lex_punct(&L)) {
      lex_stray(&L);
    }
  }
  lex_newline(&L, src->len);
  size_t end = src->len; /* end of file: shown at the end of the last line that is not blank */
  while (end > 0 && isspace((unsigned char)s[end - 1]))
    end--;
  push(&L, (fe_token){.kind = TK_EOF, .loc = loc_at(&L, end, end)});
  return L.toks;
}
