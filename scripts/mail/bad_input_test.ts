// The bad-input corpus: every case gets the expected SMTP reply (code and reason), and at the end
// nothing was recorded, nothing spooled and nothing executed (the shell-metacharacter cases would
// create a marker file if any part of the listener passed input to a shell).
import * as net from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { nativeBody, type SignedFields } from "../orders/parse.ts";
import {
  type Conversation,
  fireAndClose,
  originalBytes,
  recordedIds,
  sendMessage,
  SmtpClient,
  startTestListener,
  TEST_KEY,
} from "./testing.ts";

interface Case {
  name: string;
  /** A message conversation, or a custom exchange returning the decisive reply. */
  conv?: Conversation;
  raw?: (port: number) => Promise<{ stage?: string; code: number; text: string }>;
  stage?: string;
  code: number;
  text: RegExp;
}

const now = () => Math.floor(Date.now() / 1000);
const legacy = (subject: string, body = "WKSHP-Test", extra: Partial<Conversation> = {}): Conversation => ({
  message: `Subject: ${subject}\n${body}\n`,
  ...extra,
});
const signed = (
  over: Partial<SignedFields> = {},
  key = TEST_KEY,
  mutate?: (o: Record<string, unknown>) => void,
) => {
  const f: SignedFields = {
    action: "CREATE",
    env: "t",
    backend: "b1",
    workshop: "WKSHP-Test",
    seats: [2, 2],
    customer: "9",
    email: "n@x.yz",
    ts: now(),
    ...over,
  };
  let body = nativeBody(key, f);
  if (mutate) {
    const o = JSON.parse(body);
    mutate(o);
    body = JSON.stringify(o);
  }
  return { message: `Subject: WOD-ORDER\n\n${body}\n` };
};

/** Send `lines` one by one (reading each reply); the reply to the last line is the decisive one. */
function exchange(lines: (string | Uint8Array)[]) {
  return async (port: number) => {
    const c = await SmtpClient.connect(port);
    try {
      await c.reply();
      let r = { code: 0, text: "" };
      for (const l of lines) {
        c.send(typeof l === "string" ? l + "\r\n" : l);
        r = await c.reply();
      }
      return r;
    } finally {
      c.close();
    }
  };
}

function fromAddress(localAddress: string) {
  return (port: number) =>
    new Promise<{ code: number; text: string }>((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1", localAddress });
      s.write(originalBytes({ subject: "CREATE 1 2 a@b.cd", body: "WKSHP-Test" }));
      s.once("data", (d: Buffer) => {
        s.destroy();
        const m = /^(\d{3}) (.*)/.exec(d.toString("latin1"));
        resolve({ code: Number(m?.[1] ?? 0), text: m?.[2] ?? "" });
      });
      s.on("error", reject);
    });
}

function early(subject: string, body = "WKSHP-Test", from?: string) {
  // The original sender never reads the refusal; what counts is that nothing gets recorded.
  return async (port: number) => {
    const first = await fireAndClose(port, originalBytes({ subject, body, from }));
    return { code: Number(first.slice(0, 3)), text: first };
  };
}

