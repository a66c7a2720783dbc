// The drain worker: moves spooled orders into the sink (state store), several orders per call (one
// commit), and deletes a spool segment only after the sink confirmed every order in it. After a crash
// the same segments are drained again; the sink's idempotency by order id makes that harmless.
import type { Spool } from "./spool.ts";
import type { OrderSink } from "./sink.ts";

export interface DrainStats {
  recorded: number;
  duplicates: number;
  commits: number;
  lastCommit?: string;
  lastError?: string;
  lastErrorAt?: string;
  failing: boolean;
}

export interface DrainOptions {
  /** Wait this long after a new segment so that more orders join one commit. */
  debounceMs?: number;
  /** At most this many orders per sink call. */
  maxBatch?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export class Drainer {
  stats: DrainStats = { recorded: 0, duplicates: 0, commits: 0, failing: false };
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
      const orders = segs.flatMap((s) => s.orders);
      try {
        const r = orders.length ? await this.sink.recordOrders(orders) : { recorded: [], duplicates: [] };
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
