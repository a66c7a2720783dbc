// An allowlisting forward proxy for sandbox hosts: they live in network namespaces with no route out,
// and reach the package registries (the Debian mirror, PyPI, npm) only through this proxy, which the
// sandbox starts on the host side of each host's veth link. Plain HTTP requests in absolute form
// (apt) and CONNECT tunnels to port 443 (pip, npm) are forwarded when the target host is on the
// allowlist; everything else gets 403. One request per client connection (the answer carries
// `Connection: close`), so a second request on the same connection can never reach another host.
//
// Run as a process of its own: deno run --no-config --allow-net --allow-write registry_proxy.ts
//   --listen ADDR:PORT [--listen ...] --allow HOST[:PORT] [--allow ...] [--log FILE]

export interface ProxyRule {
  host: string;
  /** Ports allowed for plain HTTP (absolute form). */
  httpPorts: number[];
  /** Ports allowed for CONNECT. */
  connectPorts: number[];
}

export interface ProxyOptions {
  listen: { hostname: string; port: number }[];
  allow: string[];
  log?: (line: string) => void;
}

const MAX_HEAD = 16 * 1024;

/** The allowlist decision: host names compare case-insensitively and exactly (no suffix match). */
export function allowed(allow: string[], host: string, port: number, connect: boolean): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  for (const a of allow) {
    const [name, p] = a.toLowerCase().split(":");
    if (name !== h) continue;
    if (p !== undefined) return Number(p) === port;
    return connect ? port === 443 : port === 80;
  }
  return false;
}

/** Parse the request head of a proxy request: absolute-form HTTP or CONNECT. */
export function parseHead(head: string):
  | { kind: "connect"; host: string; port: number }
  | {
    kind: "http";
    host: string;
    port: number;
    method: string;
    path: string;
    version: string;
    headers: string[];
  }
  | { kind: "bad"; reason: string } {
  const lines = head.split("\r\n");
  const m = lines[0].match(/^([A-Z]+) (\S+) (HTTP\/1\.[01])$/);
  if (!m) return { kind: "bad", reason: "malformed request line" };
  const [, method, target, version] = m;
  if (method === "CONNECT") {
    const t = target.match(/^([A-Za-z0-9.-]+):(\d{1,5})$/);
    if (!t) return { kind: "bad", reason: "CONNECT needs host:port" };
    return { kind: "connect", host: t[1], port: Number(t[2]) };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { kind: "bad", reason: "a proxy request needs an absolute URL" };
  }
  if (url.protocol !== "http:") return { kind: "bad", reason: `scheme ${url.protocol} is not proxied` };
  if (url.username || url.password) return { kind: "bad", reason: "credentials in the URL" };
  const headers = lines.slice(1).filter((l) =>
    l.length > 0 && !/^(proxy-connection|connection|keep-alive|proxy-authorization):/i.test(l)
  );
  return {
    kind: "http",
    host: url.hostname,
    port: url.port ? Number(url.port) : 80,
    method,
    path: url.pathname + url.search,
    version,
    headers,
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  } catch { /* either side closed */ }
  try {
    await to.closeWrite();
  } catch { /* closed */ }
}

function reply(status: string): Uint8Array {
  return new TextEncoder().encode(
    `HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  );
}

async function handle(client: Deno.Conn, allow: string[], log: (l: string) => void): Promise<void> {
  let upstream: Deno.Conn | undefined;
  try {
    // Read the head (up to the blank line).
    let buf = new Uint8Array(0);
    let end = -1;
    const chunk = new Uint8Array(8192);
    while (end < 0) {
      const n = await client.read(chunk);
      if (n === null) return;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      end = new TextDecoder().decode(buf).indexOf("\r\n\r\n");
      if (end < 0 && buf.length > MAX_HEAD) {
        await writeAll(client, reply("431 Request Header Fields Too Large"));
        return;
      }
    }
    const text = new TextDecoder().decode(buf);
    const head = text.slice(0, end);
    const rest = buf.subarray(new TextEncoder().encode(text.slice(0, end + 4)).length);
    const req = parseHead(head);
    if (req.kind === "bad") {
      log(`refused: ${req.reason}`);
      await writeAll(client, reply("400 Bad Request"));
      return;
    }
    if (!allowed(allow, req.host, req.port, req.kind === "connect")) {
      log(
        `refused: ${req.kind === "connect" ? "CONNECT" : "HTTP"} ${req.host}:${req.port} is not a registry`,
      );
      await writeAll(client, reply("403 Forbidden"));
      return;
    }
    try {
      upstream = await Deno.connect({ hostname: req.host, port: req.port });
    } catch (e) {
      log(`upstream ${req.host}:${req.port} failed: ${(e as Error).message}`);
      await writeAll(client, reply("502 Bad Gateway"));
      return;
    }
    if (req.kind === "connect") {
      await writeAll(client, new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
      if (rest.length) await writeAll(upstream, rest);
    } else {
      const out = [`${req.method} ${req.path} ${req.version}`, ...req.headers, "Connection: close", "", ""]
        .join("\r\n");
      await writeAll(upstream, new TextEncoder().encode(out));
      // A body (rare for registries) follows the head as sent; pipelined requests after it are cut
      // off with the connection (the client retries them on a new one).
      const len = Number(req.headers.find((h) => /^content-length:/i.test(h))?.split(":")[1] ?? 0);
      if (len > 0) await writeAll(upstream, rest.subarray(0, len));
    }
    const up = upstream;
    await Promise.all([
      req.kind === "connect" ? pipe(client, up) : Promise.resolve(),
      pipe(up, client),
    ]);
  } catch (e) {
    log(`connection failed: ${(e as Error).message}`);
  } finally {
    try {
      upstream?.close();
    } catch { /* closed */ }
    try {
      client.close();
    } catch { /* closed */ }
  }
}

/** Start the proxy on every listen address; returns the listeners (close them to stop). */
export function startProxy(opts: ProxyOptions): Deno.Listener[] {
  const log = opts.log ?? (() => {});
  const listeners = opts.listen.map((l) => Deno.listen({ hostname: l.hostname, port: l.port }));
  for (const ln of listeners) {
    (async () => {
      try {
        for await (const c of ln) handle(c, opts.allow, log);
      } catch { /* listener closed */ }
    })();
  }
  return listeners;
}

if (import.meta.main) {
  const listen: { hostname: string; port: number }[] = [];
  const allow: string[] = [];
  let logFile: string | undefined;
  const args = [...Deno.args];
  while (args.length) {
    const a = args.shift()!;
    const v = args.shift();
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === "--listen") {
      const i = v.lastIndexOf(":");
      listen.push({ hostname: v.slice(0, i), port: Number(v.slice(i + 1)) });
    } else if (a === "--allow") allow.push(v);
    else if (a === "--log") logFile = v;
    else throw new Error(`Unknown option ${a}`);
  }
  const log = (line: string) => {
    if (logFile) {
      Deno.writeTextFileSync(logFile, `${new Date().toISOString()} ${line}\n`, { append: true });
    }
  };
  startProxy({ listen, allow, log });
  log(
    `listening on ${listen.map((l) => `${l.hostname}:${l.port}`).join(", ")}; allowed: ${allow.join(", ")}`,
  );
}