export function corpus(marker: string): Case[] {
  const touch = `touch ${marker}`;
  const D = "end";
  return [
    // --- subject syntax ---
    { name: "empty subject", conv: legacy(""), stage: D, code: 550, text: /Empty subject/ },
    {
      name: "no Subject header",
      conv: { message: "From: a@b.cd\n\nWKSHP-Test\n" },
      code: 550,
      text: /No Subject header/,
    },
    { name: "unknown verb", conv: legacy("DELETE 1 2"), code: 550, text: /Unknown action "DELETE"/ },
    { name: "lowercase verb", conv: legacy("create 1 2 a@b.cd"), code: 550, text: /Unknown action "create"/ },
    {
      name: "CREATE without email",
      conv: legacy("CREATE 1 2"),
      code: 550,
      text: /Malformed subject.*CREATE <seat>/,
    },
    {
      name: "CREATE with extra token",
      conv: legacy("CREATE 1 2 a@b.cd x"),
      code: 550,
      text: /Malformed subject/,
    },
    { name: "seat not a number", conv: legacy("CREATE x 2 a@b.cd"), code: 550, text: /Malformed subject/ },
    { name: "negative seat", conv: legacy("CREATE -1 2 a@b.cd"), code: 550, text: /Malformed subject/ },
    {
      name: "seat with leading zero",
      conv: legacy("CREATE 01 2 a@b.cd"),
      code: 550,
      text: /Malformed subject/,
    },
    {
      name: "seat too large",
      conv: legacy("CREATE 99999999 2 a@b.cd"),
      code: 550,
      text: /Malformed subject/,
    },
    {
      name: "seat 0 outside the range",
      conv: legacy("CREATE 0 2 a@b.cd"),
      code: 550,
      text: /Seat 0 is outside the range \[1, 20\]/,
    },
    {
      name: "seat out of the workshop range",
      conv: legacy("CREATE 21 2 a@b.cd"),
      code: 550,
      text: /Seat 21 is outside the range \[1, 20\] of workshop "WKSHP-Test" on backend "b1"/,
    },
    {
      name: "seat out of range on the second backend",
      conv: legacy("CREATE 6 2 a@b.cd", "WKSHP-Test", { to: "wodadmin@b2.test" }),
      code: 550,
      text: /Seat 6 is outside the range \[1, 5\].*backend "b2"/,
    },
    {
      name: "CLEANUP with an email",
      conv: legacy("CLEANUP 1 2 a@b.cd"),
      code: 550,
      text: /Malformed subject.*CLEANUP <seat> <customerId>/,
    },
    { name: "PURGE without customer", conv: legacy("PURGE 1"), code: 550, text: /Malformed subject/ },
    {
      name: "RESET range reversed",
      conv: legacy("RESET 9,5 2"),
      code: 550,
      text: /first seat is after the last/,
    },
    { name: "RESET range with a space", conv: legacy("RESET 5, 9 2"), code: 550, text: /Malformed subject/ },
    {
      name: "RESET range outside the workshop",
      conv: legacy("RESET 15,25 2"),
      code: 550,
      text: /Seats 15,25 are outside the range \[1, 20\]/,
    },
    {
      name: "CREATE with a range",
      conv: legacy("CREATE 1,2 3 a@b.cd"),
      code: 550,
      text: /Malformed subject/,
    },
    // --- shell metacharacters (nothing may run) ---
    {
      name: "shell metacharacters in the seat",
      conv: legacy(`CREATE 1;${touch} 2 a@b.cd`),
      code: 550,
      text: /Malformed subject/,
    },
    {
      name: "shell metacharacters in the customer",
      conv: legacy(`CREATE 1 2;${touch} a@b.cd`),
      code: 550,
      text: /Malformed subject/,
    },
    {
      name: "command substitution in the email",
      conv: legacy(`CREATE 1 2 $(${touch})@b.cd`),
      code: 550,
      text: /Malformed subject|Invalid email/,
    },
    {
      name: "backticks in the email",
      conv: legacy(`CREATE 1 2 \`${touch}\`@b.cd`),
      code: 550,
      text: /Malformed subject|Invalid email/,
    },
    {
      name: "pipe in the email",
      conv: legacy("CREATE 1 2 a|sh@b.cd"),
      code: 550,
      text: /Invalid email address "a\|sh@b.cd"/,
    },
    {
      name: "semicolon in the email",
      conv: legacy(`CREATE 1 2 a;${touch.replace(/ /g, "")}@b.cd`),
      code: 550,
      text: /Invalid email/,
    },
    { name: "quoted local part", conv: legacy('CREATE 1 2 "a"@b.cd'), code: 550, text: /Invalid email/ },
    { name: "email without @", conv: legacy("CREATE 1 2 notanemail"), code: 550, text: /Invalid email/ },
    {
      name: "email too long",
      conv: legacy(`CREATE 1 2 ${"a".repeat(70)}@b.cd`),
      code: 550,
      text: /Invalid email/,
    },
    {
      name: "shell metacharacters in the workshop",
      conv: legacy("CREATE 1 2 a@b.cd", `WKSHP-Test;${touch}`),
      code: 550,
      text: /Invalid workshop name/,
    },
    {
      name: "path traversal as workshop",
      conv: legacy("CREATE 1 2 a@b.cd", "../../etc/passwd"),
      code: 550,
      text: /Invalid workshop name/,
    },
    // --- body ---
    {
      name: "unknown workshop",
      conv: legacy("CREATE 1 2 a@b.cd", "WKSHP-Nope"),
      code: 550,
      text: /Unknown workshop "WKSHP-Nope"/,
    },
    {
      name: "unknown challenge",
      conv: legacy("CREATE 1 2 a@b.cd", "CHLG-Nope"),
      code: 550,
      text: /Unknown workshop "WKSHP-Nope"/,
    },
    {
      name: "inactive workshop",
      conv: legacy("CREATE 21 2 a@b.cd", "WKSHP-Off"),
      code: 550,
      text: /not active/,
    },
    { name: "empty body", conv: { message: "Subject: CREATE 1 2 a@b.cd\n" }, code: 550, text: /Empty body/ },
    {
      name: "two workshop lines",
      conv: legacy("CREATE 1 2 a@b.cd", "WKSHP-Test\nWKSHP-Off"),
      code: 550,
      text: /2 non-empty lines/,
    },
    // --- 8-bit garbage, control characters, header injection ---
    {
      name: "8-bit garbage in the subject",
      conv: { message: Buffer.from("Subject: CREATE 1 2 a@b.cd\xff\xfe\nWKSHP-Test\n", "latin1") },
      code: 550,
      text: /non-ASCII or control/,
    },
    {
      name: "8-bit garbage in the body",
      conv: { message: Buffer.from("Subject: CREATE 1 2 a@b.cd\n\xc3\x28WKSHP\n", "latin1") },
      code: 550,
      text: /non-ASCII or control/,
    },
    {
      name: "NUL in the subject",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\x00\nWKSHP-Test\n" },
      code: 550,
      text: /non-ASCII or control/,
    },
    {
      name: "bare CR header injection in the subject",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\rBcc: x@y.zz\nWKSHP-Test\n" },
      code: 550,
      text: /non-ASCII or control/,
    },
    {
      name: "two Subject headers",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\nSubject: PURGE 1 2\nWKSHP-Test\n" },
      code: 550,
      text: /2 Subject headers/,
    },
    {
      name: "two Message-ID headers",
      conv: { message: "Message-ID: <a@b>\nMessage-ID: <c@d>\nSubject: CREATE 1 2 a@b.cd\n\nWKSHP-Test\n" },
      code: 550,
      text: /Duplicate message-id/,
    },
    {
      name: "encoded-word subject",
      conv: legacy("=?UTF-8?B?Q1JFQVRFIDEgMiBhQGIuY2Q=?="),
      code: 550,
      text: /Unknown action/,
    },
    {
      name: "HTML body",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\nContent-Type: text/html\n\n<b>WKSHP-Test</b>\n" },
      code: 550,
      text: /Unsupported content type "text\/html"/,
    },
    {
      name: "multipart body",
      conv: {
        message:
          'Subject: CREATE 1 2 a@b.cd\nContent-Type: multipart/mixed; boundary="x"\n\n--x\n\nWKSHP-Test\n--x--\n',
      },
      code: 550,
      text: /Unsupported content type/,
    },
    {
      name: "unknown transfer encoding",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\nContent-Transfer-Encoding: x-uue\n\nWKSHP-Test\n" },
      code: 550,
      text: /Unsupported Content-Transfer-Encoding/,
    },
    {
      name: "oversize message",
      conv: legacy(
        "CREATE 1 2 a@b.cd",
        "WKSHP-Test\n" + "x".repeat(80) + "\n".repeat(1) + ("y".repeat(900) + "\n").repeat(80),
      ),
      stage: "end",
      code: 552,
      text: /Message too big/,
    },
    // --- who may order ---
    {
      name: "wrong sender",
      conv: { ...legacy("CREATE 1 2 a@b.cd"), from: "evil@front.test" },
      stage: "mail",
      code: 550,
      text: /Sender <evil@front.test> is not allowed/,
    },
    {
      name: "null sender",
      conv: { ...legacy("CREATE 1 2 a@b.cd"), from: "" },
      stage: "mail",
      code: 550,
      text: /Sender <> is not allowed/,
    },
    {
      name: "wrong recipient user",
      conv: { ...legacy("CREATE 1 2 a@b.cd"), to: "root@b1.test" },
      stage: "rcpt",
      code: 550,
      text: /not an order address/,
    },
    {
      name: "unknown recipient domain",
      conv: { ...legacy("CREATE 1 2 a@b.cd"), to: "wodadmin@evil.test" },
      stage: "rcpt",
      code: 550,
      text: /not an order address.*b1\.test/,
    },
    {
      name: "client network not allowed",
      raw: fromAddress("127.0.0.2"),
      code: 554,
      text: /Client address 127\.0\.0\.2 is not allowed/,
    },
    {
      name: "early talker with a bad subject",
      raw: early(`CREATE 1;${touch} 2 a@b.cd`),
      code: 220,
      text: /^220 /,
    },
    {
      name: "early talker from a wrong sender",
      raw: early("CREATE 1 2 a@b.cd", "WKSHP-Test", "evil@front.test"),
      code: 220,
      text: /^220 /,
    },
    // --- signed orders ---
    {
      name: "signed order with a bad signature",
      conv: signed({}, "wrong-key"),
      code: 550,
      text: /5\.7\.1 Bad signature/,
    },
    {
      name: "signed order with an expired timestamp",
      conv: signed({ ts: now() - 3600 }),
      code: 550,
      text: /outside the replay window of 300 s/,
    },
    {
      name: "signed order from the future",
      conv: signed({ ts: now() + 3600 }),
      code: 550,
      text: /outside the replay window/,
    },
    {
      name: "signed order with a tampered seat",
      conv: signed({}, TEST_KEY, (o) => (o.seats = [3, 3])),
      code: 550,
      text: /Bad signature/,
    },
    {
      name: "signed order for another backend",
      conv: { ...signed({ backend: "b2" }) },
      code: 550,
      text: /for backend "b2" but was addressed to backend "b1"/,
    },
    {
      name: "signed order for another environment",
      conv: signed({ env: "prod" }),
      code: 550,
      text: /for environment "prod"/,
    },
    {
      name: "signed order with an unknown field",
      conv: signed({}, TEST_KEY, (o) => (o.cmd = "rm -rf /")),
      code: 550,
      text: /Unknown field\(s\) in the signed order: cmd/,
    },
    {
      name: "signed order that is not JSON",
      conv: { message: "Subject: WOD-ORDER\n\n{not json\n" },
      code: 550,
      text: /not one JSON object/,
    },
    {
      name: "signed order without a signature",
      conv: signed({}, TEST_KEY, (o) => delete o.sig),
      code: 550,
      text: /field "sig"/,
    },
    // --- SMTP protocol ---
    {
      name: "declared SIZE too big",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test> SIZE=99999999"]),
      code: 552,
      text: /Message too big/,
    },
    {
      name: "MAIL before HELO",
      raw: exchange(["MAIL FROM:<api@front.test>"]),
      code: 503,
      text: /HELO or EHLO first/,
    },
    {
      name: "DATA before RCPT",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test>", "DATA"]),
      code: 503,
      text: /Send RCPT first/,
    },
    {
      name: "second recipient",
      raw: exchange([
        "HELO c.test",
        "MAIL FROM:<api@front.test>",
        "RCPT TO:<wodadmin@b1.test>",
        "RCPT TO:<wodadmin@b2.test>",
      ]),
      code: 452,
      text: /Too many recipients/,
    },
    {
      name: "unknown command",
      raw: exchange(["HELO c.test", "XYZZY"]),
      code: 500,
      text: /Unknown command "XYZZY"/,
    },
    {
      name: "8-bit command",
      raw: exchange([Buffer.from("HELO \xff\xfe\r\n", "latin1")]),
      code: 500,
      text: /Invalid characters/,
    },
    { name: "line too long", raw: exchange(["HELO " + "a".repeat(5000)]), code: 500, text: /Line too long/ },
    { name: "HELO without a name", raw: exchange(["HELO"]), code: 501, text: /Syntax: HELO hostname/ },
    {
      name: "MAIL without an address",
      raw: exchange(["HELO c.test", "MAIL FROM:"]),
      code: 501,
      text: /Syntax: MAIL FROM/,
    },
    {
      name: "STARTTLS not offered",
      raw: exchange(["EHLO c.test", "STARTTLS"]),
      code: 502,
      text: /STARTTLS is not available/,
    },
    {
      name: "AUTH not configured",
      raw: exchange(["EHLO c.test", "AUTH PLAIN AHUAcA=="]),
      code: 502,
      text: /AUTH is not available/,
    },
    {
      name: "BDAT (CHUNKING) not offered",
      raw: exchange(["EHLO c.test", "BDAT 10 LAST"]),
      code: 502,
      text: /BDAT is not implemented/,
    },
    {
      name: "too many errors",
      raw: exchange(Array.from({ length: 10 }, () => "BOGUS")),
      code: 421,
      text: /Too many errors/,
    },
  ];
}

