/* Growable, always NUL-terminated strings on the malloc heap. */
#include "support.h"

#include <stdlib.h>
#include <string.h>

void bk_strbuf_init(bk_strbuf *sb) { *sb = (bk_strbuf){0}; }

void bk_strbuf_release(bk_strbuf *sb) {
  free(sb->data);
  *sb = (bk_strbuf){0};
}

static void reserve(bk_strbuf *sb, size_t extra) {
  if (sb->len + extra + 1 <= sb->cap)
    return;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + extra + 1)
    cap *= 2;
  char *p = realloc(sb->data, cap);
  if (!p)
    abort();
  sb->data = p;
  sb->cap = cap;
}

void bk_strbuf_append(bk_strbuf *sb, const char *s, size_t n) {
  reserve(sb, n);
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
}

void bk_strbuf_puts(bk_strbuf *sb, const char *s) { bk_strbuf_append(sb, s, strlen(s)); }

void bk_strbuf_vprintf(bk_strbuf *sb, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  reserve(sb, (size_t)n);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  sb->len += (size_t)n;
}

void bk_strbuf_printf(bk_strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bk_strbuf_vprintf(sb, fmt, ap);
  va_end(ap);
}

char *bk_strbuf_take(bk_strbuf *sb) {
  char *p = sb->data;
  if (!p) {
    p = malloc(1);
    if (!p)
      abort();
    p[0] = '\0';
  }
  *sb = (bk_strbuf){0};
  return p;
}

void bk_strbuf_clear(bk_strbuf *sb) {
  sb->len = 0;
  if (sb->data)
    sb->data[0] = '\0';
}

const char *bk_strbuf_cstr(const bk_strbuf *sb) { return sb->data ? sb->data : ""; }
