/*
 * The tuning database: one SQLite file that any number of tuners and compilers share.
 *
 * Schema (version in PRAGMA user_version, the file marked by PRAGMA application_id 'BRKT'):
 *
 *   tuning_key(id, kernel, kernel_text, target, cpu, features, threads, format)  one per key
 *   candidate(id, key_id, schedule, status, gflops, ms, strategy, message, created,
 *             model, brick_version)                                             one per measurement
 *   best(key_id, candidate_id)       the median record of the best schedule (below)
 *   meta(name, value)
 *
 * A fresh file runs every migration in order; an older file runs the missing ones, in one
 * transaction, so that two processes opening it at once cannot both migrate. Each measurement
 * is recorded in its own transaction (BEGIN IMMEDIATE ... COMMIT) together with the update of
 * "best", so a tuner killed at any moment leaves every finished record and a consistent best.
 * The best is the schedule with the greatest median GFLOP/s over its measurements, never one that
 * was once found wrong, and one that a tuner's final round confirmed whenever there is such a
 * schedule (update_best); the latest final round's winner (meta 'round_winner:KEY', which
 * tune_db_prefer sets) above all while it stays confirmed: that round measured the best
 * before it beside its finalists.
 * WAL lets readers run beside a writer; a busy timeout lets two writers take turns.
 *
 * Files that are not tuning databases (another SQLite database, a text file, a damaged file,
 * one from a newer brick) are refused with a message, never used.
 */
#include "tuner.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define APPLICATION_ID 0x42524b54 /* 'BRKT' */
#define BUSY_TIMEOUT_MS 10000

struct tune_db {
  sqlite3 *h;
  char *path;
  int version;
};

static const char *const migrations[TUNE_DB_VERSION] = {
    /* 1: keys and measurements */
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "INSERT INTO meta VALUES('creator', 'brick');\n"
    "CREATE TABLE tuning_key(id INTEGER PRIMARY KEY, kernel TEXT NOT NULL,\n"
    "  kernel_text TEXT NOT NULL, target TEXT NOT NULL, cpu TEXT NOT NULL,\n"
    "  features TEXT NOT NULL, threads INTEGER NOT NULL, format INTEGER NOT NULL,\n"
    "  UNIQUE(kernel_text, target, cpu, features, threads, format));\n"
    "CREATE TABLE candidate(id INTEGER PRIMARY KEY,\n"
    "  key_id INTEGER NOT NULL REFERENCES tuning_key(id), schedule TEXT NOT NULL,\n"
    "  status TEXT NOT NULL, gflops REAL, ms REAL, strategy TEXT, message TEXT,\n"
    "  created TEXT NOT NULL DEFAULT (datetime('now')));\n"
    "CREATE INDEX candidate_by_key ON candidate(key_id);\n",
    /* 2: the cost model's estimate, the brick version, the best per key */
    "ALTER TABLE candidate ADD COLUMN model REAL;\n"
    "ALTER TABLE candidate ADD COLUMN brick_version TEXT;\n"
    "CREATE TABLE best(key_id INTEGER PRIMARY KEY REFERENCES tuning_key(id),\n"
    "  candidate_id INTEGER NOT NULL REFERENCES candidate(id));\n"
    "INSERT INTO best(key_id, candidate_id)\n"
    "  SELECT key_id, (SELECT c2.id FROM candidate c2 WHERE c2.key_id = c.key_id\n"
    "                  AND c2.status = 'ok' ORDER BY c2.ms, c2.id LIMIT 1)\n"
    "  FROM candidate c WHERE c.status = 'ok' GROUP BY key_id;\n",
};

const char *tune_db_migration(int to) {
  return to >= 1 && to <= TUNE_DB_VERSION ? migrations[to - 1] : NULL;
}

/* ---- errors ---------------------------------------------------------------------------------- */

static char *fmt(const char *f, ...) BK_PRINTF(1, 2);
static char *fmt(const char *f, ...) {
  bk_strbuf sb;
  bk_strbuf_init(&sb);
  va_list ap;
  va_start(ap, f);
  bk_strbuf_vprintf(&sb, f, ap);
  va_end(ap);
  return bk_strbuf_take(&sb);
}

