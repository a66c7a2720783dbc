// A per-environment lease on the state store: one writer of seat actions at a time (a local
// `wod apply` against an Actions apply, later a long-running reconciler). The lease is a file in the
// state tree, state/<env>/lease.json {holder, purpose, acquired, expires}, taken and renewed through
// the store's optimistic transactions: when two runs take it at once, one commit wins and the other
// re-reads the new tip and finds it held. A holder that dies stops renewing; anyone may take an
// expired lease. Works on every store (git remote, GitHub API) because it only uses their commits.
import { hostname } from "node:os";
import { WodError } from "../common/errors.ts";
import type { StateStore, TreeStore } from "./store.ts";
import { STATE_DIR } from "./read.ts";

export interface LeaseRecord {
  holder: string;
  purpose: string;
  acquired: string;
  expires: string;
}

export interface LeaseOptions {
  /** Who holds it (default: user@host pid N, plus the Actions run when in GitHub Actions). */
  holder?: string;
  /** What for (shown to whoever is refused). */
  purpose?: string;
  /** How long the lease lasts without renewal (default 10 min); renewed every third of it. */
  ttlMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

export class LeaseHeldError extends WodError {
  constructor(readonly record: LeaseRecord, env: string, path: string) {
    super(
      `Environment "${env}" is leased by ${record.holder} (${record.purpose}) since ${record.acquired}, ` +
        `until ${record.expires}: wait for it to finish, or, if that run is gone, for the lease to expire ` +
        `(or delete ${path} on the state branch)`,
    );
    this.name = "LeaseHeldError";
  }
}

function defaultHolder(): string {
  const run = Deno.env.get("GITHUB_RUN_ID");
  const who = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? `uid ${Deno.uid() ?? "?"}`;
  // The random part keeps two leases of one process (a reconciler, a test) apart.
  return `${who}@${hostname()} pid ${Deno.pid} #${crypto.randomUUID().slice(0, 8)}${
    run ? ` (Actions run ${run})` : ""
  }`;
}

/** The tree under a store that offers one (LedgerStore), or undefined. */
export function treeOf(store: StateStore): { tree: TreeStore; prefix: string } | undefined {
  const s = store as unknown as { tree?: TreeStore; prefix?: string };
  return s.tree && typeof s.tree.transact === "function"
    ? { tree: s.tree, prefix: s.prefix ?? STATE_DIR }
    : undefined;
}

export function leasePath(env: string, prefix = STATE_DIR): string {
  return `${prefix}/${env}/lease.json`;
}

/** The lease as recorded now (undefined: none). */
export async function readLease(store: StateStore): Promise<LeaseRecord | undefined> {
  const t = treeOf(store);
  if (!t) return undefined;
  const text = await (await t.tree.snapshot()).read(leasePath(store.env, t.prefix));
  return text ? JSON.parse(text) as LeaseRecord : undefined;
}

export class Lease {
  #timer?: ReturnType<typeof setInterval>;
  #released = false;
  /** Set when a renewal found the lease taken by someone else (it had expired). */
  lost?: string;

  constructor(
    private readonly store: StateStore,
    private readonly tree: TreeStore | undefined,
    readonly path: string,
    readonly holder: string,
    private readonly opts: Required<Pick<LeaseOptions, "ttlMs" | "now" | "purpose">> & LeaseOptions,
  ) {}

  /** Takes the lease (or throws LeaseHeldError) and renews it in the background until release(). */
  async take(): Promise<void> {
    await this.write("take");
    const every = Math.max(1000, Math.floor(this.opts.ttlMs / 3));
    this.#timer = setInterval(() => {
      this.write("renew").catch((err) => {
        this.lost = (err as Error).message;
        this.opts.log?.(`warning: lease of ${this.store.env} not renewed: ${this.lost}`);
      });
    }, every);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Takes or renews the lease once, without background renewal (the caller renews). */
  async renewOnce(): Promise<void> {
    await this.write("take");
  }

