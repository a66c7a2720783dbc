// The listener's health endpoint: a minimal HTTP/1.1 server (GET /health, GET /) on Deno.listen with its
// own accept loop. Deno.serve is not used because an accept error there (EMFILE) is an uncaught
// rejection that ends the process; here an accept error backs off and the loop goes on, connections are
// capped (idle clients cannot take the descriptors the SMTP side needs), and each one is closed after
// one response or 2 s.
export interface HealthServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 2_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `report()` gives the HTTP status and the JSON body. */
export function serveHealth(
  host: string,
  port: number,
  report: () => { status: number; body: unknown },
  onError: (message: string) => void = () => {},
): HealthServer {
  const listener = Deno.listen({ hostname: host, port, transport: "tcp" });
  const addr = listener.addr as Deno.NetAddr;
  const open = new Set<Deno.Conn>();
  let closing = false;

  const respond = async (conn: Deno.Conn) => {
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* closed */ }
    }, REQUEST_TIMEOUT_MS);
    try {
      const buf = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n") && !head.includes("\n\n") && head.length < 4096) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += dec.decode(buf.subarray(0, n));
      }
      const [method, target] = head.split(/\s+/, 2);
      const path = (target ?? "").split("?")[0];
      let status = 404;
      let body = "Not found\n";
      let type = "text/plain";
      if (method !== "GET" && method !== "HEAD") {
        status = 405;
        body = "Method not allowed\n";
      } else if (path === "/health" || path === "/") {
        const r = report();
        status = r.status;
        body = JSON.stringify(r.body);
        type = "application/json";
      }
      const reason =
        { 200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable" }[status] ??
          "Status";
      const data = enc.encode(body);
      const out = enc.encode(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${type}\r\nContent-Length: ${data.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`,
      );
      await writeAll(conn, out);
      if (method !== "HEAD") await writeAll(conn, data);
    } catch {
      // the client went away, or the timeout closed the connection
    } finally {
      clearTimeout(timer);
      open.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };

  const loop = (async () => {
    let backoff = 0;
    while (!closing) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoff = 0;
      } catch (e) {
        if (closing || e instanceof Deno.errors.BadResource) return;
        backoff = Math.min(1000, backoff ? backoff * 2 : 20);
        onError(`health endpoint accept failed (${(e as Error).message}), retrying in ${backoff} ms`);
        await new Promise((r) => setTimeout(r, backoff));
        continue;
      }
      if (open.size >= MAX_CONNECTIONS) {
        conn.close();
        continue;
      }
      open.add(conn);
      respond(conn);
    }
  })();

  return {
    host: addr.hostname,
    port: addr.port,
    close: async () => {
      closing = true;
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      open.clear();
      await loop;
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}
