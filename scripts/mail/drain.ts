// The drain worker: moves spooled orders into the sink (state store), several orders per call (one
// commit), and deletes a spool segment only after the sink confirmed every order in it. After a crash
// the same segments are drained again; the sink's idempotency by order id makes that harmless.
//
// Dead letters: when the sink refuses one order for what it is (an error carrying `orderId`, e.g. the
// store's OrderRefusedError), that order is moved to `dead-letter.jsonl` in the spool directory (with
// the reason, fsynced), the sink is asked to note the refusal in its ledger (`recordRefusal`), and the
// drain goes on with the other orders at once. Any other failure (store unreachable) keeps every order
// in the spool and is retried with backoff.
import { join } from "node:path";
import type { Order } from "../config/types.gen.ts";
import type { Spool } from "./spool.ts";
import type { OrderSink } from "./sink.ts";

export const DEAD_LETTER_FILE = "dead-letter.jsonl";

export interface DeadLetter {
  at: string;
  id: string;
  reason: string;
  order: Order;
}

export interface DrainStats {
  recorded: number;
  duplicates: number;
  commits: number;
  lastCommit?: string;
  lastError?: string;
  lastErrorAt?: string;
  failing: boolean;
  deadLetters: number;
  lastDeadLetter?: { id: string; reason: string; at: string };
}

export interface DrainOptions {
  /** Wait this long after a new segment so that more orders join one commit. */
  debounceMs?: number;
  /** At most this many orders per sink call. */
  maxBatch?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export class Drainer {
  stats: DrainStats = { recorded: 0, duplicates: 0, commits: 0, failing: false, deadLetters: 0 };
  /** Ids in the dead-letter file: never sent to the sink again. */
  #dead?: Set<string>;
  #timer?: ReturnType<typeof setTimeout>;
  #running?: Promise<void>;
  #again = false;
  #stopped = false;
  #backoff = 0;
  /** After a failure, fewer segments per attempt, so one bad segment cannot hold back the others. */
  #segLimit = Infinity;
  #unsubscribe: () => void;

  constructor(readonly spool: Spool, readonly sink: OrderSink, readonly opts: DrainOptions = {}) {
    this.#unsubscribe = spool.onSegment(() => this.kick(opts.debounceMs ?? 50));
  }

  get deadLetterFile(): string {
    return join(this.spool.dir, DEAD_LETTER_FILE);
  }

  /** The dead letters so far (the file's entries, oldest first). */
  async deadLetters(): Promise<DeadLetter[]> {
    let text = "";
    try {
      text = await Deno.readTextFile(this.deadLetterFile);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const out: DeadLetter[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // a torn last line: its order is still in the spool and will be dead-lettered again
      }
    }
    return out;
  }

  async #deadIds(): Promise<Set<string>> {
    if (!this.#dead) {
      const letters = await this.deadLetters();
      this.#dead = new Set(letters.map((d) => d.id));
      this.stats.deadLetters = this.#dead.size;
      const last = letters.at(-1);
      if (last) this.stats.lastDeadLetter = { id: last.id, reason: last.reason, at: last.at };
    }
    return this.#dead;
  }

  /** Move `order` to the dead-letter file (durable before the spool segment can go), then tell the sink. */
  async #deadLetter(order: Order, reason: string): Promise<void> {
    const dead = await this.#deadIds();
    const at = new Date().toISOString();
    const entry: DeadLetter = { at, id: String(order.id), reason: reason.slice(0, 2000), order };
    const f = await Deno.open(this.deadLetterFile, { append: true, create: true, mode: 0o600 });
    try {
      await f.write(new TextEncoder().encode(JSON.stringify(entry) + "\n"));
      await f.syncData();
    } finally {
      f.close();
    }
    dead.add(entry.id);
    this.stats.deadLetters = dead.size;
    this.stats.lastDeadLetter = { id: entry.id, reason: entry.reason, at };
    this.opts.log?.("dead-letter", { id: entry.id, reason: entry.reason, file: this.deadLetterFile });
    try {
      await this.sink.recordRefusal?.(order, entry.reason);
    } catch (e) {
      this.opts.log?.("dead-letter-not-in-ledger", { id: entry.id, error: (e as Error).message });
    }
  }

  /** Schedule a drain after `delayMs` (coalesces). */
  kick(delayMs = 0): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#start();
    }, delayMs);
  }

  #start(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.kick(0);
      }
    });
  }

  async #loop(force = false): Promise<void> {
    const max = this.opts.maxBatch ?? 1000;
    const dead = await this.#deadIds();
    while (force || !this.#stopped) {
      const names = await this.spool.list();
      if (names.length === 0) return;
      const segs = [];
      let n = 0;
      for (const name of names) {
        const seg = await this.spool.read(name);
        if (seg.bad) this.opts.log?.("spool-bad-lines", { segment: name, lines: seg.bad });
        segs.push(seg);
        n += seg.orders.length;
        if (n >= max || segs.length >= this.#segLimit) break;
      }
      const orders = segs.flatMap((s) => s.orders).filter((o) => !dead.has(String(o.id)));
      try {
        const r = orders.length ? await this.sink.recordOrders(orders) : { recorded: [], duplicates: [] };
        // The store took them: not failing any more (set before the spool's depth can reach 0).
        this.stats.failing = false;
        await this.spool.remove(segs);
        this.stats.recorded += r.recorded.length;
        this.stats.duplicates += r.duplicates.length;
        this.stats.commits++;
        this.stats.lastCommit = new Date().toISOString();
        this.stats.failing = false;
        this.#backoff = 0;
        this.#segLimit = Infinity;
        this.opts.log?.("recorded", {
          orders: orders.length,
          recorded: r.recorded.length,
          duplicates: r.duplicates.length,
          rejected: (r as { rejected?: unknown[] }).rejected?.length,
          segments: segs.length,
        });
      } catch (e) {
        const refused = (e as { orderId?: unknown }).orderId;
        const bad = typeof refused === "string" ? orders.find((o) => o.id === refused) : undefined;
        if (bad) {
          // The store refused this one order: set it aside and go on with the others now.
          await this.#deadLetter(bad, (e as Error).message);
          continue;
        }
        this.stats.failing = true;
        this.#segLimit = Math.max(1, Math.floor(segs.length / 2));
        this.stats.lastError = (e as Error).message;
        this.stats.lastErrorAt = new Date().toISOString();
        this.#backoff = Math.min(30_000, this.#backoff ? this.#backoff * 2 : 500);
        this.opts.log?.("record-failed", { error: (e as Error).message, retry_ms: this.#backoff });
        this.kick(this.#backoff);
        return;
      }
    }
  }

  /** Drain everything now (used at startup and on shutdown); resolves when the spool is empty or failing. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#running) await this.#running;
    this.#running = this.#loop(true);
    try {
      await this.#running;
    } finally {
      this.#running = undefined;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#running) await this.#running;
  }
}
