// An order sent the way the original front end (wod-api-db) sends it (docs/interop.md): one raw TCP
// write of the whole conversation right after connecting, before the server greeting, bare LF line
// endings, `MAIL FROM:` without angle brackets, no blank line between Subject and body; the socket is
// closed as soon as the first server bytes arrive (the sender never reads a 250). Used by the demo and
// the api-db simulator (scripts/testing/apidb_sim.ts); the listener's side is scripts/orders/parse.ts.
import { WodError } from "../common/errors.ts";

export interface OriginalOrder {
  /** HELO name of the sender (the api-db host). */
  helo: string;
  from: string;
  /** `<admin user>@<backend fqdn>`. */
  to: string;
  /** e.g. `CREATE 70 1001 student@example.org`. */
  subject: string;
  /** The workshop folder name, e.g. `WKSHP-Shell101`. */
  body: string;
}

export function originalOrderBytes(o: OriginalOrder): Uint8Array {
  for (const [k, v] of Object.entries(o)) {
    if (/[\r\n]/.test(v)) throw new WodError(`Order field ${k} must be one line, got ${JSON.stringify(v)}`);
  }
  return new TextEncoder().encode(
    `HELO ${o.helo}\nMAIL FROM: ${o.from}\nRCPT TO: ${o.to}\nDATA\nSubject: ${o.subject}\n${o.body}\n.\n`,
  );
}

/** Sends the order; resolves with the first bytes the server sent (its greeting). */
export async function sendOriginalOrder(port: number, o: OriginalOrder, timeoutMs = 10_000): Promise<string> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (err) {
    throw new WodError(`Cannot connect to the order listener on 127.0.0.1:${port}`, { cause: err });
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const bytes = originalOrderBytes(o);
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    if (n === null) throw new WodError(`The order listener on 127.0.0.1:${port} closed without a greeting`);
    return new TextDecoder().decode(buf.subarray(0, n));
  } catch (err) {
    if (err instanceof WodError) throw err;
    throw new WodError(`Cannot send the order to 127.0.0.1:${port}`, { cause: err });
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}
