// Issue 17, the full journey with the original front end: the api-db stand-in (scripts/testing/
// apidb_sim.ts: its registration, its periodic check, its raw order bytes and its participant mail
// through the order port, all modelled from the observations), a real `wod listen` process
// (relay to a real SMTP sink), the real `wod apply` and `wod expire` on the sandbox backend (ansible
// over SSH, JupyterHub), a git state remote. A `reset: true` workshop, seats 40-41:
//
//   P1, P2 register -> welcome mail relayed -> CREATE -> apply -> credentials callback -> the
//   credentials mail relayed (with the password apply reported);
//   P1 ends from the front end's side (unregister: CLEANUP, RESET, PURGE) -> apply;
//   P2 ends by the api-db's normal expiry with the original's ReferenceError (issue 17: CLEANUP only,
//   no expired mail, RESET, PURGE or capacity increment) -> apply: the seat waits for its RESET and the
//   student stays assigned, so P3 gets P1's student and P4 none; the operator's RESET -> apply -> P4
//   gets student 41;
//   P3 and P4 end from our side first (wod expire: CLEANUP + RESET), then the api-db's own expiry
//   (its CLEANUP is "already done" and re-sends the final callback; RESET, PURGE run) -> apply.
//
// At the end every customer row is ended, every student row free with the password of its last
// action, every seat free with nothing pending or owed. A second test greps every log line of the
// listener, apply and expire for the participants' addresses.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { stateFixture, wod } from "../testing/state_fixture.ts";
import { ApiDbSim } from "../testing/apidb_sim.ts";
import { type SmtpSink, startSmtpSink } from "../testing/smtp_sink.ts";
import { type ListenProcess, spawnListen, waitFor } from "../mail/testing.ts";
import { openStore } from "../state/store.ts";

const seatsModule = new URL("../backend/seats.ts", import.meta.url);
const haveBackend = await Deno.stat(seatsModule).then(() => true, () => false);

const PARTICIPANTS = [
  "pat.o'brien@acme-corp.io",
  "lee+ws@example.net",
  "sam.jones@mail.example.org",
  "kim_99@uni.example.edu",
];

/** Every line the journey's processes wrote (listener stdout/stderr, apply and expire output). */
const journeyLogs: string[] = [];
let journeyRan = false;

