// The order listener: SMTP intake (smtp.ts) + authentication and checks (scripts/orders) + durable spool
// + drain worker into the state store + health endpoint + JSON-lines logs.
import { createHash, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { type Config, type EnvironmentEntry, requireEnvironment } from "../config/load.ts";
import { WodError } from "../common/errors.ts";
import type { LogFn } from "../common/log.ts";
import type { Order } from "../config/types.gen.ts";
import { isSaneEmail } from "../orders/check.ts";
import { orderFromMessage } from "../orders/message.ts";
import { OrderError } from "../orders/parse.ts";
import { OrderInvalidError, validateOrder } from "../orders/validate.ts";
import { ReplayGuard } from "./replay.ts";
import { type Reply, type Session, type SmtpLimits, SmtpServer } from "./smtp.ts";
import { Spool } from "./spool.ts";
import { Drainer } from "./drain.ts";
import { type HealthServer, serveHealth } from "./health.ts";
import type { OrderSink } from "./sink.ts";
import { parseRelay, type RelayOptions, RelayQueue } from "./relay.ts";
import { SeatGate } from "../state/gate.ts";

export type { LogFn };

// ---------- client networks ----------

function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return undefined;
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

export type NetworkMatcher = (addr: string) => boolean;

/** Matcher for CIDR lists (IPv4 `a.b.c.d/n`, IPv6 exact `::1` or `::1/128`). Throws on a bad entry. */
export function networkMatcher(cidrs: string[]): NetworkMatcher {
  const v4: [number, number][] = [];
  const v6: string[] = [];
  for (const c of cidrs) {
    const [addr, bitsText] = c.split("/");
    const v = ipv4(addr);
    if (v !== undefined) {
      const bits = bitsText === undefined ? 32 : Number(bitsText);
      if (!Number.isInteger(bits) || bits < 0 || bits > 32) {
        throw new WodError(
          `Invalid network "${c}" in orders.networks: bad prefix length (expected 0 to 32, as in 127.0.0.1/32)`,
        );
      }
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      v4.push([(v & mask) >>> 0, mask]);
    } else if (addr.includes(":") && (bitsText === undefined || bitsText === "128")) {
      v6.push(addr.toLowerCase());
    } else {
      throw new WodError(
        `Invalid network "${c}" in orders.networks: expected an IPv4 CIDR such as 127.0.0.1/32 or an IPv6 address`,
      );
    }
  }
  return (addr: string) => {
    const a = addr.replace(/^::ffff:/i, "");
    const v = ipv4(a);
    if (v !== undefined) return v4.some(([net, mask]) => ((v & mask) >>> 0) === net);
    return v6.includes(a.toLowerCase());
  };
}

// ---------- the listener ----------

export interface ListenerOptions {
  cfg: Config;
  env: string;
  host: string;
  port: number;
  /** Health endpoint address (undefined: none). */
  health?: { host: string; port: number };
  spoolDir: string;
  sink: OrderSink;
  /** HMAC key of signed orders (from the environment variable orders.hmac_secret_env). */
  hmacKey?: string;
  /** PEM certificate and key for STARTTLS (orders.tls_cert_file, tls_key_file). */
  tls?: { cert: string; key: string };
  /** SMTP AUTH credentials (orders.auth_user, the password from orders.auth_password_env). */
  auth?: { user: string; password: string };
  /** Refuse MAIL before AUTH (orders.require_auth). */
  requireAuth?: boolean;
  /**
   * Accept orders in the original unsigned format (orders.accept_unsigned; default: true without an
   * HMAC key, false with one).
   */
  acceptUnsigned?: boolean;
  /** Time allowed to messages in progress at shutdown (default 5 s). */
  stopGraceMs?: number;
  limits?: Partial<SmtpLimits>;
  hostname?: string;
  log?: LogFn;
  drainDebounceMs?: number;
  /** Orders per sink call (one commit). */
  drainBatch?: number;
  /** Relay queue settings (the target defaults to orders.relay; tests shorten the delays). */
  relay?: Partial<RelayOptions>;
  /**
   * Check the seat's recorded state before 250 (default: true when the sink can read seats). A refusal
   * is a 5xx with the state machine's reason, in the log and in the ledger.
   */
  seatCheck?: boolean;
}

export interface ListenerStats {
  connections: number;
  accepted: number;
  refused: number;
  errors: number;
  /** Messages queued for the outgoing relay. */
  relayed: number;
  lastError?: string;
}

export interface Listener {
  smtp: { host: string; port: number };
  health?: { host: string; port: number };
  stats: ListenerStats;
  spool: Spool;
  drainer: Drainer;
  /** The queue of mail relayed to orders.relay (undefined: no relay configured). */
  relay?: RelayQueue;
  healthReport(): Record<string, unknown>;
  /** Graceful stop: no new connections, finish messages in progress, drain the spool once. */
  close(): Promise<void>;
}

function recipientBackends(env: EnvironmentEntry): { local: string; byDomain: Map<string, string> } {
  const v = env.value;
  const local = (v.orders?.recipient ?? v.admin_user ?? "wodadmin").toLowerCase();
  const byDomain = new Map<string, string>();
  for (const b of v.backends) {
    for (const d of [b.fqdn, b.host]) {
      if (d && !byDomain.has(d.toLowerCase())) byDomain.set(d.toLowerCase(), b.name);
    }
  }
  return { local, byDomain };
}

/** Anything shaped like an email address, in any text (participant addresses never reach the logs). */
const EMAIL_LIKE = /[^\s<>"'(),;:[\]]*@[^\s<>"'(),;:[\]]+/g;

function redact(v: unknown): unknown {
  if (typeof v === "string") return v.includes("@") ? v.replace(EMAIL_LIKE, "[email]") : v;
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x)]));
  }
  return v;
}