Deno.test("the bad-input corpus: each case refused with the right reply; nothing recorded or executed", async () => {
  const t = await startTestListener({ limits: { maxMessageBytes: 16 * 1024 } });
  const marker = join(t.root, "pwned");
  const cases = corpus(marker);
  assert(cases.length >= 50, `corpus has ${cases.length} cases`);
  const failures: string[] = [];
  try {
    for (const c of cases) {
      const r = c.conv ? await sendMessage(t.port, c.conv) : await c.raw!(t.port);
      const ok = r.code === c.code && c.text.test(r.text) && (c.stage === undefined || r.stage === c.stage);
      if (!ok) failures.push(`${c.name}: got ${r.stage ?? ""} ${r.code} ${r.text}`);
    }
    // Give the early-talker cases time to be processed, then check nothing got through.
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(failures, []);
    assertEquals(t.listener.stats.accepted, 0, "no order accepted");
    assertEquals(t.listener.spool.depth, 0, "nothing spooled");
    assertEquals(await recordedIds(t.sinkDir), [], "nothing recorded");
    assert(!existsSync(marker), "no shell command ran");
    // Each refusal is logged as one JSON-able line with the reason.
    const refusals = t.logs.filter((l) => l.event === "refused");
    assert(refusals.length >= 45, `refusals logged: ${refusals.length}`);
    assertMatch(JSON.stringify(refusals.find((l) => l.stage === "mail")), /not allowed/);
    const dataRefusals = JSON.stringify(refusals.filter((l) => l.stage === "data"));
    assert(
      !/@(b\.cd|example)/.test(dataRefusals),
      `no participant address in the logs: ${dataRefusals.match(/.{80}@(b\.cd|example).{20}/)?.[0]}`,
    );
    assertMatch(dataRefusals, /\[email\]/);
  } finally {
    await t.close();
  }
});
