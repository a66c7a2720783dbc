// The recorded-state store: one interface, two implementations (scripts/git/git_store.ts for any git
// remote, scripts/git/github_store.ts for the GitHub API). Both are "tree stores" offering an
// optimistic transaction (read a snapshot, write files, commit; on a concurrent change: re-read and
// redo). Orders, seats and the ledger logic live here, once.
import { isAbsolute, join, resolve } from "node:path";
import type { Environment, Order, Seat, SeatOrderRecord } from "../config/types.gen.ts";
import { type Config, loadConfig, requireEnvironment } from "../config/load.ts";
import { validator } from "../config/schema.ts";
import { WodError } from "../common/errors.ts";
import { ORDER_ID_RE } from "../orders/check.ts";
import { assertOrderType, OrderInvalidError } from "../orders/validate.ts";
import { alreadyDone, freeSeat, transition, TransitionError, withNotice } from "./machine.ts";
import { orderPath, ORDERS_DIR, parseSeat, seatPath, type SeatRecord, sortSeats, STATE_DIR } from "./read.ts";
import { seal } from "./seal.ts";
import type { Changes, TreeStore, TreeView } from "../git/tree.ts";

// The tree-store interface lives in scripts/git/tree.ts (no cycle between state/ and git/); re-exported
// here for the callers that import it with the rest of the store.
export type { Changes, SeatRecord, TreeStore, TreeView };

export interface RecordResult {
  recorded: string[];
  duplicates: string[];
  /** Orders recorded in the ledger but refused by the seat state machine (or partly, for ranges). */
  rejected: { id: string; reason: string }[];
  warnings: string[];
}

export interface RecordOptions {
  /** Emails already sealed (order id -> age armor), e.g. from a dispatched workflow's input. */
  sealed?: Record<string, string>;
}

export interface StateStore {
  readonly kind: "git" | "github";
  readonly env: string;
  /** Where the state lives (remote and branch, or owner/repo@branch). */
  readonly where: string;
  /** Idempotent by order.id; several orders -> one commit. Resolves only when durable in the store. */
  recordOrders(orders: Order[], opts?: RecordOptions): Promise<RecordResult>;
  readSeats(): Promise<SeatRecord[]>;
  readOrder(id: string): Promise<SeatOrderRecord | undefined>;
  readOrders(): Promise<SeatOrderRecord[]>;
  /**
   * Read-modify-write of seats in one commit: `fn` gets the current seats (by "backend/seat") and
   * returns the seats to write (or nothing). Retried on a concurrent change. Returns whether it committed.
   */
  updateSeats(
    message: string,
    fn: (seats: Map<string, Seat>) => Seat[] | undefined | Promise<Seat[] | undefined>,
  ): Promise<boolean>;
  close(): Promise<void>;
}

export function seatKey(s: { backend: string; seat: number }): string {
  return `${s.backend}/${s.seat}`;
}

export function stableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

function check(name: "seat", value: unknown, what: string): void {
  const v = validator(name);
  if (!v(value)) {
    const e = v.errors?.[0];
    throw new WodError(`Refusing to record ${what}: ${e?.instancePath || "the document"} ${e?.message}`);
  }
}

/**
 * The store refuses this one order for what it is (invalid, or for another environment), not because
 * the store is unreachable: the listener's drain moves it to its dead-letter file and goes on.
 */
export class OrderRefusedError extends WodError {
  constructor(readonly orderId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OrderRefusedError";
  }
}

/**
 * The store records orders that their entry validated (validateOrder of scripts/orders/validate.ts, in
 * the listener and `wod order`) or that expiry and drift made from recorded seats; here it only asserts
 * the type (the order schema), so nothing that is not an order reaches the ledger. Throws
 * OrderRefusedError (the drain dead-letters that one order).
 */
function assertRecordable(order: Order): void {
  try {
    assertOrderType(order);
  } catch (e) {
    if (e instanceof OrderInvalidError && typeof order?.id === "string") {
      throw new OrderRefusedError(order.id, e.message);
    }
    throw e;
  }
}

/** The state logic over any TreeStore. */
export class LedgerStore implements StateStore {
  constructor(
    readonly tree: TreeStore,
    readonly env: string,
    readonly recipients: string[],
    readonly prefix = STATE_DIR,
  ) {}

