// The portal's data: registrations (the only place names and emails live), the outbox of emails and
// orders to send, admin sessions. One implementation over `Db`, so SQLite and PostgreSQL behave the
// same (scripts/portal/store_contract_test.ts runs one suite against both).
import { type Db, openPostgres, openSqlite, type Param, type Row, type Tx } from "./db.ts";

export type RegistrationStatus = "preparing" | "ready" | "ending" | "ended";
/** Statuses that hold a seat. */
export const ACTIVE: RegistrationStatus[] = ["preparing", "ready", "ending"];

export interface Registration {
  id: number;
  workshop: string;
  backend: string;
  seat: number;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  company: string | null;
  status: RegistrationStatus;
  active: boolean;
  created: string;
  updated: string;
  readyAt: string | null;
  remindedAt: string | null;
  endedAt: string | null;
  personalDeletedAt: string | null;
  completion: number | null;
}

export interface SeatRange {
  backend: string;
  first: number;
  last: number;
}

export interface RegisterRequest {
  workshop: string;
  email: string;
  firstName: string;
  lastName: string;
  company: string;
  /** The workshop's ranges, in the environment's backend order. */
  ranges: SeatRange[];
  /** Concurrent seats offered (the workshop's capacity). */
  capacity: number;
  /** Seats ("backend/seat") that recorded state holds: never given. */
  recordedHeld: ReadonlySet<string>;
  /** SHA-256 (hex) of the status link token. */
  tokenHash: string;
  now: string;
  /** Outbox entries to create with the registration, in the same transaction. */
  outbox: OutboxKind[];
}

export type RegisterOutcome =
  | { ok: true; registration: Registration }
  | { ok: false; reason: "full" | "duplicate" };

export type OutboxKind = "order-create" | "order-cleanup" | "welcome" | "credentials";
export type OutboxStatus = "pending" | "sending" | "sent" | "failed";

export interface OutboxItem {
  id: number;
  registrationId: number;
  kind: OutboxKind;
  status: OutboxStatus;
  attempts: number;
  lastError: string | null;
  created: string;
  updated: string;
}

export function seatKey(s: { backend: string; seat: number }): string {
  return `${s.backend}/${s.seat}`;
}

/**
 * The seat for a new registration: none when the seats held (by registrations or recorded state,
 * inside the ranges) reach the capacity or fill the ranges. Otherwise the lowest free seat of the
 * backend with the most free seats (the load spreads; ties go to the earlier backend).
 */
export function chooseSeat(
  ranges: SeatRange[],
  held: ReadonlySet<string>,
  capacity: number,
): { backend: string; seat: number } | undefined {
  let heldInRanges = 0;
  let size = 0;
  let best: { backend: string; seat: number; free: number } | undefined;
  for (const r of ranges) {
    let free = 0;
    let lowest: number | undefined;
    for (let s = r.first; s <= r.last; s++) {
      size++;
      if (held.has(`${r.backend}/${s}`)) heldInRanges++;
      else {
        free++;
        lowest ??= s;
      }
    }
    if (lowest !== undefined && (!best || free > best.free)) {
      best = { backend: r.backend, seat: lowest, free };
    }
  }
  if (heldInRanges >= Math.min(capacity, size) || !best) return undefined;
  return { backend: best.backend, seat: best.seat };
}

/** Seats free right now for the catalog (same rule as chooseSeat). */
export function freeSeats(ranges: SeatRange[], held: ReadonlySet<string>, capacity: number): number {
  let size = 0;
  let heldIn = 0;
  for (const r of ranges) {
    for (let s = r.first; s <= r.last; s++) {
      size++;
      if (held.has(`${r.backend}/${s}`)) heldIn++;
    }
  }
  return Math.max(0, Math.min(capacity, size) - heldIn);
}

const COLS = "id, workshop, backend, seat, email, first_name, last_name, company, status, active, created, " +
  "updated, ready_at, reminded_at, ended_at, personal_deleted_at, completion";

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

function toRegistration(r: Row): Registration {
  return {
    id: Number(r.id),
    workshop: String(r.workshop),
    backend: String(r.backend),
    seat: Number(r.seat),
    email: str(r.email),
    firstName: str(r.first_name),
    lastName: str(r.last_name),
    company: str(r.company),
    status: String(r.status) as RegistrationStatus,
    active: Number(r.active) === 1,
    created: String(r.created),
    updated: String(r.updated),
    readyAt: str(r.ready_at),
    remindedAt: str(r.reminded_at),
    endedAt: str(r.ended_at),
    personalDeletedAt: str(r.personal_deleted_at),
    completion: r.completion === null || r.completion === undefined ? null : Number(r.completion),
  };
}

function toOutbox(r: Row): OutboxItem {
  return {
    id: Number(r.id),
    registrationId: Number(r.registration_id),
    kind: String(r.kind) as OutboxKind,
    status: String(r.status) as OutboxStatus,
    attempts: Number(r.attempts),
    lastError: str(r.last_error),
    created: String(r.created),
    updated: String(r.updated),
  };
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string; errcode?: number };
  return e?.code === "23505" || /UNIQUE constraint failed/i.test(e?.message ?? "");
}

