// Acceptance of `wod reconcile` in the production shape on this machine: the listener and the
// reconciler run as processes (`wod listen`, `wod reconcile`; no demo loop, no manual apply), the
// state remote is a local bare git repository, the backend is the real sandbox (ansible over SSH,
// JupyterHub with PAM), orders arrive as the original front end's raw bytes, credentials are caught
// by an SMTP sink and front-end callbacks by the front-end API test server. Seats 80-101 of the
// shared sandbox (docs/testbed.md).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { type StateFixture, stateFixture } from "../testing/state_fixture.ts";
import { type FrontendServer, startFrontendServer } from "../testing/frontend_server.ts";
import { type SmtpSink, startSmtpSink } from "../testing/smtp_sink.ts";
import { newIdentity } from "../state/seal.ts";
import { openStore } from "../state/store.ts";
import { sendOriginalOrder } from "../orders/send.ts";
import { freePort, type ProcRecord, sleep, spawnDetached, stopProcess } from "../demo/procs.ts";
import { HubSession } from "../backend/hub.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const WOD = join(REPO, "scripts", "wod.ts");
const haveBackend = await Deno.stat(new URL("../backend/sandbox.ts", import.meta.url)).then(
  () => true,
  () => false,
);

interface Setup {
  fx: StateFixture;
  fe: FrontendServer;
  sink: SmtpSink;
  env: Record<string, string>;
  work: string;
  procs: ProcRecord[];
  listenPort: number;
  hubUrl: string;
  cleanup(): Promise<void>;
}

async function setup(range: [number, number], wake?: string): Promise<Setup> {
  const { ensureSandbox } = await import("../backend/sandbox.ts");
  const sandbox = await ensureSandbox();
  const fe = await startFrontendServer();
  const work = await Deno.makeTempDir({ prefix: "wod-reconcile-e2e-" });
  const sink = await startSmtpSink(join(work, "mail"));
  const { identity, recipient } = await newIdentity();
  const listenPort = freePort(true);
  const fx = await stateFixture({
    range,
    extra: {
      frontend: { api_url: fe.url, username_env: "WOD_E2E_FE_USER", password_env: "WOD_E2E_FE_PASS" },
      mail: { from: "wod@localhost", smtp_host: "127.0.0.1", smtp_port: sink.port, send_credentials: true },
      seal: { recipients: [recipient] },
      orders: {
        listen: `127.0.0.1:${listenPort}`,
        senders: ["wodadmin@localhost"],
        networks: ["127.0.0.1/32"],
        recipient: "wodadmin",
        ...(wake ? { reconciler_wake: wake } : {}),
      },
    },
  });
  const env = { WOD_E2E_FE_USER: fe.username, WOD_E2E_FE_PASS: fe.password, WOD_AGE_IDENTITY: identity };
  const s: Setup = {
    fx,
    fe,
    sink,
    env,
    work,
    procs: [],
    listenPort,
    hubUrl: sandbox.hub_url,
    async cleanup() {
      for (const p of s.procs) await stopProcess(p, 30_000).catch(() => {});
      await sink.close();
      await fe.close();
      await fx.cleanup();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    },
  };
  return s;
}

function startWod(s: Setup, name: string, args: string[]): ProcRecord {
  const p = spawnDetached(name, [Deno.execPath(), "run", "-A", WOD, ...args], {
    log: join(s.work, `${name}.log`),
    cwd: REPO,
    env: { WOD_ROOT: s.fx.root, NO_COLOR: "1", ...s.env },
  });
  s.procs.push(p);
  return p;
}

async function waitFor<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

