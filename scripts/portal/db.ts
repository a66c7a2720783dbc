// The portal's SQL access: one small async interface (`Db`) with an SQLite (node:sqlite) and a
// PostgreSQL (npm postgres) implementation. Queries are written once with `?` placeholders; the
// PostgreSQL side numbers them ($1, $2, ...). Schema changes are versioned migrations, applied in
// order at open, each once (table schema_migrations).
import { DatabaseSync } from "node:sqlite";
import { dirname, resolve } from "node:path";
import postgres from "postgres";
import { WodError } from "../common/errors.ts";

export type Row = Record<string, unknown>;
export type Param = string | number | null;

export interface Tx {
  all(sql: string, params?: Param[]): Promise<Row[]>;
  get(sql: string, params?: Param[]): Promise<Row | undefined>;
  run(sql: string, params?: Param[]): Promise<number>;
}

export interface Db extends Tx {
  readonly kind: "sqlite" | "postgres";
  /** Runs `fn` in one transaction holding the exclusive lock named `lock` (a workshop, ...). */
  tx<T>(lock: string, fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Versioned migrations: [version, SQLite text, PostgreSQL text]. Append only; never edit a released one. */
export const MIGRATIONS: [number, string, string][] = [
  [
    1,
    `CREATE TABLE registrations (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       token_hash TEXT NOT NULL UNIQUE,
       workshop TEXT NOT NULL, backend TEXT NOT NULL, seat INTEGER NOT NULL,
       email TEXT, first_name TEXT, last_name TEXT, company TEXT,
       status TEXT NOT NULL, active INTEGER NOT NULL,
       created TEXT NOT NULL, updated TEXT NOT NULL,
       ready_at TEXT, reminded_at TEXT, ended_at TEXT, personal_deleted_at TEXT,
       completion REAL);`,
    `CREATE TABLE registrations (
       id SERIAL PRIMARY KEY,
       token_hash TEXT NOT NULL UNIQUE,
       workshop TEXT NOT NULL, backend TEXT NOT NULL, seat INTEGER NOT NULL,
       email TEXT, first_name TEXT, last_name TEXT, company TEXT,
       status TEXT NOT NULL, active INTEGER NOT NULL,
       created TEXT NOT NULL, updated TEXT NOT NULL,
       ready_at TEXT, reminded_at TEXT, ended_at TEXT, personal_deleted_at TEXT,
       completion DOUBLE PRECISION);`,
  ],
  [
    2,
    `CREATE UNIQUE INDEX registrations_active_seat ON registrations (backend, seat) WHERE active = 1;
     CREATE UNIQUE INDEX registrations_active_email ON registrations (workshop, email) WHERE active = 1;
     CREATE INDEX registrations_workshop ON registrations (workshop, active);`,
    `CREATE UNIQUE INDEX registrations_active_seat ON registrations (backend, seat) WHERE active = 1;
     CREATE UNIQUE INDEX registrations_active_email ON registrations (workshop, email) WHERE active = 1;
     CREATE INDEX registrations_workshop ON registrations (workshop, active);`,
  ],
  [
    3,
    `CREATE TABLE outbox (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       registration_id INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
       created TEXT NOT NULL, updated TEXT NOT NULL);
     CREATE INDEX outbox_status ON outbox (status);
     CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires TEXT NOT NULL);`,
    `CREATE TABLE outbox (
       id SERIAL PRIMARY KEY,
       registration_id INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
       created TEXT NOT NULL, updated TEXT NOT NULL);
     CREATE INDEX outbox_status ON outbox (status);
     CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires TEXT NOT NULL);`,
  ],
];

/** A promise-chain mutex: SQLite has one connection, so transactions take turns. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * One mutex per database file in this process: two connections of one process must not both wait in
 * BEGIN IMMEDIATE (the wait is synchronous and would block the one holding the lock). Other processes
 * on the same file wait in SQLite's busy handler.
 */
const FILE_MUTEXES = new Map<string, Mutex>();

class SqliteDb implements Db {
  readonly kind = "sqlite" as const;
  private mutex: Mutex;
  constructor(private readonly db: DatabaseSync, file: string) {
    const key = file === ":memory:" ? `:memory:${crypto.randomUUID()}` : file;
    if (!FILE_MUTEXES.has(key)) FILE_MUTEXES.set(key, new Mutex());
    this.mutex = FILE_MUTEXES.get(key)!;
  }

  private direct: Tx = {
    all: (sql, params = []) => Promise.resolve(this.db.prepare(sql).all(...params) as Row[]),
    get: (sql, params = []) => Promise.resolve(this.db.prepare(sql).get(...params) as Row | undefined),
    run: (sql, params = []) => Promise.resolve(Number(this.db.prepare(sql).run(...params).changes)),
  };

  all(sql: string, params?: Param[]) {
    return this.mutex.lock(() => this.direct.all(sql, params));
  }
  get(sql: string, params?: Param[]) {
    return this.mutex.lock(() => this.direct.get(sql, params));
  }
  run(sql: string, params?: Param[]) {
    return this.mutex.lock(() => this.direct.run(sql, params));
  }
  tx<T>(_lock: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    // BEGIN IMMEDIATE takes the database's write lock at once: other processes on the same file
    // wait (busy_timeout), and this process's other transactions wait on the mutex.
    return this.mutex.lock(async () => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const v = await fn(this.direct);
        this.db.exec("COMMIT");
        return v;
      } catch (err) {
        this.db.exec("ROLLBACK");
        throw err;
      }
    });
  }
  close() {
    return this.mutex.lock(() => {
      this.db.close();
      return Promise.resolve();
    });
  }
}