/** A logger that replaces every email-like token of every field with "[email]". */
export function redactingLog(log: LogFn): LogFn {
  return (event, fields = {}) => log(event, redact(fields) as Record<string, unknown>);
}

/** What the SMTP handlers, the health report and the shutdown of one listener share. */
interface ListenerContext {
  opts: ListenerOptions;
  log: LogFn;
  env: EnvironmentEntry;
  allowNet: NetworkMatcher;
  senders?: Set<string>;
  local: string;
  byDomain: Map<string, string>;
  window: number;
  acceptUnsigned: boolean;
  spool: Spool;
  guard: ReplayGuard;
  drainer: Drainer;
  stats: ListenerStats;
  started: string;
  gate?: SeatGate;
  /** Ledger writes of refusals still in flight (awaited at shutdown). */
  notes: Set<Promise<void>>;
  relayTarget?: RelayOptions["relay"];
  relay?: RelayQueue;
  deliveries: number;
}

const refuse = (code: number, text: string): Reply => ({ code, text });
const printable = (address: string) => address.replace(/[^\x21-\x7e]/g, "?");

/** The seat's state refuses `o`: the ledger gets it too (and the seat a front-end notice). */
function noteRefusal(ctx: ListenerContext, o: Order, reason: string): void {
  const sink = ctx.opts.sink;
  if (!sink.recordRefusal) return;
  const p: Promise<void> = sink.recordRefusal(o, reason, { beforeAccept: true }).catch((e) =>
    ctx.log("refusal-not-in-ledger", { id: o.id, error: (e as Error).message })
  ).finally(() => ctx.notes.delete(p));
  ctx.notes.add(p);
}

async function seatRefusal(ctx: ListenerContext, o: Order): Promise<string | undefined> {
  if (!ctx.gate) return undefined;
  try {
    return await ctx.gate.admit(o);
  } catch (e) {
    // The store cannot be read: the order is taken, and the drain checks the seat when it records it.
    ctx.log("seat-check-skipped", { id: o.id, error: (e as Error).message });
    ctx.gate.accepted(o);
    return undefined;
  }
}

