// Test helpers for the listener: a temporary configuration root, an in-process listener with a DirSink,
// and plain SMTP clients over node:net (a polite one and the original sender's fire-and-close one).
import * as net from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type Config, loadConfig } from "../config/load.ts";
import { DENO_CHILD_INHERIT, exec, spawn } from "../common/exec.ts";
import { type Listener, startListener } from "./listener.ts";
import { DirSink, type OrderSink } from "./sink.ts";
import type { SmtpLimits } from "./smtp.ts";
import type { RelayOptions } from "./relay.ts";

export const TEST_HMAC_ENV = "WOD_TEST_ORDER_HMAC";
export const TEST_KEY = "test-key-not-a-secret-0123456789";

export const ENV_YAML = `name: t
admin_user: wodadmin
backends:
  - name: b1
    host: 127.0.0.1
    fqdn: b1.test
    students: [1, 50]
    ranges:
      WKSHP-Test: [1, 20]
      WKSHP-Off: [21, 30]
  - name: b2
    host: 10.9.9.9
    fqdn: b2.test
    students: [1, 10]
    ranges:
      WKSHP-Test: [1, 5]
orders:
  listen: 127.0.0.1:0
  senders: [api@front.test, wodadmin@localhost]
  networks: [127.0.0.1/32]
  recipient: wodadmin
  hmac_secret_env: ${TEST_HMAC_ENV}
  replay_window_seconds: 300
  accept_unsigned: true
`;

/** A repository root with environment `t` (backends b1.test, b2.test) and workshops WKSHP-Test, WKSHP-Off. */
export async function makeRoot(envYaml = ENV_YAML): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-mail-" });
  await Deno.mkdir(join(root, "environments"), { recursive: true });
  await Deno.writeTextFile(join(root, "environments", "t.yaml"), envYaml);
  for (const [id, active] of [["WKSHP-Test", true], ["WKSHP-Off", false]] as const) {
    await Deno.mkdir(join(root, "workshops", id), { recursive: true });
    await Deno.writeTextFile(
      join(root, "workshops", id, "workshop.yaml"),
      `id: ${id}\ntitle: Test workshop ${id}\nduration: 2\nactive: ${active}\n`,
    );
  }
  return root;
}

export interface TestListener {
  root: string;
  listener: Listener;
  port: number;
  sinkDir: string;
  spoolDir: string;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startTestListener(
  opts: {
    limits?: Partial<SmtpLimits>;
    health?: boolean;
    hmac?: boolean;
    sink?: (root: string, cfg: Config) => Promise<OrderSink>;
    tls?: { cert: string; key: string };
    auth?: { user: string; password: string };
    requireAuth?: boolean;
    /** environments/t.yaml (default ENV_YAML). */
    envYaml?: string;
    /** Relay queue settings (orders.relay is the default target). */
    relay?: Partial<RelayOptions>;
  } = {},
): Promise<TestListener> {
  const root = await makeRoot(opts.envYaml);
  try {
    const cfg = await loadConfig(root);
    const bad = cfg.diagnostics.filter((d) => d.severity === "error");
    if (bad.length) throw new Error(`Test config invalid: ${JSON.stringify(bad[0])}`);
    const sinkDir = join(root, "sink");
    const spoolDir = join(root, "spool");
    const logs: Record<string, unknown>[] = [];
    const listener = await startListener({
      cfg,
      env: "t",
      host: "127.0.0.1",
      port: 0,
      health: opts.health ? { host: "127.0.0.1", port: 0 } : undefined,
      spoolDir,
      sink: opts.sink ? await opts.sink(root, cfg) : new DirSink(sinkDir),
      hmacKey: opts.hmac === false ? undefined : TEST_KEY,
      limits: opts.limits,
      tls: opts.tls,
      auth: opts.auth,
      requireAuth: opts.requireAuth,
      relay: opts.relay,
      drainDebounceMs: 5,
      log: (event, fields) => logs.push({ event, ...fields }),
    });
    return {
      root,
      listener,
      port: listener.smtp.port,
      sinkDir,
      spoolDir,
      logs,
      close: async () => {
        await listener.close();
        await Deno.remove(root, { recursive: true });
      },
    };
  } catch (e) {
    await Deno.remove(root, { recursive: true });
    throw e;
  }
}

/** The original sender's bytes (docs/interop.md, "Order emails"): everything at once, bare LF, no blank line after Subject. */
export function originalBytes(
  o: { helo?: string; from?: string; brackets?: boolean; to?: string; subject: string; body: string },
): string {
  const from = o.from ?? "wodadmin@localhost";
  return `HELO ${o.helo ?? "api.front.test"}\nMAIL FROM: ${o.brackets ? `<${from}>` : from}\nRCPT TO: ${
    o.to ?? "wodadmin@b1.test"
  }\nDATA\nSubject: ${o.subject}\n${o.body}\n.\n`;
}

/**
 * Behave like the original sender: connect, write all bytes before the greeting, close the socket as
 * soon as the first server bytes arrive (never reads a 250). Resolves with those first bytes.
 */
export function fireAndClose(port: number, bytes: string | Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => s.write(bytes));
    s.once("data", (d: Buffer) => {
      s.destroy();
      resolve(d.toString("latin1"));
    });
    s.on("error", reject);
    s.setTimeout(10_000, () => {
      s.destroy();
      reject(new Error("fireAndClose: no server bytes within 10 s"));
    });
  });
}

