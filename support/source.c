/* The source manager: texts in memory, their names, and a line table for line:col lookups. */
#include "support.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (!p)
    abort();
  return memcpy(p, s, n + 1);
}

bk_source *bk_source_new(const char *name, const char *text, size_t len) {
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 byte order mark */
    text += 3;
    len -= 3;
  }
  bk_source *s = calloc(1, sizeof(*s));
  if (!s)
    abort();
  s->name = xstrdup(name);
  s->text = malloc(len + 1);
  if (!s->text)
    abort();
  memcpy(s->text, text, len);
  s->text[len] = '\0';
  s->len = len;
  int cap = 16;
  s->line_start = malloc(sizeof(size_t) * (size_t)cap);
  if (!s->line_start)
    abort();
  s->line_start[s->nlines++] = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '\n')
      continue;
    if (s->nlines == cap) {
      cap *= 2;
      s->line_start = realloc(s->line_start, sizeof(size_t) * (size_t)cap);
      if (!s->line_start)
        abort();
    }
    s->line_start[s->nlines++] = i + 1;
  }
  return s;
}

bk_source *bk_source_read_file(const char *path) {
  if (strcmp(path, "-") == 0)
    return bk_source_read_stream(stdin, "<stdin>");
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  bk_source *s = bk_source_read_stream(f, path);
  int err = errno;
  fclose(f);
  errno = err;
  return s;
}

bk_source *bk_source_read_stream(FILE *f, const char *name) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  char buf[65536];
  size_t n;
  bool big = false;
  while (!big && (n = fread(buf, 1, sizeof buf, f)) > 0) {
    bk_strbuf_append(&sb, buf, n);
    big = sb.len > BK_SOURCE_MAX_BYTES; /* /dev/zero, say; locations are 32-bit offsets */
  }
  int err = big ? EFBIG : ferror(f) ? (errno ? errno : EIO) : 0;
  if (err) {
    bk_strbuf_release(&sb);
    errno = err;
    return NULL;
  }
  bk_source *s = bk_source_new(name, bk_strbuf_cstr(&sb), sb.len);
  bk_strbuf_release(&sb);
  return s;
}

void bk_source_free(bk_source *src) {
  if (!src)
    return;
  free(src->name);
  free(src->text);
  free(src->line_start);
  free(src);
}

void bk_source_line_col(const bk_source *src, size_t offset, int *line, int *col) {
  int lo = 0, hi = src->nlines - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (src->line_start[mid] <= offset)
      lo = mid;
    else
      hi = mid - 1;
  }
  *line = lo + 1;
  *col = (int)(offset - src->line_start[lo]) + 1;
}

const char *bk_source_line(const bk_source *src, int line, size_t *len) {
  size_t start = src->line_start[line - 1];
  size_t end = line < src->nlines ? src->line_start[line] - 1 : src->len;
  if (end > start && src->text[end - 1] == '\r')
    end--;
  *len = end - start;
  return src->text + start;
}

bk_loc bk_loc_join(bk_loc a, bk_loc b) {
  if (!a.src)
    return b;
  if (!b.src)
    return a;
  uint32_t lo = a.offset < b.offset ? a.offset : b.offset;
  uint32_t ea = a.offset + a.len, eb = b.offset + b.len;
  uint32_t hi = ea > eb ? ea : eb;
  return (bk_loc){a.src, lo, hi - lo};
}