/** The listener's state before its SMTP server starts: configuration, spool, replay guard, drain, relay. */
async function openContext(opts: ListenerOptions, log: LogFn): Promise<ListenerContext> {
  const env = requireEnvironment(opts.cfg, opts.env);
  const ordersCfg = env.value.orders ?? {};
  const allowNet = networkMatcher(ordersCfg.networks ?? ["127.0.0.0/8", "::1"]);
  const senders = ordersCfg.senders ? new Set(ordersCfg.senders.map((s) => s.toLowerCase())) : undefined;
  const { local, byDomain } = recipientBackends(env);
  const window = ordersCfg.replay_window_seconds ?? 300;
  const acceptUnsigned = opts.acceptUnsigned ?? ordersCfg.accept_unsigned ?? !opts.hmacKey;

  const spool = await Spool.open(opts.spoolDir);
  const pendingIds: string[] = [];
  for (const name of await spool.list()) pendingIds.push(...(await spool.read(name)).orders.map((o) => o.id));
  const guard = await ReplayGuard.open(opts.spoolDir, window, pendingIds);
  const drainer = new Drainer(spool, opts.sink, {
    debounceMs: opts.drainDebounceMs ?? 100,
    maxBatch: opts.drainBatch ?? 1000,
    log,
  });
  const stats: ListenerStats = { connections: 0, accepted: 0, refused: 0, errors: 0, relayed: 0 };
  const started = new Date().toISOString();
  // What the seat's recorded state decides (who holds it, what it waits for) is checked before 250.
  const sink = opts.sink;
  const gate = opts.seatCheck !== false && sink.readSeats ? new SeatGate(() => sink.readSeats!()) : undefined;
  // Mail for recipients that are not order addresses (participant mail) goes to orders.relay.
  const relayTarget = opts.relay?.relay ?? (ordersCfg.relay ? parseRelay(ordersCfg.relay) : undefined);
  const relay = relayTarget
    ? await RelayQueue.open(opts.spoolDir, {
      hostname: opts.hostname,
      lifetimeMs: (ordersCfg.relay_lifetime_hours ?? 48) * 3_600_000,
      log,
      ...opts.relay,
      relay: relayTarget,
    })
    : undefined;
  return {
    opts,
    log,
    env,
    allowNet,
    senders,
    local,
    byDomain,
    window,
    acceptUnsigned,
    spool,
    guard,
    drainer,
    stats,
    started,
    gate,
    notes: new Set(),
    relayTarget,
    relay,
    deliveries: 0,
  };
}

/** RCPT: an order address of a backend, mail to relay (allowed senders only), or a refusal. */
function checkRecipient(ctx: ListenerContext, s: Session, address: string): Reply | undefined {
  const { env, senders, local, byDomain, relay } = ctx;
  const at = address.lastIndexOf("@");
  const lp = at < 0 ? address : address.slice(0, at);
  const dom = at < 0 ? "" : address.slice(at + 1).toLowerCase();
  const backend = byDomain.get(dom);
  if (lp.toLowerCase() !== local || !backend) {
    const shown = printable(address);
    const expected = `expected ${local}@<backend fqdn> (${[...byDomain.keys()].join(", ")})`;
    if (!relay) {
      return refuse(
        550,
        `5.1.1 <${shown}> is not an order address of environment ${env.name}: ${expected}; mail for other recipients is not relayed (orders.relay is not set)`,
      );
    }
    if (!senders || !senders.has(String(s.from ?? "").toLowerCase())) {
      return refuse(
        550,
        `5.7.1 Relaying denied: only the allowed senders (orders.senders of ${env.name}) may send mail through this listener`,
      );
    }
    if (!isSaneEmail(address) || s.rcpts.length > 0) {
      return refuse(
        550,
        `5.1.3 <${shown}> cannot be relayed: one plain local@domain recipient per message`,
      );
    }
    s.data.relay = true;
    return undefined;
  }
  if (s.data.relay) return refuse(452, "4.5.3 An order and relayed mail go in separate messages");
  s.data.backend = backend;
  return undefined;
}

/** DATA of a relayed message: queued with a trace line, or a temporary failure. */
async function relayMessage(
  ctx: ListenerContext,
  relay: RelayQueue,
  s: Session,
  message: Buffer,
): Promise<Reply> {
  try {
    // A trace line, as any MTA adds (client name and address; no envelope address).
    const trace = `Received: from ${s.helo ?? "unknown"} ([${s.remote}]) by ${
      ctx.opts.hostname ?? "localhost"
    } (wod listen) with SMTP; ${new Date().toUTCString()}\r\n`;
    const id = await relay.enqueue(
      String(s.from ?? ""),
      [...s.rcpts],
      Buffer.concat([Buffer.from(trace, "latin1"), message]),
    );
    ctx.stats.relayed++;
    return { code: 250, text: `2.0.0 Queued for relay as ${id}` };
  } catch (e) {
    ctx.stats.errors++;
    ctx.stats.lastError = (e as Error).message;
    ctx.log("error", { session: s.id, error: (e as Error).message, stage: "relay" });
    return refuse(451, "4.3.0 Local error, the message was not queued: try again later");
  }
}