function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

class PgDb implements Db {
  readonly kind = "postgres" as const;
  private plain: Tx;
  constructor(private readonly sql: postgres.Sql) {
    this.plain = PgDb.wrap(sql);
  }

  private static wrap(sql: postgres.Sql | postgres.TransactionSql): Tx {
    return {
      all: async (
        q,
        params = [],
      ) => [...await sql.unsafe(numbered(q), params as postgres.ParameterOrJSON<never>[])],
      get: async (q, params = []) =>
        (await sql.unsafe(numbered(q), params as postgres.ParameterOrJSON<never>[]))[0],
      run: async (q, params = []) =>
        (await sql.unsafe(numbered(q), params as postgres.ParameterOrJSON<never>[])).count,
    };
  }
  all(q: string, p?: Param[]) {
    return this.plain.all(q, p);
  }
  get(q: string, p?: Param[]) {
    return this.plain.get(q, p);
  }
  run(q: string, p?: Param[]) {
    return this.plain.run(q, p);
  }
  async tx<T>(lock: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return await this.sql.begin(async (t) => {
      // One writer per lock name across every portal process sharing the database.
      await t.unsafe("SELECT pg_advisory_xact_lock(hashtext($1))", [`wod-portal:${lock}`]);
      return await fn(PgDb.wrap(t));
    }) as T;
  }
  async close() {
    await this.sql.end({ timeout: 5 });
  }
}

async function migrate(db: Db): Promise<number[]> {
  const applied: number[] = [];
  await db.tx("migrations", async (tx) => {
    await tx.run(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
    );
    const done = new Set(
      (await tx.all("SELECT version FROM schema_migrations")).map((r) => Number(r.version)),
    );
    for (const [version, lite, pg] of MIGRATIONS) {
      if (done.has(version)) continue;
      const text = db.kind === "sqlite" ? lite : pg;
      for (const stmt of text.split(";").map((s) => s.trim()).filter(Boolean)) await tx.run(stmt);
      await tx.run("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)", [
        version,
        new Date().toISOString(),
      ]);
      applied.push(version);
    }
  });
  return applied;
}

/** Opens (creating the file and its directory on first start) and migrates an SQLite database. */
export async function openSqlite(file: string): Promise<Db> {
  if (file !== ":memory:") await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let raw: DatabaseSync;
  try {
    raw = new DatabaseSync(file);
    raw.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;");
  } catch (err) {
    throw new WodError(`Cannot open the portal database ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (file !== ":memory:") await Deno.chmod(file, 0o600).catch(() => {});
  const db = new SqliteDb(raw, resolve(file));
  await migrate(db);
  return db;
}

/** Connects to PostgreSQL by URL and migrates. The URL (it holds a password) never appears in errors. */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Db> {
  let where = "the PostgreSQL server";
  try {
    const u = new URL(url);
    where = `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    throw new WodError(
      "The portal's PostgreSQL URL is not a URL: expected postgres://USER:PASSWORD@HOST:PORT/DB",
    );
  }
  const sql = postgres(url, { max: opts.max ?? 10, onnotice: () => {}, connect_timeout: 10 });
  const db = new PgDb(sql);
  try {
    await migrate(db);
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new WodError(`Cannot open the portal database (${where}): ${(err as Error).message}`);
  }
  return db;
}
