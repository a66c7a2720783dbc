// A small SMTP server (RFC 5321 subset) on node:net, written for the original order sender:
// - it accepts input before the greeting (no early-talker rejection) and pipelined commands,
// - bare LF and CRLF line endings,
// - the message handler runs when the final "." arrives and its result does not depend on the client
//   still being there: a client that closed the socket after the greeting still gets its message
//   processed (and made durable) from the bytes it already sent,
// - limits: connections (in all and per client address), connection rate per address, line length,
//   message size, recipients, errors and refusals per connection, refused sessions per address, idle
//   and session time. Every limit that concerns the client address is checked right after accept,
//   before any other work, and a refused socket is destroyed at once (it never keeps a descriptor).
// - accept watchdog: when the accept loop stalls (Deno's node:net stops accepting for good after one
//   EMFILE), the listening socket is re-created as soon as descriptors are free again; `health()`
//   reports the stall and descriptor pressure.
// - STARTTLS (when a certificate is configured; buffered plaintext after it is discarded, RFC 3207)
//   and AUTH PLAIN/LOGIN (only over TLS).
// HELO is optional and may be bare (like Postfix's default smtpd_helo_required = no).
// Commands: HELO, EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY (252), HELP, STARTTLS, AUTH; others
// get 502/500.
import * as net from "node:net";
import * as tls from "node:tls";
import { Buffer } from "node:buffer";

export interface Reply {
  code: number;
  text: string;
}

export interface Session {
  id: string;
  remote: string;
  helo?: string;
  from?: string;
  rcpts: string[];
  /** Free slot for the handlers (e.g. the backend a recipient selected). */
  data: Record<string, unknown>;
  /** The client closed the connection (replies are no longer read). */
  closed: boolean;
  /** STARTTLS done. */
  secure: boolean;
  /** The authenticated user (SMTP AUTH). */
  user?: string;
}

export interface SmtpHandlers {
  /**
   * Right after accept, before anything else (no session yet): undefined accepts the client address; a
   * Reply is written (one line) and the socket destroyed. Such a refusal counts as a refused session.
   */
  onAccept?(remote: string): Reply | undefined;
  /** undefined: greet; a Reply: send it (5xx) and close. */
  onConnect?(s: Session): Reply | undefined;
  onMail?(s: Session, address: string, params: string): Reply | undefined;
  onRcpt?(s: Session, address: string): Reply | undefined;
  /** The complete message (dot-unstuffed, line endings as received). Must resolve with the final reply. */
  onData(s: Session, message: Buffer): Promise<Reply>;
  /** Check SMTP AUTH credentials (AUTH is offered only when this is set, and only over TLS). */
  onAuth?(s: Session, user: string, password: string): boolean;
  /** A protocol-level refusal or event worth logging. */
  onEvent?(event: string, s: Session, fields: Record<string, unknown>): void;
  /** Server-level events (accept stalled or resumed, an address limited); no session. */
  onServerEvent?(event: string, fields: Record<string, unknown>): void;
}

export interface SmtpLimits {
  /** Concurrent connections in all. */
  maxConnections: number;
  /** Concurrent connections from one client address. */
  maxConnectionsPerAddress: number;
  /** New connections per second from one client address (sustained), and the burst allowed above it. */
  connectRatePerAddress: number;
  connectBurstPerAddress: number;
  /**
   * Refused sessions (refused at connect, or closed for too many errors and refusals) from one address
   * within `penaltyWindowMs`; beyond it the address is refused at accept until the window has passed.
   */
  maxBadSessionsPerAddress: number;
  penaltyWindowMs: number;
  maxMessageBytes: number;
  maxRecipients: number;
  maxLineBytes: number;
  /** Errors and refusals (bad commands, refused MAIL/RCPT/DATA, failed AUTH) on one connection. */
  maxErrors: number;
  idleTimeoutMs: number;
  /** A connection is closed after this long whatever it does (slow-drip clients). */
  maxSessionMs: number;
}

export const DEFAULT_LIMITS: SmtpLimits = {
  maxConnections: 200,
  maxConnectionsPerAddress: 50,
  connectRatePerAddress: 100,
  connectBurstPerAddress: 300,
  maxBadSessionsPerAddress: 30,
  penaltyWindowMs: 10 * 60_000,
  maxMessageBytes: 64 * 1024,
  maxRecipients: 1,
  maxLineBytes: 2048,
  maxErrors: 10,
  idleTimeoutMs: 60_000,
  maxSessionMs: 10 * 60_000,
};

const LF = 0x0a;
let sessionSeq = 0;

