// A stand-in for the original front end's server (wod-api-db) that behaves the way it is observed to
// behave, written from those facts (docs/interop.md, issue 17), not from its code. It keeps the same
// tables in memory (locations, workshops, students, customers), serves the REST calls the backend and
// the browser front end make, and runs the same periodic check ("cron", every 20 s in the original;
// here `tick()` is called by the test, or `startCron(ms)`):
//
//   registration (POST /customer {email, name, title}): one open registration per email; the workshop
//     row's capacity must be > 0; the first unassigned student whose id is in range + basestdid of the
//     workshop's location is assigned; capacity is decremented.
//   tick, per customer not yet ended:
//     no mail sent yet       -> welcome mail to the participant, then the CREATE order
//                               `CREATE <stdid> <customerId> <email>` (stdid = studentId - basestdid)
//     welcome for > 10 min   -> CLEANUP order, "deployment issue" mail, ended as error, then RESET
//                               (reset workshops) and PURGE orders, capacity incremented
//     active and welcome     -> credentials mail (the student row's password and the hub login URL);
//                               its own clock starts here: end = now + duration
//     <= 1 hour left         -> "expiring" mail
//     end reached, or unregistered -> CLEANUP order, customer inactive and ended as expired, then the
//                               "expired" mail, RESET (reset workshops) and PURGE, capacity incremented
//
// Orders are the original's raw bytes to `<woduser>@<location>` at the order port; participant mail
// goes through the same SMTP server (no SendGrid key), as an ordinary SMTP client would send it.
// Two defects of the original are reproduced on request, since a drop-in must survive them:
// `promiseSubjects` (RESET/PURGE subjects carry "[object Promise]" instead of the seat) and
// `expiryStopsEarly` (after a normal expiry an exception stops the expired mail, RESET, PURGE and the
// capacity increment). Passwords stay in memory: nothing here prints them.
import nodemailer from "nodemailer";
import { sendOriginalOrder } from "../orders/send.ts";
import { randomBytes } from "node:crypto";
import { signToken, verifyToken } from "./jwt.ts";
import { serveLoopback } from "./serve.ts";

export interface SimLocation {
  name: string;
  basestdid: number;
  proto: "http" | "https";
  port: string;
}

export interface SimWorkshop {
  id: number;
  name: string;
  notebook: string;
  capacity: number;
  range: [number, number];
  reset: boolean;
  location: string;
  duration: number;
  active: boolean;
  [field: string]: unknown;
}

export interface SimStudent {
  id: number;
  username: string;
  password: string;
  assigned: boolean;
  location: string;
  url: string;
}

export type LastEmail = null | "welcome" | "credentials" | "expiring" | "expired" | "error" | "unregister";

export interface SimCustomer {
  id: number;
  name: string;
  email: string;
  sessionName: string;
  notebook: string;
  location: string;
  studentId: number;
  active: boolean;
  lastEmailSent: LastEmail;
  startDate: number;
  endDate: number;
  completionPercentage?: number;
  cleaned?: boolean;
}

export interface SentOrder {
  at: number;
  subject: string;
  body: string;
  /** The first bytes the listener sent back (the original never reads further). */
  reply: string;
}

export interface SentMail {
  at: number;
  kind: "welcome" | "credentials" | "expiring" | "expired" | "error";
  to: string;
  subject: string;
  /** "250 ..." when accepted, else the SMTP error text. */
  reply: string;
  accepted: boolean;
}

export interface ApiDbSimOptions {
  /** The backend's order port (the listener), host 127.0.0.1. */
  orderPort: number;
  /** SMTP port for participant mail (default: the order port, as the original without SendGrid). */
  mailPort?: number;
  /** The admin user orders are addressed to (`<woduser>@<location>`). */
  woduser: string;
  /** MAIL FROM of orders and participant mail. */
  sender: string;
  /** HELO name; "" reproduces an api-db whose host name setting is empty. */
  helo?: string;
  /** Credentials the backend logs in with (POST /login). */
  username?: string;
  password?: string;
  /** The clock (ms); tests move it forward. */
  now?: () => number;
  promiseSubjects?: boolean;
  expiryStopsEarly?: boolean;
}