async function jsonLines(file: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

function sendCreate(s: Setup, seat: number, customer: string, email: string) {
  return sendOriginalOrder(s.listenPort, {
    helo: "api-db.localhost",
    from: "wodadmin@localhost",
    to: "wodadmin@localhost",
    subject: `CREATE ${seat} ${customer} ${email}`,
    body: "WKSHP-Shell101",
  });
}

/** The hub's login form (HubSession: with its XSRF token): true when the password is accepted. */
async function hubLogin(hubUrl: string, username: string, password: string): Promise<boolean> {
  return await new HubSession(hubUrl, username).login(password);
}

/** The password in a credentials email (the line after "Password" in our template). */
function passwordIn(text: string): string | undefined {
  return /password:?\s*(\S+)/i.exec(text)?.[1];
}

async function seats(s: Setup) {
  const store = await openStore(s.fx.root, s.fx.env);
  try {
    return await store.readSeats();
  } finally {
    await store.close();
  }
}

function startReconciler(s: Setup, name: string, healthPort: number, ...flags: string[]): ProcRecord {
  return startWod(s, name, [
    "reconcile",
    "--env",
    s.fx.env,
    "--health",
    `127.0.0.1:${healthPort}`,
    "--fetch-interval",
    "1",
    ...flags,
  ]);
}

async function healthOf(port: number): Promise<{ lease?: { held?: boolean }; pendingDeliveries?: number }> {
  const r = await fetch(`http://127.0.0.1:${port}/health`);
  return await r.json();
}

/** kill -9 of the service and everything it started (systemd's KillMode=control-group does the same). */
function killHard(p: ProcRecord): void {
  Deno.kill(-p.pid, "SIGKILL");
}

/** The credentials emails of a participant, oldest first, with their passwords. */
async function credentials(s: Setup, email: string): Promise<string[]> {
  const all = (await s.sink.messages()).filter((m) => m.to.includes(email) && /Password:/.test(m.text));
  all.sort((a, b) => a.file.localeCompare(b.file, undefined, { numeric: true }));
  return all.map((m) => passwordIn(m.text)!).filter(Boolean);
}

Deno.test({
  name:
    "reconcile service: with listener and reconciler running, a raw CREATE yields the credentials email and the callback, expiry happens by itself, and a RESET by mail is applied and reported",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const SEAT = 100;
    const healthPort = freePort();
    const s = await setup([100, 101], `http://127.0.0.1:${healthPort}/wake`);
    try {
      startWod(s, "listener", [
        "listen",
        "--env",
        s.fx.env,
        "--health",
        "none",
        "--spool",
        join(s.work, "spool"),
      ]);
      startReconciler(s, "reconciler", healthPort, "--expire-interval", "3", "--lease-ttl", "15");
      await waitFor(
        "the reconciler to hold the lease",
        60_000,
        async () => (await healthOf(healthPort)).lease?.held || undefined,
      );
      await waitFor("the listener", 60_000, () => sendCreate(s, SEAT, "9100", "p100@example.org"));

      const [password] = await waitFor("the credentials email", 180_000, async () => {
        const p = await credentials(s, "p100@example.org");
        return p.length > 0 ? p : undefined;
      });
      assert(password.length >= 12, "the credentials email carries a password");
      assertEquals(
        s.fe.students.get(String(SEAT))?.password,
        password,
        "the front end got the same password",
      );
      assertEquals(s.fe.customers.get("9100"), { active: "true" });
      assert(await hubLogin(s.hubUrl, `student${SEAT}`, password), "the delivered password logs in");

      // Expiry by itself: the seat's end is moved to a few seconds from now (the shortest workshop
      // lasts 30 min); the reconciler's expiry records CLEANUP and PURGE and applies them, unasked.
      const store = await openStore(s.fx.root, s.fx.env);
      try {
        await store.updateSeats("test: the seat ends in 5 s", (cur) => {
          const x = cur.get(`jup1/${SEAT}`)!;
          return [{ ...x, expires: new Date(Date.now() + 5_000).toISOString() }];
        });
      } finally {
        await store.close();
      }
      await waitFor("the seat to expire and be freed", 240_000, async () => {
        const st = (await seats(s)).find((x) => x.seat === SEAT);
        return st?.status === "free" && !st.pending?.length ? st : undefined;
      });
      assertEquals(s.fe.customers.get("9100")?.active, "false");
      assertEquals(s.fe.students.get(String(SEAT))?.assigned, "false", "the PURGE was reported");
      assert(!(await hubLogin(s.hubUrl, `student${SEAT}`, password)), "the old password still works");

      // A RESET by mail (the original's bytes), applied and reported to the front end.
      const before = s.fe.calls.length;
      const purgePassword = s.fe.students.get(String(SEAT))?.password;
      await sendOriginalOrder(s.listenPort, {
        helo: "api-db.localhost",
        from: "wodadmin@localhost",
        to: "wodadmin@localhost",
        subject: `RESET ${SEAT} 9100`,
        body: "WKSHP-Shell101",
      });
      await waitFor("the RESET reported to the front end", 180_000, () =>
        Promise.resolve(
          s.fe.calls.slice(before).some((c) =>
              c.method === "PUT" && c.path === `/student/${SEAT}` && c.status < 300
            )
            ? true
            : undefined,
        ));
      assert(
        s.fe.students.get(String(SEAT))?.password !== purgePassword,
        "the RESET reported its new password",
      );
      const st = (await seats(s)).find((x) => x.seat === SEAT)!;
      assertEquals([st.status, st.pending?.length ?? 0], ["free", 0]);

      const logs = await jsonLines(join(s.work, "reconciler.log"));
      assert(logs.some((l) => l.event === "wake"), "the listener nudged the reconciler");
      assert(logs.some((l) => l.event === "expiry-order"), "the reconciler ran expiry by itself");
      const text = await Deno.readTextFile(join(s.work, "reconciler.log"));
      assert(!text.includes("p100@example.org"), "a participant address is in the reconciler's log");
      assert(!text.includes(password), "a password is in the reconciler's log");
      for (
        const l of logs.filter((x) =>
          typeof x.message === "string" && (x.message as string).includes(`/${SEAT}`)
        )
      ) {
        assert(l.order || l.orders, `a log line about seat ${SEAT} names no order: ${JSON.stringify(l)}`);
      }
    } finally {
      await s.cleanup();
    }
  },
});