/** The order of a message, authenticated and validated once (an OrderError says why not). */
function parseOrder(ctx: ListenerContext, s: Session, message: Buffer): ReturnType<typeof orderFromMessage> {
  const { opts, env } = ctx;
  const parsed = orderFromMessage(message.toString("latin1"), {
    env: env.name,
    backend: String(s.data.backend),
    hmacKey: opts.hmacKey,
    replayWindowSeconds: ctx.window,
    delivery: `${Deno.pid}-${s.id}-${++ctx.deliveries}`,
  });
  if (parsed.format === "legacy" && !ctx.acceptUnsigned) {
    throw new OrderError(
      `Unsigned orders (the original format) are not accepted by environment ${env.name} (orders.accept_unsigned is false): send a signed order (Subject ${"WOD-ORDER"})`,
      550,
      "5.7.1",
    );
  }
  if (parsed.format === "legacy" && !ctx.senders) {
    throw new OrderError(
      `Unsigned orders need an allowed sender (orders.senders of ${env.name})`,
      550,
      "5.7.1",
    );
  }
  // The one order check (configuration, seat range, schema): what the spool holds is recordable.
  try {
    validateOrder(opts.cfg, parsed.order);
  } catch (e) {
    if (e instanceof OrderInvalidError) throw new OrderError(e.problem);
    throw e;
  }
  return parsed;
}

/** DATA of an order: parsed, checked against replays and the seat's state, spooled, then 250. */
async function takeOrder(ctx: ListenerContext, s: Session, message: Buffer): Promise<Reply> {
  const { guard, stats, log } = ctx;
  let sig: string | undefined;
  try {
    const parsed = parseOrder(ctx, s, message);
    if (parsed.sig) {
      if (!guard.claim(parsed.sig)) {
        throw new OrderError(
          "Replayed order: this signature was already received, the order is not taken twice",
          550,
          "5.7.1",
        );
      }
      sig = parsed.sig;
    }
    const o = parsed.order;
    // The same Message-ID with the same content: a client retrying a delivery whose reply it lost.
    // The order was taken once (and will be acted on once): say so, store nothing new.
    if (o.id.startsWith("m-") && !guard.claim(o.id)) {
      log("duplicate", { session: s.id, remote: s.remote, id: o.id, stage: "data" });
      return {
        code: 250,
        text: `2.0.0 Order ${o.id} was already accepted (same Message-ID and content)`,
      };
    }
    if (o.id.startsWith("m-")) sig = o.id;
    const seatProblem = await seatRefusal(ctx, o);
    if (seatProblem) {
      if (sig) guard.release(sig);
      noteRefusal(ctx, o, seatProblem);
      throw new OrderError(seatProblem);
    }
    try {
      await ctx.spool.append(o);
    } catch (e) {
      ctx.gate?.withdraw(o);
      throw e;
    }
    if (sig) await guard.persist(sig);
    stats.accepted++;
    log("accepted", {
      session: s.id,
      remote: s.remote,
      id: o.id,
      action: o.action,
      backend: o.backend,
      workshop: o.workshop,
      mode: o.mode,
      seats: o.seats,
      format: parsed.format,
      client_gone: s.closed,
    });
    return { code: 250, text: `2.0.0 Order ${o.id} accepted` };
  } catch (e) {
    if (e instanceof OrderError) {
      stats.refused++;
      log("refused", {
        session: s.id,
        remote: s.remote,
        stage: "data",
        code: e.code,
        // Participant addresses stay out of the logs (the client gets the full reason).
        reason: e.message,
      });
      return refuse(e.code, `${e.enhanced} ${e.message.replace(/[\r\n]+/g, " ")}`);
    }
    if (sig) guard.release(sig);
    stats.errors++;
    stats.lastError = (e as Error).message;
    log("error", { session: s.id, error: (e as Error).message });
    return refuse(451, "4.3.0 Local error, the order was not stored: try again later");
  }
}

