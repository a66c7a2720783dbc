// The relay queue: mail from the allowed senders and networks to recipients that are not order
// addresses (the original front end's participant mail: welcome, credentials, expiring, expired) is
// relayed to the environment's outgoing mail relay (orders.relay), as durably as orders:
//
// - `enqueue` writes one file per message in `<spool>/relay/` (temp file, fdatasync, rename, directory
//   fsync) and resolves only then: the listener answers 250 after that, so an acknowledged message
//   survives a crash (kill -9, power loss after the fsync).
// - a worker delivers queued messages (oldest first) with nodemailer to the relay, and deletes a file
//   only after the relay answered 250. A crash between the relay's 250 and the delete sends the message
//   again at the next start (at least once, like any MTA).
// - a temporary failure (connection refused, timeout, 4xx) is retried with backoff (2 s doubling, at
//   most 10 min); a permanent one (5xx), or a message older than the lifetime (orders.relay_lifetime_hours,
//   default 48 h), goes to `<spool>/relay/dead/` with the reason: `/health` shows it, the log names the
//   reason. The operator fixes the cause and moves the file back into `relay/` to send it again.
//
// The message (it may hold a password) is never logged: log lines carry the queue id, size, attempts
// and the relay's error, and every line goes through the listener's redactingLog (no address).
import { join } from "node:path";
import { Buffer } from "node:buffer";
import nodemailer from "nodemailer";
import { WodError } from "../common/errors.ts";
import { fsyncDir, writeDurable } from "./spool.ts";

export const RELAY_DIR = "relay";
export const RELAY_DEAD_DIR = "dead";

export interface RelayTarget {
  host: string;
  port: number;
}

export interface QueuedMessage {
  id: string;
  from: string;
  to: string[];
  received: string;
  attempts: number;
  /** Next attempt (ms since the epoch). */
  next: number;
  last_error?: string;
  /** Why it was dead-lettered (dead/ only). */
  reason?: string;
  /** The message, base64. */
  data: string;
}

export interface RelayStats {
  queued: number;
  relayed: number;
  deferred: number;
  dead: number;
  lastError?: string;
  lastErrorAt?: string;
  lastDead?: { id: string; reason: string; at: string };
}

export interface RelayOptions {
  relay: RelayTarget;
  /** The name given in EHLO to the relay. */
  hostname?: string;
  /** Retried this long after reception, then dead-lettered (default 48 h). */
  lifetimeMs?: number;
  /** First retry delay (default 2 s), doubled per attempt up to maxDelayMs (default 10 min). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-connection timeouts toward the relay (default 30 s). */
  timeoutMs?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

let seq = 0;

/** "host:port" (orders.relay) as a target; throws on a malformed value. */
export function parseRelay(text: string): RelayTarget {
  const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new WodError(
      `Invalid orders.relay "${text}": expected HOST:PORT with a port from 1 to 65535: set orders.relay of the environment to e.g. 127.0.0.1:25`,
    );
  }
  return { host: m[1], port: Number(m[2]) };
}

export class RelayQueue {
  stats: RelayStats = { queued: 0, relayed: 0, deferred: 0, dead: 0 };
  #timer?: ReturnType<typeof setTimeout>;
  #running?: Promise<void>;
  #again = false;
  #stopped = false;

  private constructor(readonly dir: string, readonly opts: RelayOptions) {}

  get deadDir(): string {
    return join(this.dir, RELAY_DEAD_DIR);
  }