Deno.test({
  name:
    "reconcile service: kill -9 during an apply of 20 seats, start again: every order applied once, one working password per participant (the last delivered), no seat left provisioning",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const first = 80, n = 20;
    const healthPort = freePort();
    const s = await setup([first, first + n - 1], `http://127.0.0.1:${healthPort}/wake`);
    const email = (seat: number) => `p${seat}@example.org`;
    try {
      // The 20 orders are recorded before the reconciler starts, so that one apply takes them all.
      startWod(s, "listener", [
        "listen",
        "--env",
        s.fx.env,
        "--health",
        "none",
        "--spool",
        join(s.work, "spool"),
      ]);
      await waitFor("the listener", 60_000, () => sendCreate(s, first, String(9000 + first), email(first)));
      for (let seat = first + 1; seat < first + n; seat++) {
        await sendCreate(s, seat, String(9000 + seat), email(seat));
      }
      await waitFor("20 recorded orders", 60_000, async () => (await seats(s)).length === n || undefined);

      const r1 = startReconciler(s, "reconciler1", healthPort, "--lease-ttl", "10");
      const log1 = join(s.work, "reconciler1.log");
      await waitFor(
        "the apply of 20 seats to start",
        120_000,
        async () =>
          (await jsonLines(log1)).some((l) =>
            l.event === "apply" && /^jup1: (CREATE \d+(, )?){20}$/.test(String(l.message))
          ) ||
          undefined,
      );
      // Killed while the apply runs: as soon as the first credentials went out (between the
      // deliveries and the commit), or at the latest 60 s into the apply.
      const killAt = Date.now() + 60_000;
      await waitFor(
        "the first credentials email",
        90_000,
        async () => (await s.sink.messages()).length > 0 || Date.now() > killAt || undefined,
      );
      killHard(r1);
      const killed = await seats(s);
      assert(
        killed.some((x) => x.status === "provisioning"),
        "the kill came after the commit: nothing to recover",
      );

      startReconciler(s, "reconciler2", healthPort, "--lease-ttl", "10");
      const done = await waitFor("every seat active", 300_000, async () => {
        const all = await seats(s);
        return all.length === n && all.every((x) => x.status === "active" && !x.pending?.length)
          ? all
          : undefined;
      });
      for (const x of done) {
        assertEquals(x.orders.length, 1, `seat ${x.seat}: orders ${x.orders.join(", ")}`);
      }
      const logs2 = await jsonLines(join(s.work, "reconciler2.log"));
      assert(logs2.some((l) => l.event === "lease-acquired"), "the second reconciler took the lease over");
      // Each participant: the last password delivered logs in, every earlier one is refused.
      for (let seat = first; seat < first + n; seat++) {
        const got = await credentials(s, email(seat));
        assert(got.length >= 1, `participant of seat ${seat} got no credentials`);
        assertEquals(
          s.fe.students.get(String(seat))?.password,
          got.at(-1),
          `seat ${seat}: front end and email agree`,
        );
        assert(
          await hubLogin(s.hubUrl, `student${seat}`, got.at(-1)!),
          `seat ${seat}: the last password is refused`,
        );
        for (const old of got.slice(0, -1)) {
          assert(
            !(await hubLogin(s.hubUrl, `student${seat}`, old)),
            `seat ${seat}: an earlier password still works`,
          );
        }
      }
      // Leave the seats free for the next run.
      const store = await openStore(s.fx.root, s.fx.env);
      try {
        await store.recordOrders(done.map((x) => ({
          id: `cleanup-${x.seat}-${Date.now()}`,
          action: "PURGE" as const,
          env: s.fx.env,
          backend: "jup1",
          workshop: "WKSHP-Shell101",
          seats: [x.seat, x.seat] as [number, number],
          source: "cli" as const,
          received: new Date().toISOString(),
        })));
      } finally {
        await store.close();
      }
      await waitFor(
        "the seats purged",
        300_000,
        async () => (await seats(s)).every((x) => x.status === "free") || undefined,
      );
    } finally {
      await s.cleanup();
    }
  },
});

