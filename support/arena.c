/*
 * Bump allocator. Memory comes in chunks that double in size; a block never moves and lives
 * until the arena is freed. Growable arrays (BK_VEC) reallocate inside the arena and leave
 * the old block behind, which is fine for the small, short-lived IR of one compilation.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} chunk;

struct bk_arena {
  chunk *head;
};

bk_arena *bk_arena_new(void) {
  bk_arena *a = calloc(1, sizeof(*a));
  if (!a)
    abort();
  return a;
}

void bk_arena_free(bk_arena *a) {
  if (!a)
    return;
  for (chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *bk_arena_alloc(bk_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t want = c ? c->size * 2 : 4096;
    while (want < size)
      want *= 2;
    chunk *n = malloc(sizeof(chunk) + want);
    if (!n)
      abort(); /* out of memory is a broken invariant, not a user error */
    n->next = c;
    n->size = want;
    n->used = 0;
    a->head = c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *bk_arena_strndup(bk_arena *a, const char *s, size_t n) {
  char *p = bk_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *bk_arena_strdup(bk_arena *a, const char *s) {
  return bk_arena_strndup(a, s, strlen(s));
}

char *bk_arena_printf(bk_arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = bk_arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void bk_vec_grow_(bk_arena *a, void **data, int *cap, size_t elem) {
  int ncap = *cap ? *cap * 2 : 8;
  void *n = bk_arena_alloc(a, (size_t)ncap * elem);
  if (*data)
    memcpy(n, *data, (size_t)*cap * elem);
  *data = n;
  *cap = ncap;
}
