// Issue 17 (listener part): what the original front end (api-db) sends or triggers must work, and the
// listener's logs must hold no participant address.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { nativeBody } from "../orders/parse.ts";
import { DirSink } from "./sink.ts";
import { SmtpServer } from "./smtp.ts";
import { mailer } from "../notify/email.ts";
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

/** RFC 5322 dot-atom addresses the api-db registers; one would run a command if any shell saw it. */
function safeAddresses(marker: string): string[] {
  return [
    "pat.o'brien@acme-corp.io",
    "a+b@x.io",
    "first.last@sub.domain.example",
    "user=tag@ex.io",
    "x!#$%&'*+/=?^_`{|}~-y@ex.io",
    "{x}@ex.io",
    `\`touch\${IFS}${marker}\`@ex.io`,
    `$(touch${marker})|sh@ex.io`.replace(/[()]/g, ""),
  ];
}

/** Addresses the RFC allows in some form but that are not safe for our use, and plain garbage. */
const UNSAFE = [
  "a b@c.de",
  "a@b.cd\r\nBcc: x@y.zz",
  "a@b.cd\nBcc: x@y.zz",
  "a,b@c.de",
  "a<b@c.de",
  "a>b@c.de",
  '"a b"@c.de',
  '"a"@c.de',
  "a(comment)@c.de",
  "a;b@c.de",
  "a\\b@c.de",
  "a:b@c.de",
  "a[b]@c.de",
  "\u00e9t\u00e9@c.de",
  "a@[127.0.0.1]",
  "a.@c.de",
  "a..b@c.de",
  ".a@c.de",
  `${"a".repeat(65)}@c.de`,
  `a@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.${"e".repeat(63)}.io`,
  "a@b.cd.",
  "a@-b.cd",
  "@c.de",
  "a@",
  "a@b@c.de",
];

Deno.test("RFC 5322 addresses such as pat.o'brien@acme-corp.io are accepted and recorded verbatim; none reaches a shell", async () => {
  const t = await startTestListener();
  const marker = `${t.root}/pwned`;
  try {
    const addrs = safeAddresses(marker);
    for (const [i, a] of addrs.entries()) {
      const first = await fireAndClose(
        t.port,
        originalBytes({ subject: `CREATE ${i + 1} s${i} ${a}`, body: "WKSHP-Test" }),
      );
      assertMatch(first, /^220 /);
    }
    const got = await waitFor(
      () => recorded(t.sinkDir).then((o) => (o.length === addrs.length ? o : undefined)),
      10_000,
      `${addrs.length} orders`,
    );
    assertEquals(got.map((o) => o.email).sort(), [...addrs].sort(), "recorded exactly as sent");
    let ran = true;
    try {
      await Deno.stat(marker);
    } catch {
      ran = false;
    }
    assertEquals(ran, false, "no shell ran the address");
  } finally {
    await t.close();
  }
});

Deno.test("unsafe addresses are refused with the reason (signed and original format); nothing is recorded", async () => {
  const t = await startTestListener();
  try {
    const failures: string[] = [];
    for (const [i, email] of UNSAFE.entries()) {
      const body = nativeBody(TEST_KEY, {
        action: "CREATE",
        env: "t",
        backend: "b1",
        workshop: "WKSHP-Test",
        seats: [1 + (i % 20), 1 + (i % 20)],
        customer: `u${i}`,
        email,
        ts: Math.floor(Date.now() / 1000),
      });
      const r = await sendMessage(t.port, { message: `Subject: WOD-ORDER\n\n${body}\n` });
      if (r.code !== 550 || !/Invalid email address|non-ASCII or control/.test(r.text)) {
        failures.push(`signed ${JSON.stringify(email)}: ${r.code} ${r.text}`);
      }
      if (/[\r\n]/.test(email)) continue; // a line break cannot be part of a subject line
      const l = await sendMessage(t.port, { message: `Subject: CREATE 1 l${i} ${email}\nWKSHP-Test\n` });
      if (l.code !== 550 || !/Invalid email address|Malformed subject|non-ASCII/.test(l.text)) {
        failures.push(`original ${JSON.stringify(email)}: ${l.code} ${l.text}`);
      }
    }
    assertEquals(failures, []);
    assertEquals(t.listener.stats.accepted, 0);
    assertEquals(await recorded(t.sinkDir), []);
  } finally {
    await t.close();
  }
});

Deno.test("an accepted address is one envelope recipient and one To: address of the credentials email, never a header", async () => {
  const got: { rcpts: string[]; message: string }[] = [];
  const capture = new SmtpServer({
    handlers: {
      onData: (s, message) => {
        got.push({ rcpts: [...s.rcpts], message: message.toString("latin1") });
        return Promise.resolve({ code: 250, text: "2.0.0 Ok" });
      },
    },
    limits: { maxRecipients: 10 },
  });
  const { port } = await capture.listen("127.0.0.1", 0);
  const m = mailer({ smtp_host: "127.0.0.1", smtp_port: port, from: "wod@localhost" });
  try {
    const addrs = safeAddresses("/nonexistent/marker");
    for (const a of addrs) await m.send(a, { subject: "Your workshop seat", text: "Password: x\n" });
    assertEquals(got.length, addrs.length);
    for (const [i, a] of addrs.entries()) {
      assertEquals(got[i].rcpts, [a], `envelope of ${a}`);
      const head = got[i].message.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, " ");
      const names = head.split(/\r?\n/).map((l) => l.slice(0, l.indexOf(":")).toLowerCase());
      assert(!names.includes("bcc") && !names.includes("cc"), `no extra recipient header for ${a}`);
      assertEquals(names.filter((n) => n === "to").length, 1);
      const to = head.split(/\r?\n/).find((l) => /^to:/i.test(l))!.slice(3).trim();
      assert([a, `<${a}>`].includes(to), `To: of ${a} is ${to}`);
    }
  } finally {
    m.close();
    await capture.close();
  }
});