export class PortalStore {
  constructor(readonly db: Db) {}

  get kind() {
    return this.db.kind;
  }

  /**
   * One registration, atomically: refuses a second active registration of the same email for the
   * workshop and a full workshop; otherwise picks a seat (chooseSeat) and inserts the registration
   * and its outbox entries. Runs under the workshop's lock, so concurrent registrations never share a
   * seat or exceed the capacity (the partial unique indexes are the last line of defence).
   */
  async register(req: RegisterRequest): Promise<RegisterOutcome> {
    const email = req.email.toLowerCase();
    try {
      return await this.db.tx(`workshop:${req.workshop}`, async (tx) => {
        const dup = await tx.get(
          "SELECT id FROM registrations WHERE workshop = ? AND email = ? AND active = 1",
          [req.workshop, email],
        );
        if (dup) return { ok: false, reason: "duplicate" } as const;
        const held = new Set(req.recordedHeld);
        const backends = [...new Set(req.ranges.map((r) => r.backend))];
        if (backends.length > 0) {
          const rows = await tx.all(
            `SELECT backend, seat FROM registrations WHERE active = 1 AND backend IN (${
              backends.map(() => "?").join(", ")
            })`,
            backends,
          );
          for (const r of rows) held.add(`${r.backend}/${r.seat}`);
        }
        const seat = chooseSeat(req.ranges, held, req.capacity);
        if (!seat) return { ok: false, reason: "full" } as const;
        const row = await tx.get(
          `INSERT INTO registrations (token_hash, workshop, backend, seat, email, first_name, last_name, company,
             status, active, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'preparing', 1, ?, ?) RETURNING ${COLS}`,
          [
            req.tokenHash,
            req.workshop,
            seat.backend,
            seat.seat,
            email,
            req.firstName,
            req.lastName,
            req.company,
            req.now,
            req.now,
          ],
        );
        const registration = toRegistration(row!);
        for (const kind of req.outbox) await this.enqueueTx(tx, registration.id, kind, req.now);
        return { ok: true, registration } as const;
      });
    } catch (err) {
      // Another process won the race for the same email (the index, not the lock, caught it).
      if (isUniqueViolation(err)) return { ok: false, reason: "duplicate" };
      throw err;
    }
  }

  /** Seats ("backend/seat") active registrations hold. */
  async heldSeats(): Promise<Set<string>> {
    const rows = await this.db.all("SELECT backend, seat FROM registrations WHERE active = 1");
    return new Set(rows.map((r) => `${r.backend}/${r.seat}`));
  }

  async byId(id: number): Promise<Registration | undefined> {
    const r = await this.db.get(`SELECT ${COLS} FROM registrations WHERE id = ?`, [id]);
    return r ? toRegistration(r) : undefined;
  }

  async byToken(tokenHash: string): Promise<Registration | undefined> {
    const r = await this.db.get(`SELECT ${COLS} FROM registrations WHERE token_hash = ?`, [tokenHash]);
    return r ? toRegistration(r) : undefined;
  }

  async activeBySeat(backend: string, seat: number): Promise<Registration | undefined> {
    const r = await this.db.get(
      `SELECT ${COLS} FROM registrations WHERE backend = ? AND seat = ? AND active = 1`,
      [backend, seat],
    );
    return r ? toRegistration(r) : undefined;
  }

  async list(opts: { workshop?: string; active?: boolean; limit?: number } = {}): Promise<Registration[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (opts.workshop) {
      where.push("workshop = ?");
      params.push(opts.workshop);
    }
    if (opts.active !== undefined) {
      where.push("active = ?");
      params.push(opts.active ? 1 : 0);
    }
    params.push(opts.limit ?? 100_000);
    const rows = await this.db.all(
      `SELECT ${COLS} FROM registrations ${
        where.length ? `WHERE ${where.join(" AND ")}` : ""
      } ORDER BY id LIMIT ?`,
      params,
    );
    return rows.map(toRegistration);
  }

  /** Moves a registration along; `ended` frees its seat. Returns false when it was not in `from`. */
  async setStatus(
    id: number,
    to: RegistrationStatus,
    now: string,
    opts: { from?: RegistrationStatus[]; completion?: number } = {},
  ): Promise<boolean> {
    const sets = ["status = ?", "updated = ?"];
    const params: Param[] = [to, now];
    if (to === "ended") {
      sets.push("active = 0", "ended_at = ?");
      params.push(now);
    }
    if (to === "ready") {
      sets.push("ready_at = COALESCE(ready_at, ?)");
      params.push(now);
    }
    if (opts.completion !== undefined) {
      sets.push("completion = ?");
      params.push(opts.completion);
    }
    let where = "id = ?";
    params.push(id);
    if (opts.from?.length) {
      where += ` AND status IN (${opts.from.map(() => "?").join(", ")})`;
      params.push(...opts.from);
    }
    return (await this.db.run(`UPDATE registrations SET ${sets.join(", ")} WHERE ${where}`, params)) > 0;
  }