Deno.test({
  name:
    "api-db journey: register, relayed welcome and credentials mail, CREATE, both ends in either order, a reset workshop's student re-assigned only after its RESET, PURGE: every row consistent",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { ensureSandbox } = await import("../backend/sandbox.ts");
    await ensureSandbox();
    const dir = await Deno.makeTempDir({ prefix: "wod-journey-" });
    const sink: SmtpSink = await startSmtpSink(join(dir, "relay"));
    const clock = { t: Date.UTC(2026, 11, 3, 9, 0, 0) };
    let sim: ApiDbSim | undefined;
    let listener: ListenProcess | undefined;
    const fx = await stateFixture({ range: [40, 41] });
    try {
      // A reset workshop, and an environment whose front end is the api-db stand-in.
      const wsFile = join(fx.root, "workshops", "WKSHP-Shell101", "workshop.yaml");
      await Deno.writeTextFile(
        wsFile,
        (await Deno.readTextFile(wsFile)).replace("reset: false", "reset: true"),
      );
      sim = new ApiDbSim({
        orderPort: 0, // set below, once the listener is up
        woduser: "wodadmin",
        sender: "api@front.test",
        now: () => clock.t,
      });
      await sim.start();
      const envFile = join(fx.root, "environments", "local.yaml");
      await Deno.writeTextFile(
        envFile,
        (await Deno.readTextFile(envFile)) +
          [
            "orders:",
            "  senders: [api@front.test]",
            "  networks: [127.0.0.1/32]",
            "  recipient: wodadmin",
            `  relay: 127.0.0.1:${sink.port}`,
            "frontend:",
            `  api_url: ${sim.url}/api`,
            "  username_env: WOD_J_FE_USER",
            "  password_env: WOD_J_FE_PASS",
            "",
          ].join("\n"),
      );
      listener = await spawnListen(fx.root, ["--health", "none", "--spool", join(dir, "spool")], {
        envName: "local",
      });
      sim.opts.orderPort = listener.port;
      sim.addLocation({ name: "localhost", basestdid: 0, proto: "http", port: "8000" }, [40, 41]);
      const w = sim.addWorkshop({
        name: "Shell basics",
        notebook: "WKSHP-Shell101",
        capacity: 10,
        range: [40, 41],
        reset: true,
        location: "localhost",
        duration: 2,
      });

      const feEnv = { WOD_J_FE_USER: sim.username, WOD_J_FE_PASS: sim.password };
      const cli = async (args: string[]) => {
        const r = await wod(fx.root, args, feEnv);
        journeyLogs.push(...r.stdout.split("\n"), ...r.stderr.split("\n"));
        assertEquals(r.code, 0, `wod ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
        return r;
      };
      const store = await openStore(fx.root, "local");
      const ledger = async () => await store.readOrders();
      /** Waits until the ledger holds `n` orders (the listener's drain has recorded them). */
      const recorded = (n: number) =>
        waitFor(
          async () => ((await ledger()).length >= n ? true : undefined),
          60_000,
          `${n} orders recorded`,
        );
      const register = async (email: string) => {
        const r = await fetch(`${sim!.url}/api/customer`, {
          method: "POST",
          body: JSON.stringify({ email, name: "p", title: "Shell basics" }),
        });
        return { status: r.status, body: await r.json() };
      };
      const seat = async (n: number) => (await store.readSeats()).find((s) => s.seat === n);
      try {
        // --- P1 and P2 register; welcome mail and CREATE; apply; credentials mail ---------------------
        const p1 = await register(PARTICIPANTS[0]);
        const p2 = await register(PARTICIPANTS[1]);
        assertEquals([p1.status, p1.body.studentId, p2.status, p2.body.studentId], [200, 40, 200, 41]);
        await sim.tick();
        await recorded(2);
        for (const p of PARTICIPANTS.slice(0, 2)) {
          await sink.waitFor((m) => m.to.includes(p) && m.subject === "Workshops-on-Demand", 30_000);
        }
        assertEquals(sim.mails.filter((m) => m.kind === "welcome").map((m) => m.accepted), [true, true]);
        await cli(["apply", "--env", "local"]);
        assertEquals([sim.customers.get(1)!.active, sim.customers.get(2)!.active], [true, true]);
        const pw40 = sim.students.get(40)!.password;
        assert(pw40.length >= 12, "apply reported the password of student 40");
        clock.t += 15_000;
        await sim.tick();
        const creds = await sink.waitFor(
          (m) => m.to.includes(PARTICIPANTS[0]) && /credentials/.test(m.subject),
          30_000,
        );
        assertMatch(
          creds.text,
          new RegExp(`User Name: student40\\nPassword: ${pw40.replace(/[^\w]/g, "\\$&")}`),
        );

        // --- P1 ends from the front end's side --------------------------------------------------------
        sim.unregister(1);
        await sim.tick();
        await recorded(5);
        assertEquals(sim.orders.slice(-3).map((o) => o.subject), [
          "CLEANUP 40 1",
          "RESET 40 1",
          "PURGE 40 1",
        ]);
        await cli(["apply", "--env", "local"]);
        assertEquals((await seat(40))?.status, "free");
        assertEquals(sim.students.get(40)!.assigned, false);
        assert(sim.students.get(40)!.password !== pw40, "PURGE reported a new password");

        // --- P2: the api-db's normal expiry with its ReferenceError: CLEANUP only ----------------------
        sim.opts.expiryStopsEarly = true;
        clock.t += 3600_000 + 1000;
        await sim.tick(); // expiring mail
        clock.t += 3600_000;
        await sim.tick(); // CLEANUP, then the exception
        sim.opts.expiryStopsEarly = false;
        await recorded(6);
        await cli(["apply", "--env", "local"]);
        assertEquals((await seat(41))?.status, "held-for-reset");
        assertEquals(sim.students.get(41)!.assigned, true, "kept assigned while it waits for its RESET");
        assertEquals([sim.customers.get(2)!.active, sim.customers.get(2)!.cleaned], [false, true]);
        // P3 gets P1's student; P4 none: student 41 is not handed out before its RESET (item 3).
        const p3 = await register(PARTICIPANTS[2]);
        assertEquals([p3.status, p3.body.studentId], [200, 40]);
        const p4early = await register(PARTICIPANTS[3]);
        assertEquals([p4early.status, p4early.body], [202, "Registration full, no student account"]);
        // The RESET the api-db never sent: the operator's (docs/interop.md).
        await cli(["order", "reset", "--env", "local", "--workshop", "WKSHP-Shell101", "--seat", "41"]);
        await cli(["apply", "--env", "local"]);
        assertEquals((await seat(41))?.status, "free");
        assertEquals(sim.students.get(41)!.assigned, false);
        const p4 = await register(PARTICIPANTS[3]);
        assertEquals([p4.status, p4.body.studentId], [200, 41]);

        // --- P3, P4: CREATE and credentials ------------------------------------------------------------
        await sim.tick();
        await recorded(9);
        await cli(["apply", "--env", "local"]);
        clock.t += 15_000;
        await sim.tick();
        for (const p of PARTICIPANTS.slice(2)) {
          await sink.waitFor((m) => m.to.includes(p) && /credentials/.test(m.subject), 30_000);
        }

        // --- P3, P4 end from our side first, then the api-db's own expiry ---------------------------------
        const last = Math.max(...(await store.readSeats()).map((x) => Date.parse(x.expires!)));
        await cli(["expire", "--env", "local", "--now", new Date(last + 60_000).toISOString()]);
        await recorded(13);
        await cli(["apply", "--env", "local"]);
        assertEquals([(await seat(40))?.status, (await seat(41))?.status], ["free", "free"]);
        clock.t += 3600_000 + 1000;
        await sim.tick(); // expiring mails
        clock.t += 3600_000;
        await sim.tick(); // CLEANUP, expired mail, RESET, PURGE for each
        await recorded(19);
        const late = (await ledger()).filter((o) =>
          o.action === "CLEANUP" && o.source === "mail" && ["3", "4"].includes(o.customer ?? "")
        );
        assertEquals(late.map((o) => o.outcome), ["accepted", "accepted"], "the second CLEANUP is a success");
        for (const o of late) assertMatch(o.reason ?? "", /already done/);
        await cli(["apply", "--env", "local"]);

        // --- every row consistent -------------------------------------------------------------------------
        for (const c of sim.customers.values()) {
          assertEquals(
            [c.id, c.lastEmailSent, c.active, c.cleaned],
            [c.id, "expired", false, true],
            `customer ${c.id} did not end`,
          );
        }
        for (const s of sim.students.values()) assertEquals([s.id, s.assigned], [s.id, false]);
        // Every registration gave its capacity back but P2's: the original's ReferenceError loses it.
        assertEquals(w.capacity, 9);
        const seats = await store.readSeats();
        assertEquals(
          seats.map((s) => [s.seat, s.status, s.pending, s.notices, s.customer]),
          [[40, "free", undefined, undefined, undefined], [41, "free", undefined, undefined, undefined]],
        );
        const rejected = (await ledger()).filter((o) => o.outcome !== "accepted");
        assertEquals(rejected.map((o) => `${o.action} ${o.reason}`), [], "no order refused");
        // Every participant mail went out through the relay: welcome, credentials, expiring/expired.
        assert(sim.mails.every((m) => m.accepted), JSON.stringify(sim.mails.map((m) => [m.kind, m.reply])));
        await waitFor(
          async () => (await sink.messages()).length === sim!.mails.length,
          30_000,
          "every participant mail at the relay",
        );
        journeyRan = true;
      } finally {
        await store.close();
      }
    } finally {
      if (listener) {
        listener.proc.kill("SIGTERM");
        await listener.proc.status;
        journeyLogs.push(...listener.lines);
        journeyLogs.push(...(await new Response(listener.proc.stderr).text().catch(() => "")).split("\n"));
      }
      await sim?.close();
      await sink.close();
      await fx.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "api-db journey: no participant address in any log line of the listener, apply or expire",
  ignore: !haveBackend,
  fn: () => {
    assert(journeyRan, "the journey test did not run to its end: nothing to check");
    assert(journeyLogs.length > 50, `only ${journeyLogs.length} log lines`);
    for (const a of PARTICIPANTS) {
      const [local, domain] = a.split("@");
      for (const needle of [a, `${local}@`, `@${domain}`]) {
        const hit = journeyLogs.find((l) => l.includes(needle));
        assertEquals(hit, undefined, `"${needle}" is in a log line`);
      }
    }
  },
});
