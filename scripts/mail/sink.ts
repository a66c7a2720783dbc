// Where the drain worker puts spooled orders. The production sink is the state store
// (scripts/state/store.ts, `openStore(...).recordOrders`); `DirSink` is a small durable store with the
// same contract (idempotent by order id, resolves only when durable), used by tests and the bench,
// and by `wod listen --record-to DIR`.
import { join } from "node:path";
import type { Order, Seat } from "../config/types.gen.ts";

export interface OrderSink {
  /** Idempotent by order.id; resolves only when durable. */
  recordOrders(orders: Order[]): Promise<{ recorded: string[]; duplicates: string[] }>;
  /**
   * Note in the ledger that `order` was refused at drain time (it went to the dead-letter file).
   * Optional; errors are logged, the order stays in the dead-letter file.
   */
  recordRefusal?(order: Order, reason: string, opts?: { beforeAccept?: boolean }): Promise<void>;
  /**
   * The recorded seats (optional): with it the listener checks what a seat's state decides before
   * answering 250 (scripts/state/gate.ts).
   */
  readSeats?(): Promise<Seat[]>;
}

const enc = new TextEncoder();

/**
 * An append-only `<dir>/orders.jsonl` (one recorded order per line, fdatasync per batch) and an id
 * index loaded from it. Tests count lines per id to prove nothing was recorded twice.
 */
export class DirSink implements OrderSink {
  commits = 0;
  #ids?: Set<string>;
  constructor(readonly dir: string) {}

  get file(): string {
    return join(this.dir, "orders.jsonl");
  }

  static async readAll(dir: string): Promise<{ order: unknown; id: string }[]> {
    let text = "";
    try {
      text = await Deno.readTextFile(join(dir, "orders.jsonl"));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const out: { order: unknown; id: string }[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const o = JSON.parse(line);
        out.push({ order: o, id: String(o.id) });
      } catch {
        // a torn last line (never confirmed) is ignored
      }
    }
    return out;
  }

  async recordOrders(orders: Order[]): Promise<{ recorded: string[]; duplicates: string[] }> {
    if (!this.#ids) {
      await Deno.mkdir(this.dir, { recursive: true });
      this.#ids = new Set((await DirSink.readAll(this.dir)).map((x) => x.id));
    }
    const recorded: string[] = [];
    const duplicates: string[] = [];
    const lines: string[] = [];
    for (const o of orders) {
      if (this.#ids.has(o.id) || recorded.includes(o.id)) {
        duplicates.push(o.id);
        continue;
      }
      recorded.push(o.id);
      lines.push(JSON.stringify(o) + "\n");
    }
    if (lines.length) {
      const f = await Deno.open(this.file, { append: true, create: true, mode: 0o600 });
      try {
        const data = enc.encode(lines.join(""));
        let off = 0;
        while (off < data.length) off += await f.write(data.subarray(off));
        await f.syncData();
      } finally {
        f.close();
      }
      for (const id of recorded) this.#ids.add(id);
      this.commits++;
    }
    return { recorded, duplicates };
  }

  /** `<dir>/refused.jsonl`: one line per order refused at drain time, with the reason. */
  async recordRefusal(order: Order, reason: string): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    const line = JSON.stringify({ id: order.id, outcome: "refused", reason }) + "\n";
    await Deno.writeTextFile(join(this.dir, "refused.jsonl"), line, { append: true, mode: 0o600 });
  }
}
