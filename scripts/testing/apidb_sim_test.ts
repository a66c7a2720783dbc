// The api-db stand-in follows the original's observed life cycle of a registration: welcome mail and
// CREATE on the first check, credentials once the backend reports the customer active (its own clock
// starts then), expiring one hour before its end, CLEANUP + expired + RESET/PURGE at the end, and the
// stuck-in-welcome path after 10 minutes. Orders are captured as raw bytes by a plain TCP server that
// answers with a greeting only (as the original sender reads nothing more); participant mail goes to
// a real SMTP sink; the backend side of the REST API is our own FrontendClient.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { FrontendClient } from "../notify/frontend.ts";
import { ApiDbSim } from "./apidb_sim.ts";
import { SmtpSink } from "./smtp_sink.ts";

/** A TCP server that greets and keeps every connection's bytes. */
function rawCapture(): { port: number; conversations: string[]; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conversations: string[] = [];
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        let text = "";
        try {
          await conn.write(new TextEncoder().encode("220 capture ready\r\n"));
          while (!/\n\.\n/.test(text)) {
            const n = await conn.read(buf);
            if (n === null) break;
            text += new TextDecoder().decode(buf.subarray(0, n));
          }
        } catch { /* the sender closes at the first bytes it reads */ }
        conversations.push(text);
        try {
          conn.close();
        } catch { /* already closed */ }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, conversations, close: () => listener.close() };
}

