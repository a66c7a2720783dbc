// Real clients against the listener: the original sender's raw bytes over node:net, nodemailer,
// Debian's swaks; signed orders; the health endpoint.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { nativeBody } from "../orders/parse.ts";
import {
  fireAndClose,
  originalBytes,
  recordedIds,
  sendMessage,
  SmtpClient,
  startTestListener,
  TEST_KEY,
  waitFor,
} from "./testing.ts";
import { DirSink } from "./sink.ts";
import type { Order } from "../config/types.gen.ts";
import nodemailer from "nodemailer";
import * as net from "node:net";

async function recorded(dir: string): Promise<Order[]> {
  return (await DirSink.readAll(dir)).map((x) => x.order as Order);
}

Deno.test("the original sender's bytes (before the greeting, bare LF, closing at the first byte) are recorded", async () => {
  const t = await startTestListener();
  try {
    const cases = [
      { subject: "CREATE 3 1001 alice@example.com", body: "WKSHP-Test", brackets: false },
      { subject: "CREATE 4 1002 bob@example.org", body: "CHLG-Test", brackets: true },
      { subject: "CLEANUP 3 1001", body: "WKSHP-Test" },
      { subject: "RESET 5,9 1003", body: "WKSHP-Test" },
      { subject: "PURGE 6 1004", body: "WKSHP-Test", from: "api@front.test" },
    ];
    for (const c of cases) {
      const first = await fireAndClose(t.port, originalBytes(c));
      assertMatch(first, /^220 /, "the first server bytes are the greeting");
    }
    const orders = await waitFor(
      async () => {
        const o = await recorded(t.sinkDir);
        return o.length === cases.length ? o : undefined;
      },
      10_000,
      "5 recorded orders",
    );
    const byAction = (a: string, seat: number) => orders.find((o) => o.action === a && o.seats[0] === seat)!;
    const c = byAction("CREATE", 3);
    assertEquals(
      [c.env, c.backend, c.workshop, c.seats, c.customer, c.email, c.source, c.mode],
      ["t", "b1", "WKSHP-Test", [3, 3], "1001", "alice@example.com", "mail", undefined],
    );
    assertMatch(c.id, /^c-[0-9a-f]{40}$/, "no Message-ID: content id");
    const chlg = byAction("CREATE", 4);
    assertEquals(
      [chlg.workshop, chlg.mode],
      ["WKSHP-Test", "CHLG"],
      "CHLG maps to the WKSHP folder, mode CHLG",
    );
    assertEquals(byAction("RESET", 5).seats, [5, 9], "RESET min,max is one range order");
    assertEquals(byAction("PURGE", 6).customer, "1004");
    assertEquals(byAction("CLEANUP", 3).customer, "1001");
    // The same bytes again (no Message-ID): a new delivery, a new order with its own id, acted on too.
    await fireAndClose(t.port, originalBytes(cases[0]));
    await waitFor(() => t.listener.stats.accepted === 6 && t.listener.spool.depth === 0, 10_000, "drained");
    const ids = await recordedIds(t.sinkDir);
    assertEquals(ids.length, 6, "the order sent again is recorded again");
    assertEquals(new Set(ids).size, 6, "every delivery has its own id");
  } finally {
    await t.close();
  }
});

Deno.test("the original sender to a second backend is routed by the recipient's domain", async () => {
  const t = await startTestListener();
  try {
    await fireAndClose(
      t.port,
      originalBytes({ subject: "CREATE 2 77 c@d.ef", body: "WKSHP-Test", to: "wodadmin@b2.test" }),
    );
    const [o] = await waitFor(
      () => recorded(t.sinkDir).then((x) => (x.length ? x : undefined)),
      10_000,
      "order",
    );
    assertEquals([o.backend, o.seats], ["b2", [2, 2]]);
  } finally {
    await t.close();
  }
});