/* The message for SQLite failure "rc" on "path" (with the connection's message). */
static char *sql_error(sqlite3 *h, const char *path, int rc) {
  const char *msg = h && sqlite3_errcode(h) == rc ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
  case SQLITE_NOTADB: return fmt("'%s' is not a brick tuning database (%s)", path, msg);
  case SQLITE_CORRUPT: return fmt("tuning database '%s' is corrupt (%s)", path, msg);
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return fmt("tuning database '%s' is busy (%s)", path, msg);
  default: return fmt("tuning database '%s': %s", path, msg);
  }
}

const char *tune_standing_text(char *buf, size_t size, int measurements, bool confirmed) {
  if (measurements == 1)
    snprintf(buf, size, "1 measurement, %s", confirmed ? "confirmed" : "not confirmed");
  else
    snprintf(buf, size, "median of %d measurements, %s", measurements,
             confirmed ? "confirmed" : "not confirmed");
  return buf;
}

static int fail(tune_db *db, int rc, char **err) {
  if (err)
    *err = sql_error(db->h, db->path, rc);
  return -1;
}

/* ---- small helpers ----------------------------------------------------------------------------- */

/* The integer result of one-row query "sql" into *out. */
static int query_int(sqlite3 *h, const char *sql, int64_t *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
  sqlite3_finalize(st);
  return rc;
}

static int exec(sqlite3 *h, const char *sql) { return sqlite3_exec(h, sql, NULL, NULL, NULL); }

static char *column_text(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? strdup((const char *)t) : NULL;
}

/* ---- opening and migrating ---------------------------------------------------------------------- */

/* What the file is: 1 ours (version in *version), 0 empty, -1 foreign (message in *err);
 * or a SQLite error code (> 1) when it cannot be read. */
static int identify(tune_db *db, int64_t *version, char **err) {
  int64_t app, objects;
  int rc = query_int(db->h, "PRAGMA application_id", &app);
  if (rc == SQLITE_OK)
    rc = query_int(db->h, "PRAGMA user_version", version);
  if (rc == SQLITE_OK)
    rc = query_int(db->h, "SELECT count(*) FROM sqlite_master", &objects);
  if (rc != SQLITE_OK)
    return rc;
  if (app == APPLICATION_ID)
    return 1;
  if (app == 0 && *version == 0 && objects == 0)
    return 0;
  *err = fmt("'%s' is not a brick tuning database (another application's SQLite database)", db->path);
  return -1;
}

/* Bring the schema from "from" to TUNE_DB_VERSION inside the caller's transaction. */
static int migrate(tune_db *db, int64_t from) {
  for (int v = (int)from + 1; v <= TUNE_DB_VERSION; v++) {
    int rc = exec(db->h, migrations[v - 1]);
    if (rc != SQLITE_OK)
      return rc;
  }
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
           APPLICATION_ID, TUNE_DB_VERSION);
  return exec(db->h, sql);
}

/* Create or upgrade the schema in one transaction, looking again once the lock is held. */
static int upgrade(tune_db *db, char **err) {
  int rc = exec(db->h, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK)
    return fail(db, rc, err);
  int64_t version = 0;
  int what = identify(db, &version, err);
  if (what > 1 || what < 0) {
    exec(db->h, "ROLLBACK");
    return what < 0 ? -1 : fail(db, what, err);
  }
  if (version < TUNE_DB_VERSION) {
    rc = migrate(db, version);
    if (rc != SQLITE_OK) {
      int st = fail(db, rc, err);
      exec(db->h, "ROLLBACK");
      return st;
    }
  }
  rc = exec(db->h, "COMMIT");
  if (rc != SQLITE_OK) {
    exec(db->h, "ROLLBACK");
    return fail(db, rc, err);
  }
  db->version = TUNE_DB_VERSION;
  return 0;
}