const HOUR = 3600_000;
const MINUTE = 60_000;

export class ApiDbSim {
  readonly locations: SimLocation[] = [];
  readonly workshops: SimWorkshop[] = [];
  readonly students = new Map<number, SimStudent>();
  readonly customers = new Map<number, SimCustomer>();
  readonly orders: SentOrder[] = [];
  readonly mails: SentMail[] = [];
  /** Every REST call received: method, path, body keys (values may be secrets), status. */
  readonly calls: { method: string; path: string; keys: string[]; status: number }[] = [];
  url = "";
  private nextCustomer = 1;
  private key = randomBytes(32);
  private server?: Deno.HttpServer;
  private cron?: ReturnType<typeof setInterval>;
  private ticking = false;

  constructor(readonly opts: ApiDbSimOptions) {}

  now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }
  get username() {
    return this.opts.username ?? "wod-backend";
  }
  get password() {
    return this.opts.password ?? "apidb-sim-secret";
  }

  /** A location and its students (ids basestdid + first .. basestdid + last), unassigned. */
  addLocation(loc: SimLocation, students: [number, number]): void {
    this.locations.push(loc);
    for (let n = students[0]; n <= students[1]; n++) {
      const id = loc.basestdid + n;
      this.students.set(id, {
        id,
        username: `student${n}`,
        password: "",
        assigned: false,
        location: loc.name,
        url: `${loc.proto}://${loc.name}:${loc.port}/hub/login`,
      });
    }
  }

  addWorkshop(w: {
    name: string;
    notebook: string;
    capacity: number;
    range: [number, number];
    reset: boolean;
    location: string;
    duration: number;
    active?: boolean;
  }): SimWorkshop {
    const row: SimWorkshop = { ...w, active: w.active ?? true, id: this.workshops.length + 1 };
    this.workshops.push(row);
    return row;
  }

  async start(): Promise<this> {
    ({ server: this.server, url: this.url } = await serveLoopback((req) => this.handle(req)));
    return this;
  }

  startCron(ms = 20_000): void {
    this.cron = setInterval(() => void this.tick(), ms);
  }

  async close(): Promise<void> {
    if (this.cron !== undefined) clearInterval(this.cron);
    while (this.ticking) await new Promise((r) => setTimeout(r, 20));
    await this.server?.shutdown();
  }

  // --- registration (what the browser front end calls) -------------------------------------------

  /** POST /customer: 200 {id, studentId} or 202 with the reason it was not registered. */
  register(body: { email: string; name: string; title: string }): { status: number; value: unknown } {
    const open = [...this.customers.values()].find((c) =>
      c.email === body.email && [null, "welcome", "credentials", "expiring"].includes(c.lastEmailSent)
    );
    if (open) return { status: 202, value: { id: open.id, title: open.sessionName } };
    const w = this.workshops.find((x) => x.name === body.title);
    if (!w) return { status: 400, value: { error: "unknown workshop" } };
    if (w.capacity <= 0) return { status: 202, value: "Registration full, capacity exceeded" };
    const loc = this.locations.find((l) => l.name === w.location);
    if (!loc) return { status: 202, value: "No location available for this workshop" };
    const [lo, hi] = [w.range[0] + loc.basestdid, w.range[1] + loc.basestdid];
    const student = [...this.students.values()].find((s) =>
      !s.assigned && s.location === loc.name && s.id >= lo && s.id <= hi
    );
    if (!student) return { status: 202, value: "Registration full, no student account" };
    const now = this.now();
    const c: SimCustomer = {
      id: this.nextCustomer++,
      name: body.name,
      email: body.email,
      sessionName: w.name,
      notebook: w.notebook,
      location: loc.name,
      studentId: student.id,
      active: false,
      lastEmailSent: null,
      startDate: now,
      endDate: now + w.duration * HOUR,
    };
    this.customers.set(c.id, c);
    student.assigned = true;
    w.capacity--;
    return { status: 200, value: { id: c.id, studentId: student.id } };
  }

  /** PUT /customer/unregister/:id: the participant ends the session early. */
  unregister(id: number): void {
    const c = this.customers.get(id);
    if (!c) return;
    c.active = false;
    c.lastEmailSent = "unregister";
    c.endDate = this.now();
  }

  // --- the periodic check -------------------------------------------------------------------------

  private stdid(c: SimCustomer): number {
    const loc = this.locations.find((l) => l.name === c.location)!;
    return c.studentId - loc.basestdid;
  }

  private workshopOf(c: SimCustomer): SimWorkshop {
    return this.workshops.find((w) => w.name === c.sessionName)!;
  }

  /** One pass of the periodic check over every customer. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const c of [...this.customers.values()]) await this.check(c);
    } finally {
      this.ticking = false;
    }
  }

  private async check(c: SimCustomer): Promise<void> {
    if (c.lastEmailSent === "expired" || c.lastEmailSent === "error") return;
    const w = this.workshopOf(c);
    const now = this.now();
    const stdid = this.stdid(c);
    if (c.lastEmailSent === null && stdid > 0) {
      await this.mail(c, "welcome", "Workshops-on-Demand", `Your ${w.name} workshop is being prepared.`);
      c.lastEmailSent = "welcome";
      await this.order(c, `CREATE ${stdid} ${c.id} ${c.email}`, w.notebook);
      return;
    }
    if (c.lastEmailSent === "welcome" && now - c.startDate > 10 * MINUTE) {
      await this.order(c, `CLEANUP ${stdid} ${c.id}`, w.notebook);
      await this.mail(c, "error", `Workshop-on-Demand ${w.name} Deployment Issue.`, "The deployment failed.");
      c.lastEmailSent = "error";
      await this.resetAndPurge(c, w);
      return;
    }
    if (c.active && c.lastEmailSent === "welcome") {
      const s = this.students.get(c.studentId)!;
      await this.mail(
        c,
        "credentials",
        "Workshops-on-Demand credentials",
        `User Name: ${s.username}\nPassword: ${s.password}\nURL: ${s.url}\n`,
      );
      c.lastEmailSent = "credentials";
      c.startDate = now;
      c.endDate = now + w.duration * HOUR;
      return;
    }
    const hoursLeft = Math.ceil((c.endDate - now) / HOUR);
    if (hoursLeft <= 1 && c.lastEmailSent === "credentials") {
      await this.mail(
        c,
        "expiring",
        "Your Workshops-on-Demand session will end in one hour",
        "Save your work.",
      );
      c.lastEmailSent = "expiring";
      return;
    }
    if ((hoursLeft <= 0 && c.lastEmailSent === "expiring") || c.lastEmailSent === "unregister") {
      await this.order(c, `CLEANUP ${stdid} ${c.id}`, w.notebook);
      c.lastEmailSent = "expired";
      c.active = false;
      if (this.opts.expiryStopsEarly) return;
      await this.mail(c, "expired", "Thanks for participating in the Workshops-on-Demand!", "Time's up!");
      await this.resetAndPurge(c, w);
    }
  }

  private async resetAndPurge(c: SimCustomer, w: SimWorkshop): Promise<void> {
    const seat = this.opts.promiseSubjects ? "[object Promise]" : String(this.stdid(c));
    if (w.reset) await this.order(c, `RESET ${seat} ${c.id}`, w.notebook);
    w.capacity++;
    await this.order(c, `PURGE ${seat} ${c.id}`, w.notebook);
  }

  private async order(c: SimCustomer, subject: string, body: string): Promise<void> {
    let reply: string;
    try {
      reply = await sendOriginalOrder(this.opts.orderPort, {
        helo: this.opts.helo ?? "apidb.test",
        from: this.opts.sender,
        to: `${this.opts.woduser}@${c.location}`,
        subject,
        body,
      });
    } catch (err) {
      reply = `(not sent: ${(err as Error).message})`;
    }
    this.orders.push({ at: this.now(), subject, body, reply });
  }

  private async mail(c: SimCustomer, kind: SentMail["kind"], subject: string, text: string): Promise<void> {
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: this.opts.mailPort ?? this.opts.orderPort,
      secure: false,
      ignoreTLS: true,
      name: this.opts.helo || "apidb.test",
      connectionTimeout: 5000,
      greetingTimeout: 5000,
      socketTimeout: 10_000,
    });
    let reply: string;
    let accepted = false;
    try {
      const info = await transport.sendMail({ from: this.opts.sender, to: c.email, subject, text });
      reply = String(info.response);
      accepted = info.accepted.length > 0;
    } catch (err) {
      reply = (err as Error).message;
    } finally {
      transport.close();
    }
    this.mails.push({ at: this.now(), kind, to: c.email, subject, reply, accepted });
  }

  // --- REST API -----------------------------------------------------------------------------------

  private sign(sub: string): string {
    return signToken(this.key, sub, 180);
  }

  private verify(token: string | null): boolean {
    return verifyToken(this.key, token);
  }

  private answer(req: Request, path: string, keys: string[], status: number, value: unknown): Response {
    this.calls.push({ method: req.method, path, keys, status });
    return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
  }

  private async handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname.replace(/^\/api(?=\/)/, "");
    let body: Record<string, unknown> = {};
    if (req.method === "POST" || req.method === "PUT") {
      try {
        body = await req.json();
      } catch {
        return this.answer(req, path, [], 400, { message: "Body must be JSON" });
      }
    }
    const keys = Object.keys(body);
    if (req.method === "POST" && path === "/login") {
      return body.username === this.username && body.password === this.password
        ? this.answer(req, path, keys, 200, { accessToken: this.sign(this.username) })
        : this.answer(req, path, keys, 401, { message: "Invalid credentials" });
    }
    if (req.method === "GET" && path === "/workshops") {
      return this.answer(req, path, keys, 200, this.workshops);
    }
    if (req.method === "POST" && path === "/customer") {
      const r = this.register(body as { email: string; name: string; title: string });
      return this.answer(req, path, keys, r.status, r.value);
    }
    if (!this.verify(req.headers.get("x-access-token"))) {
      return this.answer(req, path, keys, 403, { message: "No valid token provided" });
    }
    let m = /^\/customer\/unregister\/(\d+)$/.exec(path);
    if (req.method === "PUT" && m) {
      this.unregister(Number(m[1]));
      return this.answer(req, path, keys, 200, {});
    }
    m = /^\/workshop\/(\d+)$/.exec(path);
    if (req.method === "PUT" && m) {
      const w = this.workshops.find((x) => x.id === Number(m![1]));
      if (!w) return this.answer(req, path, keys, 400, { error: "Workshop Not Found" });
      if (body.capacity !== undefined) w.capacity = Number(body.capacity);
      return this.answer(req, path, keys, 200, {});
    }
    m = /^\/(student|customer)\/(\d+)$/.exec(path);
    if (req.method === "PUT" && m) {
      const id = Number(m[2]);
      if (m[1] === "student") {
        const s = this.students.get(id);
        if (!s) return this.answer(req, path, keys, 400, { error: "Student Not Found" });
        if (typeof body.password === "string") s.password = body.password;
        if (body.assigned !== undefined) s.assigned = String(body.assigned) === "true";
      } else {
        const c = this.customers.get(id);
        if (!c) return this.answer(req, path, keys, 400, { error: "Customer Not Found" });
        if (body.active !== undefined) c.active = String(body.active) === "true";
        if (body.cleaned !== undefined) c.cleaned = String(body.cleaned) === "true";
        if (body.completionPercentage !== undefined) {
          c.completionPercentage = Number(body.completionPercentage);
        }
      }
      return this.answer(req, path, keys, 200, {});
    }
    return this.answer(req, path, keys, 404, { message: "Not found" });
  }
}
