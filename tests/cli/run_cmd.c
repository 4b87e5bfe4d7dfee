/* Run the brick binary as a child process and capture what it prints (see run_cmd.h). */
#define _GNU_SOURCE /* nftw, posix_spawn_file_actions_addchdir_np */
#include "run_cmd.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *brick_binary(void) {
  const char *b = getenv("BRICK_BINARY");
  ck_assert_msg(b && *b, "BRICK_BINARY is not set (run the test through ctest)");
  return b;
}

const char *brick_source_dir(void) {
  const char *s = getenv("BRICK_SOURCE_DIR");
  ck_assert_msg(s && *s, "BRICK_SOURCE_DIR is not set (run the test through ctest)");
  return s;
}

bool test_reduced(void) {
  const char *r = getenv("BRICK_TEST_REDUCED");
  return r && *r && strcmp(r, "0") != 0;
}

typedef struct growbuf {
  char *data;
  size_t len, cap;
} growbuf;

/* Read what is available on "fd" into "b"; false at end of file. */
static int read_some(int fd, growbuf *b) {
  if (b->cap - b->len < 4097) {
    b->cap = b->cap * 2 + 8192;
    b->data = realloc(b->data, b->cap);
    ck_assert_ptr_nonnull(b->data);
  }
  ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
  if (n < 0 && errno == EINTR)
    return 1;
  if (n <= 0)
    return 0;
  b->len += (size_t)n;
  return 1;
}

/* Start "argv" in directory "dir" with stdin from "in" and stdout, stderr into the
 * pipes "out", "err". posix_spawn, not fork: the test links LLVM, and copying its page tables
 * for every run would cost more than the run. */
static pid_t spawn(const char *dir, const char *const *argv, const char *in, const int out[2],
                   const int err[2]) {
  posix_spawn_file_actions_t fa;
  ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
  ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0), 0);
  ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, out[1], 1), 0);
  ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, err[1], 2), 0);
  ck_assert_int_eq(posix_spawn_file_actions_addclose(&fa, out[0]), 0);
  ck_assert_int_eq(posix_spawn_file_actions_addclose(&fa, err[0]), 0);
  if (dir)
    ck_assert_int_eq(posix_spawn_file_actions_addchdir_np(&fa, dir), 0);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  ck_assert_msg(rc == 0, "cannot run %s: %s", argv[0], strerror(rc));
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

cmd_result run_brick(const char *dir, const char *const *args) {
  return run_brick_input(dir, args, "/dev/null");
}

cmd_result run_brick_input(const char *dir, const char *const *args, const char *in) {
  const char *argv[64];
  int n = 0;
  argv[n++] = brick_binary();
  for (int i = 0; args[i]; i++) {
    ck_assert_int_lt(n, 63);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  int po[2], pe[2];
  ck_assert_int_eq(pipe(po), 0);
  ck_assert_int_eq(pipe(pe), 0);
  pid_t pid = spawn(dir, argv, in, po, pe);
  close(po[1]);
  close(pe[1]);
  growbuf bo = {0}, be = {0};
  struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      ck_assert_int_eq(errno, EINTR);
      continue;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (!read_some(fds[i].fd, i == 0 ? &bo : &be)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    ck_assert_int_eq(errno, EINTR);
  cmd_result r;
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  r.out = bo.data ? bo.data : calloc(1, 1);
  r.err = be.data ? be.data : calloc(1, 1);
  r.out[bo.len] = '\0';
  r.err[be.len] = '\0';
  return r;
}

void cmd_result_release(cmd_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

char *temp_dir_new(void) {
  const char *base = getenv("TMPDIR");
  char *dir = malloc(4096);
  ck_assert_ptr_nonnull(dir);
  snprintf(dir, 4096, "%s/brick-test-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void temp_dir_remove(char *dir) {
  ck_assert_int_eq(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
  free(dir);
}

void write_file(const char *dir, const char *name, const char *text) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq((int)fwrite(text, 1, strlen(text), f), (int)strlen(text));
  ck_assert_int_eq(fclose(f), 0);
}

char *read_file(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t len = 0, cap = 4096;
  char *text = malloc(cap);
  size_t n;
  while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0)
      text = realloc(text, cap *= 2);
  }
  fclose(f);
  ck_assert_ptr_nonnull(text);
  text[len] = '\0';
  return text;
}
