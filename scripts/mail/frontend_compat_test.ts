// Issue 17 (listener part): what the original front end (api-db) sends or triggers must work, and the
// listener's logs must hold no participant address.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { nativeBody } from "../orders/parse.ts";
import { DirSink } from "./sink.ts";
import type { Order } from "../config/types.gen.ts";
import {
  fireAndClose,
  originalBytes,
  sendMessage,
  SmtpClient,
  startTestListener,
  TEST_KEY,
  waitFor,
} from "./testing.ts";

async function recorded(dir: string): Promise<Order[]> {
  return (await DirSink.readAll(dir)).map((x) => x.order as Order);
}

Deno.test("no participant address in any listener log line (accepted, refused, relayed, spoofed, signed)", async () => {
  const t = await startTestListener({ health: true });
  try {
    const who = ["pat.obrien@acme-corp.io", "lee+ws@example.net", "sam@mail.example.org", "kim@evil.test"];
    await fireAndClose(t.port, originalBytes({ subject: `CREATE 3 c1 ${who[0]}`, body: "WKSHP-Test" }));
    await sendMessage(t.port, { message: `Subject: CREATE 99 c2 ${who[1]}\nWKSHP-Test\n` }); // refused: seat
    await sendMessage(t.port, { to: who[2], message: "Subject: Welcome\n\nHello\n" }); // a participant mail
    await sendMessage(t.port, { from: who[3], message: `Subject: CREATE 4 c3 ${who[0]}\nWKSHP-Test\n` }); // spoofed
    await sendMessage(t.port, { message: `Subject: CREATE 5 c4 ${who[1]}\nWKSHP-Nope\n` }); // unknown workshop
    await sendMessage(t.port, { message: `Subject: CREATE 6 c5 ${who[2]}>\nWKSHP-Test\n` }); // malformed email
    const signed = nativeBody(TEST_KEY, {
      action: "CREATE",
      env: "t",
      backend: "b1",
      workshop: "WKSHP-Test",
      seats: [7, 7],
      customer: "c6",
      email: who[3],
      ts: Math.floor(Date.now() / 1000),
    });
    await sendMessage(t.port, { message: `Subject: WOD-ORDER\n\n${signed}\n` });
    await sendMessage(t.port, { message: `Subject: WOD-ORDER\n\n${signed}\n` }); // replay, refused
    const c = await SmtpClient.connect(t.port);
    await c.reply();
    for (const l of ["EHLO x.test", `MAIL FROM:<${who[2]}>`, `RCPT TO:<${who[0]}>`, `VRFY ${who[1]}`]) {
      await c.cmd(l);
    }
    c.close();
    await waitFor(() => t.listener.spool.depth === 0 && t.listener.stats.accepted === 2, 10_000, "drained");
    const text = t.logs.map((l) => JSON.stringify(l)).join("\n");
    assert(t.logs.length >= 10, `logs: ${t.logs.length} lines`);
    for (const a of who) {
      const [local, domain] = a.split("@");
      assert(!text.includes(a), `${a} is in the logs`);
      assert(!text.includes(`${local}@`), `${local}@ is in the logs`);
      assert(!text.includes(`@${domain}`), `@${domain} is in the logs`);
    }
    assertMatch(text, /\[email\]/, "refusal reasons keep their shape, with the address replaced");
  } finally {
    await t.close();
  }
});

Deno.test("a bare HELO, or no HELO at all, delivers the order (like Postfix's smtpd_helo_required = no)", async () => {
  const t = await startTestListener();
  try {
    // The api-db with an empty host name setting: "HELO " with nothing after it, all before the greeting.
    const first = await fireAndClose(
      t.port,
      originalBytes({ subject: "CREATE 8 h1 a@b.cd", body: "WKSHP-Test", helo: "" }),
    );
    assertMatch(first, /^220 /);
    const c = await SmtpClient.connect(t.port);
    assertEquals((await c.reply()).code, 220);
    assertEquals((await c.cmd("HELO")).code, 250, "a bare HELO is accepted");
    assertEquals((await c.cmd("EHLO")).code, 250, "a bare EHLO too");
    c.close();
    const r = await sendMessage(t.port, { helo: "", message: "Subject: CREATE 9 h2 a@b.cd\nWKSHP-Test\n" });
    assertEquals(r.code, 250, r.text);
    // No HELO at all.
    const n = await SmtpClient.connect(t.port);
    await n.reply();
    for (const l of ["MAIL FROM:<api@front.test>", "RCPT TO:<wodadmin@b1.test>"]) {
      assertEquals((await n.cmd(l)).code, 250);
    }
    assertEquals((await n.cmd("DATA")).code, 354);
    const d = await n.cmd("Subject: CREATE 10 h3 a@b.cd\r\n\r\nWKSHP-Test\r\n.");
    assertEquals(d.code, 250, d.text);
    n.close();
    const got = await waitFor(
      () => recorded(t.sinkDir).then((o) => (o.length === 3 ? o : undefined)),
      10_000,
      "3 orders",
    );
    assertEquals(got.map((o) => o.customer).sort(), ["h1", "h2", "h3"]);
  } finally {
    await t.close();
  }
});