Deno.test({
  name:
    "reconcile service: two reconcilers on one environment never apply at the same time, and the standby takes over within the lease time when the holder is killed",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const SEAT = 101, ttl = 8;
    const ports = [freePort(), freePort()];
    const s = await setup([101, 101]);
    const store = await openStore(s.fx.root, s.fx.env);
    const orderOf = (id: string, action: "CREATE" | "PURGE") => ({
      id,
      action,
      env: s.fx.env,
      backend: "jup1",
      workshop: "WKSHP-Shell101",
      seats: [SEAT, SEAT] as [number, number],
      source: "cli" as const,
      received: new Date().toISOString(),
      ...(action === "CREATE" ? { customer: "9101" } : {}),
    });
    try {
      const procs = [0, 1].map((i) =>
        startReconciler(s, `rec${i}`, ports[i], "--lease-ttl", String(ttl), "--expire-interval", "2")
      );
      const holder = await waitFor("one holder", 60_000, async () => {
        const h = await Promise.all(ports.map((p) => healthOf(p).catch(() => undefined)));
        const held = h.map((x) => x?.lease?.held === true);
        return held.filter(Boolean).length === 1 && h.every(Boolean) ? held.indexOf(true) : undefined;
      });
      // Work for both: CREATE, PURGE, CREATE, PURGE, one after the other.
      for (const [i, a] of (["CREATE", "PURGE", "CREATE"] as const).entries()) {
        await store.recordOrders([orderOf(`two-${i}-${Date.now()}`, a)]);
        await waitFor(`${a} applied`, 180_000, async () => {
          const x = (await store.readSeats()).find((y) => y.seat === SEAT);
          return x && !x.pending?.length && x.status === (a === "CREATE" ? "active" : "free") || undefined;
        });
      }
      // Kill the holder; the other takes the lease within its time to live (plus a check interval).
      const killedAt = Date.now();
      killHard(procs[holder]);
      const other = 1 - holder;
      await waitFor(
        "the take-over",
        (ttl + 10) * 1000,
        async () => (await healthOf(ports[other])).lease?.held || undefined,
      );
      const tookMs = Date.now() - killedAt;
      assert(tookMs <= (ttl + 3) * 1000, `the take-over took ${tookMs} ms (lease ${ttl} s)`);
      await store.recordOrders([orderOf(`two-last-${Date.now()}`, "PURGE")]);
      await waitFor("the PURGE by the new holder", 180_000, async () => {
        const x = (await store.readSeats()).find((y) => y.seat === SEAT);
        return x && !x.pending?.length && x.status === "free" || undefined;
      });

      // No overlapping passes: each pass from its "pass-started" to its "pass" line.
      const spans: { who: number; from: number; to: number }[] = [];
      for (const who of [0, 1]) {
        let open: number | undefined;
        for (const l of await jsonLines(join(s.work, `rec${who}.log`))) {
          if (l.event === "pass-started") open = Date.parse(String(l.t));
          if (l.event === "pass" && open !== undefined) {
            spans.push({ who, from: open, to: Date.parse(String(l.t)) });
            open = undefined;
          }
        }
        // A pass still open in the log: the killed holder's (it ended with the kill), else running.
        if (open !== undefined) spans.push({ who, from: open, to: who === holder ? killedAt : Infinity });
      }
      assert(spans.some((x) => x.who === 0) && spans.some((x) => x.who === 1), "both reconcilers applied");
      for (const a of spans) {
        for (const b of spans) {
          if (a.who < b.who) {
            assert(a.to <= b.from || b.to <= a.from, `passes overlap: ${JSON.stringify([a, b])}`);
          }
        }
      }
      const applied = (await jsonLines(join(s.work, `rec${other}.log`))).filter((l) =>
        l.event === "order-applied"
      );
      assert(applied.length >= 1, "the new holder applied the last order");
    } finally {
      await store.close();
      await s.cleanup();
    }
  },
});