  private async write(what: "take" | "renew"): Promise<void> {
    if (!this.tree) return;
    // A refusal must come from the remote's tip, not from a stale clone (a commit made on a stale
    // clone is rejected and redone by transact, but a refusal would not be).
    await this.tree.snapshot();
    const now = this.opts.now();
    await this.tree.transact(`lease ${this.store.env}: ${what} by ${this.holder}`, async (view) => {
      const text = await view.read(this.path);
      const cur = text ? JSON.parse(text) as LeaseRecord : undefined;
      if (cur && cur.holder !== this.holder && Date.parse(cur.expires) > now) {
        throw new LeaseHeldError(cur, this.store.env, this.path);
      }
      if (what === "renew" && cur?.holder !== this.holder) {
        throw new WodError(`the lease of "${this.store.env}" was taken over by ${cur?.holder ?? "nobody"}`);
      }
      const rec: LeaseRecord = {
        holder: this.holder,
        purpose: this.opts.purpose,
        acquired: cur?.holder === this.holder ? cur.acquired : new Date(now).toISOString(),
        expires: new Date(now + this.opts.ttlMs).toISOString(),
      };
      return new Map([[this.path, JSON.stringify(rec, null, 2) + "\n"]]);
    });
  }

  /** Gives the lease back (only if still ours). Safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (!this.tree) return;
    await this.tree.snapshot().catch(() => undefined);
    await this.tree.transact(`lease ${this.store.env}: release by ${this.holder}`, async (view) => {
      const text = await view.read(this.path);
      const cur = text ? JSON.parse(text) as LeaseRecord : undefined;
      if (cur?.holder !== this.holder) return undefined;
      return new Map([[this.path, null]]);
    }).catch((err) =>
      this.opts.log?.(`warning: lease of ${this.store.env} not released: ${(err as Error).message}`)
    );
  }
}

/**
 * Takes the environment's lease on `store`, or throws LeaseHeldError naming the holder. A store
 * without a tree (a test double) gets a lease that guards nothing.
 */
export async function acquireLease(store: StateStore, opts: LeaseOptions = {}): Promise<Lease> {
  const t = treeOf(store);
  const lease = new Lease(
    store,
    t?.tree,
    leasePath(store.env, t?.prefix),
    opts.holder ?? defaultHolder(),
    {
      ...opts,
      ttlMs: opts.ttlMs ?? 10 * 60_000,
      now: opts.now ?? Date.now,
      purpose: opts.purpose ?? "apply",
    },
  );
  await lease.take();
  return lease;
}

/**
 * The lease as a long-running holder uses it (the reconciler's `Lease` interface): `acquire(ttl)`
 * takes or renews it and answers false, instead of throwing, while someone else holds a live one;
 * `release()` gives it back if ours; `describe()` says who holds it. Work done while holding it calls
 * apply with `lease: false` (apply would otherwise take, and at its end give back, a lease of its own).
 */
export function environmentLease(store: StateStore, opts: Omit<LeaseOptions, "ttlMs"> = {}) {
  const holder = opts.holder ?? defaultHolder();
  let current: Lease | undefined;
  const make = (ttlMs: number) => {
    const t = treeOf(store);
    return new Lease(store, t?.tree, leasePath(store.env, t?.prefix), holder, {
      ...opts,
      ttlMs,
      now: opts.now ?? Date.now,
      purpose: opts.purpose ?? "reconciler",
    });
  };
  return {
    holder,
    async acquire(ttlMs: number): Promise<boolean> {
      const lease = make(ttlMs);
      try {
        await lease.renewOnce();
      } catch (err) {
        if (err instanceof LeaseHeldError) return false;
        throw err;
      }
      current = lease;
      return true;
    },
    async release(): Promise<void> {
      await (current ?? make(60_000)).release();
      current = undefined;
    },
    async describe(): Promise<{ holder: string; expires: string } | undefined> {
      const rec = await readLease(store);
      return rec ? { holder: rec.holder, expires: rec.expires } : undefined;
    },
  };
}
