// The registration portal: catalog, registration, status page, the original api-db's callback API
// (so `wod apply` reports here), admin pages. Served by Deno.serve; state in a PortalStore (SQLite or
// PostgreSQL); emails and orders go through an outbox, so a crash between the registration and its
// order loses nothing and sends nothing twice.
import { WodError } from "../common/errors.ts";
import { createLogger, type LogFn } from "../common/log.ts";
import { type Config, requireEnvironment } from "../config/load.ts";
import type { Environment, EnvironmentBackend, Seat } from "../config/types.gen.ts";
import { isSaneEmail } from "../orders/check.ts";
import type { Mailer, Rendered } from "../notify/email.ts";
import { renderTemplate } from "../notify/email.ts";
import { type OrderFormat, orderOf, type OrderSender, type PortalOrder } from "./orders.ts";
import { OrderInvalidError, validateOrder } from "../orders/validate.ts";
import { freeSeats, type OutboxItem, type PortalStore, type Registration, type SeatRange } from "./store.ts";
import {
  CSRF_COOKIE,
  csrfOk,
  csrfToken,
  parseCookies,
  randomToken,
  RateLimiter,
  safeEqual,
  sha256,
  signJwt,
  verifyJwt,
  verifyPassword,
} from "./security.ts";
import {
  type CatalogItem,
  catalogPage,
  CSS,
  esc,
  type FormErrors,
  type FormValues,
  layout,
  loginPage,
  messagePage,
  STATUS_JS,
  statusBlock,
  statusPage,
  type StatusView,
  table,
  workshopPage,
} from "./html.ts";

export const CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'";

export interface PortalOptions {
  cfg: Config;
  env: string;
  store: PortalStore;
  /** Signs CSRF tokens and API access tokens. */
  secret: string;
  /** Absolute base URL of the portal (links in emails). */
  publicUrl: string;
  orders: OrderSender;
  orderFormat: OrderFormat;
  mailer: Mailer;
  /** Recorded state's seats (held seats are never given; reminders show on the status page). */
  recordedSeats: () => Promise<Seat[]>;
  /** The callback API's credentials (what `wod apply` logs in with); undefined: API closed. */
  api?: { username: string; password: string };
  /** The admin login; undefined: admin pages closed. */
  admin?: { username: string; passwordHash: string };
  limits?: { perAddress: number; perEmail: number; windowMs: number };
  retentionDays?: number;
  termsUrl?: string;
  /** Secure cookies (on by default; tests over plain http on 127.0.0.1 may keep it: browsers allow it there). */
  secureCookies?: boolean;
  /** Take the client address from X-Forwarded-For (behind our own TLS proxy only). */
  trustProxy?: boolean;
  /** Hub base URL per backend. */
  hubUrl: (b: EnvironmentBackend) => Promise<string>;
  now?: () => Date;
  log?: LogFn;
  /** How often the outbox worker and the recorded-state refresh run (ms). */
  tickMs?: number;
}

const MAX_FORM_BYTES = 16 * 1024;
const NAME_RE = /^[^\p{Cc}<>]{1,100}$/u;
const SESSION_COOKIE = "wod_admin";
const SESSION_HOURS = 8;
const CATALOG_TTL_MS = 1_000;

function html(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8", ...headers } });
}

function json(v: unknown, status = 200): Response {
  return new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
}

function securityHeaders(res: Response): Response {
  const h = res.headers;
  h.set("content-security-policy", CSP);
  h.set("x-content-type-options", "nosniff");
  h.set("referrer-policy", "no-referrer");
  h.set("x-frame-options", "DENY");
  h.set("permissions-policy", "camera=(), microphone=(), geolocation=()");
  if (!h.has("cache-control")) h.set("cache-control", "no-store");
  return res;
}

/** What is wrong with the registration form's fields (empty: nothing). */
export function formErrors(values: FormValues): FormErrors {
  const errors: FormErrors = {};
  if (!values.email) errors.email = "Enter your email address.";
  else if (!isSaneEmail(values.email)) {
    errors.email =
      "Enter an email address like name@example.org (letters, digits and . _ % + - before the @).";
  }
  if (!values.first_name) errors.first_name = "Enter your first name.";
  else if (!NAME_RE.test(values.first_name)) {
    errors.first_name = "Your first name must be 1 to 100 characters, without < or >.";
  }
  if (!values.last_name) errors.last_name = "Enter your last name.";
  else if (!NAME_RE.test(values.last_name)) {
    errors.last_name = "Your last name must be 1 to 100 characters, without < or >.";
  }
  if (!values.company) errors.company = 'Enter your company or organisation (or "none").';
  else if (!NAME_RE.test(values.company)) {
    errors.company = "The company must be 1 to 100 characters, without < or >.";
  }
  if (!values.consent) {
    errors.consent = "Tick the box to agree to the terms: we need it to keep your name and email.";
  }
  return errors;
}

