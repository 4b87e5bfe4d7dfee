/*
 * One measurement in a worker process. The tuner never runs a candidate in its own process: a
 * schedule that crashes or hangs the generated code must not take the tuner (and its database
 * connection) with it. The worker is the brick binary itself:
 *
 *   brick __measure /dev/fd/3 --kernel K --schedule S --threads=N --seconds=T [--slow-ms=X]
 *                   [-DNAME=VALUE]...
 *
 * which JIT-compiles the kernel with the schedule, checks one call against the reference
 * interpreter, warms up, times repeated calls for about T seconds (a warm call slower than X
 * ms is the only one timed: the search needs no precision there) and prints one line,
 *
 *   brick-measure ok ms=1.234567 gflops=187.3 err=5.7e-07     (exit 0)
 *   brick-measure wrong err=0.25                                 (exit 3)
 *
 * or a diagnostic on stderr (exit 2: the schedule was rejected). The program text reaches the
 * worker as descriptor 3 (an unlinked file), so no temporary file is left behind. The worker
 * runs in its own process group (a Ctrl-C at the terminal reaches only the tuner, which then
 * kills it), dies with the tuner (PR_SET_PDEATHSIG), and is killed with SIGKILL at the limit.
 */
#include "tuner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const status_names[] = {"ok", "wrong", "invalid", "crash", "timeout", "error",
                                           "stopped"};

const char *tune_status_name(tune_status st) { return status_names[st]; }

int tune_status_from_name(const char *name) {
  for (int i = 0; i < (int)(sizeof status_names / sizeof status_names[0]); i++)
    if (strcmp(name, status_names[i]) == 0)
      return i;
  return -1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The worker's argument vector (strings in "store", which the caller frees). */
static char **worker_argv(const tune_worker *w, const char *schedule, char **store) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  int n = 0;
  size_t offs[64];
  const char *fixed[] = {w->binary, "__measure", "/dev/fd/3", "--kernel", w->kernel,
                         "--schedule", schedule};
  for (int i = 0; i < 7; i++) {
    offs[n++] = sb.len;
    bk_strbuf_append(&sb, fixed[i], strlen(fixed[i]) + 1);
  }
  offs[n++] = sb.len;
  bk_strbuf_printf(&sb, "--threads=%d", w->threads);
  bk_strbuf_append(&sb, "", 1);
  offs[n++] = sb.len;
  bk_strbuf_printf(&sb, "--seconds=%g", w->repeat_seconds > 0 ? w->repeat_seconds : 0.3);
  bk_strbuf_append(&sb, "", 1);
  if (w->slow_ms > 0) {
    offs[n++] = sb.len;
    bk_strbuf_printf(&sb, "--slow-ms=%g", w->slow_ms);
    bk_strbuf_append(&sb, "", 1);
  }
  for (int i = 0; i < w->ndefines && n < 62; i++) {
    offs[n++] = sb.len;
    bk_strbuf_printf(&sb, "-D%s", w->defines[i]);
    bk_strbuf_append(&sb, "", 1);
  }
  *store = bk_strbuf_take(&sb);
  char **argv = calloc((size_t)n + 1, sizeof(char *));
  for (int i = 0; i < n; i++)
    argv[i] = *store + offs[i];
  return argv;
}

/* In the child: descriptors in place, own process group, death with the parent, exec. */
static void exec_worker(char **argv, int out, int err, int source, pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    dup2(devnull, 0);
  dup2(out, 1);
  dup2(err, 2);
  if (source != 3)
    dup2(source, 3);
  for (int fd = 4; fd < 1024; fd++)
    close(fd);
  execv(argv[0], argv);
  dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
  _exit(127);
}

typedef struct capture {
  int fd;
  char buf[8192];
  size_t len;
  bool open;
} capture;

/* Read what is there from "c"; keep the first bytes (stdout) or the last ones ("tail"). */
static void drain(capture *c, bool tail) {
  char tmp[4096];
  ssize_t n = read(c->fd, tmp, sizeof tmp);
  if (n <= 0) {
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
      c->open = false;
    return;
  }
  size_t room = sizeof c->buf - 1;
  if (tail && c->len + (size_t)n > room) {
    size_t drop = c->len + (size_t)n - room;
    drop = drop > c->len ? c->len : drop;
    memmove(c->buf, c->buf + drop, c->len - drop);
    c->len -= drop;
  }
  size_t take = (size_t)n < room - c->len ? (size_t)n : room - c->len;
  memcpy(c->buf + c->len, tmp, take);
  c->len += take;
  c->buf[c->len] = '\0';
}