Deno.test("nodemailer (EHLO, CRLF, MIME headers, Message-ID) delivers an order and gets 250", async () => {
  const t = await startTestListener();
  try {
    const tr = nodemailer.createTransport({
      host: "127.0.0.1",
      port: t.port,
      secure: false,
      ignoreTLS: true,
      name: "front.test",
    });
    const info = await tr.sendMail({
      from: "api@front.test",
      to: "wodadmin@b1.test",
      subject: "CREATE 7 2001 carol@example.net",
      text: "WKSHP-Test\n",
      messageId: "<order-2001@front.test>",
    });
    assertMatch(String(info.response), /^250 2\.0\.0 Order m-[0-9a-f]{40} accepted/);
    // A second delivery with the same Message-ID and order (a client retrying): told it was already
    // accepted, nothing new stored, recorded once.
    const again = await tr.sendMail({
      from: "api@front.test",
      to: "wodadmin@b1.test",
      subject: "CREATE 7 2001 carol@example.net",
      text: "WKSHP-Test",
      messageId: "<order-2001@front.test>",
    });
    assertMatch(String(again.response), /^250 2\.0\.0 Order m-[0-9a-f]{40} was already accepted/);
    tr.close();
    await waitFor(
      () => t.listener.spool.depth === 0 && t.listener.drainer.stats.recorded === 1,
      10_000,
      "drain",
    );
    assertEquals(t.listener.stats.accepted, 1);
    const orders = await recorded(t.sinkDir);
    assertEquals(orders.length, 1);
    assertEquals([orders[0].email, orders[0].seats], ["carol@example.net", [7, 7]]);
    // nodemailer refused: the reply text says what is wrong.
    const tr2 = nodemailer.createTransport({ host: "127.0.0.1", port: t.port, ignoreTLS: true });
    let err = "";
    try {
      await tr2.sendMail({
        from: "api@front.test",
        to: "wodadmin@b1.test",
        subject: "CREATE 99 1 a@b.cd",
        text: "WKSHP-Test",
      });
    } catch (e) {
      err = String((e as Error).message);
    } finally {
      tr2.close();
    }
    assertMatch(err, /550 5\.6\.0 Seat 99 is outside the range \[1, 20\] of workshop "WKSHP-Test"/);
  } finally {
    await t.close();
  }
});