  get kind() {
    return this.tree.kind;
  }
  get where() {
    return this.tree.where;
  }

  async recordOrders(orders: Order[], opts: RecordOptions = {}): Promise<RecordResult> {
    const warnings: string[] = [];
    const sealed = new Map<string, string>(Object.entries(opts.sealed ?? {}));
    for (const armored of sealed.values()) {
      if (!armored.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) {
        throw new WodError("A sealed email must be age ASCII armor (-----BEGIN AGE ENCRYPTED FILE-----)");
      }
    }
    for (const o of orders) {
      assertRecordable(o);
      if (o.env !== this.env) {
        throw new OrderRefusedError(
          o.id,
          `Order ${o.id} is for environment "${o.env}"; this store holds "${this.env}"`,
        );
      }
      if (o.email !== undefined && o.email !== "" && !sealed.has(o.id)) {
        if (this.recipients.length === 0) {
          warnings.push(
            `Order ${o.id}: the email is not recorded (environment "${this.env}" has no seal.recipients)`,
          );
        } else sealed.set(o.id, await seal(o.email, this.recipients));
      }
    }
    let result: RecordResult = { recorded: [], duplicates: [], rejected: [], warnings };
    const ids = orders.map((o) => o.id).join(", ");
    const message = orders.length === 1
      ? `order ${orders[0].action} ${orders[0].backend}/${orderSeats(orders[0])} ${orders[0].workshop} (${
        orders[0].id
      })`
      : `${orders.length} orders: ${ids.length > 200 ? ids.slice(0, 200) + "..." : ids}`;
    await this.tree.transact(message, async (view) => {
      result = { recorded: [], duplicates: [], rejected: [], warnings };
      const changes: Changes = new Map();
      const seats = new Map<string, Seat>();
      const seen = new Set<string>();
      const now = new Date().toISOString();
      for (const o of orders) {
        const opath = orderPath(this.env, o.id, this.prefix);
        if (seen.has(o.id) || (await view.read(opath)) !== undefined) {
          result.duplicates.push(o.id);
          continue;
        }
        seen.add(o.id);
        const reasons: string[] = [];
        const done: string[] = [];
        const rejectedSeats: number[] = [];
        for (let n = o.seats[0]; n <= o.seats[1]; n++) {
          const key = `${o.backend}/${n}`;
          let seat = seats.get(key);
          if (!seat) {
            const p = seatPath(this.env, o.backend, n, this.prefix);
            const text = await view.read(p);
            seat = text === undefined ? freeSeat(o.backend, n) : parseSeat(text, p, o.backend, n);
          }
          try {
            const nothingToDo = alreadyDone(seat, o);
            seat = transition(seat, o, { now, emailSealed: sealed.get(o.id) });
            if (nothingToDo) done.push(nothingToDo);
            check("seat", seat, `seat ${key}`);
            seats.set(key, seat);
            changes.set(seatPath(this.env, o.backend, n, this.prefix), stableJson(seat));
          } catch (err) {
            if (!(err instanceof TransitionError)) throw err;
            reasons.push(err.message);
            rejectedSeats.push(n);
            // The front end hears that its order cannot be carried out (apply sends the notice).
            const noted = withNotice(seat, o, "refused", now);
            if (noted !== seat) {
              seats.set(key, noted);
              changes.set(seatPath(this.env, o.backend, n, this.prefix), stableJson(noted));
            }
          }
        }
        const total = o.seats[1] - o.seats[0] + 1;
        const rec: SeatOrderRecord = {
          id: o.id,
          action: o.action,
          backend: o.backend,
          workshop: o.workshop,
          seats: o.seats,
          source: o.source,
          received: o.received,
          recorded: now,
          outcome: rejectedSeats.length === 0
            ? "accepted"
            : rejectedSeats.length === total
            ? "rejected"
            : "partial",
        };
        if (o.mode) rec.mode = o.mode;
        if (o.customer !== undefined) rec.customer = o.customer;
        if (sealed.has(o.id)) rec.email_sealed = sealed.get(o.id);
        if (reasons.length) {
          rec.reason = (o.reason ? o.reason + "; " : "") + reasons.join("; ");
          rec.reason = rec.reason.slice(0, 2000);
          rec.rejected_seats = rejectedSeats;
          result.rejected.push({ id: o.id, reason: reasons.join("; ") });
        } else if (o.reason || done.length) {
          rec.reason = [o.reason, ...done].filter(Boolean).join("; ").slice(0, 2000);
        }
        changes.set(opath, stableJson(rec));
        result.recorded.push(o.id);
      }
      return changes;
    });
    return result;
  }