function clean(s: string, max = 200): string {
  const t = s.replace(/[^\x20-\x7e]/g, "?");
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

/** Parse `FROM:<addr> params` / `FROM: addr` / `TO:<addr>`: the address (without brackets) and the rest. */
export function parsePath(
  arg: string,
  keyword: "FROM" | "TO",
): { address: string; params: string } | undefined {
  const m = new RegExp(`^${keyword}:[ \\t]*(?:<([^<>\\s]*)>|([^<>\\s]+))(?:[ \\t]+(.*))?$`, "i").exec(arg);
  if (!m) return undefined;
  return { address: m[1] ?? m[2], params: (m[3] ?? "").trim() };
}

class Connection {
  buf: Buffer = Buffer.alloc(0);
  mode: "command" | "data" | "closing" = "command";
  tlsPending = false;
  lifeTimer?: ReturnType<typeof setTimeout>;
  /** The plain socket under a STARTTLS session. */
  raw?: net.Socket;
  /** AUTH in progress: the next line is a SASL response. */
  authStep?: (line: string) => void;
  busy = false;
  discardLine = false;
  errors = 0;
  out: string[] = [];
  dataParts: Buffer[] = [];
  dataSize = 0;
  oversize = false;
  session: Session;
  paused = false;

  constructor(public sock: net.Socket, readonly server: SmtpServer) {
    this.session = {
      id: `${Date.now().toString(36)}-${(++sessionSeq).toString(36)}`,
      remote: (sock.remoteAddress ?? "").replace(/^::ffff:/, ""),
      rcpts: [],
      data: {},
      closed: false,
      secure: false,
    };
  }

  get h(): SmtpHandlers {
    return this.server.handlers;
  }
  get limits(): SmtpLimits {
    return this.server.limits;
  }

  reply(code: number, text: string, more: string[] = []): void {
    const lines = [...more.map((m) => `${code}-${m}`), `${code} ${text}`];
    this.out.push(lines.join("\r\n") + "\r\n");
  }

  /** Logs a "refused" event ({stage, code, reason, ...fields}) and replies `code text`. */
  refuse(
    stage: string,
    code: number,
    text: string,
    reason: string,
    fields: Record<string, unknown> = {},
  ): void {
    this.h.onEvent?.("refused", this.session, { stage, code, reason, ...fields });
    this.errors++;
    if (this.errors >= this.limits.maxErrors) return this.tooManyErrors();
    this.reply(code, text);
  }

  /** The error or refusal that reaches the limit: 421 and close instead of its reply; a bad mark for the address. */
  tooManyErrors(): void {
    this.h.onEvent?.("disconnected", this.session, { reason: "too many errors", errors: this.errors });
    this.server.penalize(this.session.remote);
    this.reply(421, "4.7.0 Too many errors, closing connection");
    this.close();
  }

  flush(): void {
    if (!this.out.length) return;
    const data = this.out.join("");
    this.out = [];
    if (!this.session.closed && !this.sock.destroyed && this.sock.writable) this.sock.write(data);
  }

  start(): void {
    this.attach(this.sock);
    this.lifeTimer = setTimeout(() => {
      if (this.mode === "closing") return;
      this.h.onEvent?.("timeout", this.session, { reason: "session too long" });
      this.reply(421, "4.4.2 Session time limit reached, closing connection");
      this.close();
    }, this.limits.maxSessionMs);
    const refuse = this.h.onConnect?.(this.session);
    if (refuse) {
      this.h.onEvent?.("refused", this.session, { stage: "connect", code: refuse.code, reason: refuse.text });
      this.server.penalize(this.session.remote);
      this.reply(refuse.code, refuse.text);
      this.close();
      return;
    }
    this.reply(220, `${this.server.hostname} ESMTP wod order listener`);
    this.flush();
  }

  attach(s: net.Socket): void {
    s.setNoDelay(true);
    s.setTimeout(this.limits.idleTimeoutMs);
    s.on("data", (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      if (this.buf.length > this.limits.maxMessageBytes * 2 + 65536 && !this.paused) {
        this.paused = true;
        s.pause();
      }
      this.pump();
    });
    s.on("timeout", () => {
      if (this.busy) return;
      this.h.onEvent?.("timeout", this.session, {});
      this.reply(421, "4.4.2 Idle timeout, closing connection");
      this.close();
    });
    s.on("error", () => {
      // ECONNRESET from a client that closed without reading: the bytes it sent are still processed.
    });
    s.on("close", () => this.closed());
    s.on("end", () => {
      this.session.closed = true;
    });
  }

  /**
   * Switch to TLS after "220 Ready to start TLS" was written. Deno's node:tls cannot turn an accepted
   * plain socket into a TLS server socket, so the raw bytes are relayed to an internal TLS listener on
   * 127.0.0.1 (owned by this server) and the session continues on the decrypted socket it accepts.
   */
  startTls(): void {
    const raw = this.sock;
    this.raw = raw;
    for (const ev of ["data", "timeout", "end", "close"]) raw.removeAllListeners(ev);
    raw.setTimeout(0);
    this.buf = Buffer.alloc(0); // RFC 3207: plaintext pipelined after STARTTLS is discarded
    this.busy = true; // no input until the secure socket is attached
    const up = net.connect(this.server.tlsPort, "127.0.0.1");
    const kill = () => {
      up.destroy();
      raw.destroy();
    };
    raw.on("close", () => {
      this.closed();
      up.destroy();
    });
    up.on("error", kill);
    up.on("close", () => raw.destroy());
    const timer = setTimeout(() => {
      this.h.onEvent?.("protocol-error", this.session, { code: 0, reason: "TLS handshake timeout" });
      kill();
    }, this.limits.idleTimeoutMs);
    up.on("connect", () => {
      this.server.pendingTls.set(up.localPort!, (secure) => {
        clearTimeout(timer);
        this.sock = secure;
        this.attach(secure);
        secure.on("close", () => raw.destroy());
        this.session.secure = true;
        this.session.helo = undefined;
        this.resetTransaction();
        this.busy = false;
      });
      raw.pipe(up);
      up.pipe(raw);
    });
  }

  /** The socket is gone: forget the connection (once). */
  closed(): void {
    this.session.closed = true;
    clearTimeout(this.lifeTimer);
    clearTimeout(this.killTimer);
    if (this.server.active.delete(this)) this.server.release(this.session.remote);
  }

  killTimer?: ReturnType<typeof setTimeout>;

  close(): void {
    this.mode = "closing";
    this.flush();
    this.buf = Buffer.alloc(0);
    if (!this.sock.destroyed) this.sock.end();
    // The peer has a short while to read the last reply; then the descriptor is released whatever it does.
    this.killTimer = setTimeout(() => {
      this.sock.destroy();
      this.raw?.destroy();
    }, this.server.underPressure() ? 50 : 1000);
  }

  pump(): void {
    while (!this.busy && this.mode !== "closing") {
      const nl = this.buf.indexOf(LF);
      if (nl < 0) {
        if (this.mode === "command" && this.buf.length > this.limits.maxLineBytes) {
          this.buf = Buffer.alloc(0);
          this.discardLine = true;
          this.error(500, "5.5.2 Line too long");
        } else if (this.mode === "data" && this.buf.length > this.limits.maxMessageBytes + 4096) {
          this.dataSize += this.buf.length;
          this.oversize = true;
          this.dataParts = [];
          this.buf = Buffer.alloc(0);
        }
        break;
      }
      const line = this.buf.subarray(0, nl + 1);
      this.buf = this.buf.subarray(nl + 1);
      if (this.mode === "data") this.dataLine(line);
      else if (this.discardLine) this.discardLine = false;
      else if (line.length > this.limits.maxLineBytes) this.error(500, "5.5.2 Line too long");
      else if (this.authStep) {
        const step = this.authStep;
        this.authStep = undefined;
        step(line.toString("latin1").replace(/\r?\n$/, "").trim());
      } else this.command(line);
      if (this.tlsPending) {
        this.tlsPending = false;
        this.flush();
        this.startTls();
        return;
      }
    }
    this.flush();
    if (this.paused && !this.busy && this.buf.length < 65536) {
      this.paused = false;
      this.sock.resume();
    }
  }

  error(code: number, text: string): void {
    this.errors++;
    this.h.onEvent?.("protocol-error", this.session, { code, reason: text });
    if (this.errors >= this.limits.maxErrors) return this.tooManyErrors();
    this.reply(code, text);
  }

  dataLine(line: Buffer): void {
    // "." alone (with LF or CRLF) ends the message.
    const len = line.length;
    if (
      (len === 2 && line[0] === 0x2e && line[1] === LF) ||
      (len === 3 && line[0] === 0x2e && line[1] === 0x0d && line[2] === LF)
    ) {
      this.endData();
      return;
    }
    const content = line[0] === 0x2e ? line.subarray(1) : line;
    this.dataSize += content.length;
    if (this.dataSize > this.limits.maxMessageBytes) {
      this.oversize = true;
      this.dataParts = [];
    } else this.dataParts.push(content);
  }

  endData(): void {
    this.mode = "command";
    const s = this.session;
    if (this.oversize) {
      const size = this.dataSize;
      this.resetTransaction();
      this.refuse(
        "data",
        552,
        `5.3.4 Message too big: ${size} bytes, the limit is ${this.limits.maxMessageBytes}`,
        "message too big",
        { size },
      );
      return;
    }
    const msg = Buffer.concat(this.dataParts);
    this.busy = true;
    this.flush();
    this.h.onData(s, msg).then(
      (r) => {
        // A refused order counts like any refusal: the one that reaches the limit gets 421 and a close.
        if (r.code >= 400 && ++this.errors >= this.limits.maxErrors) return this.tooManyErrors();
        this.reply(r.code, r.text);
      },
      (e) => {
        this.h.onEvent?.("handler-error", s, { error: (e as Error).message });
        this.reply(451, "4.3.0 Local error, the order was not stored: try again later");
      },
    ).finally(() => {
      this.resetTransaction();
      this.busy = false;
      this.pump();
    });
  }

  resetTransaction(): void {
    this.session.from = undefined;
    this.session.rcpts = [];
    this.session.data = {};
    this.dataParts = [];
    this.dataSize = 0;
    this.oversize = false;
  }

  auth(arg: string): void {
    const s = this.session;
    if (!this.h.onAuth) return this.error(502, "5.5.1 AUTH is not available");
    if (!s.secure) return this.error(538, "5.7.11 Encryption required: use STARTTLS first");
    if (s.user) return this.error(503, "5.5.1 Already authenticated");
    if (s.from !== undefined) return this.error(503, "5.5.1 AUTH not allowed during a mail transaction");
    const [mech, initial] = arg.split(/\s+/, 2);
    const b64 = (text: string): string | undefined => {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
      try {
        return Buffer.from(text, "base64").toString("utf8");
      } catch {
        return undefined;
      }
    };
    const finish = (user: string | undefined, password: string | undefined) => {
      if (user === undefined || password === undefined) return this.error(501, "5.5.2 Invalid AUTH response");
      if (this.h.onAuth!(s, user, password)) {
        s.user = user;
        this.h.onEvent?.("authenticated", s, { user: user.replace(/[^\x21-\x7e]/g, "?") });
        this.reply(235, "2.7.0 Authentication successful");
      } else {
        this.h.onEvent?.("refused", s, { stage: "auth", code: 535, reason: "bad credentials" });
        this.error(535, "5.7.8 Authentication credentials invalid");
      }
    };
    const cancelled = (line: string) => line === "*";
    switch ((mech ?? "").toUpperCase()) {
      case "PLAIN": {
        const plain = (text: string) => {
          if (cancelled(text)) return this.error(501, "5.7.0 AUTH cancelled");
          const d = b64(text);
          const parts = d?.split("\0");
          if (!parts || parts.length !== 3) return finish(undefined, undefined);
          finish(parts[1], parts[2]);
        };
        if (initial !== undefined) return plain(initial);
        this.reply(334, "");
        this.authStep = plain;
        return;
      }
      case "LOGIN": {
        const askPassword = (user: string | undefined) => {
          if (user === undefined) return finish(undefined, undefined);
          this.reply(334, "UGFzc3dvcmQ6");
          this.authStep = (
            text,
          ) => (cancelled(text) ? this.error(501, "5.7.0 AUTH cancelled") : finish(user, b64(text)));
        };
        if (initial !== undefined) return askPassword(b64(initial));
        this.reply(334, "VXNlcm5hbWU6");
        this.authStep = (
          text,
        ) => (cancelled(text) ? this.error(501, "5.7.0 AUTH cancelled") : askPassword(b64(text)));
        return;
      }
      default:
        return this.error(504, "5.5.4 Unrecognized authentication type: use PLAIN or LOGIN");
    }
  }

  command(raw: Buffer): void {
    let line = raw.toString("latin1").replace(/\r?\n$/, "");
    if (/[^\x20-\x7e\t]/.test(line)) {
      this.error(500, "5.5.2 Invalid characters in command");
      return;
    }
    line = line.trim();
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? "" : line.slice(sp + 1).trim();
    const s = this.session;
    switch (verb) {
      case "HELO":
      case "EHLO": {
        // A bare HELO/EHLO (a client whose host name setting is empty) is taken like Postfix does by
        // default (smtpd_helo_required = no): the session goes on, the name is recorded as "unknown".
        if (arg !== "" && !/^[A-Za-z0-9.\-_:[\]]{1,255}$/.test(arg)) {
          this.error(501, `5.5.4 Syntax: ${verb} hostname`);
          return;
        }
        s.helo = arg || "unknown";
        this.resetTransaction();
        if (verb === "HELO") this.reply(250, this.server.hostname);
        else {
          const ext = [this.server.hostname, "PIPELINING", "8BITMIME", `SIZE ${this.limits.maxMessageBytes}`];
          if (this.server.tls && !s.secure) ext.push("STARTTLS");
          if (this.h.onAuth && s.secure) ext.push("AUTH PLAIN LOGIN");
          this.reply(250, "ENHANCEDSTATUSCODES", ext);
        }
        return;
      }
      case "MAIL": {
        // No HELO at all is fine too (Postfix's default, smtpd_helo_required = no).
        if (s.from !== undefined) return this.error(503, "5.5.1 Nested MAIL command");
        const p = parsePath(arg, "FROM");
        if (!p) return this.error(501, "5.5.4 Syntax: MAIL FROM:<address>");
        if (this.server.requireAuth && !s.user) {
          this.refuse("mail", 530, "5.7.0 Authentication required", "authentication required");
          return;
        }
        const size = /(?:^|\s)SIZE=(\d+)/i.exec(p.params);
        if (size && Number(size[1]) > this.limits.maxMessageBytes) {
          const text = `5.3.4 Message too big: the limit is ${this.limits.maxMessageBytes} bytes`;
          this.refuse("mail", 552, text, "declared size too big");
          return;
        }
        const r = this.h.onMail?.(s, p.address, p.params);
        if (r && r.code >= 400) {
          this.refuse("mail", r.code, r.text, r.text, { from: clean(p.address) });
          return;
        }
        s.from = p.address;
        this.reply(250, "2.1.0 Sender ok");
        return;
      }
      case "RCPT": {
        if (s.from === undefined) return this.error(503, "5.5.1 Send MAIL first");
        const p = parsePath(arg, "TO");
        if (!p || !p.address) return this.error(501, "5.5.4 Syntax: RCPT TO:<address>");
        if (s.rcpts.length >= this.limits.maxRecipients) {
          const text = `4.5.3 Too many recipients: at most ${this.limits.maxRecipients} per order`;
          this.refuse("rcpt", 452, text, "too many recipients");
          return;
        }
        const r = this.h.onRcpt?.(s, p.address);
        if (r && r.code >= 400) {
          this.refuse("rcpt", r.code, r.text, r.text, { to: clean(p.address) });
          return;
        }
        s.rcpts.push(p.address);
        this.reply(250, "2.1.5 Recipient ok");
        return;
      }
      case "DATA": {
        if (arg) return this.error(501, "5.5.4 Syntax: DATA");
        if (s.from === undefined) return this.error(503, "5.5.1 Send MAIL first");
        if (!s.rcpts.length) return this.error(503, "5.5.1 Send RCPT first (no valid recipient)");
        this.mode = "data";
        this.dataParts = [];
        this.dataSize = 0;
        this.oversize = false;
        this.reply(354, "End data with <CR><LF>.<CR><LF>");
        return;
      }
      case "RSET":
        this.resetTransaction();
        this.reply(250, "2.0.0 Ok");
        return;
      case "NOOP":
        this.reply(250, "2.0.0 Ok");
        return;
      case "QUIT":
        this.reply(221, "2.0.0 Bye");
        this.close();
        return;
      case "VRFY":
        this.reply(252, "2.5.0 Cannot VRFY");
        return;
      case "HELP":
        this.reply(214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT");
        return;
      case "STARTTLS": {
        if (!this.server.tls) return this.error(502, "5.5.1 STARTTLS is not available");
        if (s.secure) return this.error(503, "5.5.1 TLS already active");
        if (arg) return this.error(501, "5.5.4 Syntax: STARTTLS");
        this.reply(220, "2.0.0 Ready to start TLS");
        this.tlsPending = true;
        return;
      }
      case "AUTH":
        return this.auth(arg);
      case "BDAT":
      case "ETRN":
      case "EXPN":
      case "TURN":
        return this.error(502, `5.5.1 ${verb} is not implemented`);
      default:
        return this.error(500, `5.5.1 Unknown command "${clean(verb, 20)}"`);
    }
  }
}

export interface SmtpServerOptions {
  hostname?: string;
  limits?: Partial<SmtpLimits>;
  handlers: SmtpHandlers;
  /** PEM certificate and key: offer STARTTLS. */
  tls?: { cert: string; key: string };
  /** Refuse MAIL before a successful AUTH. */
  requireAuth?: boolean;
}

/** What the server knows about one client address (bounded: idle entries are dropped). */
interface AddressState {
  open: number;
  tokens: number;
  refilled: number;
  /** Times of recent refused sessions (within the penalty window). */
  bad: number[];
  /** Refusals at accept since the last log line about this address (floods log one line a second). */
  quiet: number;
  loggedAt: number;
  seen: number;
}

/** Open descriptors of this process, or undefined when they cannot be counted (none left to open /proc). */
export function openDescriptors(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n - 1; // the directory handle used to count
  } catch {
    return undefined;
  }
}

/** The soft limit on open descriptors (RLIMIT_NOFILE) of this process, or undefined when unknown. */
export function descriptorLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m && m[1] !== "unlimited" ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Pending connections in the kernel's accept queue of a listening TCP socket on `port`, or undefined. */
export function acceptBacklog(port: number): number | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let found = false;
  let total = 0;
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(f);
    } catch {
      if (f.endsWith("6")) continue;
      return undefined;
    }
    for (const line of text.split("\n")) {
      const p = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue ...; for a LISTEN socket (0A) rx_queue is the backlog
      if (p.length > 4 && p[3] === "0A" && p[1].endsWith(hex)) {
        found = true;
        total += parseInt(p[4].split(":")[1], 16) || 0;
      }
    }
  }
  return found ? total : undefined;
}

