/*
 * support: the bottom of brick. Every module may use it; it uses nothing of brick.
 *
 * - arena.c:  bump allocator owned by one compilation, freed at once.
 * - strbuf.c: growable strings with printf-style appends.
 * - source.c: source files held in memory with their line table (the "source manager").
 * - diag.c:   gcc-style diagnostics ("file:line:col: error: msg", the source line, a caret)
 *             delivered to a sink the caller chooses, with error counting.
 */
#ifndef BRICK_SUPPORT_H
#define BRICK_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Ownership annotations, in isl's manner. */
#define BK_GIVE
#define BK_TAKE
#define BK_KEEP

#if defined(__GNUC__)
#define BK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BK_PRINTF(f, a)
#endif

/* ---- arena.c ---------------------------------------------------------------- */

typedef struct bk_arena bk_arena;

bk_arena *bk_arena_new(void);
void bk_arena_free(BK_TAKE bk_arena *a);
/* Zero-initialised block of "size" bytes, aligned to 16, living until the arena dies. */
void *bk_arena_alloc(bk_arena *a, size_t size);
char *bk_arena_strdup(bk_arena *a, const char *s);
char *bk_arena_strndup(bk_arena *a, const char *s, size_t n);
char *bk_arena_printf(bk_arena *a, const char *fmt, ...) BK_PRINTF(2, 3);

/* Growable array in an arena: BK_VEC(T) v; bk_vec_push(arena, &v, x). */
#define BK_VEC(T) struct { T *data; int len, cap; }
void bk_vec_grow_(bk_arena *a, void **data, int *cap, size_t elem);
#define bk_vec_push(arena, v, x)                                                   \
  do {                                                                             \
    if ((v)->len == (v)->cap)                                                      \
      bk_vec_grow_((arena), (void **)&(v)->data, &(v)->cap, sizeof(*(v)->data));  \
    (v)->data[(v)->len++] = (x);                                                   \
  } while (0)

/* ---- strbuf.c --------------------------------------------------------------- */

typedef struct bk_strbuf {
  char *data; /* always NUL-terminated once anything was appended */
  size_t len, cap;
} bk_strbuf;

void bk_strbuf_init(bk_strbuf *sb);
void bk_strbuf_release(bk_strbuf *sb);
/* Make "sb" empty (keeping its memory). */
void bk_strbuf_clear(bk_strbuf *sb);
void bk_strbuf_append(bk_strbuf *sb, const char *s, size_t n);
void bk_strbuf_puts(bk_strbuf *sb, const char *s);
void bk_strbuf_printf(bk_strbuf *sb, const char *fmt, ...) BK_PRINTF(2, 3);
void bk_strbuf_vprintf(bk_strbuf *sb, const char *fmt, va_list ap);
/* Return the contents as a malloc'ed string and reset "sb". */
char *bk_strbuf_take(bk_strbuf *sb);
const char *bk_strbuf_cstr(const bk_strbuf *sb);

/* ---- source.c --------------------------------------------------------------- */

/* A source text in memory with its name and the offsets where its lines start. */
typedef struct bk_source {
  char *name;
  char *text;
  size_t len;
  size_t *line_start;
  int nlines;
} bk_source;

/* A range of bytes in a source: [offset, offset + len). */
typedef struct bk_loc {
  const bk_source *src;
  uint32_t offset;
  uint32_t len;
} bk_loc;

/* A source named "name" holding "text" (without a leading UTF-8 byte order mark, which
 * editors on Windows write: it would be an invisible stray character). */
bk_source *bk_source_new(const char *name, const char *text, size_t len);
/* Longest source file read (64 MiB). */
#define BK_SOURCE_MAX_BYTES ((size_t)64 << 20)
/* Read "path" ("-": the standard input, named "<stdin>"); NULL with errno set when it cannot
 * be read (EFBIG: longer than BK_SOURCE_MAX_BYTES). */
bk_source *bk_source_read_file(const char *path);
/* Read "f" to its end into a source named "name"; NULL with errno set as above. */
bk_source *bk_source_read_stream(FILE *f, const char *name);
void bk_source_free(BK_TAKE bk_source *src);
/* 1-based line and column of byte "offset". */
void bk_source_line_col(const bk_source *src, size_t offset, int *line, int *col);
/* The text of 1-based line "line" (without its newline) and its length. */
const char *bk_source_line(const bk_source *src, int line, size_t *len);
bk_loc bk_loc_join(bk_loc a, bk_loc b);

/* ---- diag.c ----------------------------------------------------------------- */

typedef enum bk_severity { BK_SEV_NOTE, BK_SEV_WARNING, BK_SEV_ERROR } bk_severity;

/* Receives each finished diagnostic: its severity and its full text (possibly multi-line,
 * ending in a newline), notes included as separate calls. */
typedef void bk_diag_sink(void *user, bk_severity sev, const char *text);

typedef struct bk_diag {
  bk_diag_sink *sink; /* NULL: write to stderr */
  void *user;
  int nerrors;
  int nwarnings;
  int max_errors; /* stop reporting (but keep counting) after this many, with one note saying
                   * so; 0 = no limit */
} bk_diag;

void bk_diag_init(bk_diag *d, bk_diag_sink *sink, void *user);
/* Report at "loc" (loc.src may be NULL for errors from outside a file: "brick: error: ..."). */
void bk_diag_report(bk_diag *d, bk_severity sev, bk_loc loc, const char *fmt, ...) BK_PRINTF(4, 5);
void bk_diag_vreport(bk_diag *d, bk_severity sev, bk_loc loc, const char *fmt, va_list ap);
#define bk_error(d, loc, ...) bk_diag_report((d), BK_SEV_ERROR, (loc), __VA_ARGS__)
#define bk_note(d, loc, ...) bk_diag_report((d), BK_SEV_NOTE, (loc), __VA_ARGS__)
/* Format one diagnostic into "sb" exactly as it is printed. */
void bk_diag_format(bk_strbuf *sb, bk_severity sev, bk_loc loc, const char *msg);
/* A sink that appends every diagnostic to the bk_strbuf passed as "user". */
void bk_diag_sink_strbuf(void *user, bk_severity sev, const char *text);

#define BK_NO_LOC ((bk_loc){NULL, 0, 0})

#endif
