// Signatures of native (HMAC) orders already received, so a replay inside the window is refused even
// after a restart: an append-only file in the spool directory, fsynced before the order is acked.
// Also the ids of orders taken by Message-ID (`m-...`), so a client retrying the same delivery is told
// that the order was already taken instead of getting a second copy recorded as a duplicate.
import { join } from "node:path";

const enc = new TextEncoder();

/** The key of a signature (its first 40 hex digits) or of a Message-ID order id (`m:` + its hash). */
function keyOf(x: string): string {
  return x.startsWith("m-") ? `m:${x.slice(2)}` : x.slice(0, 40);
}

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
      if (key && /^(m:)?[0-9a-f]{40}$/.test(key) && Number(ts) > now - 2 * windowSeconds) {
        g.#seen.set(key, Number(ts));
      }
    }
    for (const id of extraIds) {
      if (id.startsWith("s-")) g.#seen.set(id.slice(2), now);
      else if (id.startsWith("m-")) g.#seen.set(keyOf(id), now);
    }
    const compact = [...g.#seen].map(([k, t]) => `${k} ${t}\n`).join("");
    await Deno.writeTextFile(g.file + ".new", compact, { mode: 0o600 });
    await Deno.rename(g.file + ".new", g.file);
    return g;
  }

  /** Marks the signature (or `m-` order id) as seen; false when it was seen already. */
  claim(sig: string): boolean {
    const k = keyOf(sig);
    if (this.#seen.has(k)) return false;
    this.#seen.set(k, Math.floor(Date.now() / 1000));
    return true;
  }

  release(sig: string): void {
    this.#seen.delete(keyOf(sig));
  }

  /** Make a claimed signature durable. */
  async persist(sig: string): Promise<void> {
    const f = await Deno.open(this.file, { append: true, create: true, mode: 0o600 });
    try {
      await f.write(enc.encode(`${keyOf(sig)} ${Math.floor(Date.now() / 1000)}\n`));
      await f.syncData();
    } finally {
      f.close();
    }
  }
}