/** The limits orders.limits sets (the others keep SmtpServer's defaults). */
function configuredLimits(ctx: ListenerContext): Partial<SmtpLimits> {
  const cl = ctx.env.value.orders?.limits ?? {};
  return Object.fromEntries(
    Object.entries({
      maxConnections: cl.max_connections,
      maxConnectionsPerAddress: cl.max_connections_per_address,
      connectRatePerAddress: cl.connect_rate_per_address,
      connectBurstPerAddress: cl.connect_burst_per_address,
      maxBadSessionsPerAddress: cl.max_bad_sessions_per_address,
      maxErrors: cl.max_errors,
    }).filter(([, v]) => v !== undefined),
  );
}

/** The SMTP server of a listener: client networks, senders, recipients, AUTH, and DATA to the spool. */
function orderServer(ctx: ListenerContext): SmtpServer {
  const { opts, env, allowNet, senders, stats, log } = ctx;
  if (opts.requireAuth && !(opts.auth && opts.tls)) {
    throw new WodError(
      `orders.require_auth of environment ${env.name} needs auth_user, auth_password_env and a TLS certificate: set orders.auth_user and orders.auth_password_env and give a certificate (orders.tls_cert_file, orders.tls_key_file), or set require_auth to false`,
    );
  }
  const digest = (x: string) => createHash("sha256").update(x).digest();
  const authDigest = opts.auth ? digest(`${opts.auth.user}\0${opts.auth.password}`) : undefined;
  return new SmtpServer({
    hostname: opts.hostname ?? "localhost",
    limits: { ...configuredLimits(ctx), ...opts.limits },
    tls: opts.tls,
    requireAuth: opts.requireAuth,
    handlers: {
      ...(authDigest
        ? {
          onAuth: (_s: Session, user: string, password: string) =>
            timingSafeEqual(digest(`${user}\0${password}`), authDigest),
        }
        : {}),
      onAccept(remote: string) {
        if (!allowNet(remote)) {
          stats.refused++;
          return refuse(
            554,
            `5.7.1 Client address ${remote} is not allowed to send orders to environment ${env.name}`,
          );
        }
        return undefined;
      },
      onConnect() {
        stats.connections++;
        return undefined;
      },
      onServerEvent(event, fields) {
        log(event, fields);
      },
      onMail(_s, address) {
        if (senders && !senders.has(address.toLowerCase())) {
          return refuse(
            550,
            `5.7.1 Sender <${printable(address)}> is not allowed to order for environment ${env.name}`,
          );
        }
        if (!senders && !opts.hmacKey) {
          return refuse(550, `5.7.1 Environment ${env.name} has no allowed senders (orders.senders)`);
        }
        return undefined;
      },
      onRcpt: (s, address) => checkRecipient(ctx, s, address),
      onData(s, message) {
        if (s.data.relay && ctx.relay) return relayMessage(ctx, ctx.relay, s, message);
        return takeOrder(ctx, s, message);
      },
      onEvent(event, s, fields) {
        if (event === "refused" && fields.stage !== "data" && fields.stage !== "accept") stats.refused++;
        log(event, { session: s.id, remote: s.remote, ...fields });
      },
    },
  });
}

/** The health report: status, problems, warnings, then every counter. */
function healthReport(ctx: ListenerContext, server: SmtpServer): Record<string, unknown> {
  const { drainer, spool, relay } = ctx;
  const a = server.accept;
  const problems: string[] = [];
  if (a.stalled) {
    problems.push(`accept stalled since ${a.stalledSince} (${a.backlog ?? "?"} connections waiting)`);
  }
  if (a.descriptorsNearLimit) {
    problems.push(
      `open descriptors ${a.descriptors ?? "(uncountable)"} near the limit ${a.descriptorLimit ?? "?"}`,
    );
  }
  const failing = drainer.stats.failing && spool.depth > 0;
  if (failing) problems.push(`the drain fails: ${drainer.stats.lastError}`);
  const warnings: string[] = [];
  if (drainer.stats.deadLetters) {
    warnings.push(
      `${drainer.stats.deadLetters} order(s) refused by the store were moved to ${drainer.deadLetterFile}: an operator must look at them`,
    );
  }
  if (relay?.stats.dead) {
    warnings.push(
      `${relay.stats.dead} relayed message(s) could not be delivered and are in ${relay.deadDir}: last reason: ${
        relay.stats.lastDead?.reason ?? "(see the files)"
      }`,
    );
  }
  return {
    status: a.stalled || a.descriptorsNearLimit ? "unhealthy" : failing ? "degraded" : "ok",
    problems,
    warnings,
    ...healthCounters(ctx, server),
  };
}

