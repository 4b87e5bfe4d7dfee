/*
 * Diagnostics in gcc's format:
 *
 *   conv.bk:3:27: error: unknown tensor 'X'
 *       3 |   O[n, k] += X[n, c] * W[k, c]
 *         |              ^~~~~~~
 *
 * The caret marks the first byte of the location and '~' the rest of its range on that line.
 * Control characters of the source line print as spaces.
 * Diagnostics without a location (CLI options, the tuning DB) print as "brick: error: ...".
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

static const char *severity_name(bk_severity sev) {
  switch (sev) {
  case BK_SEV_NOTE: return "note";
  case BK_SEV_WARNING: return "warning";
  case BK_SEV_ERROR: return "error";
  }
  return "error";
}

/* Is "c" a UTF-8 continuation byte? It takes no column of its own on a terminal. */
static bool is_utf8_continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Append the source line of "loc" and a caret line under its range to "sb". The caret line
 * has one column per character (a tab stays a tab), so it lines up under UTF-8 text too. */
static void format_caret(bk_strbuf *sb, bk_loc loc) {
  int line, col;
  bk_source_line_col(loc.src, loc.offset, &line, &col);
  size_t len;
  const char *text = bk_source_line(loc.src, line, &len);
  char gutter[32];
  int gw = snprintf(gutter, sizeof gutter, "%5d", line);
  bk_strbuf_printf(sb, "%s | ", gutter);
  for (size_t i = 0; i < len; i++) /* control characters would garble the terminal */
    bk_strbuf_append(sb, (unsigned char)text[i] < 0x20 && text[i] != '\t' ? " " : text + i, 1);
  bk_strbuf_printf(sb, "\n%*s | ", gw, "");
  size_t start = (size_t)col - 1;
  for (size_t i = 0; i < start && i < len; i++)
    if (!is_utf8_continuation(text[i]))
      bk_strbuf_puts(sb, text[i] == '\t' ? "\t" : " ");
  bk_strbuf_puts(sb, "^");
  size_t end = start + (loc.len ? loc.len : 1);
  if (end > len)
    end = len > start ? len : start + 1;
  for (size_t i = start + 1; i < end; i++)
    if (!is_utf8_continuation(text[i]))
      bk_strbuf_puts(sb, "~");
  bk_strbuf_puts(sb, "\n");
}

void bk_diag_format(bk_strbuf *sb, bk_severity sev, bk_loc loc, const char *msg) {
  if (!loc.src) {
    bk_strbuf_printf(sb, "brick: %s: %s\n", severity_name(sev), msg);
    return;
  }
  int line, col;
  bk_source_line_col(loc.src, loc.offset, &line, &col);
  bk_strbuf_printf(sb, "%s:%d:%d: %s: %s\n", loc.src->name, line, col, severity_name(sev), msg);
  format_caret(sb, loc);
}

void bk_diag_init(bk_diag *d, bk_diag_sink *sink, void *user) {
  *d = (bk_diag){.sink = sink, .user = user};
}

/* Format message "msg" at "loc" and hand it to the sink of "d". */
static void emit(bk_diag *d, bk_severity sev, bk_loc loc, const char *msg) {
  bk_strbuf out;
  bk_strbuf_init(&out);
  bk_diag_format(&out, sev, loc, msg);
  if (d->sink)
    d->sink(d->user, sev, bk_strbuf_cstr(&out));
  else
    fputs(bk_strbuf_cstr(&out), stderr);
  bk_strbuf_release(&out);
}

void bk_diag_vreport(bk_diag *d, bk_severity sev, bk_loc loc, const char *fmt, va_list ap) {
  if (sev == BK_SEV_ERROR)
    d->nerrors++;
  else if (sev == BK_SEV_WARNING)
    d->nwarnings++;
  if (d->max_errors && d->nerrors > d->max_errors) {
    if (sev == BK_SEV_ERROR && d->nerrors == d->max_errors + 1) {
      bk_strbuf msg;
      bk_strbuf_init(&msg);
      bk_strbuf_printf(&msg, "more than %d errors; the rest are not shown", d->max_errors);
      emit(d, BK_SEV_NOTE, BK_NO_LOC, bk_strbuf_cstr(&msg));
      bk_strbuf_release(&msg);
    }
    return; /* the notes of an error not shown are not shown either */
  }
  bk_strbuf msg;
  bk_strbuf_init(&msg);
  bk_strbuf_vprintf(&msg, fmt, ap);
  emit(d, sev, loc, bk_strbuf_cstr(&msg));
  bk_strbuf_release(&msg);
}

void bk_diag_report(bk_diag *d, bk_severity sev, bk_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bk_diag_vreport(d, sev, loc, fmt, ap);
  va_end(ap);
}

void bk_diag_sink_strbuf(void *user, bk_severity sev, const char *text) {
  bk_strbuf_puts((bk_strbuf *)user, text);
}