  /** A new status link (the old one stops working). */
  async setTokenHash(id: number, tokenHash: string): Promise<void> {
    await this.db.run("UPDATE registrations SET token_hash = ? WHERE id = ?", [tokenHash, id]);
  }

  async setCompletion(id: number, completion: number, now: string): Promise<void> {
    await this.db.run("UPDATE registrations SET completion = ?, updated = ? WHERE id = ?", [
      completion,
      now,
      id,
    ]);
  }

  async setReminded(id: number, at: string): Promise<void> {
    await this.db.run("UPDATE registrations SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL", [
      at,
      id,
    ]);
  }

  /** Deletes the participant's name, email and company (the seat record stays, without them). */
  async deletePersonal(id: number, now: string): Promise<void> {
    await this.db.run(
      `UPDATE registrations SET email = NULL, first_name = NULL, last_name = NULL, company = NULL,
         personal_deleted_at = ?, updated = ? WHERE id = ?`,
      [now, now, id],
    );
  }

  /** Retention: personal data of registrations ended before `before` is deleted. Returns how many. */
  async applyRetention(before: string, now: string): Promise<number> {
    return await this.db.run(
      `UPDATE registrations SET email = NULL, first_name = NULL, last_name = NULL, company = NULL,
         personal_deleted_at = ?, updated = ?
       WHERE active = 0 AND ended_at IS NOT NULL AND ended_at < ? AND personal_deleted_at IS NULL`,
      [now, now, before],
    );
  }

  // ---------- outbox ----------

  private async enqueueTx(tx: Tx, registrationId: number, kind: OutboxKind, now: string): Promise<number> {
    const r = await tx.get(
      "INSERT INTO outbox (registration_id, kind, status, attempts, created, updated) VALUES (?, ?, 'pending', 0, ?, ?) RETURNING id",
      [registrationId, kind, now, now],
    );
    return Number(r!.id);
  }

  async enqueue(registrationId: number, kind: OutboxKind, now: string): Promise<number> {
    return await this.db.tx("outbox", (tx) => this.enqueueTx(tx, registrationId, kind, now));
  }

  /** Takes one pending item for sending: only one caller ever gets it (pending -> sending). */
  async claim(id: number, now: string): Promise<boolean> {
    return (await this.db.run(
      "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated = ? WHERE id = ? AND status = 'pending'",
      [now, id],
    )) === 1;
  }

  async finish(id: number, ok: boolean, error: string | null, now: string, retry = false): Promise<void> {
    await this.db.run("UPDATE outbox SET status = ?, last_error = ?, updated = ? WHERE id = ?", [
      ok ? "sent" : retry ? "pending" : "failed",
      error,
      now,
      id,
    ]);
  }

  async outbox(opts: { status?: OutboxStatus[]; registrationId?: number } = {}): Promise<OutboxItem[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (opts.status?.length) {
      where.push(`status IN (${opts.status.map(() => "?").join(", ")})`);
      params.push(...opts.status);
    }
    if (opts.registrationId !== undefined) {
      where.push("registration_id = ?");
      params.push(opts.registrationId);
    }
    const rows = await this.db.all(
      `SELECT * FROM outbox ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id`,
      params,
    );
    return rows.map(toOutbox);
  }

  /** Items left in `sending` by a crash go back to pending (the listener's order ids keep it idempotent). */
  async requeueStale(before: string, now: string): Promise<number> {
    return await this.db.run(
      "UPDATE outbox SET status = 'pending', updated = ? WHERE status = 'sending' AND updated < ?",
      [now, before],
    );
  }

  async retryFailed(id: number, now: string): Promise<boolean> {
    return (await this.db.run(
      "UPDATE outbox SET status = 'pending', updated = ? WHERE id = ? AND status = 'failed'",
      [now, id],
    )) === 1;
  }

  // ---------- admin sessions ----------

  async createSession(idHash: string, username: string, expires: string): Promise<void> {
    await this.db.run("INSERT INTO sessions (id_hash, username, expires) VALUES (?, ?, ?)", [
      idHash,
      username,
      expires,
    ]);
  }

  async session(idHash: string, now: string): Promise<string | undefined> {
    const r = await this.db.get("SELECT username FROM sessions WHERE id_hash = ? AND expires > ?", [
      idHash,
      now,
    ]);
    return r ? String(r.username) : undefined;
  }

  async deleteSession(idHash: string, now: string): Promise<void> {
    await this.db.run("DELETE FROM sessions WHERE id_hash = ? OR expires <= ?", [idHash, now]);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

export async function openPortalStore(
  spec: { kind: "sqlite"; file: string } | { kind: "postgres"; url: string; max?: number },
): Promise<PortalStore> {
  const db = spec.kind === "sqlite"
    ? await openSqlite(spec.file)
    : await openPostgres(spec.url, { max: spec.max });
  return new PortalStore(db);
}