  /** Opens (creates) `<spoolDir>/relay`, drops unacknowledged temp files, counts what is queued. */
  static async open(spoolDir: string, opts: RelayOptions): Promise<RelayQueue> {
    const dir = join(spoolDir, RELAY_DIR);
    await Deno.mkdir(join(dir, RELAY_DEAD_DIR), { recursive: true, mode: 0o700 });
    const q = new RelayQueue(dir, opts);
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.startsWith(".tmp-")) await Deno.remove(join(dir, e.name));
    }
    q.stats.queued = (await q.#names()).length;
    for await (const e of Deno.readDir(q.deadDir)) if (e.isFile && e.name.endsWith(".json")) q.stats.dead++;
    return q;
  }

  async #names(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && e.name.startsWith("msg-") && e.name.endsWith(".json")) out.push(e.name);
    }
    return out.sort();
  }

  /** Queues one message; resolves with its queue id once it is on disk (file and directory fsynced). */
  async enqueue(from: string, to: string[], message: Uint8Array): Promise<string> {
    const id = `r${Date.now().toString(36)}${Deno.pid.toString(36)}${(++seq).toString(36)}`;
    const msg: QueuedMessage = {
      id,
      from,
      to,
      received: new Date().toISOString(),
      attempts: 0,
      next: 0,
      data: Buffer.from(message).toString("base64"),
    };
    const name = `msg-${Date.now().toString().padStart(15, "0")}-${id}.json`;
    await writeDurable(this.dir, name, JSON.stringify(msg));
    this.stats.queued++;
    this.opts.log?.("relay-queued", { id, size: message.length });
    this.kick(0);
    return id;
  }

  /** Messages waiting in the queue, and those dead-lettered (for tests and operators). */
  async list(): Promise<QueuedMessage[]> {
    const out: QueuedMessage[] = [];
    for (const n of await this.#names()) out.push(JSON.parse(await Deno.readTextFile(join(this.dir, n))));
    return out;
  }
  async deadLetters(): Promise<QueuedMessage[]> {
    const out: QueuedMessage[] = [];
    for await (const e of Deno.readDir(this.deadDir)) {
      if (e.isFile && e.name.endsWith(".json")) {
        out.push(JSON.parse(await Deno.readTextFile(join(this.deadDir, e.name))));
      }
    }
    return out.sort((a, b) => a.received.localeCompare(b.received));
  }

  /** Schedule a delivery pass after `delayMs` (coalesces with an earlier one). */
  kick(delayMs = 0): void {
    if (this.#stopped) return;
    if (this.#running) {
      if (delayMs === 0) this.#again = true;
      return;
    }
    if (this.#timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      let next: number | undefined;
      this.#running = this.#pass().then(
        (n) => void (next = n),
        (e) => {
          // A local failure (disk): logged, retried in a while; nothing is removed from the queue.
          this.opts.log?.("relay-error", { error: (e as Error).message });
          next = 5_000;
        },
      ).finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.kick(0);
        } else if (next !== undefined) this.kick(next);
      });
    }, delayMs);
  }

  /** One pass over the queue: deliver what is due; schedule the next pass at the earliest retry. */
  async #pass(): Promise<number | undefined> {
    let earliest = Infinity;
    for (const name of await this.#names()) {
      if (this.#stopped) return undefined;
      const file = join(this.dir, name);
      let msg: QueuedMessage;
      try {
        msg = JSON.parse(await Deno.readTextFile(file));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        // Only possible for a file that was never acknowledged whole: keep it aside for an operator.
        await this.#dead(name, undefined, `unreadable queue file: ${(e as Error).message}`);
        continue;
      }
      const now = Date.now();
      if (msg.next > now) {
        earliest = Math.min(earliest, msg.next);
        continue;
      }
      const result = await this.#send(msg);
      if (result.ok) {
        await Deno.remove(file);
        await fsyncDir(this.dir);
        this.stats.queued--;
        this.stats.relayed++;
        this.opts.log?.("relayed", { id: msg.id, attempts: msg.attempts + 1, relay: this.#where() });
        continue;
      }
      msg.attempts++;
      msg.last_error = result.error.slice(0, 500);
      this.stats.lastError = msg.last_error;
      this.stats.lastErrorAt = new Date().toISOString();
      const age = now - Date.parse(msg.received);
      const lifetime = this.opts.lifetimeMs ?? 48 * 3_600_000;
      if (result.permanent || age >= lifetime) {
        const why = result.permanent
          ? `the relay ${this.#where()} refused it: ${msg.last_error}`
          : `not accepted by the relay ${this.#where()} within ${
            Math.round(lifetime / 60_000)
          } min (${msg.attempts} attempts), last error: ${msg.last_error}`;
        await this.#dead(name, msg, why);
        continue;
      }
      const delay = Math.min(
        this.opts.maxDelayMs ?? 600_000,
        (this.opts.baseDelayMs ?? 2_000) * 2 ** Math.min(20, msg.attempts - 1),
      );
      msg.next = now + delay;
      await writeDurable(this.dir, name, JSON.stringify(msg));
      this.stats.deferred++;
      this.opts.log?.("relay-deferred", {
        id: msg.id,
        attempts: msg.attempts,
        retry_ms: delay,
        relay: this.#where(),
        error: msg.last_error,
      });
      earliest = Math.min(earliest, msg.next);
    }
    return earliest === Infinity ? undefined : Math.max(10, earliest - Date.now());
  }

  #where(): string {
    return `${this.opts.relay.host}:${this.opts.relay.port}`;
  }

  /** Moves a queue file to dead/ with the reason (durable before the original goes). */
  async #dead(name: string, msg: QueuedMessage | undefined, reason: string): Promise<void> {
    const file = join(this.dir, name);
    const at = new Date().toISOString();
    if (msg) await writeDurable(this.deadDir, name, JSON.stringify({ ...msg, reason }));
    else await Deno.rename(file, join(this.deadDir, name)).then(() => fsyncDir(this.deadDir));
    await Deno.remove(file).catch(() => {});
    await fsyncDir(this.dir);
    this.stats.queued--;
    this.stats.dead++;
    const id = msg?.id ?? name;
    this.stats.lastDead = { id, reason, at };
    this.opts.log?.("relay-dead-letter", { id, reason, file: join(this.deadDir, name) });
  }

  async #send(msg: QueuedMessage): Promise<{ ok: true } | { ok: false; permanent: boolean; error: string }> {
    const { host, port } = this.opts.relay;
    const local = host === "127.0.0.1" || host === "localhost" || host === "::1";
    const timeout = this.opts.timeoutMs ?? 30_000;
    const transport = nodemailer.createTransport({
      host,
      port,
      secure: port === 465,
      ignoreTLS: local,
      name: this.opts.hostname ?? "localhost",
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
    try {
      await transport.sendMail({
        envelope: { from: msg.from, to: msg.to },
        // SMTP wants CRLF; the api-db's mail (and the original sender) may use bare LF.
        raw: Buffer.from(
          Buffer.from(msg.data, "base64").toString("latin1").replace(/\r?\n/g, "\r\n"),
          "latin1",
        ),
      });
      return { ok: true };
    } catch (e) {
      const code = (e as { responseCode?: unknown }).responseCode;
      // Only the SMTP error: nodemailer's message names the command and the reply, never the body.
      const error = String((e as Error).message ?? e).replace(/[\r\n]+/g, " ");
      return { ok: false, permanent: typeof code === "number" && code >= 500, error };
    } finally {
      transport.close();
    }
  }

  /** Stop delivering (graceful shutdown); queued messages stay on disk for the next start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#running) await this.#running;
  }
}