export interface AcceptHealth {
  /** The accept loop is stalled: connections wait in the kernel queue and none is accepted. */
  stalled: boolean;
  stalledSince?: string;
  /** Times the listening socket was re-created after a stall. */
  relistens: number;
  descriptors?: number;
  descriptorLimit?: number;
  /** Open descriptors above 85% of the limit (or uncountable). */
  descriptorsNearLimit: boolean;
  backlog?: number;
  /** Connections refused at accept (network, rate, per-address cap, penalty, capacity). */
  refusedAtAccept: number;
}

export class SmtpServer {
  readonly hostname: string;
  readonly limits: SmtpLimits;
  readonly handlers: SmtpHandlers;
  readonly tls?: { cert: string; key: string };
  readonly requireAuth: boolean;
  /** Internal TLS listener for STARTTLS (see Connection.startTls). */
  tlsServer?: tls.Server;
  tlsPort = 0;
  readonly pendingTls = new Map<number, (s: tls.TLSSocket) => void>();
  readonly active = new Set<Connection>();
  /** Sockets refused at accept that are still writing their one-line refusal (destroyed within 200 ms). */
  readonly refusing = new Set<net.Socket>();
  readonly addresses = new Map<string, AddressState>();
  server: net.Server;
  #bound?: { host: string; port: number };
  #closing = false;
  #accepts = 0;
  #watch?: ReturnType<typeof setInterval>;
  #lastAccepts = -1;
  #suspect = 0;
  #lastTick = Date.now();
  #fdLimit = descriptorLimit();
  /** Connections (open and being refused) the descriptor limit leaves room for; set at listen(). */
  #fdBudget = Infinity;
  readonly accept: AcceptHealth = {
    stalled: false,
    relistens: 0,
    descriptorsNearLimit: false,
    refusedAtAccept: 0,
  };

