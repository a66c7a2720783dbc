// Signatures of native (HMAC) orders already received, so a replay inside the window is refused even
// after a restart: an append-only file in the spool directory, fsynced before the order is acked.
import { join } from "node:path";

const enc = new TextEncoder();

export class ReplayGuard {
  #seen = new Map<string, number>();
  private constructor(readonly file: string, readonly windowSeconds: number) {}

  /** Load `replay.log` of `dir`, dropping entries that can no longer be replayed (older than 2 windows). */
  static async open(dir: string, windowSeconds: number, extraIds: string[] = []): Promise<ReplayGuard> {
    const g = new ReplayGuard(join(dir, "replay.log"), windowSeconds);
    const now = Math.floor(Date.now() / 1000);
    let text = "";
    try {
      text = await Deno.readTextFile(g.file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    for (const line of text.split("\n")) {
      const [key, ts] = line.split(" ");
      if (key && /^[0-9a-f]{40}$/.test(key) && Number(ts) > now - 2 * windowSeconds) {
        g.#seen.set(key, Number(ts));
      }
    }
    for (const id of extraIds) if (id.startsWith("s-")) g.#seen.set(id.slice(2), now);
    const compact = [...g.#seen].map(([k, t]) => `${k} ${t}\n`).join("");
    await Deno.writeTextFile(g.file + ".new", compact, { mode: 0o600 });
    await Deno.rename(g.file + ".new", g.file);
    return g;
  }

  /** Marks the signature as seen; false when it was seen already. */
  claim(sig: string): boolean {
    const k = sig.slice(0, 40);
    if (this.#seen.has(k)) return false;
    this.#seen.set(k, Math.floor(Date.now() / 1000));
    return true;
  }

  release(sig: string): void {
    this.#seen.delete(sig.slice(0, 40));
  }

  /** Make a claimed signature durable. */
  async persist(sig: string): Promise<void> {
    const f = await Deno.open(this.file, { append: true, create: true, mode: 0o600 });
    try {
      await f.write(enc.encode(`${sig.slice(0, 40)} ${Math.floor(Date.now() / 1000)}\n`));
      await f.syncData();
    } finally {
      f.close();
    }
  }
}
