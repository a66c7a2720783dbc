// The on-disk spool: accepted orders are durable here before the listener says 250.
//
// Group commit: orders accepted while a write is in flight are written together as one segment file
// `seg-<time>-<pid>-<n>.jsonl` (one JSON order per line): write to a temp name, fdatasync, rename,
// fsync the directory, then resolve every waiting `append`. The drain worker records the orders of
// whole segments in the state store and deletes a segment only after the store confirmed it.
// Temp files left by a crash were never acknowledged and are deleted at open.
import { join } from "node:path";
import type { Order } from "../config/types.gen.ts";

export interface Segment {
  name: string;
  orders: Order[];
  /** Lines that did not parse (only possible after a power loss mid-write of unacknowledged data). */
  bad: number;
}

interface Pending {
  order: Order;
  resolve: () => void;
  reject: (e: Error) => void;
}

const enc = new TextEncoder();

/** Make the directory entries of `dir` durable (after a rename or unlink in it). */
export async function fsyncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir);
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

/**
 * Write `text` to `dir/name` durably: a temporary file (created anew with `createNew`, else truncated),
 * fdatasync, rename, directory fsync. A crash leaves the old file or the new one, never a part.
 */
export async function writeDurable(
  dir: string,
  name: string,
  text: string,
  opts: { createNew?: boolean } = {},
): Promise<void> {
  const tmp = join(dir, `.tmp-${name}`);
  const data = enc.encode(text);
  const f = await Deno.open(
    tmp,
    opts.createNew
      ? { write: true, createNew: true, mode: 0o600 }
      : { write: true, create: true, truncate: true, mode: 0o600 },
  );
  try {
    let off = 0;
    while (off < data.length) off += await f.write(data.subarray(off));
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

export class Spool {
  #pending: Pending[] = [];
  #writing = false;
  #seq = 0;
  #listeners = new Set<() => void>();
  /** Orders in segments not yet drained (kept up to date by append and remove). */
  depth = 0;
  segments = 0;

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<Spool> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new Spool(dir);
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".tmp-")) await Deno.remove(join(dir, e.name));
    }
    for (const seg of await s.list()) {
      s.depth += (await s.read(seg)).orders.length;
      s.segments++;
    }
    return s;
  }

  /** Called after each new segment is durable. */
  onSegment(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Resolves when the order is on disk (fsynced file and directory). */
  append(order: Order): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ order, resolve, reject });
      if (!this.#writing) this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, 2000);
        try {
          await this.#writeSegment(batch.map((p) => p.order));
          this.depth += batch.length;
          this.segments++;
          for (const p of batch) p.resolve();
          for (const fn of this.#listeners) fn();
        } catch (e) {
          const err = new Error(`Spool write in ${this.dir} failed: ${(e as Error).message}`, { cause: e });
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #writeSegment(orders: Order[]): Promise<void> {
    const stamp = Date.now().toString().padStart(15, "0");
    const name = `seg-${stamp}-${Deno.pid}-${(this.#seq++).toString().padStart(9, "0")}.jsonl`;
    await writeDurable(this.dir, name, orders.map((o) => JSON.stringify(o)).join("\n") + "\n", {
      createNew: true,
    });
  }

  /** Segment names, oldest first. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && e.name.startsWith("seg-") && e.name.endsWith(".jsonl")) out.push(e.name);
    }
    return out.sort();
  }

  async read(name: string): Promise<Segment> {
    const text = await Deno.readTextFile(join(this.dir, name));
    const orders: Order[] = [];
    let bad = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      try {
        orders.push(JSON.parse(line));
      } catch {
        bad++;
      }
    }
    return { name, orders, bad };
  }

  /** Delete drained segments (after the store confirmed their orders). */
  async remove(segs: Segment[]): Promise<void> {
    for (const s of segs) {
      await Deno.remove(join(this.dir, s.name));
      this.depth -= s.orders.length;
      this.segments--;
    }
    const d = await Deno.open(this.dir);
    try {
      await d.sync();
    } finally {
      d.close();
    }
  }

  /** Wait for in-flight writes (graceful shutdown). */
  async idle(): Promise<void> {
    while (this.#writing || this.#pending.length) await new Promise((r) => setTimeout(r, 5));
  }
}