/* Open the connection: read-write (creating the file when "create"), else read-only. */
static int connect(tune_db *db, bool create, char **err) {
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(db->path, &db->h, flags, NULL);
  if (rc != SQLITE_OK && !create) {
    sqlite3_close(db->h);
    db->h = NULL;
    rc = sqlite3_open_v2(db->path, &db->h, SQLITE_OPEN_READONLY, NULL);
  }
  if (rc != SQLITE_OK) {
    *err = fmt("cannot open tuning database '%s': %s", db->path,
               db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    return -1;
  }
  sqlite3_extended_result_codes(db->h, 1);
  sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
  sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  return 0;
}

tune_db *tune_db_open(const char *path, bool create, char **err) {
  *err = NULL;
  struct stat stbuf;
  if (!create && stat(path, &stbuf) != 0) {
    *err = fmt("cannot open tuning database '%s': %s", path, strerror(errno));
    return NULL;
  }
  if (stat(path, &stbuf) == 0 && S_ISDIR(stbuf.st_mode)) {
    *err = fmt("cannot open tuning database '%s': %s", path, strerror(EISDIR));
    return NULL;
  }
  tune_db *db = calloc(1, sizeof(*db));
  db->path = strdup(path);
  if (connect(db, create, err) != 0) {
    tune_db_close(db);
    return NULL;
  }
  int64_t version = 0;
  /* One read transaction, so the three reads of identify() see one state of the file even when
   * another tuner creates the schema at the same moment. */
  exec(db->h, "BEGIN");
  int what = identify(db, &version, err);
  if (what > 1)
    *err = sql_error(db->h, path, what);
  exec(db->h, "ROLLBACK");
  bool readonly = sqlite3_db_readonly(db->h, "main") == 1;
  if (what > 1) {
    /* reported above, with SQLite's message for the read that failed */
  } else if (what == 1 && version > TUNE_DB_VERSION) {
    *err = fmt("tuning database '%s' has schema version %lld; this brick knows versions up to %d",
               path, (long long)version, TUNE_DB_VERSION);
  } else if (what >= 0) {
    db->version = (int)version;
    if (!readonly)
      exec(db->h, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    if (!readonly && (version < TUNE_DB_VERSION) && (what == 1 || create))
      upgrade(db, err);
    else if (readonly && what == 1 && version < TUNE_DB_VERSION)
      *err = fmt("tuning database '%s' has the old schema version %lld and is read-only",
                 path, (long long)version);
  }
  if (*err) {
    tune_db_close(db);
    return NULL;
  }
  return db;
}

void tune_db_close(tune_db *db) {
  if (!db)
    return;
  sqlite3_close(db->h);
  free(db->path);
  free(db);
}

int tune_db_version(tune_db *db) { return db->version; }

char *tune_db_default_path(void) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && xdg[0] == '/')
    return fmt("%s/brick/tune.db", xdg);
  return fmt("%s/.cache/brick/tune.db", home && *home ? home : ".");
}

int tune_db_make_dirs(const char *path, char **err) {
  char *p = strdup(path);
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      *err = fmt("cannot create directory '%s': %s", p, strerror(errno));
      free(p);
      return -1;
    }
    *s = '/';
  }
  free(p);
  return 0;
}

/* ---- records ------------------------------------------------------------------------------------ */

static const char *const key_where =
    "k.kernel_text = ?1 AND k.target = ?2 AND k.cpu = ?3 AND k.features = ?4 AND k.threads = ?5 "
    "AND k.format = ?6";

static void bind_key(sqlite3_stmt *st, const tune_key *key) {
  sqlite3_bind_text(st, 1, key->text, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, key->target, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, key->cpu, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, key->features, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 5, key->threads);
  sqlite3_bind_int(st, 6, key->format);
}

/* The id of "key" (created if missing) into *id. */
static int key_id(tune_db *db, const tune_key *key, int64_t *id) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h,
      "INSERT INTO tuning_key(kernel_text, target, cpu, features, threads, format, kernel) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  bind_key(st, key);
  sqlite3_bind_text(st, 7, key->kernel, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return rc;
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT id FROM tuning_key k WHERE %s", key_where);
  if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL)) != SQLITE_OK)
    return rc;
  bind_key(st, key);
  rc = sqlite3_step(st);
  *id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_INTERNAL : rc;
}