/* Wait for the worker's output until both pipes close, the deadline, or the stop flag.
 * Returns TUNE_OK, TUNE_TIMEOUT or TUNE_STOPPED. */
static tune_status collect(const tune_worker *w, capture *out, capture *err, double deadline) {
  while (out->open || err->open) {
    if (w->stop && *w->stop)
      return TUNE_STOPPED;
    double left = deadline - now();
    if (left <= 0)
      return TUNE_TIMEOUT;
    struct pollfd p[2] = {{out->open ? out->fd : -1, POLLIN, 0}, {err->open ? err->fd : -1, POLLIN, 0}};
    int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
    if (poll(p, 2, ms) < 0 && errno != EINTR)
      return TUNE_OK;
    if (p[0].revents)
      drain(out, false);
    if (p[1].revents)
      drain(err, true);
  }
  return TUNE_OK;
}

/* The last non-empty line of "text" into "dst". */
static void last_line(const char *text, char *dst, size_t n) {
  size_t len = strlen(text);
  while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
    len--;
  size_t start = len;
  while (start && text[start - 1] != '\n')
    start--;
  snprintf(dst, n, "%.*s", (int)(len - start), text + start);
}

/* Read the result line of a worker that exited with "code". */
static void interpret(const capture *out, const capture *err, int code, tune_measurement *m) {
  const char *line = strstr(out->buf, "brick-measure ");
  if (code == 0 && line &&
      sscanf(line, "brick-measure ok ms=%lf gflops=%lf err=%lf", &m->ms, &m->gflops, &m->err) == 3) {
    m->status = TUNE_OK;
    return;
  }
  if (code == 3 && line && sscanf(line, "brick-measure wrong err=%lf", &m->err) == 1) {
    m->status = TUNE_WRONG;
    snprintf(m->message, sizeof m->message, "differs from the reference (max rel. error %.3g)",
             m->err);
    return;
  }
  m->status = code == 2 ? TUNE_INVALID : TUNE_ERROR;
  last_line(err->buf, m->message, sizeof m->message);
  if (!m->message[0])
    snprintf(m->message, sizeof m->message, "the worker exited with status %d", code);
}

void tune_measure(const tune_worker *w, const char *schedule, tune_measurement *m) {
  *m = (tune_measurement){.status = TUNE_ERROR};
  int po[2], pe[2];
  if (pipe(po) != 0)
    goto fail_errno;
  if (pipe(pe) != 0) {
    close(po[0]);
    close(po[1]);
    goto fail_errno;
  }
  char *store;
  char **argv = worker_argv(w, schedule, &store);
  double t0 = now();
  pid_t parent = getpid(), pid = fork();
  if (pid == 0)
    exec_worker(argv, po[1], pe[1], w->source_fd, parent);
  free(argv);
  free(store);
  close(po[1]);
  close(pe[1]);
  if (pid < 0) {
    close(po[0]);
    close(pe[0]);
    goto fail_errno;
  }
  capture out = {.fd = po[0], .open = true}, err = {.fd = pe[0], .open = true};
  fcntl(out.fd, F_SETFL, O_NONBLOCK);
  fcntl(err.fd, F_SETFL, O_NONBLOCK);
  tune_status st = collect(w, &out, &err, t0 + (w->timeout > 0 ? w->timeout : 20));
  if (st != TUNE_OK)
    kill(pid, SIGKILL);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
    ;
  close(out.fd);
  close(err.fd);
  m->seconds = now() - t0;
  if (st != TUNE_OK) {
    m->status = st;
    snprintf(m->message, sizeof m->message, st == TUNE_TIMEOUT ? "killed after %.1f s" : "stopped",
             m->seconds);
  } else if (WIFSIGNALED(ws)) {
    m->status = TUNE_CRASH;
    char tail[256];
    last_line(err.buf, tail, sizeof tail);
    snprintf(m->message, sizeof m->message, "the worker died of signal %d (%s)%s%s",
             WTERMSIG(ws), strsignal(WTERMSIG(ws)), tail[0] ? ": " : "", tail);
  } else {
    interpret(&out, &err, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, m);
  }
  return;
fail_errno:
  snprintf(m->message, sizeof m->message, "cannot start a worker: %s", strerror(errno));
}