Deno.test("Debian's swaks delivers an order (and is refused with the reason)", async () => {
  const t = await startTestListener();
  try {
    const base = [
      "--server",
      "127.0.0.1",
      "--port",
      String(t.port),
      "--from",
      "wodadmin@localhost",
      "--helo",
      "swaks.test",
    ];
    const ok = await exec("swaks", [
      ...base,
      "--to",
      "wodadmin@b1.test",
      "--header",
      "Subject: RESET 10,12 3001",
      "--body",
      "WKSHP-Test",
    ], { allowFailure: true });
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    assertMatch(ok.stdout, /<-\s+250 2\.0\.0 Order m-[0-9a-f]{40} accepted/, "swaks sends a Message-Id");
    const bad = await exec("swaks", [
      ...base,
      "--to",
      "wodadmin@b1.test",
      "--header",
      "Subject: CREATE 1 3002 x@y.zz",
      "--body",
      "WKSHP-Nope",
    ], { allowFailure: true });
    assert(bad.code !== 0, "swaks reports the refusal");
    assertMatch(bad.stdout + bad.stderr, /<\*\*\s+550 5\.6\.0 Unknown workshop "WKSHP-Nope"/);
    const [o] = await waitFor(
      () => recorded(t.sinkDir).then((x) => (x.length ? x : undefined)),
      10_000,
      "order",
    );
    assertEquals([o.action, o.seats, o.customer], ["RESET", [10, 12], "3001"]);
    assertEquals((await recorded(t.sinkDir)).length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("a signed native order is accepted once; its replay is refused", async () => {
  const t = await startTestListener();
  try {
    const f = {
      action: "CREATE" as const,
      env: "t",
      backend: "b1",
      workshop: "WKSHP-Test",
      seats: [8, 8] as [number, number],
      customer: "4001",
      email: "dan@example.com",
      ts: Math.floor(Date.now() / 1000),
    };
    const message = `Subject: WOD-ORDER\r\n\r\n${nativeBody(TEST_KEY, f)}\r\n`;
    const r1 = await sendMessage(t.port, { from: "api@front.test", message });
    assertEquals([r1.stage, r1.code], ["end", 250], r1.text);
    assertMatch(r1.text, /Order s-[0-9a-f]{40} accepted/);
    const r2 = await sendMessage(t.port, { from: "api@front.test", message });
    assertEquals([r2.code], [550]);
    assertMatch(r2.text, /Replayed order/);
    await waitFor(
      () => t.listener.spool.depth === 0 && t.listener.drainer.stats.recorded === 1,
      10_000,
      "drain",
    );
    assertEquals((await recorded(t.sinkDir)).length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("the health endpoint reports spool depth, last commit and errors", async () => {
  const t = await startTestListener({ health: true });
  try {
    const url = `http://127.0.0.1:${t.listener.health!.port}/health`;
    const h0 = await (await fetch(url)).json();
    assertEquals([h0.status, h0.spool_depth, h0.accepted, h0.last_commit], ["ok", 0, 0, undefined]);
    await fireAndClose(t.port, originalBytes({ subject: "CREATE 9 5001 e@f.gh", body: "WKSHP-Test" }));
    const h1 = await waitFor(
      async () => {
        const h = await (await fetch(url)).json();
        return h.recorded === 1 ? h : undefined;
      },
      10_000,
      "health recorded=1",
    );
    assertEquals([h1.status, h1.spool_depth, h1.accepted, h1.commits], ["ok", 0, 1, 1]);
    assertMatch(h1.last_commit, /^\d{4}-\d\d-\d\dT/);
    const nf = await fetch(`http://127.0.0.1:${t.listener.health!.port}/nope`);
    await nf.body?.cancel();
    assertEquals(nf.status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("limits: connections over the limit and idle connections get 421", async () => {
  const t = await startTestListener({ limits: { maxConnections: 2, idleTimeoutMs: 300 } });
  const clients: SmtpClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await SmtpClient.connect(t.port);
      clients.push(c);
      assertEquals((await c.reply()).code, 220);
    }
    const third = await SmtpClient.connect(t.port);
    clients.push(third);
    const r = await third.reply();
    assertEquals(r.code, 421);
    assertMatch(r.text, /Too many connections/);
    // The first two say nothing: they are closed for idleness.
    const idle = await clients[0].reply(5_000);
    assertEquals(idle.code, 421);
    assertMatch(idle.text, /Idle timeout/);
    assertEquals((await clients[0].reply(5_000)).code, 0, "then the connection is closed");
  } finally {
    for (const c of clients) c.close();
    await t.close();
  }
});

Deno.test("limits: a session is closed after the session time limit even when it keeps talking", async () => {
  const t = await startTestListener({ limits: { maxSessionMs: 400 } });
  const c = await SmtpClient.connect(t.port);
  try {
    assertEquals((await c.reply()).code, 220);
    for (let i = 0; i < 3; i++) {
      assertEquals((await c.cmd("NOOP")).code, 250);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await c.reply(5_000);
    assertEquals(r.code, 421);
    assertMatch(r.text, /Session time limit/);
  } finally {
    c.close();
    await t.close();
  }
});

Deno.test("a client that writes the whole order and closes at once (never reads) still gets it recorded", async () => {
  const t = await startTestListener();
  try {
    const bytes = originalBytes({ subject: "CLEANUP 12 8001", body: "WKSHP-Test" });
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(t.port, "127.0.0.1", () => s.end(bytes));
      s.on("error", reject);
      s.on("close", () => resolve());
      s.resume();
    });
    const [o] = await waitFor(
      () => recorded(t.sinkDir).then((x) => (x.length ? x : undefined)),
      10_000,
      "order",
    );
    assertEquals([o.action, o.seats, o.customer], ["CLEANUP", [12, 12], "8001"]);
    assert(
      t.logs.some((l) => l.event === "accepted" && l.client_gone === true),
      "logged as accepted after close",
    );
  } finally {
    await t.close();
  }
});

Deno.test("when the store fails, orders stay in the spool, health says degraded (503), and a retry drains them", async () => {
  let fail = true;
  const inner = { calls: 0 };
  const t = await startTestListener({
    health: true,
    sink: (root) => {
      const d = new DirSink(`${root}/sink`);
      return Promise.resolve({
        recordOrders: (orders: Order[]) => {
          inner.calls++;
          if (fail) return Promise.reject(new Error("store unreachable (test)"));
          return d.recordOrders(orders);
        },
      });
    },
  });
  try {
    await fireAndClose(t.port, originalBytes({ subject: "PURGE 13 9001", body: "WKSHP-Test" }));
    const url = `http://127.0.0.1:${t.listener.health!.port}/health`;
    const res = await waitFor(
      async () => {
        const r = await fetch(url);
        const h = await r.json();
        return h.drain_failing ? { status: r.status, h } : undefined;
      },
      10_000,
      "a failed drain",
    );
    assertEquals([res.status, res.h.status, res.h.spool_depth], [503, "degraded", 1]);
    assertMatch(res.h.last_drain_error, /store unreachable/);
    fail = false;
    await waitFor(() => t.listener.spool.depth === 0, 15_000, "the retry");
    assertEquals((await recorded(t.sinkDir)).map((o) => o.customer), ["9001"]);
    const h = await (await fetch(url)).json();
    assertEquals([h.status, h.drain_failing], ["ok", false]);
    assert(inner.calls >= 2);
  } finally {
    await t.close();
  }
});