static void bind_real(sqlite3_stmt *st, int i, double v, bool have) {
  if (have)
    sqlite3_bind_double(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

static int insert_candidate(tune_db *db, int64_t key, const tune_record *r, int64_t *id) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h,
      "INSERT INTO candidate(key_id, schedule, status, gflops, ms, model, strategy, message, "
      "brick_version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  bool ok = r->status == TUNE_OK;
  sqlite3_bind_int64(st, 1, key);
  sqlite3_bind_text(st, 2, r->schedule, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, tune_status_name(r->status), -1, SQLITE_STATIC);
  bind_real(st, 4, r->gflops, ok);
  bind_real(st, 5, r->ms, ok);
  bind_real(st, 6, r->model, r->model > 0);
  sqlite3_bind_text(st, 7, r->strategy, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, r->message, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 9, r->version, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  *id = sqlite3_last_insert_rowid(db->h);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One schedule's records while scanning them in schedule order: its 'ok' times (the 64
 * fastest) and what the final rounds of tuners said of it. */
typedef struct group {
  int64_t ids[64];
  double ms[64], gflops[64];
  int n;
  bool confirm_ok, confirm_failed; /* an 'ok' / a failed record of strategy 'confirm' */
} group;

/* A schedule's standing: the median of its 'ok' records (the lower median record stands for
 * it) and whether a tuner's final round confirmed it. */
typedef struct standing {
  int64_t id;
  double ms, gflops;
  bool confirmed;
} standing;

/* The standing of "g" (times in ascending order). */
static int cmp_gflops(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static standing group_standing(const group *g) {
  int h = g->n / 2;
  bool odd = g->n % 2;
  double gf[64]; /* the median GFLOP/s of its own: records whose stored ms tie may differ */
  memcpy(gf, g->gflops, sizeof(double) * (size_t)g->n);
  qsort(gf, (size_t)g->n, sizeof(double), cmp_gflops);
  return (standing){.id = g->ids[(g->n - 1) / 2],
                    .ms = odd ? g->ms[h] : 0.5 * (g->ms[h - 1] + g->ms[h]),
                    .gflops = odd ? gf[h] : 0.5 * (gf[h - 1] + gf[h]),
                    .confirmed = g->confirm_ok && !g->confirm_failed};
}

/* Does "a" rank above "b"? Confirmed first (TUNE_CONFIRM_STRATEGY), then the greater median
 * GFLOP/s, the measure of the tuner's final round (its values at full precision; ms are stored
 * to 6 decimals, steps of 0.05% on a kernel of 2 us), then the least median time. */
static bool standing_beats(const standing *a, const standing *b) {
  if (a->confirmed != b->confirmed)
    return a->confirmed;
  if (a->gflops != b->gflops)
    return a->gflops > b->gflops;
  return a->ms < b->ms;
}

/* Add the record in the current row of "st" (schedule, ms, gflops, id, ok, confirm) to "g". */
static void group_add(group *g, sqlite3_stmt *st) {
  bool ok = sqlite3_column_int(st, 4), confirm = sqlite3_column_int(st, 5);
  g->confirm_ok |= confirm && ok;
  g->confirm_failed |= confirm && !ok;
  if (ok && g->n < 64) {
    g->ms[g->n] = sqlite3_column_double(st, 1);
    g->gflops[g->n] = sqlite3_column_double(st, 2);
    g->ids[g->n++] = sqlite3_column_int64(st, 3);
  }
}

/* The name in "meta" of the schedule that won the latest final round of "key". */
static void winner_name(int64_t key, char *buf, size_t size) {
  snprintf(buf, size, "round_winner:%lld", (long long)key);
}

/* The latest final round's winner of "key" (tune_db_prefer) into a new string, NULL if none. */
static int round_winner(tune_db *db, int64_t key, char **out) {
  char name[64];
  winner_name(key, name, sizeof name);
  sqlite3_stmt *st;
  *out = NULL;
  int rc = sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    *out = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The record standing for the best schedule of "key" (see update_best) into *best (id 0 when
 * there is none); schedule "prefer" (NULL: none) wins a tie. */
static int best_record_pref(tune_db *db, int64_t key, const char *prefer, standing *best) {
  char *winner = NULL;
  int rc = round_winner(db, key, &winner);
  if (rc != SQLITE_OK)
    return rc;
  standing won = {.id = 0};
  sqlite3_stmt *st;
  rc = sqlite3_prepare_v2(db->h,
      "SELECT schedule, ms, gflops, id, status = 'ok', strategy IS '" TUNE_CONFIRM_STRATEGY "' "
      "FROM candidate WHERE key_id = ?1 "
      "AND (status = 'ok' OR strategy IS '" TUNE_CONFIRM_STRATEGY "') "
      "AND schedule NOT IN (SELECT schedule FROM candidate WHERE key_id = ?1 AND status = 'wrong') "
      "ORDER BY schedule, ms, id", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    free(winner);
    return rc;
  }
  sqlite3_bind_int64(st, 1, key);
  char *cur = NULL;
  group g = {.n = 0};
  *best = (standing){.id = 0};
  for (;;) {
    rc = sqlite3_step(st);
    const char *sch = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (cur && (!sch || strcmp(sch, cur) != 0)) {
      standing s = g.n > 0 ? group_standing(&g) : (standing){.id = 0};
      bool preferred = prefer && strcmp(cur, prefer) == 0;
      if (s.id && (!best->id || standing_beats(&s, best) || (preferred && !standing_beats(best, &s))))
        *best = s;
      if (s.id && s.confirmed && winner && strcmp(cur, winner) == 0)
        won = s;
      g = (group){.n = 0};
      free(cur);
      cur = NULL;
    }
    if (rc != SQLITE_ROW)
      break;
    if (!cur)
      cur = strdup(sch ? sch : "");
    group_add(&g, st);
  }
  free(cur);
  free(winner);
  sqlite3_finalize(st);
  if (won.id) /* the latest final round measured it beside the best before it, and it won */
    *best = won;
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int best_record(tune_db *db, int64_t key, standing *best) {
  return best_record_pref(db, key, NULL, best);
}

/* Recompute the best of "key", never a schedule once recorded wrong. A schedule that a tuner's
 * final round confirmed (a record of strategy TUNE_CONFIRM_STRATEGY, none of them failed) ranks
 * above every schedule that was not; within each class the greatest median GFLOP/s over the
 * 'ok' records wins (then the least median time), and the median record stands for the
 * schedule. Measurements on a shared machine
 * scatter by several percent both ways, and the final round is often slower or faster than the
 * search as a whole: a finalist's median of interleaved measurements is not comparable with a
 * single search-time measurement of another schedule, which would otherwise win by luck (found
 * by a new user: the finalists' medians fell under a load, and compile --db took a schedule
 * measured once instead of the one the tuner's summary named). */
static int update_best_pref(tune_db *db, int64_t key, const char *prefer) {
  standing b;
  int rc = best_record_pref(db, key, prefer, &b);
  int64_t id = b.id;
  sqlite3_stmt *st;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db->h, "DELETE FROM best WHERE key_id = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_int64(st, 1, key);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE || id == 0)
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  rc = sqlite3_prepare_v2(db->h, "INSERT INTO best(key_id, candidate_id) VALUES(?1, ?2)", -1,
                          &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_int64(st, 1, key);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int update_best(tune_db *db, int64_t key) { return update_best_pref(db, key, NULL); }

int tune_db_prefer(tune_db *db, const tune_key *key, const char *schedule, char **err) {
  int rc = exec(db->h, "BEGIN IMMEDIATE");
  int64_t kid = 0;
  if (rc == SQLITE_OK)
    rc = key_id(db, key, &kid);
  if (rc == SQLITE_OK) {
    char name[64];
    winner_name(kid, name, sizeof name);
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db->h, "INSERT OR REPLACE INTO meta(name, value) VALUES(?1, ?2)", -1,
                            &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, schedule, -1, SQLITE_TRANSIENT);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db->h);
      sqlite3_finalize(st);
    }
  }
  if (rc == SQLITE_OK)
    rc = update_best_pref(db, kid, schedule);
  if (rc == SQLITE_OK)
    rc = exec(db->h, "COMMIT");
  if (rc != SQLITE_OK) {
    exec(db->h, "ROLLBACK");
    return fail(db, rc, err);
  }
  return 0;
}

static int record_once(tune_db *db, const tune_key *key, const tune_record *r, int64_t *id) {
  int rc = exec(db->h, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK)
    return rc;
  int64_t kid = 0;
  rc = key_id(db, key, &kid);
  if (rc == SQLITE_OK)
    rc = insert_candidate(db, kid, r, id);
  bool confirm = r->strategy && strcmp(r->strategy, TUNE_CONFIRM_STRATEGY) == 0;
  if (rc == SQLITE_OK && (r->status == TUNE_OK || r->status == TUNE_WRONG || confirm))
    rc = update_best(db, kid);
  if (rc == SQLITE_OK)
    rc = exec(db->h, "COMMIT");
  if (rc != SQLITE_OK)
    exec(db->h, "ROLLBACK");
  return rc;
}

int tune_db_record(tune_db *db, const tune_key *key, const tune_record *r, int64_t *id,
                   char **err) {
  int64_t dummy;
  int rc = SQLITE_BUSY;
  for (int attempt = 0; attempt < 6 && (rc & 0xff) == SQLITE_BUSY; attempt++)
    rc = record_once(db, key, r, id ? id : &dummy);
  return rc == SQLITE_OK ? 0 : fail(db, rc, err);
}

static const char *const record_columns =
    "c.id, c.schedule, c.status, c.gflops, c.ms, c.model, c.strategy, c.message, c.created, "
    "c.brick_version";

static void read_record(sqlite3_stmt *st, int col, tune_record *r) {
  r->id = sqlite3_column_int64(st, col);
  r->schedule = column_text(st, col + 1);
  const char *status = (const char *)sqlite3_column_text(st, col + 2);
  int s = status ? tune_status_from_name(status) : -1;
  r->status = s < 0 ? TUNE_ERROR : (tune_status)s;
  r->gflops = sqlite3_column_double(st, col + 3);
  r->ms = sqlite3_column_double(st, col + 4);
  r->model = sqlite3_column_double(st, col + 5);
  r->strategy = column_text(st, col + 6);
  r->message = column_text(st, col + 7);
  r->created = column_text(st, col + 8);
  r->version = column_text(st, col + 9);
}

void tune_record_release(tune_record *r) {
  free(r->schedule);
  free(r->strategy);
  free(r->message);
  free(r->created);
  free(r->version);
  *r = (tune_record){0};
}

/* Read the record that query "sql" (its key bound as bind_key does, candidate id "id" as ?7
 * when it has one) selects into "r"; SQLITE_ROW when there is one, SQLITE_DONE when not, or an
 * error. */
static int read_one(tune_db *db, const char *sql, const tune_key *key, int64_t id,
                    tune_record *r) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  bind_key(st, key);
  if (id)
    sqlite3_bind_int64(st, 7, id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    read_record(st, 0, r);
  sqlite3_finalize(st);
  return rc;
}

/* Of the schedule of the best record "bc" of key "k": its 'ok' records, and whether a final
 * round confirmed it (a record of strategy TUNE_CONFIRM_STRATEGY, none of them failed). */
#define STANDING_COLUMNS                                                                          \
  "(SELECT count(*) FROM candidate s WHERE s.key_id = k.id AND s.schedule = bc.schedule"        \
  " AND s.status = 'ok'), "                                                                     \
  "(SELECT total(s.status = 'ok') > 0 AND total(s.status <> 'ok') = 0 FROM candidate s"         \
  " WHERE s.key_id = k.id AND s.schedule = bc.schedule"                                         \
  " AND s.strategy IS '" TUNE_CONFIRM_STRATEGY "')"

/* Fill in the measurements and confirmed of the best record "r"; SQLITE_ROW when done. */
static int read_standing(tune_db *db, tune_record *r) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h, "SELECT " STANDING_COLUMNS " FROM candidate bc "
                              "JOIN tuning_key k ON k.id = bc.key_id WHERE bc.id = ?1", -1, &st,
                              NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_int64(st, 1, r->id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    r->measurements = sqlite3_column_int(st, 0);
    r->confirmed = sqlite3_column_int(st, 1);
  } else {
    tune_record_release(r);
  }
  sqlite3_finalize(st);
  return rc;
}

int tune_db_best(tune_db *db, const tune_key *key, tune_record *r, bool *found, char **err) {
  *found = false;
  *r = (tune_record){0};
  if (db->version == 0)
    return 0;
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT %s FROM best b JOIN candidate c ON c.id = b.candidate_id "
           "JOIN tuning_key k ON k.id = b.key_id WHERE %s", record_columns, key_where);
  int rc = read_one(db, sql, key, 0, r);
  if (rc == SQLITE_DONE) { /* no best row, or its candidate deleted by hand: the rule again */
    int64_t kid = 0;
    standing b = {.id = 0};
    snprintf(sql, sizeof sql, "SELECT k.id FROM tuning_key k WHERE %s", key_where);
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
      bind_key(st, key);
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW)
        kid = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    if (rc == SQLITE_ROW)
      rc = best_record(db, kid, &b);
    if (rc == SQLITE_OK && b.id) {
      snprintf(sql, sizeof sql, "SELECT %s FROM candidate c JOIN tuning_key k ON k.id = c.key_id "
               "WHERE %s AND c.id = ?7", record_columns, key_where);
      rc = read_one(db, sql, key, b.id, r);
    } else if (rc == SQLITE_OK || rc == SQLITE_DONE) {
      rc = SQLITE_DONE;
    }
  }
  if (rc == SQLITE_ROW)
    rc = read_standing(db, r);
  *found = rc == SQLITE_ROW;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(db, rc, err);
}

int tune_db_each(tune_db *db, const tune_key *key, bool (*fn)(void *, const tune_record *),
                 void *user, char **err) {
  if (db->version == 0)
    return 0;
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT %s FROM candidate c JOIN tuning_key k ON k.id = c.key_id "
           "WHERE %s ORDER BY c.id", record_columns, key_where);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return fail(db, rc, err);
  bind_key(st, key);
  bool go = true;
  while (go && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    tune_record r;
    read_record(st, 0, &r);
    go = fn(user, &r);
    tune_record_release(&r);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(db, rc, err);
}

/* ---- listing -------------------------------------------------------------------------------------- */

static void print_key_row(sqlite3_stmt *st, FILE *out, bool verbose) {
  const char *kernel = (const char *)sqlite3_column_text(st, 1);
  char standing[64];
  fprintf(out, "%s: %s %s, threads %d, format %d: %lld records (%lld ok)", kernel,
          (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
          sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
          (long long)sqlite3_column_int64(st, 6), (long long)sqlite3_column_int64(st, 7));
  if (sqlite3_column_type(st, 8) != SQLITE_NULL)
    fprintf(out, ", best %.2f GFLOP/s (%.4g ms, record %lld, %s; %s)\n  %s\n",
            sqlite3_column_double(st, 8), sqlite3_column_double(st, 9),
            (long long)sqlite3_column_int64(st, 10), (const char *)sqlite3_column_text(st, 12),
            tune_standing_text(standing, sizeof standing, sqlite3_column_int(st, 15),
                               sqlite3_column_int(st, 16)),
            (const char *)sqlite3_column_text(st, 11));
  else if (sqlite3_column_int64(st, 7) > 0) /* the best's candidate deleted by hand, say */
    fputs(", its best record is missing: lookups pick the best of the ok ones again\n", out);
  else
    fputs(", no successful measurement\n", out);
  if (verbose) {
    fprintf(out, "  features %s\n  kernel text:\n", (const char *)sqlite3_column_text(st, 13));
    const char *t = (const char *)sqlite3_column_text(st, 14);
    while (t && *t) {
      size_t n = strcspn(t, "\n");
      fprintf(out, "    %.*s\n", (int)n, t);
      t += n + (t[n] == '\n');
    }
  }
}

int tune_db_list(tune_db *db, FILE *out, bool verbose, char **err) {
  int64_t keys = 0, records = 0;
  if (db->version > 0) {
    int rc = query_int(db->h, "SELECT count(*) FROM tuning_key", &keys);
    if (rc == SQLITE_OK)
      rc = query_int(db->h, "SELECT count(*) FROM candidate", &records);
    if (rc != SQLITE_OK)
      return fail(db, rc, err);
  }
  fprintf(out, "%s: schema version %d, %lld key%s, %lld record%s\n", db->path, db->version,
          (long long)keys, keys == 1 ? "" : "s", (long long)records, records == 1 ? "" : "s");
  if (db->version == 0)
    return 0;
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db->h,
      "SELECT k.id, k.kernel, k.target, k.cpu, k.threads, k.format,"
      " (SELECT count(*) FROM candidate c WHERE c.key_id = k.id),"
      " (SELECT count(*) FROM candidate c WHERE c.key_id = k.id AND c.status = 'ok'),"
      " bc.gflops, bc.ms, bc.id, bc.schedule, bc.created, k.features, k.kernel_text, "
      STANDING_COLUMNS
      " FROM tuning_key k LEFT JOIN best b ON b.key_id = k.id"
      " LEFT JOIN candidate bc ON bc.id = b.candidate_id ORDER BY k.kernel, k.id", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return fail(db, rc, err);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    print_key_row(st, out, verbose);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : fail(db, rc, err);
}