  /**
   * Ledger entry for an order refused at drain time (`recordOrders` threw OrderRefusedError for it):
   * `outcome: "rejected"` with the reason, no seat changes. Only for an id that is safe as a file name;
   * fields that are not strings are left out. No-op when the order is already in the ledger.
   */
  async recordRefusal(order: Order, reason: string, opts: { beforeAccept?: boolean } = {}): Promise<void> {
    const id = (order as { id?: unknown }).id;
    if (typeof id !== "string" || !ORDER_ID_RE.test(id)) {
      throw new WodError(
        `Cannot note the refused order in the ledger: its id ${JSON.stringify(id)} is not valid`,
      );
    }
    const str = (v: unknown) => (typeof v === "string" ? v.slice(0, 200) : "");
    const seats = Array.isArray(order.seats) && order.seats.length === 2 &&
        order.seats.every((n) => Number.isSafeInteger(n) && n >= 0)
      ? order.seats
      : [0, 0] as [number, number];
    const stage = opts.beforeAccept ? "before acceptance" : "at drain time";
    await this.tree.transact(`order refused ${stage} (${id})`, async (view) => {
      const opath = orderPath(this.env, id, this.prefix);
      if ((await view.read(opath)) !== undefined) return undefined;
      const changes: Changes = new Map();
      if (opts.beforeAccept && order.seats[0] === order.seats[1] && typeof order.backend === "string") {
        // The seat's state refused it: the front end hears of it through the seat's notice (apply).
        const p = seatPath(this.env, order.backend, order.seats[0], this.prefix);
        const text = await view.read(p);
        if (text !== undefined) {
          const seat = parseSeat(text, p, order.backend, order.seats[0]);
          const noted = withNotice(seat, order, "refused", new Date().toISOString());
          if (noted !== seat) changes.set(p, stableJson(noted));
        }
      }
      const rec = {
        id,
        action: str(order.action),
        backend: str(order.backend),
        workshop: str(order.workshop),
        seats,
        source: str(order.source),
        received: str(order.received),
        recorded: new Date().toISOString(),
        ...(typeof order.customer === "string" ? { customer: order.customer.slice(0, 200) } : {}),
        outcome: "rejected",
        reason: (opts.beforeAccept
          ? `Refused before acceptance (the sender got 550): ${reason}`
          : `Refused by the store at drain time (kept in the listener's dead-letter file): ${reason}`)
          .slice(0, 2000),
      };
      changes.set(opath, stableJson(rec));
      return changes;
    });
  }

  private async seatsOf(view: TreeView): Promise<Seat[]> {
    const out: Seat[] = [];
    const envDir = `${this.prefix}/${this.env}`;
    for (const b of await view.dirs(envDir)) {
      if (b === ORDERS_DIR) continue;
      for (const f of await view.list(`${envDir}/${b}`)) {
        const m = /^(0|[1-9][0-9]*)\.json$/.exec(f);
        if (!m) continue;
        const p = `${envDir}/${b}/${f}`;
        const text = await view.read(p);
        if (text !== undefined) out.push(parseSeat(text, p, b, Number(m[1])));
      }
    }
    return sortSeats(out);
  }

  async readSeats(): Promise<SeatRecord[]> {
    return await this.seatsOf(await this.tree.snapshot());
  }

  async readOrder(id: string): Promise<SeatOrderRecord | undefined> {
    const text = await (await this.tree.snapshot()).read(orderPath(this.env, id, this.prefix));
    return text === undefined ? undefined : JSON.parse(text) as SeatOrderRecord;
  }

  async readOrders(): Promise<SeatOrderRecord[]> {
    const view = await this.tree.snapshot();
    const dir = `${this.prefix}/${this.env}/${ORDERS_DIR}`;
    const out: SeatOrderRecord[] = [];
    for (const f of await view.list(dir)) {
      const text = await view.read(`${dir}/${f}`);
      if (text !== undefined) out.push(JSON.parse(text));
    }
    return out;
  }