async function withSim(
  fn: (
    sim: ApiDbSim,
    clock: { t: number },
    sink: SmtpSink,
    capture: ReturnType<typeof rawCapture>,
  ) => Promise<void>,
  opts: { promiseSubjects?: boolean; expiryStopsEarly?: boolean } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "wod-apidb-sim-" });
  const sink = new SmtpSink(join(dir, "mail"));
  await Deno.mkdir(join(dir, "mail"));
  await sink.start();
  const capture = rawCapture();
  const clock = { t: Date.UTC(2026, 11, 3, 9, 0, 0) };
  const sim = new ApiDbSim({
    orderPort: capture.port,
    mailPort: sink.port,
    woduser: "wodadmin",
    sender: "api@front.test",
    now: () => clock.t,
    ...opts,
  });
  sim.addLocation({ name: "b1.test", basestdid: 100, proto: "https", port: "443" }, [1, 20]);
  sim.addWorkshop({
    name: "Shell 101",
    notebook: "WKSHP-Shell101",
    capacity: 2,
    range: [3, 4],
    reset: true,
    location: "b1.test",
    duration: 2,
  });
  await sim.start();
  try {
    await fn(sim, clock, sink, capture);
  } finally {
    await sim.close();
    capture.close();
    await sink.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function waitConversations(capture: { conversations: string[] }, n: number) {
  for (let i = 0; i < 200 && capture.conversations.length < n; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(capture.conversations.length, n);
}

Deno.test("api-db stand-in: registration, CREATE, credentials on the active callback, expiry, RESET and PURGE", async () => {
  await withSim(async (sim, clock, sink, capture) => {
    const reg = await fetch(`${sim.url}/api/customer`, {
      method: "POST",
      body: JSON.stringify({ email: "pat.o'brien@acme-corp.io", name: "pat", title: "Shell 101" }),
    });
    assertEquals(reg.status, 200);
    const { id, studentId } = await reg.json();
    assertEquals(studentId, 103, "the first free student in range [3, 4] + basestdid 100");
    assertEquals(sim.workshops[0].capacity, 1);

    await sim.tick();
    await waitConversations(capture, 1);
    assertMatch(
      capture.conversations[0],
      /^HELO apidb\.test\nMAIL FROM: api@front\.test\nRCPT TO: wodadmin@b1\.test\nDATA\nSubject: CREATE 3 1 pat\.o'brien@acme-corp\.io\nWKSHP-Shell101\n\.\n$/,
    );
    assertEquals(sim.mails.map((m) => [m.kind, m.accepted]), [["welcome", true]]);

    // The backend's callbacks (what `wod apply` sends after CREATE).
    const fe = new FrontendClient(`${sim.url}/api`, sim.username, sim.password);
    await fe.created(studentId, String(id), "pw-from-backend");
    assertEquals(sim.customers.get(id)!.active, true);
    clock.t += 15_000;
    await sim.tick();
    const creds = (await sink.messages()).find((m) => m.subject.includes("credentials"));
    assert(creds, "no credentials mail");
    assertMatch(
      creds.text,
      /User Name: student3\nPassword: pw-from-backend\nURL: https:\/\/b1\.test:443\/hub\/login/,
    );
    const c = sim.customers.get(id)!;
    assertEquals(c.endDate - c.startDate, 2 * 3600_000, "its clock starts at the credentials mail");

    clock.t += 3600_000 + 1000;
    await sim.tick();
    assertEquals(sim.customers.get(id)!.lastEmailSent, "expiring");
    clock.t += 3600_000;
    await sim.tick();
    await waitConversations(capture, 4);
    assertEquals(capture.conversations.slice(1).map((x) => /Subject: (.*)\n/.exec(x)![1]), [
      `CLEANUP 3 ${id}`,
      `RESET 3 ${id}`,
      `PURGE 3 ${id}`,
    ]);
    assertEquals(sim.customers.get(id)!.lastEmailSent, "expired");
    assertEquals(sim.workshops[0].capacity, 2);
    // Ended registrations are not looked at again.
    await sim.tick();
    assertEquals(capture.conversations.length, 4);
  });
});

Deno.test("api-db stand-in: one open registration per email, capacity, and no free student", async () => {
  await withSim(async (sim) => {
    const post = (email: string) =>
      fetch(`${sim.url}/api/customer`, {
        method: "POST",
        body: JSON.stringify({ email, name: "x", title: "Shell 101" }),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    assertEquals((await post("a@x.test")).status, 200);
    const again = await post("a@x.test");
    assertEquals(again.status, 202);
    assertEquals(again.body.title, "Shell 101");
    assertEquals((await post("b@x.test")).status, 200);
    const full = await post("c@x.test");
    assertEquals([full.status, full.body], [202, "Registration full, capacity exceeded"]);
    sim.workshops[0].capacity = 5;
    const noStudent = await post("d@x.test");
    assertEquals([noStudent.status, noStudent.body], [202, "Registration full, no student account"]);
  });
});

Deno.test("api-db stand-in: stuck in welcome for 10 minutes, and the original's two defects on request", async () => {
  await withSim(async (sim, clock, _sink, capture) => {
    await fetch(`${sim.url}/api/customer`, {
      method: "POST",
      body: JSON.stringify({ email: "a@x.test", name: "a", title: "Shell 101" }),
    }).then((r) => r.body?.cancel());
    await sim.tick();
    clock.t += 11 * 60_000;
    await sim.tick();
    await waitConversations(capture, 4);
    assertEquals(capture.conversations.map((x) => /Subject: (.*)\n/.exec(x)![1]), [
      "CREATE 3 1 a@x.test",
      "CLEANUP 3 1",
      "RESET [object Promise] 1",
      "PURGE [object Promise] 1",
    ]);
    assertEquals(sim.mails.map((m) => m.kind), ["welcome", "error"]);
  }, { promiseSubjects: true });

  await withSim(async (sim, clock, _sink, capture) => {
    await fetch(`${sim.url}/api/customer`, {
      method: "POST",
      body: JSON.stringify({ email: "a@x.test", name: "a", title: "Shell 101" }),
    }).then((r) => r.body?.cancel());
    await sim.tick();
    sim.customers.get(1)!.active = true;
    await sim.tick();
    clock.t += 2 * 3600_000;
    await sim.tick();
    await sim.tick();
    await waitConversations(capture, 2);
    assertEquals(sim.mails.map((m) => m.kind), ["welcome", "credentials", "expiring"]);
    assertEquals(sim.workshops[0].capacity, 1, "the capacity increment is lost with the expired mail");
  }, { expiryStopsEarly: true });
});