function healthCounters(ctx: ListenerContext, server: SmtpServer): Record<string, unknown> {
  const { stats, drainer, spool, relay, relayTarget } = ctx;
  return {
    env: ctx.env.name,
    started: ctx.started,
    spool_depth: spool.depth,
    spool_segments: spool.segments,
    connections_open: server.active.size,
    connections: stats.connections,
    accepted: stats.accepted,
    refused: stats.refused,
    errors: stats.errors,
    last_error: stats.lastError,
    recorded: drainer.stats.recorded,
    duplicates: drainer.stats.duplicates,
    commits: drainer.stats.commits,
    last_commit: drainer.stats.lastCommit,
    drain_failing: drainer.stats.failing,
    last_drain_error: drainer.stats.lastError,
    last_drain_error_at: drainer.stats.lastErrorAt,
    dead_letters: drainer.stats.deadLetters,
    last_dead_letter: drainer.stats.lastDeadLetter,
    accept_stalled: server.accept.stalled,
    accept_stalled_since: server.accept.stalledSince,
    relistens: server.accept.relistens,
    refused_at_accept: server.accept.refusedAtAccept,
    descriptors_open: server.accept.descriptors,
    descriptor_limit: server.accept.descriptorLimit,
    accept_unsigned: ctx.acceptUnsigned,
    relay: relayTarget ? `${relayTarget.host}:${relayTarget.port}` : undefined,
    relay_queue: relay?.stats.queued,
    relay_relayed: relay?.stats.relayed,
    relay_deferred: relay?.stats.deferred,
    relay_dead_letters: relay?.stats.dead,
    relay_last_error: relay?.stats.lastError,
  };
}

export async function startListener(opts: ListenerOptions): Promise<Listener> {
  // No email address in any log line: participants' (and senders') addresses are redacted here, once.
  const log = redactingLog(opts.log ?? (() => {}));
  const ctx = await openContext(opts, log);
  const { env, spool, drainer, stats, relay, relayTarget } = ctx;
  const server = orderServer(ctx);
  const smtp = await server.listen(opts.host, opts.port);
  const report = () => healthReport(ctx, server);

  let httpServer: HealthServer | undefined;
  let health: { host: string; port: number } | undefined;
  if (opts.health) {
    httpServer = serveHealth(opts.health.host, opts.health.port, () => {
      const h = report();
      return { status: h.status === "ok" ? 200 : 503, body: h };
    }, (message) => log("health-error", { error: message }));
    health = { host: httpServer.host, port: httpServer.port };
  }

  // Whatever a previous run left in the spool is drained first (and the relay queue sent).
  if (spool.segments) drainer.kick(0);
  relay?.kick(0);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      log("stopping", { spool_depth: spool.depth });
      await server.close(opts.stopGraceMs ?? 5_000);
      await spool.idle();
      await drainer.stop();
      await drainer.flush().catch(() => {});
      await relay?.stop();
      await Promise.all([...ctx.notes]);
      await httpServer?.close();
      log("stopped", { spool_depth: spool.depth, recorded: drainer.stats.recorded });
    })();
    return closing;
  };
  log("listening", {
    env: env.name,
    smtp: `${smtp.host}:${smtp.port}`,
    health: health && `${health.host}:${health.port}`,
    relay: relayTarget
      ? `${relayTarget.host}:${relayTarget.port}`
      : "none (mail for other recipients is refused)",
  });
  return { smtp, health, stats, spool, drainer, relay, healthReport: report, close };
}