export class Portal {
  readonly env: Environment;
  private byAddress: RateLimiter;
  private byEmail: RateLimiter;
  /** Admin login attempts per client address: 10 per 15 minutes. */
  private logins = new RateLimiter(10, 900_000);
  private recorded = new Map<string, Seat>();
  private recordedAt = 0;
  private timer?: ReturnType<typeof setInterval>;
  private working = false;
  private again = false;
  private closed = false;
  private inflight = new Set<Promise<unknown>>();
  private log: LogFn;

  constructor(readonly o: PortalOptions) {
    this.env = requireEnvironment(o.cfg, o.env).value;
    const l = o.limits ?? { perAddress: 20, perEmail: 5, windowMs: 3_600_000 };
    this.byAddress = new RateLimiter(l.perAddress, l.windowMs);
    this.byEmail = new RateLimiter(l.perEmail, l.windowMs);
    this.log = o.log ?? createLogger({ sync: true });
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  private get brand(): string | undefined {
    const v = this.env.vars?.BRANDINGWOD;
    return typeof v === "string" ? v : undefined;
  }

  // ---------- background: outbox, recorded state, retention ----------

  async start(): Promise<void> {
    await this.refreshRecorded();
    await this.o.store.requeueStale(
      new Date(this.now().getTime() - 60_000).toISOString(),
      this.now().toISOString(),
    );
    const tick = this.o.tickMs ?? 2_000;
    this.timer = setInterval(() => {
      this.kick();
      if (Date.now() - this.recordedAt > tick * 5) this.track(this.refreshRecorded());
      this.track(this.retention());
    }, tick);
    this.kick();
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((err) => this.log("error", { message: (err as Error).message }));
    this.inflight.add(q);
    q.finally(() => this.inflight.delete(q));
  }

  async refreshRecorded(): Promise<void> {
    const fetched = this.now().toISOString();
    try {
      const seats = await this.o.recordedSeats();
      this.recorded = new Map(seats.map((s) => [`${s.backend}/${s.seat}`, s]));
      this.staleCatalog();
      await this.followRecorded(fetched);
      this.recordedAt = Date.now();
    } catch (err) {
      this.log("state-read-failed", { message: (err as Error).message.split("\n")[0] });
    }
  }

  /**
   * Recorded state is the truth about seats: a registration whose seat recorded state shows active for
   * it is ready (even when no callback came), and a ready or ending registration whose seat recorded
   * state has freed or given to someone else has ended (a PURGE or RESET without a CLEANUP report, an
   * operator's order, a front-end callback that failed).
   */
  private async followRecorded(fetched: string): Promise<void> {
    const now = this.now().toISOString();
    for (const reg of await this.o.store.list({ active: true })) {
      // Only changes older than the snapshot are judged by it.
      if (reg.updated >= fetched) continue;
      const seat = this.recorded.get(`${reg.backend}/${reg.seat}`);
      const ours = seat !== undefined && seat.status !== "free" && seat.customer === String(reg.id);
      if (reg.status === "preparing" && ours && seat.status === "active") {
        await this.o.store.setStatus(reg.id, "ready", now, { from: ["preparing"] });
      } else if ((reg.status === "ready" || reg.status === "ending") && !ours) {
        if (await this.o.store.setStatus(reg.id, "ended", now, { from: ["ready", "ending"] })) {
          this.log("ended", { registration: reg.id, by: "recorded state" });
        }
      }
    }
  }

  private recordedHeld(): Set<string> {
    const out = new Set<string>();
    for (const [k, s] of this.recorded) if (s.status !== "free") out.add(k);
    return out;
  }

  async retention(): Promise<number> {
    const days = this.o.retentionDays ?? 30;
    const now = this.now();
    const n = await this.o.store.applyRetention(
      new Date(now.getTime() - days * 86_400_000).toISOString(),
      now.toISOString(),
    );
    if (n > 0) this.log("retention", { deleted: n, days });
    return n;
  }

  /** Runs the outbox now (coalesced: one worker at a time, one more pass if kicked meanwhile). */
  kick(): void {
    if (this.closed) return;
    if (this.working) {
      this.again = true;
      return;
    }
    this.working = true;
    this.track(
      (async () => {
        try {
          do {
            this.again = false;
            await this.drainOutbox();
          } while (this.again && !this.closed);
        } finally {
          this.working = false;
        }
      })(),
    );
  }

  /** Sends every pending outbox item once (claimed first, so two portals never send the same one). */
  async drainOutbox(): Promise<void> {
    const pending = await this.o.store.outbox({ status: ["pending"] });
    const queue = [...pending];
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        if (this.closed) return;
        const backoff = Math.min(300_000, 2 ** item.attempts * 1_000);
        if (item.attempts > 0 && Date.parse(item.updated) > this.now().getTime() - backoff) continue;
        if (item.kind === "order-cleanup" && !(await this.createSent(item.registrationId))) continue;
        if (!(await this.o.store.claim(item.id, this.now().toISOString()))) continue;
        await this.deliver(item);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }

  /** A CLEANUP order waits until the registration's CREATE order went out (they must not cross). */
  private async createSent(registrationId: number): Promise<boolean> {
    const items = await this.o.store.outbox({ registrationId });
    return items.every((o) => o.kind !== "order-create" || o.status === "sent");
  }

  private async deliver(item: OutboxItem): Promise<void> {
    const reg = await this.o.store.byId(item.registrationId);
    const now = () => this.now().toISOString();
    try {
      if (!reg) {
        throw new WodError(
          `Registration ${item.registrationId} is no longer in the portal's database: its ${item.kind} cannot be delivered`,
        );
      }
      if (item.kind === "order-create" || item.kind === "order-cleanup") {
        const order: PortalOrder = {
          action: item.kind === "order-create" ? "CREATE" : "CLEANUP",
          backend: reg.backend,
          workshop: reg.workshop,
          seat: reg.seat,
          customer: String(reg.id),
          email: this.o.orderFormat === "original" ? reg.email ?? undefined : undefined,
          key: `reg${reg.id}-${item.kind}-${item.id}`,
        };
        // The one order check, before the order leaves (a refusal is final: not retried).
        validateOrder(this.o.cfg, orderOf(this.o.env, order, now()));
        await this.o.orders.send(order);
      } else if (item.kind === "welcome") {
        if (!reg.email) {
          await this.o.store.finish(item.id, true, "no email (personal data deleted)", now());
          return;
        }
        await this.o.mailer.send(reg.email, await this.welcome(reg));
      }
      await this.o.store.finish(item.id, true, null, now());
      this.log("sent", { kind: item.kind, registration: item.registrationId });
    } catch (err) {
      const msg = (err as Error).message.split("\n")[0].slice(0, 500);
      const retry = item.attempts < 5 && !(err instanceof OrderInvalidError);
      await this.o.store.finish(item.id, false, msg, now(), retry);
      this.log("delivery-failed", {
        kind: item.kind,
        registration: item.registrationId,
        retry,
        message: msg,
      });
    }
  }

  /** The status link is sent once, in the welcome email; only its hash is stored. */
  private statusTokens = new Map<number, string>();

  private async welcome(reg: Registration): Promise<Rendered> {
    const ws = this.o.cfg.workshops.get(reg.workshop)?.value;
    let token = this.statusTokens.get(reg.id);
    this.statusTokens.delete(reg.id);
    if (!token) {
      // Registered by another process, or before a restart: a new link replaces the unsent one.
      token = randomToken(32);
      await this.o.store.setTokenHash(reg.id, sha256(token));
    }
    return await renderTemplate("welcome", {
      FIRST_NAME: reg.firstName ?? "",
      WORKSHOP: reg.workshop,
      WORKSHOP_TITLE: ws?.title ?? reg.workshop,
      DURATION: ws?.duration ?? 2,
      STATUS_URL: `${this.o.publicUrl.replace(/\/$/, "")}/status/${token}`,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  // ---------- catalog ----------

  ranges(workshop: string): SeatRange[] {
    const out: SeatRange[] = [];
    for (const b of this.env.backends) {
      const r = b.ranges?.[workshop];
      if (r) out.push({ backend: b.name, first: r[0], last: r[1] });
    }
    return out;
  }

  private capacity(workshop: string): number {
    return this.o.cfg.workshops.get(workshop)?.value.capacity ?? Number.MAX_SAFE_INTEGER;
  }

  private catalogCache?: { at: number; items: CatalogItem[] };

  /** The catalog, computed at most once a second (the seat counts may lag by that much). */
  async catalog(): Promise<CatalogItem[]> {
    const now = Date.now();
    if (this.catalogCache && now - this.catalogCache.at < CATALOG_TTL_MS) return this.catalogCache.items;
    const items = await this.computeCatalog();
    this.catalogCache = { at: now, items };
    return items;
  }

  /** Drops the cached catalog (after a seat came back). */
  private staleCatalog(): void {
    this.catalogCache = undefined;
  }

  private async computeCatalog(): Promise<CatalogItem[]> {
    const held = new Set([...this.recordedHeld(), ...await this.o.store.heldSeats()]);
    const out: CatalogItem[] = [];
    for (const w of [...this.o.cfg.workshops.values()].sort((a, b) => a.id < b.id ? -1 : 1)) {
      const ranges = this.ranges(w.id);
      if (!(w.value.active ?? true) || ranges.length === 0) continue;
      out.push({
        id: w.id,
        title: w.value.title,
        description: w.value.description,
        duration: w.value.duration,
        category: w.value.category ?? [],
        free: freeSeats(ranges, held, this.capacity(w.id)),
      });
    }
    return out;
  }

  /** The catalog entry of an open workshop without its seat count (the registration path). */
  private item(id: string): CatalogItem | undefined {
    const w = this.o.cfg.workshops.get(id);
    if (!w || !(w.value.active ?? true) || this.ranges(id).length === 0) return undefined;
    return {
      id,
      title: w.value.title,
      description: w.value.description,
      duration: w.value.duration,
      category: w.value.category ?? [],
      free: -1,
    };
  }

  // ---------- HTTP ----------

  handler = async (req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> => {
    try {
      return securityHeaders(await this.route(req, info));
    } catch (err) {
      this.log("error", { path: new URL(req.url).pathname, message: (err as Error).message.split("\n")[0] });
      return securityHeaders(
        html(
          messagePage(
            "Something went wrong",
            "The portal could not answer this request. Try again in a minute.",
          ),
          500,
        ),
      );
    }
  };

  private address(req: Request, info?: Deno.ServeHandlerInfo): string {
    if (this.o.trustProxy) {
      const f = req.headers.get("x-forwarded-for")?.split(",").pop()?.trim();
      if (f) return f;
    }
    const a = info?.remoteAddr as Deno.NetAddr | undefined;
    return a?.hostname ?? "unknown";
  }

  /** The CSRF cookie of this browser (a new one is set when missing). */
  private csrf(req: Request): { cookie: string; token: string; setCookie?: string } {
    const existing = parseCookies(req.headers.get("cookie")).get(CSRF_COOKIE);
    const cookie = existing && /^[A-Za-z0-9_-]{20,64}$/.test(existing) ? existing : randomToken(24);
    const setCookie = cookie === existing
      ? undefined
      : `${CSRF_COOKIE}=${cookie}; Path=/; HttpOnly; SameSite=Strict${
        this.o.secureCookies === false ? "" : "; Secure"
      }`;
    return { cookie, token: csrfToken(this.o.secret, cookie), setCookie };
  }

  private withCookie(res: Response, setCookie?: string): Response {
    if (setCookie) res.headers.append("set-cookie", setCookie);
    return res;
  }

  private async route(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const url = new URL(req.url);
    const p = url.pathname;
    const m = req.method;
    if (m === "GET" && p === "/static/portal.css") {
      return new Response(CSS, {
        headers: { "content-type": "text/css", "cache-control": "public, max-age=3600" },
      });
    }
    if (m === "GET" && p === "/static/status.js") {
      return new Response(STATUS_JS, {
        headers: { "content-type": "text/javascript", "cache-control": "public, max-age=3600" },
      });
    }
    if (m === "GET" && p === "/health") return json({ ok: true, store: this.o.store.kind });
    if (m === "GET" && p === "/") return html(catalogPage(await this.catalog(), this.brand));
    if (m === "GET" && p === "/catalog.json") return json({ workshops: await this.catalog() });
    let mm = /^\/workshops\/([A-Za-z][A-Za-z0-9_-]{1,63})$/.exec(p);
    if (m === "GET" && mm) {
      const item = (await this.catalog()).find((w) => w.id === mm![1]);
      if (!item) {
        return html(messagePage("No such workshop", "This workshop does not exist or is closed."), 404);
      }
      const c = this.csrf(req);
      return this.withCookie(
        html(workshopPage(item, { csrf: c.token, termsUrl: this.o.termsUrl, brand: this.brand })),
        c.setCookie,
      );
    }
    if (m === "POST" && p === "/register") return await this.register(req, info);
    mm = /^\/status\/([A-Za-z0-9_-]{20,64})(\/live|\/delete)?$/.exec(p);
    if (mm) return await this.status(req, mm[1], mm[2] ?? "");
    // The original api-db's callback API (docs/interop.md).
    if (m === "POST" && p === "/login") return await this.apiLogin(req);
    mm = /^\/(student|customer)\/([A-Za-z0-9_-]{1,64})$/.exec(p);
    if (m === "PUT" && mm) return await this.apiPut(req, mm[1] as "student" | "customer", mm[2]);
    if (p === "/admin" || p.startsWith("/admin/")) return await this.adminRoute(req, p, info);
    return html(messagePage("Not found", "There is no page at this address."), 404);
  }

  private async form(req: Request): Promise<URLSearchParams | undefined> {
    const type = req.headers.get("content-type") ?? "";
    if (!type.startsWith("application/x-www-form-urlencoded")) return undefined;
    const buf = await req.arrayBuffer();
    if (buf.byteLength > MAX_FORM_BYTES) return undefined;
    return new URLSearchParams(new TextDecoder().decode(buf));
  }

  /** The form's CSRF token matches the cookie's (double submit, HMAC-signed). */
  private formCsrfOk(req: Request, f: URLSearchParams): boolean {
    return csrfOk(
      this.o.secret,
      parseCookies(req.headers.get("cookie")).get(CSRF_COOKIE),
      f.get("csrf") ?? undefined,
    );
  }

  // ---------- registration ----------

  private async register(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const c = this.csrf(req);
    const f = await this.form(req);
    if (!f) {
      return html(
        messagePage("Form not accepted", "Send the registration form from the workshop page."),
        400,
      );
    }
    const workshop = f.get("workshop") ?? "";
    const item = this.item(workshop);
    if (!item) {
      return html(messagePage("No such workshop", "This workshop does not exist or is closed."), 404);
    }
    const values: FormValues = {
      email: (f.get("email") ?? "").trim(),
      first_name: (f.get("first_name") ?? "").trim(),
      last_name: (f.get("last_name") ?? "").trim(),
      company: (f.get("company") ?? "").trim(),
      consent: f.get("consent") === "yes",
    };
    const page = async (status: number, errors: FormErrors, headers: Record<string, string> = {}) =>
      this.withCookie(
        html(
          workshopPage((await this.catalog()).find((w) => w.id === workshop) ?? { ...item, free: 0 }, {
            csrf: c.token,
            values,
            errors,
            termsUrl: this.o.termsUrl,
            brand: this.brand,
          }),
          status,
          headers,
        ),
        c.setCookie,
      );
    if (
      !this.formCsrfOk(req, f)
    ) {
      this.log("refused", { reason: "csrf", workshop });
      return await page(403, {
        form:
          "This form has expired or did not come from this site (security token missing or wrong). Check your entries and send it again.",
      });
    }
    const addr = this.address(req, info);
    if (!this.byAddress.hit(`a:${addr}`)) {
      this.log("refused", { reason: "rate-address", workshop });
      return await page(429, {
        form: `Too many registrations from your network: try again in ${
          Math.ceil(this.byAddress.retryAfter(`a:${addr}`) / 60)
        } minutes.`,
      }, { "retry-after": String(this.byAddress.retryAfter(`a:${addr}`)) });
    }
    if ((f.get("website") ?? "") !== "") {
      this.log("refused", { reason: "honeypot", workshop });
      return await page(400, {
        form:
          "The registration was refused as automated. If you are a person, reload the page and try again.",
      });
    }
    const errors = formErrors(values);
    if (Object.keys(errors).length) {
      this.log("refused", { reason: "invalid", fields: Object.keys(errors), workshop });
      return await page(400, errors);
    }
    if (!this.byEmail.hit(`e:${values.email!.toLowerCase()}`)) {
      this.log("refused", { reason: "rate-email", workshop });
      return await page(429, { form: "Too many registrations for this email address: try again later." });
    }
    const token = randomToken(32);
    const now = this.now().toISOString();
    const r = await this.o.store.register({
      workshop,
      email: values.email!,
      firstName: values.first_name!,
      lastName: values.last_name!,
      company: values.company!,
      ranges: this.ranges(workshop),
      capacity: this.capacity(workshop),
      recordedHeld: this.recordedHeld(),
      tokenHash: sha256(token),
      now,
      outbox: ["order-create", "welcome"],
    });
    if (!r.ok) {
      this.log("refused", { reason: r.reason, workshop });
      if (r.reason === "duplicate") {
        return await page(409, {
          email:
            "This email address is already registered for this workshop: use the status link in your welcome email.",
        });
      }
      return await page(409, {
        form: "This workshop is full right now: every seat is taken. Try again later.",
      });
    }
    this.statusTokens.set(r.registration.id, token);
    this.log("registered", {
      registration: r.registration.id,
      workshop,
      backend: r.registration.backend,
      seat: r.registration.seat,
    });
    this.kick();
    return this.withCookie(
      new Response(null, { status: 303, headers: { location: `/status/${token}?new=1` } }),
      c.setCookie,
    );
  }

  // ---------- status page ----------

  private async view(reg: Registration): Promise<StatusView> {
    const ws = this.o.cfg.workshops.get(reg.workshop)?.value;
    const seat = this.recorded.get(`${reg.backend}/${reg.seat}`);
    const held = seat && seat.customer === String(reg.id) && seat.status !== "free" ? seat : undefined;
    let kind: StatusView["kind"] = reg.status;
    if (reg.status === "ready" && (reg.remindedAt || held?.reminded)) kind = "reminded";
    if (reg.personalDeletedAt && reg.status === "ended") kind = "deleted";
    const b = this.env.backends.find((x) => x.name === reg.backend);
    const hub = b ? (await this.o.hubUrl(b)).replace(/\/+$/, "") : "";
    const entry = ws?.entry ?? "0-ReadMeFirst.ipynb";
    return {
      kind,
      workshop: reg.workshop,
      workshopTitle: ws?.title ?? reg.workshop,
      username: `student${reg.seat}`,
      hubLink: hub ? `${hub}/user/student${reg.seat}/lab/tree/${reg.workshop}/${entry}` : undefined,
      expires: held?.expires?.slice(0, 16).replace("T", " "),
      completion: reg.completion,
    };
  }

  private async status(req: Request, token: string, sub: string): Promise<Response> {
    const reg = await this.o.store.byToken(sha256(token));
    if (!reg) return html(messagePage("Unknown link", "This status link is not valid."), 404);
    if (req.method === "GET" && sub === "/live") {
      return html(statusBlock(await this.view(reg)));
    }
    if (req.method === "GET" && sub === "") {
      const c = this.csrf(req);
      const fresh = new URL(req.url).searchParams.get("new") === "1";
      return this.withCookie(
        html(
          statusPage(await this.view(reg), {
            partialUrl: `/status/${token}/live`,
            deleteAction: `/status/${token}/delete`,
            csrf: c.token,
            brand: this.brand,
            message: fresh
              ? "You are registered. We sent you a welcome email with the link to this page."
              : undefined,
          }),
        ),
        c.setCookie,
      );
    }
    if (req.method === "POST" && sub === "/delete") {
      const f = await this.form(req);
      if (
        !f ||
        !this.formCsrfOk(req, f)
      ) {
        return html(
          messagePage("Not accepted", "This form has expired: reload the status page and try again."),
          403,
        );
      }
      await this.endRegistration(reg, "participant");
      await this.o.store.deletePersonal(reg.id, this.now().toISOString());
      return new Response(null, { status: 303, headers: { location: `/status/${token}` } });
    }
    return html(messagePage("Not found", "There is no page at this address."), 404);
  }

  /** Ends an active registration: a CLEANUP order; the seat is freed when apply reports it cleaned. */
  async endRegistration(reg: Registration, by: string): Promise<boolean> {
    if (!reg.active || reg.status === "ending") return false;
    const now = this.now().toISOString();
    if (!(await this.o.store.setStatus(reg.id, "ending", now, { from: ["preparing", "ready"] }))) {
      return false;
    }
    await this.o.store.enqueue(reg.id, "order-cleanup", now);
    this.log("ending", { registration: reg.id, by });
    this.kick();
    return true;
  }

  // ---------- the callback API ----------

  private async apiLogin(req: Request): Promise<Response> {
    if (!this.o.api) return json({ message: "The callback API is not configured on this portal" }, 503);
    let body: { username?: unknown; password?: unknown };
    try {
      body = await req.json();
    } catch {
      return json({ message: "Expected JSON {username, password}" }, 400);
    }
    const ok = typeof body.username === "string" && typeof body.password === "string" &&
      safeEqual(body.username, this.o.api.username) && safeEqual(body.password, this.o.api.password);
    if (!ok) {
      this.log("api-login-refused", {});
      return json({ message: "Invalid user name or password" }, 401);
    }
    return json({ accessToken: signJwt(this.o.secret, body.username as string) });
  }

  /** dbStudentId -> backend and seat (dbStudentId = seat + the backend's base_stdid). */
  private seatOf(dbStudentId: number): { backend: string; seat: number } | undefined {
    for (const b of this.env.backends) {
      const seat = dbStudentId - (b.base_stdid ?? 0);
      if (seat >= b.students[0] && seat <= b.students[1]) return { backend: b.name, seat };
    }
    return undefined;
  }

  private async apiPut(req: Request, kind: "student" | "customer", id: string): Promise<Response> {
    if (!this.o.api) return json({ message: "The callback API is not configured on this portal" }, 503);
    const token = req.headers.get("x-access-token") ?? "";
    if (!verifyJwt(this.o.secret, token)) {
      return json({ message: "Missing, invalid or expired x-access-token" }, 401);
    }
    let body: Record<string, unknown>;
    try {
      body = await req.json();
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error();
    } catch {
      return json({ message: "Expected a JSON object" }, 400);
    }
    const now = this.now().toISOString();
    if (kind === "student") {
      if (!/^\d{1,9}$/.test(id)) return json({ message: `Invalid student id "${id}"` }, 400);
      const where = this.seatOf(Number(id));
      if (!where) return json({ message: `Student ${id} is on no backend of ${this.env.name}` }, 404);
      const reg = await this.o.store.activeBySeat(where.backend, where.seat);
      // CLEANUP reports the seat's new password with assigned "false": nothing to send.
      if (body.assigned === "false" || body.assigned === false) return json({ ok: true });
      if (typeof body.password !== "string" || body.password === "") {
        return json({ message: "Expected {password}" }, 400);
      }
      if (!reg) return json({ message: `No active registration holds ${where.backend}/${where.seat}` }, 404);
      if (!reg.email) return json({ ok: true, note: "personal data deleted: no email sent" });
      try {
        await this.o.mailer.send(reg.email, await this.credentials(reg, body.password));
      } catch (err) {
        // The password is not kept: the delivery failure is recorded, and apply is told (it retries).
        const msg = (err as Error).message.split("\n")[0].slice(0, 500);
        const oid = await this.o.store.enqueue(reg.id, "credentials", now);
        await this.o.store.claim(oid, now);
        await this.o.store.finish(oid, false, msg, now);
        this.log("delivery-failed", { kind: "credentials", registration: reg.id, message: msg });
        return json({ message: "The credentials email could not be sent" }, 502);
      }
      const oid = await this.o.store.enqueue(reg.id, "credentials", now);
      await this.o.store.claim(oid, now);
      await this.o.store.finish(oid, true, null, now);
      await this.o.store.setStatus(reg.id, "ready", now, { from: ["preparing"] });
      this.log("credentials-sent", { registration: reg.id });
      return json({ ok: true });
    }
    if (!/^\d{1,12}$/.test(id)) return json({ ok: true, note: "not a portal customer" });
    const reg = await this.o.store.byId(Number(id));
    if (!reg) return json({ message: `No registration ${id}` }, 404);
    if (typeof body.completionPercentage === "number" || typeof body.completionPercentage === "string") {
      const c = Number(body.completionPercentage);
      if (Number.isFinite(c) && c >= 0 && c <= 100) await this.o.store.setCompletion(reg.id, c, now);
    }
    if (body.active === "true" || body.active === true) {
      await this.o.store.setStatus(reg.id, "ready", now, { from: ["preparing"] });
    }
    if (
      body.active === "false" || body.active === false || body.cleaned === "true" || body.cleaned === true
    ) {
      // CLEANUP reported: the seat is free again for the portal (recorded state frees it on apply).
      if (await this.o.store.setStatus(reg.id, "ended", now, { from: ["preparing", "ready", "ending"] })) {
        this.log("ended", { registration: reg.id });
        this.staleCatalog();
        this.track(this.refreshRecorded());
      }
    }
    return json({ ok: true });
  }

  private async credentials(reg: Registration, password: string): Promise<Rendered> {
    const ws = this.o.cfg.workshops.get(reg.workshop)?.value;
    const b = this.env.backends.find((x) => x.name === reg.backend)!;
    return await renderTemplate("credentials", {
      WORKSHOP: reg.workshop,
      WORKSHOP_TITLE: ws?.title ?? reg.workshop,
      HUB_URL: await this.o.hubUrl(b),
      USERNAME: `student${reg.seat}`,
      PASSWORD: password,
      ENTRY: `${reg.workshop}/${ws?.entry ?? "0-ReadMeFirst.ipynb"}`,
      EXPIRES: new Date(this.now().getTime() + (ws?.duration ?? 2) * 3_600_000).toISOString().slice(0, 16)
        .replace("T", " "),
    });
  }

  // ---------- admin ----------

  private async adminUser(req: Request): Promise<string | undefined> {
    const sid = parseCookies(req.headers.get("cookie")).get(SESSION_COOKIE);
    if (!sid) return undefined;
    return await this.o.store.session(sha256(sid), this.now().toISOString());
  }

  private async adminRoute(req: Request, p: string, info?: Deno.ServeHandlerInfo): Promise<Response> {
    if (!this.o.admin) {
      return html(
        messagePage("Administration closed", "No admin password is configured for this portal."),
        503,
      );
    }
    const c = this.csrf(req);
    if (p === "/admin/login" && req.method === "GET") {
      return this.withCookie(html(loginPage({ csrf: c.token, brand: this.brand })), c.setCookie);
    }
    if (p === "/admin/login" && req.method === "POST") {
      const f = await this.form(req);
      if (
        !f ||
        !this.formCsrfOk(req, f)
      ) {
        return this.withCookie(
          html(
            loginPage({ csrf: c.token, error: "The form expired: log in again.", brand: this.brand }),
            403,
          ),
          c.setCookie,
        );
      }
      const user = f.get("username") ?? "";
      // Every attempt counts, before the (slow) password check.
      if (!this.logins.hit(this.address(req, info))) {
        this.log("admin-login-refused", { reason: "rate" });
        return this.withCookie(
          html(
            loginPage({
              csrf: c.token,
              error: "Too many login attempts: wait 15 minutes.",
              brand: this.brand,
            }),
            429,
          ),
          c.setCookie,
        );
      }
      const ok = safeEqual(user, this.o.admin.username) &&
        await verifyPassword(f.get("password") ?? "", this.o.admin.passwordHash);
      if (!ok) {
        this.log("admin-login-refused", {});
        return this.withCookie(
          html(loginPage({ csrf: c.token, error: "Wrong user name or password.", brand: this.brand }), 401),
          c.setCookie,
        );
      }
      const sid = randomToken(32);
      await this.o.store.createSession(
        sha256(sid),
        user,
        new Date(this.now().getTime() + SESSION_HOURS * 3_600_000).toISOString(),
      );
      return new Response(null, {
        status: 303,
        headers: {
          location: "/admin",
          "set-cookie": `${SESSION_COOKIE}=${sid}; Path=/admin; HttpOnly; Secure; SameSite=Strict; Max-Age=${
            SESSION_HOURS * 3600
          }`,
        },
      });
    }
    const user = await this.adminUser(req);
    if (!user) return new Response(null, { status: 303, headers: { location: "/admin/login" } });
    if (p === "/admin" && req.method === "GET") {
      return this.withCookie(html(await this.adminPage(c.token)), c.setCookie);
    }
    if (p === "/admin/registrations.csv" && req.method === "GET") {
      return new Response(await this.csv(), {
        headers: {
          "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="registrations-${this.env.name}.csv"`,
        },
      });
    }
    const mm = /^\/admin\/(end|retry)\/(\d{1,12})$/.exec(p);
    if (req.method === "POST" && (mm || p === "/admin/logout")) {
      const f = await this.form(req);
      if (
        !f ||
        !this.formCsrfOk(req, f)
      ) {
        return html(messagePage("Not accepted", "The form expired: reload the admin page."), 403);
      }
      if (p === "/admin/logout") {
        const sid = parseCookies(req.headers.get("cookie")).get(SESSION_COOKIE)!;
        await this.o.store.deleteSession(sha256(sid), this.now().toISOString());
        return new Response(null, {
          status: 303,
          headers: {
            location: "/",
            "set-cookie": `${SESSION_COOKIE}=; Path=/admin; HttpOnly; Secure; SameSite=Strict; Max-Age=0`,
          },
        });
      }
      if (mm![1] === "end") {
        const reg = await this.o.store.byId(Number(mm![2]));
        if (reg) await this.endRegistration(reg, `admin:${user}`);
      } else {
        await this.o.store.retryFailed(Number(mm![2]), this.now().toISOString());
        this.kick();
      }
      return new Response(null, { status: 303, headers: { location: "/admin" } });
    }
    return html(messagePage("Not found", "There is no page at this address."), 404);
  }

  private async adminPage(csrf: string): Promise<string> {
    const regs = await this.o.store.list();
    const active = regs.filter((r) => r.active);
    const byBackend = new Map<string, number>();
    for (const r of active) byBackend.set(r.backend, (byBackend.get(r.backend) ?? 0) + 1);
    const seatsRows = this.env.backends.map((b) => {
      const size = Object.values(b.ranges ?? {}).reduce((n, [f, l]) => n + l - f + 1, 0);
      const rec = [...this.recorded.values()].filter((s) =>
        s.backend === b.name && s.status !== "free"
      ).length;
      return [b.name, size, byBackend.get(b.name) ?? 0, rec];
    });
    const done = regs.filter((r) => r.completion !== null);
    const avg = done.length
      ? Math.round(done.reduce((n, r) => n + (r.completion ?? 0), 0) / done.length)
      : null;
    const failed = await this.o.store.outbox({ status: ["failed"] });
    const endForm = (r: Registration) =>
      r.active && r.status !== "ending"
        ? `<form method="post" action="/admin/end/${r.id}"><input type="hidden" name="csrf" value="${
          esc(csrf)
        }"><button type="submit" class="danger" aria-label="End registration ${r.id}">End</button></form>`
        : "";
    const retryForm = (o: OutboxItem) =>
      o.kind === "credentials"
        ? ""
        : `<form method="post" action="/admin/retry/${o.id}"><input type="hidden" name="csrf" value="${
          esc(csrf)
        }"><button type="submit" aria-label="Retry delivery ${o.id}">Retry</button></form>`;
    return layout(
      "Administration",
      `<h1>Administration: ${esc(this.env.name)}</h1>
<p><a href="/admin/registrations.csv">Download all registrations (CSV)</a></p>
<form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="${
        esc(csrf)
      }"><button type="submit">Log out</button></form>
<h2>Seats by backend</h2>
${table(["backend", "seats in ranges", "held by registrations", "held in recorded state"], seatsRows)}
<h2>Completion</h2>
<p>${done.length} finished registration(s) reported a completion${
        avg === null ? "" : `; average ${avg} %`
      }.</p>
<h2>Failed deliveries (${failed.length})</h2>
${
        failed.length
          ? table(
            ["id", "registration", "kind", "attempts", "error", ""],
            failed.map((o) => [o.id, o.registrationId, o.kind, o.attempts, o.lastError, retryForm(o)]),
            new Set([5]),
          )
          : "<p>None.</p>"
      }
<h2>Registrations (${regs.length}, ${active.length} active)</h2>
${
        table(
          ["id", "workshop", "seat", "status", "email", "name", "created", "completion", ""],
          regs.slice(-500).reverse().map((r) => [
            r.id,
            r.workshop,
            `${r.backend}/${r.seat}`,
            r.status,
            r.email,
            [r.firstName, r.lastName].filter(Boolean).join(" "),
            r.created.slice(0, 16).replace("T", " "),
            r.completion,
            endForm(r),
          ]),
          new Set([8]),
        )
      }`,
      { brand: this.brand },
    );
  }

  private async csv(): Promise<string> {
    // Spreadsheet-safe: quote every field, neutralise formulas (=, +, -, @ at the start).
    const cell = (v: unknown) => {
      let s = v === null || v === undefined ? "" : String(v);
      if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
      return `"${s.replace(/"/g, '""')}"`;
    };
    const head = [
      "id",
      "workshop",
      "backend",
      "seat",
      "status",
      "email",
      "first_name",
      "last_name",
      "company",
      "created",
      "ready_at",
      "ended_at",
      "completion",
    ];
    const rows = (await this.o.store.list()).map((r) =>
      [
        r.id,
        r.workshop,
        r.backend,
        r.seat,
        r.status,
        r.email,
        r.firstName,
        r.lastName,
        r.company,
        r.created,
        r.readyAt,
        r.endedAt,
        r.completion,
      ].map(cell).join(",")
    );
    return [head.join(","), ...rows].join("\r\n") + "\r\n";
  }
}