  constructor(opts: SmtpServerOptions) {
    this.hostname = opts.hostname ?? "localhost";
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.handlers = opts.handlers;
    this.tls = opts.tls;
    if (opts.tls) {
      this.tlsServer = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (secure) => {
        secure.on("error", () => {});
        const attach = this.pendingTls.get(secure.remotePort ?? -1);
        this.pendingTls.delete(secure.remotePort ?? -1);
        if (attach) attach(secure);
        else secure.destroy();
      });
      this.tlsServer.on("tlsClientError", () => {});
    }
    this.requireAuth = opts.requireAuth ?? false;
    this.server = this.#createServer();
  }

  #createServer(): net.Server {
    const srv = net.createServer((sock) => this.#onAccept(sock));
    srv.on("error", (e: Error) => this.handlers.onServerEvent?.("accept-error", { error: e.message }));
    return srv;
  }

  /** Descriptors are scarce: refused sockets are destroyed without a reply, closing ones sooner. */
  underPressure(): boolean {
    return this.accept.descriptorsNearLimit || this.refusing.size > 64 ||
      this.active.size + this.refusing.size >= this.#fdBudget * 0.9;
  }

  #state(addr: string, now: number): AddressState {
    let st = this.addresses.get(addr);
    if (!st) {
      if (this.addresses.size >= 50_000) this.#prune(now, true);
      st = {
        open: 0,
        tokens: this.limits.connectBurstPerAddress,
        refilled: now,
        bad: [],
        quiet: 0,
        loggedAt: 0,
        seen: now,
      };
      this.addresses.set(addr, st);
    }
    st.seen = now;
    return st;
  }

  #prune(now: number, hard = false): void {
    const idle = hard ? 60_000 : this.limits.penaltyWindowMs;
    for (const [a, st] of this.addresses) {
      if (st.open === 0 && now - st.seen > idle) this.addresses.delete(a);
    }
    if (hard && this.addresses.size >= 50_000) {
      for (const [a, st] of this.addresses) if (st.open === 0) this.addresses.delete(a);
    }
  }

  /** A refused session from `addr` (refused at connect, or too many errors). */
  penalize(addr: string): void {
    const now = Date.now();
    const st = this.#state(addr, now);
    st.bad.push(now);
    if (st.bad.length > this.limits.maxBadSessionsPerAddress + 1) st.bad.shift();
  }

  /** A connection from `addr` is gone. */
  release(addr: string): void {
    const st = this.addresses.get(addr);
    if (st && st.open > 0) st.open--;
  }

  /** Why a new connection from `addr` is refused before any other work, or undefined. */
  #limit(addr: string, st: AddressState, now: number): { reply: Reply; reason: string } | undefined {
    const L = this.limits;
    st.bad = st.bad.filter((t) => now - t < L.penaltyWindowMs);
    if (st.bad.length >= L.maxBadSessionsPerAddress) {
      return {
        reason: "too many refused sessions",
        reply: { code: 421, text: `4.7.0 Too many refused sessions from ${addr}, try again later` },
      };
    }
    st.tokens = Math.min(
      L.connectBurstPerAddress,
      st.tokens + ((now - st.refilled) / 1000) * L.connectRatePerAddress,
    );
    st.refilled = now;
    if (st.tokens < 1) {
      return {
        reason: "connection rate",
        reply: { code: 421, text: `4.7.0 Too many connections per second from ${addr}, try again later` },
      };
    }
    st.tokens -= 1;
    if (st.open >= L.maxConnectionsPerAddress) {
      return {
        reason: "too many connections from the address",
        reply: { code: 421, text: `4.7.0 Too many connections from ${addr}, try again later` },
      };
    }
    if (this.active.size >= L.maxConnections) {
      return {
        reason: "too many connections",
        reply: { code: 421, text: "4.7.0 Too many connections, try again later" },
      };
    }
    if (this.active.size + this.refusing.size >= this.#fdBudget) {
      return {
        reason: "descriptor limit",
        reply: { code: 421, text: "4.3.2 Server busy (descriptor limit), try again later" },
      };
    }
    return undefined;
  }

  #onAccept(sock: net.Socket): void {
    this.#accepts++;
    sock.on("error", () => {});
    if (this.#closing) {
      sock.destroy();
      return;
    }
    const addr = (sock.remoteAddress ?? "").replace(/^::ffff:/, "");
    const now = Date.now();
    const st = this.#state(addr, now);
    let refusal = this.#limit(addr, st, now);
    if (!refusal) {
      const r = this.handlers.onAccept?.(addr);
      if (r) {
        refusal = { reply: r, reason: r.text };
        this.penalize(addr);
      }
    }
    if (refusal) {
      this.accept.refusedAtAccept++;
      // One log line per address and second at most: a flood does not flood the logs.
      if (now - st.loggedAt >= 1000) {
        this.handlers.onServerEvent?.("refused", {
          remote: addr,
          stage: "accept",
          code: refusal.reply.code,
          reason: refusal.reason,
          ...(st.quiet ? { also_refused: st.quiet } : {}),
        });
        st.loggedAt = now;
        st.quiet = 0;
      } else st.quiet++;
      this.#refuseSocket(sock, `${refusal.reply.code} ${refusal.reply.text}\r\n`);
      return;
    }
    st.open++;
    const c = new Connection(sock, this);
    this.active.add(c);
    c.start();
  }

  /** Write one line and destroy: as soon as it is written, within 200 ms (20 ms under descriptor pressure). */
  #refuseSocket(sock: net.Socket, line: string): void {
    if (this.refusing.size > 256) {
      sock.destroy();
      return;
    }
    this.refusing.add(sock);
    const done = () => {
      clearTimeout(timer);
      this.refusing.delete(sock);
      sock.destroy();
    };
    const timer = setTimeout(done, this.underPressure() ? 20 : 200);
    sock.on("close", done);
    sock.end(line, done);
  }

  /** Every 500 ms: descriptor pressure, and whether accept is stalled (then re-create the listening socket). */
  #watchdog(): void {
    const a = this.accept;
    const fds = openDescriptors();
    a.descriptors = fds;
    a.descriptorLimit = this.#fdLimit;
    a.descriptorsNearLimit = fds === undefined ||
      (this.#fdLimit !== undefined && fds >= this.#fdLimit * 0.85);
    const backlog = this.#bound ? acceptBacklog(this.#bound.port) : undefined;
    a.backlog = backlog;
    const progressed = this.#accepts !== this.#lastAccepts;
    this.#lastAccepts = this.#accepts;
    // Waiting connections and no accept for three ticks in a row (or no descriptor left to look): stalled.
    const waiting = fds === undefined || (backlog ?? 0) > 0;
    // A late tick means the event loop was busy (accepts may simply not have run yet): no verdict.
    const now = Date.now();
    const late = now - this.#lastTick > 1_000;
    this.#lastTick = now;
    this.#suspect = !progressed && waiting && !late ? this.#suspect + 1 : late ? this.#suspect : 0;
    if (this.#suspect >= 3 && !a.stalled) {
      a.stalled = true;
      a.stalledSince = new Date().toISOString();
      this.handlers.onServerEvent?.("accept-stalled", { backlog, descriptors: fds, limit: this.#fdLimit });
    } else if (a.stalled && (progressed || !waiting)) {
      a.stalled = false;
      a.stalledSince = undefined;
      this.handlers.onServerEvent?.("accept-resumed", { descriptors: fds, backlog });
    }
    // Re-create the listening socket once descriptors are free again (the stalled accept loop never resumes).
    if (a.stalled && fds !== undefined && (this.#fdLimit === undefined || fds < this.#fdLimit - 16)) {
      this.#relisten();
    }
    if (this.addresses.size > 1000) this.#prune(Date.now());
  }

  #relisten(): void {
    if (!this.#bound || this.#closing) return;
    const { host, port } = this.#bound;
    const old = this.server;
    old.close();
    this.server = this.#createServer();
    this.accept.relistens++;
    this.server.once("error", (e: Error) => {
      this.handlers.onServerEvent?.("relisten-failed", { error: e.message });
    });
    this.server.listen(port, host, () => {
      this.handlers.onServerEvent?.("relistened", { port });
    });
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    if (this.tlsServer) {
      this.tlsPort = await new Promise<number>((resolve, reject) => {
        this.tlsServer!.once("error", reject);
        this.tlsServer!.listen(
          0,
          "127.0.0.1",
          () => resolve((this.tlsServer!.address() as net.AddressInfo).port),
        );
      });
    }
    const bound = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
    this.#bound = { host, port: bound.port };
    const fds = openDescriptors();
    if (this.#fdLimit !== undefined && fds !== undefined) {
      // Each connection takes one descriptor (two under STARTTLS); keep a reserve for the spool, the
      // store, the health endpoint and the logs.
      this.#fdBudget = Math.max(1, Math.floor((this.#fdLimit - fds - 24) / (this.tls ? 2 : 1)));
      if (this.limits.maxConnections > this.#fdBudget) {
        this.handlers.onServerEvent?.("limits", {
          warning:
            `max connections ${this.limits.maxConnections} is more than the descriptor limit ${this.#fdLimit} leaves room for: at most ${this.#fdBudget} (raise LimitNOFILE)`,
        });
      }
    }
    this.#watch = setInterval(() => this.#watchdog(), 500);
    this.#watchdog();
    return bound;
  }

  /**
   * Stop accepting; wait up to `graceMs` for messages being stored (a client still sending DATA gets
   * at most half of it); then close every connection. Bounded: resolves within about graceMs + 1 s.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#closing = true;
    clearInterval(this.#watch);
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const deadline = Date.now() + graceMs;
    const dataDeadline = Date.now() + graceMs / 2;
    while (
      [...this.active].some((c) => c.busy || (c.mode === "data" && Date.now() < dataDeadline)) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of this.active) {
      if (!c.busy) {
        c.reply(421, "4.3.2 Service shutting down");
        c.flush();
      }
      c.sock.destroy();
      c.raw?.destroy();
      clearTimeout(c.lifeTimer);
      clearTimeout(c.killTimer);
    }
    this.active.clear();
    for (const s of this.refusing) s.destroy();
    this.refusing.clear();
    const bounded = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, 1000))]);
    await bounded(closed);
    if (this.tlsServer) await bounded(new Promise<void>((r) => this.tlsServer!.close(() => r())));
  }
}