  async updateSeats(
    message: string,
    fn: (seats: Map<string, Seat>) => Seat[] | undefined | Promise<Seat[] | undefined>,
  ): Promise<boolean> {
    return await this.tree.transact(message, async (view) => {
      const seats = new Map((await this.seatsOf(view)).map((s) => [seatKey(s), s]));
      const out = await fn(seats);
      if (!out || out.length === 0) return undefined;
      const changes: Changes = new Map();
      for (const s of out) {
        check("seat", s, `seat ${seatKey(s)}`);
        changes.set(seatPath(this.env, s.backend, s.seat, this.prefix), stableJson(s));
      }
      return changes;
    });
  }

  async close(): Promise<void> {
    await this.tree.close();
  }
}

function orderSeats(o: Order): string {
  return o.seats[0] === o.seats[1] ? String(o.seats[0]) : `${o.seats[0]}-${o.seats[1]}`;
}

export interface OpenStoreOptions {
  privateDir?: string;
  /** Already loaded configuration (saves a reload). */
  config?: Config;
  /** Override the environment's state settings (tests, bench). */
  kind?: "git" | "github";
  remote?: string;
  branch?: string;
  /** GitHub store: API base URL (default $GITHUB_API_URL or https://api.github.com), token, owner/repo. */
  github?: {
    baseUrl?: string;
    token?: string;
    repo?: string;
    writeIntervalMs?: number;
    retryAfterBaseMs?: number;
    log?: (line: string) => void;
  };
  /** Seal recipients override (default: the environment's seal.recipients). */
  recipients?: string[];
}

/** The local default remote for an environment without `state.remote`: a bare repo under .wod/. */
export function defaultRemote(root: string, env: string): string {
  return join(root, ".wod", "state", `${env}.git`);
}

/** Where an environment's recorded state lives: the store kind, the git remote (git kind), branch, path. */
export function stateLocation(
  root: string,
  env: string,
  e: Environment,
  opts: Pick<OpenStoreOptions, "kind" | "remote" | "branch"> = {},
): { kind: "git" | "github"; remote: string; createBare: boolean; branch: string; prefix: string } {
  const st = e.state ?? {};
  const kind = opts.kind ?? st.store ?? "git";
  let remote = opts.remote ?? st.remote;
  let createBare = false;
  if (!remote) {
    remote = defaultRemote(root, env);
    createBare = true;
  } else if (!/^[a-z+]+:\/\//.test(remote) && !/^[^/]+@[^/:]+:/.test(remote) && !isAbsolute(remote)) {
    remote = resolve(root, remote);
  }
  return {
    kind,
    remote,
    createBare,
    branch: opts.branch ?? st.branch ?? "state",
    prefix: st.path ?? STATE_DIR,
  };
}

export async function openStore(root: string, env: string, opts: OpenStoreOptions = {}): Promise<StateStore> {
  const cfg = opts.config ?? await loadConfig(root, { privateDir: opts.privateDir });
  const entry = requireEnvironment(cfg, env);
  const e: Environment = entry.value;
  const st = e.state ?? {};
  const { kind, remote, createBare, branch, prefix } = stateLocation(root, env, e, opts);
  const recipients = opts.recipients ?? e.seal?.recipients ?? [];
  if (kind === "github") {
    const { openGithubTree } = await import("../git/github_store.ts");
    const repo = opts.github?.repo ?? st.github_repo ?? Deno.env.get("GITHUB_REPOSITORY");
    if (!repo) {
      throw new WodError(
        `Environment "${env}" uses the GitHub store but names no repository: set state.github_repo in ${entry.file} or GITHUB_REPOSITORY`,
      );
    }
    const tree = await openGithubTree({
      baseUrl: opts.github?.baseUrl ?? Deno.env.get("GITHUB_API_URL") ?? "https://api.github.com",
      token: opts.github?.token ?? Deno.env.get("GITHUB_TOKEN"),
      repo,
      branch,
      writeIntervalMs: opts.github?.writeIntervalMs,
      retryAfterBaseMs: opts.github?.retryAfterBaseMs,
      log: opts.github?.log,
    });
    return new LedgerStore(tree, env, recipients, prefix);
  }
  const { openGitTree } = await import("../git/git_store.ts");
  const tree = await openGitTree({ remote, branch, createBare });
  return new LedgerStore(tree, env, recipients, prefix);
}