/** A polite SMTP client: reads the greeting, then sends each command and reads its (multi-line) reply. */
export class SmtpClient {
  #buf = "";
  #waiters: (() => void)[] = [];
  #closed = false;
  private constructor(readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.#buf += d.toString("latin1");
      this.#wake();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    sock.on("error", () => {});
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(port: number): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => resolve(new SmtpClient(s)));
      s.once("error", reject);
    });
  }

  /** Next complete reply: { code, text } (code 0 when the server closed without one). */
  async reply(timeoutMs = 10_000): Promise<{ code: number; text: string }> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const m = /^((?:\d{3}-[^\n]*\n)*)(\d{3})(?: ([^\n]*))?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return { code: Number(m[2]), text: (m[1] + (m[3] ?? "")).replace(/\r/g, "") };
      }
      if (this.#closed) return { code: 0, text: "closed" };
      if (Date.now() > deadline) {
        throw new Error(`No SMTP reply within ${timeoutMs} ms (buffer ${this.#buf})`);
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  send(data: string | Uint8Array): void {
    if (!this.#closed) this.sock.write(data);
  }

  async cmd(line: string): Promise<{ code: number; text: string }> {
    this.send(line + "\r\n");
    return await this.reply();
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface Conversation {
  helo?: string;
  from?: string;
  to?: string;
  /** The message (headers + body) with CRLF or LF, without the final dot. */
  message: string | Uint8Array;
}

/**
 * One complete transaction; returns the first refusal (stage + reply) or the DATA result. Message lines
 * starting with "." are dot-stuffed.
 */
export async function sendMessage(
  port: number,
  c: Conversation,
): Promise<{ stage: string; code: number; text: string }> {
  const cl = await SmtpClient.connect(port);
  try {
    const g = await cl.reply();
    if (g.code !== 220) return { stage: "connect", ...g };
    const steps: [string, string][] = [
      ["helo", `HELO ${c.helo ?? "client.test"}`],
      ["mail", `MAIL FROM:<${c.from ?? "api@front.test"}>`],
      ["rcpt", `RCPT TO:<${c.to ?? "wodadmin@b1.test"}>`],
      ["data", "DATA"],
    ];
    for (const [stage, line] of steps) {
      const r = await cl.cmd(line);
      if (r.code >= 400 || r.code === 0) return { stage, ...r };
    }
    const raw = typeof c.message === "string" ? Buffer.from(c.message, "latin1") : Buffer.from(c.message);
    const text = raw.toString("latin1").replace(/\r?\n/g, "\r\n");
    const stuffed = text.split("\r\n").map((l) => (l.startsWith(".") ? "." + l : l)).join("\r\n");
    cl.send(Buffer.from((stuffed.endsWith("\r\n") ? stuffed : stuffed + "\r\n") + ".\r\n", "latin1"));
    const r = await cl.reply();
    await cl.cmd("QUIT").catch(() => {});
    return { stage: "end", ...r };
  } finally {
    cl.close();
  }
}

/** Poll until `fn` returns a truthy value (or throw after `ms`). */
type Falsy = undefined | null | false | 0 | "";
export async function waitFor<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  ms = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Orders recorded in a DirSink directory (with duplicates, if any, to prove there are none). */
export async function recordedIds(sinkDir: string): Promise<string[]> {
  return (await DirSink.readAll(sinkDir)).map((x) => x.id);
}

/** A throw-away self-signed certificate for localhost (openssl). */
export async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "wod-tls-" });
  try {
    await exec("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
    ]);
    return {
      cert: await Deno.readTextFile(join(dir, "cert.pem")),
      key: await Deno.readTextFile(join(dir, "key.pem")),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const WOD = new URL("../wod.ts", import.meta.url).pathname;

export interface ListenProcess {
  proc: Deno.ChildProcess;
  /** Its stdout lines (the JSON log events) so far. */
  lines: string[];
  port: number;
  /** The health endpoint's port (undefined with `--health none`). */
  healthPort?: number;
}

/**
 * `wod listen --env t --listen 127.0.0.1:0 ...flags` on `root` (with the test HMAC key) as a child
 * process; resolves once it logs "listening". On failure the child is killed and the error says why.
 */
export async function spawnListen(
  root: string,
  flags: string[],
  opts: {
    stderr?: "piped" | "inherit";
    timeoutMs?: number;
    /** Run under `ulimit -n N` (bash execs deno: same pid; arguments passed as an argv, never as text). */
    nofile?: number;
    /** The environment (default "t", the one makeRoot writes). */
    envName?: string;
    /** More environment variables for the child. */
    childEnv?: Record<string, string>;
  } = {},
): Promise<ListenProcess> {
  const stderr = opts.stderr ?? "piped";
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const argv = [
    "run",
    "-A",
    WOD,
    "listen",
    "--env",
    opts.envName ?? "t",
    "--listen",
    "127.0.0.1:0",
    ...flags,
  ];
  // With `nofile`, the listener runs under `ulimit -n` (bash gets the limit as an argument, not as text).
  const [cmd, args] = opts.nofile === undefined ? [Deno.execPath(), argv] : ["bash", [
    "-c",
    'ulimit -n "$1" && shift && exec "$@"',
    "bash",
    String(opts.nofile),
    Deno.execPath(),
    ...argv,
  ]];
  const proc = spawn(cmd, args, {
    env: { WOD_ROOT: root, [TEST_HMAC_ENV]: TEST_KEY, ...opts.childEnv },
    inherit: DENO_CHILD_INHERIT,
    stderr,
  });
  const lines: string[] = [];
  const ready = Promise.withResolvers<{ port: number; healthPort?: number }>();
  const portOf = (addr: unknown) => Number(String(addr).split(":").pop());
  (async () => {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        try {
          const j = JSON.parse(line);
          if (j.event === "listening") {
            ready.resolve({ port: portOf(j.smtp), healthPort: j.health ? portOf(j.health) : undefined });
          }
        } catch {
          // not JSON: the caller's assertions on `lines` report it
        }
      }
    }
    ready.reject(new Error(`wod listen exited before listening: ${lines.join("\n")}`));
  })().catch(() => {});
  const timer = setTimeout(
    () => ready.reject(new Error(`wod listen did not start within ${timeoutMs / 1000} s`)),
    timeoutMs,
  );
  try {
    return { proc, lines, ...await ready.promise };
  } catch (e) {
    try {
      proc.kill("SIGKILL");
    } catch { /* already gone */ }
    const err = stderr === "piped" ? await new Response(proc.stderr).text().catch(() => "") : "";
    await proc.status;
    throw new Error(`${(e as Error).message}\n${err}`);
  } finally {
    clearTimeout(timer);
  }
}
