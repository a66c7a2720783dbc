// The bad-input corpus: every case gets the expected SMTP reply (code and reason), and at the end
// nothing was recorded, nothing spooled and nothing executed (the shell-metacharacter cases would
// create a marker file if any part of the listener passed input to a shell).
import * as net from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { nativeBody, type SignedFields } from "../orders/parse.ts";
import type { SmtpLimits } from "./smtp.ts";
import {
  type Conversation,
  ENV_YAML,
  fireAndClose,
  originalBytes,
  recordedIds,
  sendMessage,
  SmtpClient,
  startTestListener,
  TEST_KEY,
  waitFor,
} from "./testing.ts";

interface Case {
  name: string;
  /** Listener settings (GROUPS); cases of one group share one listener. Default: "base". */
  group?: keyof typeof GROUPS;
  /** Deliveries made first, each expected to get 250 (repeat attacks); only these may be recorded. */
  prior?: Conversation[];
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

/** Send `lines` one by one until the server closes; the last reply, and how many commands were answered. */
function untilClosed(lines: string[]) {
  return async (port: number) => {
    const c = await SmtpClient.connect(port);
    try {
      await c.reply();
      let last = { code: 0, text: "" };
      let n = 0;
      for (const l of lines) {
        c.send(l + "\r\n");
        const r = await c.reply();
        if (r.code === 0) break;
        last = r;
        n++;
      }
      return { code: last.code, text: `${last.text} (after ${n} commands)` };
    } finally {
      c.close();
    }
  };
}

/** Hold `n` connections open (greeted), then open one more: its first reply. */
function holdThenOne(n: number, local = "127.0.0.1") {
  return async (port: number) => {
    const held: SmtpClient[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const c = await SmtpClient.connect(port);
        held.push(c);
        await c.reply();
      }
      return await fromAddressFirstLine(port, local);
    } finally {
      for (const c of held) c.close();
    }
  };
}

function fromAddressFirstLine(port: number, localAddress: string) {
  return new Promise<{ code: number; text: string }>((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1", localAddress });
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) {
        s.destroy();
        const m = /^(\d{3}) (.*)/.exec(buf);
        resolve({ code: Number(m?.[1] ?? 0), text: m?.[2] ?? buf });
      }
    });
    s.on("error", () => {});
    s.on("close", () => resolve({ code: 0, text: buf || "closed" }));
  });
}

/** `k` sessions that each end in "too many errors", then a new connection: its first reply. */
function afterBadSessions(k: number) {
  return async (port: number) => {
    for (let i = 0; i < k; i++) await untilClosed(Array.from({ length: 12 }, () => "BOGUS"))(port);
    return await fromAddressFirstLine(port, "127.0.0.1");
  };
}

/** `n` connections from `localAddress` at once (a flood): the distinct first replies. */
function flood(n: number, localAddress: string) {
  return async (port: number) => {
    const rs = await Promise.all(Array.from({ length: n }, () => fromAddressFirstLine(port, localAddress)));
    const codes = [...new Set(rs.map((r) => r.code))].sort();
    return {
      code: codes.length === 1 ? codes[0] : -1,
      text: rs.map((r) => r.text).join(" | ").slice(0, 300),
    };
  };
}

/** Say nothing after the greeting (or after `lines`): the reply that comes by itself. */
function silent(lines: string[] = []) {
  return async (port: number) => {
    const c = await SmtpClient.connect(port);
    try {
      await c.reply();
      for (const l of lines) c.send(l + "\r\n");
      for (const _ of lines) await c.reply();
      return await c.reply(5_000);
    } finally {
      c.close();
    }
  };
}

/** Keep talking (NOOP every 100 ms) past the session time limit: the reply that ends it. */
function dripping() {
  return async (port: number) => {
    const c = await SmtpClient.connect(port);
    try {
      await c.reply();
      for (let i = 0; i < 40; i++) {
        const r = await c.cmd("NOOP");
        if (r.code !== 250) return r;
        await new Promise((r) => setTimeout(r, 100));
      }
      return { code: 250, text: "never closed" };
    } finally {
      c.close();
    }
  };
}

const ORDER_STEPS = ["HELO c.test", "MAIL FROM:<api@front.test>", "RCPT TO:<wodadmin@b1.test>", "DATA"];

/** Listener settings per group of cases. */
export const GROUPS = {
  base: { limits: { maxMessageBytes: 16 * 1024 } },
  signedOnly: { envYaml: ENV_YAML.replace("accept_unsigned: true", "accept_unsigned: false") },
  perAddress: { limits: { maxConnectionsPerAddress: 2 } },
  global: { limits: { maxConnections: 2 } },
  rate: { limits: { connectBurstPerAddress: 3, connectRatePerAddress: 0.01 } },
  penalty: { limits: { maxBadSessionsPerAddress: 3 } },
  slow: { limits: { idleTimeoutMs: 300, maxSessionMs: 1500 } },
} satisfies Record<string, { limits?: Partial<SmtpLimits>; envYaml?: string }>;

/**
 * More cases (issue 11): floods, slow clients, spoofed senders, repeats, ordering attacks, and more
 * content variants of the original and signed formats.
 */
export function moreCases(marker: string): Case[] {
  const touch = `touch ${marker}`;
  const refusedMail = /5\.7\.1 Sender <.*> is not allowed/;
  const spoofed = (from: string): Case => ({
    name: `spoofed sender ${from}`,
    conv: { ...legacy("CREATE 1 2 a@b.cd"), from },
    stage: "mail",
    code: 550,
    text: refusedMail,
  });
  const badRcpt = (to: string): Case => ({
    name: `recipient ${to}`,
    conv: { ...legacy("CREATE 1 2 a@b.cd"), to },
    stage: "rcpt",
    code: 550,
    text: /not an order address of environment t/,
  });
  const subj = (subject: string, text: RegExp, body = "WKSHP-Test"): Case => ({
    name: `subject ${JSON.stringify(subject)}${body === "WKSHP-Test" ? "" : ` body ${JSON.stringify(body)}`}`,
    conv: legacy(subject, body),
    code: 550,
    text,
  });
  const body = (b: string, text: RegExp): Case => ({
    name: `body ${JSON.stringify(b)}`,
    conv: legacy("CREATE 1 2 a@b.cd", b),
    code: 550,
    text,
  });
  const sig = (
    name: string,
    over: Partial<SignedFields>,
    text: RegExp,
    mutate?: (o: Record<string, unknown>) => void,
  ): Case => ({
    name: `signed order: ${name}`,
    conv: signed(over, TEST_KEY, mutate),
    code: 550,
    text,
  });
  const first = signed({ seats: [15, 15], customer: "r1" });
  const withId = (id: string) => ({
    message: `Message-ID: <${id}@front.test>\nSubject: CREATE 16 r2 r2@example.com\n\nWKSHP-Test\n`,
  });
  return [
    // --- spoofed envelope senders ---
    spoofed("api@front.test.evil.test"),
    spoofed("api@front.tes"),
    spoofed('"api@front.test"@evil.test'),
    spoofed("@relay.test:api@front.test"),
    spoofed("api%front.test@evil.test"),
    spoofed("wodadmin@localhost."),
    spoofed("wodadmin@localhost.evil.test"),
    spoofed("postmaster"),
    {
      name: "spoofed sender after a good one and RSET",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test>", "RSET", "MAIL FROM:<evil@evil.test>"]),
      code: 550,
      text: refusedMail,
    },
    {
      name: "signed order from a sender that is not allowed",
      conv: { ...signed({ seats: [3, 3] }), from: "evil@evil.test" },
      stage: "mail",
      code: 550,
      text: refusedMail,
    },
    {
      name: "NUL in the envelope sender",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test\x00>"]),
      code: 500,
      text: /Invalid characters/,
    },
    badRcpt("wodadmin@b1.test.evil.test"),
    badRcpt("wodadmin+x@b1.test"),
    badRcpt("wodadmin@[127.0.0.1]"),
    badRcpt('"wodadmin"@b1.test'),
    badRcpt("@b1.test:wodadmin@b1.test"),
    badRcpt("root@b2.test"),
    badRcpt("wodadmin"),
    // --- the unsigned format switched off (orders.accept_unsigned: false) ---
    {
      name: "unsigned order where only signed orders are accepted",
      group: "signedOnly",
      conv: legacy("CREATE 1 2 a@b.cd"),
      code: 550,
      text: /5\.7\.1 Unsigned orders \(the original format\) are not accepted by environment t/,
    },
    {
      name: "unsigned CLEANUP where only signed orders are accepted",
      group: "signedOnly",
      conv: legacy("CLEANUP 1 2"),
      code: 550,
      text: /orders\.accept_unsigned is false/,
    },
    {
      name: "early-talking original sender where only signed orders are accepted",
      group: "signedOnly",
      raw: early("CREATE 1 2 a@b.cd"),
      code: 220,
      text: /^220 /,
    },
    // --- repeats ---
    {
      name: "signed order replayed",
      prior: [first],
      conv: first,
      code: 550,
      text: /5\.7\.1 Replayed order: this signature was already received/,
    },
    {
      name: "signed order replayed with another Message-ID",
      conv: { message: `Message-ID: <other@front.test>\n${(first.message as string)}` },
      code: 550,
      text: /Replayed order/,
    },
    {
      name: "signed order replayed with an extra header",
      conv: { message: `X-Resent: yes\n${(first.message as string)}` },
      code: 550,
      text: /Replayed order/,
    },
    {
      name: "signed order replayed to the same seat in another transaction on one connection",
      raw: async (port) => {
        const r = await sendMessage(port, first);
        return r;
      },
      code: 550,
      text: /Replayed order/,
    },
    {
      name: "the same Message-ID and order again (a retry): already accepted, nothing new stored",
      prior: [withId("retry-1")],
      conv: withId("retry-1"),
      code: 250,
      text: /Order m-[0-9a-f]{40} was already accepted \(same Message-ID and content\)/,
    },
    // --- ordering attacks ---
    {
      name: "RCPT before MAIL",
      raw: exchange(["HELO c.test", "RCPT TO:<wodadmin@b1.test>"]),
      code: 503,
      text: /Send MAIL first/,
    },
    { name: "DATA before MAIL", raw: exchange(["HELO c.test", "DATA"]), code: 503, text: /Send MAIL first/ },
    {
      name: "DATA with an argument",
      raw: exchange(["HELO c.test", "DATA now"]),
      code: 501,
      text: /Syntax: DATA/,
    },
    {
      name: "HELO in the middle of a transaction resets it",
      raw: exchange([
        "HELO c.test",
        "MAIL FROM:<api@front.test>",
        "RCPT TO:<wodadmin@b1.test>",
        "HELO d.test",
        "DATA",
      ]),
      code: 503,
      text: /Send MAIL first/,
    },
    {
      name: "RSET then DATA",
      raw: exchange([
        "HELO c.test",
        "MAIL FROM:<api@front.test>",
        "RCPT TO:<wodadmin@b1.test>",
        "RSET",
        "DATA",
      ]),
      code: 503,
      text: /Send MAIL first/,
    },
    {
      name: "nested MAIL",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test>", "MAIL FROM:<api@front.test>"]),
      code: 503,
      text: /Nested MAIL/,
    },
    {
      name: "pipelined RCPT after a refused MAIL",
      raw: exchange(["HELO c.test", "MAIL FROM:<evil@evil.test>", "RCPT TO:<wodadmin@b1.test>"]),
      code: 503,
      text: /Send MAIL first/,
    },
    {
      name: "pipelined DATA after a refused RCPT",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test>", "RCPT TO:<root@b1.test>", "DATA"]),
      code: 503,
      text: /Send RCPT first/,
    },
    {
      name: "STARTTLS in the middle of a transaction (not offered)",
      raw: exchange(["EHLO c.test", "MAIL FROM:<api@front.test>", "STARTTLS"]),
      code: 502,
      text: /STARTTLS is not available/,
    },
    { name: "AUTH before EHLO", raw: exchange(["AUTH LOGIN"]), code: 502, text: /AUTH is not available/ },
    {
      name: "commands after QUIT",
      raw: untilClosed(["QUIT", "MAIL FROM:<api@front.test>"]),
      code: 221,
      text: /Bye \(after 1 commands\)/,
    },
    {
      name: "EXPN",
      raw: exchange(["HELO c.test", "EXPN wodadmin"]),
      code: 502,
      text: /EXPN is not implemented/,
    },
    {
      name: "ETRN",
      raw: exchange(["HELO c.test", "ETRN b1.test"]),
      code: 502,
      text: /ETRN is not implemented/,
    },
    { name: "TURN", raw: exchange(["HELO c.test", "TURN"]), code: 502, text: /TURN is not implemented/ },
    {
      name: "HELO with a space in the name",
      raw: exchange(["HELO a b"]),
      code: 501,
      text: /Syntax: HELO hostname/,
    },
    {
      name: "EHLO with a 300-character name",
      raw: exchange(["EHLO " + "a".repeat(300)]),
      code: 501,
      text: /Syntax: EHLO/,
    },
    {
      name: "HELO with a shell metacharacter",
      raw: exchange([`HELO x;${touch.replace(/ /g, "")}`]),
      code: 501,
      text: /Syntax: HELO/,
    },
    {
      name: "RCPT without an address",
      raw: exchange(["HELO c.test", "MAIL FROM:<api@front.test>", "RCPT TO:<>"]),
      code: 501,
      text: /Syntax: RCPT TO/,
    },
    {
      name: "early talker that starts with DATA",
      raw: async (port) => {
        const first = await fireAndClose(port, "DATA\nSubject: CREATE 1 2 a@b.cd\nWKSHP-Test\n.\n");
        return { code: Number(first.slice(0, 3)), text: first };
      },
      code: 220,
      text: /^220 /,
    },
    // --- errors and refusals on one connection: 421 and close ---
    {
      name: "50 refused MAIL FROM on one connection",
      raw: untilClosed(["HELO c.test", ...Array.from({ length: 50 }, () => "MAIL FROM:<evil@evil.test>")]),
      code: 421,
      text: /Too many errors, closing connection \(after 11 commands\)/,
    },
    {
      name: "refused recipients on one connection",
      raw: untilClosed([
        "HELO c.test",
        "MAIL FROM:<api@front.test>",
        ...Array.from({ length: 30 }, () => "RCPT TO:<root@b1.test>"),
      ]),
      code: 421,
      text: /Too many errors.*\(after 12 commands\)/,
    },
    {
      name: "bad commands and refusals mixed on one connection",
      raw: untilClosed([
        "HELO c.test",
        ...Array.from({ length: 20 }, (_, i) => (i % 2 ? "XYZZY" : "MAIL FROM:<evil@evil.test>")),
      ]),
      code: 421,
      text: /Too many errors.*\(after 11 commands\)/,
    },
    {
      name: "refused orders one after another on one connection",
      raw: async (port) => {
        const c = await SmtpClient.connect(port);
        try {
          await c.reply();
          await c.cmd("HELO c.test");
          let last = { code: 0, text: "" };
          for (let i = 0; i < 15; i++) {
            for (const l of ORDER_STEPS.slice(1)) await c.cmd(l);
            const r = await c.cmd("Subject: CREATE 99 2 a@b.cd\r\n\r\nWKSHP-Test\r\n.");
            if (r.code === 0) break;
            last = r;
            if (r.code === 421) break;
          }
          return last;
        } finally {
          c.close();
        }
      },
      code: 421,
      text: /Too many errors/,
    },
    // --- floods and connection limits ---
    {
      name: "client 127.0.0.3 outside the networks",
      raw: fromAddress("127.0.0.3"),
      code: 554,
      text: /127\.0\.0\.3 is not allowed/,
    },
    {
      name: "client 127.1.2.3 outside the networks",
      raw: fromAddress("127.1.2.3"),
      code: 554,
      text: /127\.1\.2\.3 is not allowed/,
    },
    {
      name: "client 127.255.255.254 outside the networks",
      raw: fromAddress("127.255.255.254"),
      code: 554,
      text: /is not allowed/,
    },
    {
      name: "a flood of 20 connections from outside the networks",
      raw: flood(20, "127.0.0.4"),
      code: 554,
      text: /not allowed/,
    },
    {
      name: "more connections from one address than its cap",
      group: "perAddress",
      raw: holdThenOne(2),
      code: 421,
      text: /Too many connections from 127\.0\.0\.1/,
    },
    {
      name: "more connections than the server takes",
      group: "global",
      raw: holdThenOne(2),
      code: 421,
      text: /Too many connections, try again later/,
    },
    {
      name: "connections faster than the per-address rate",
      group: "rate",
      raw: async (port) => {
        for (let i = 0; i < 3; i++) await fromAddressFirstLine(port, "127.0.0.1");
        return await fromAddressFirstLine(port, "127.0.0.1");
      },
      code: 421,
      text: /Too many connections per second from 127\.0\.0\.1/,
    },
    {
      name: "an address whose sessions keep being refused",
      group: "penalty",
      raw: afterBadSessions(3),
      code: 421,
      text: /Too many refused sessions from 127\.0\.0\.1/,
    },
    // --- slow clients ---
    { name: "a client that says nothing", group: "slow", raw: silent(), code: 421, text: /Idle timeout/ },
    {
      name: "a client that stops after HELO",
      group: "slow",
      raw: silent(["HELO c.test"]),
      code: 421,
      text: /Idle timeout/,
    },
    {
      name: "a client that stops in the middle of DATA",
      group: "slow",
      raw: async (port) => {
        const c = await SmtpClient.connect(port);
        try {
          await c.reply();
          for (const l of ORDER_STEPS) await c.cmd(l);
          c.send("Subject: CREATE 1 2 a@b.cd\r\n");
          return await c.reply(5_000);
        } finally {
          c.close();
        }
      },
      code: 421,
      text: /Idle timeout/,
    },
    {
      name: "a client that drips NOOPs past the session limit",
      group: "slow",
      raw: dripping(),
      code: 421,
      text: /Session time limit/,
    },
    {
      name: "a line without end longer than the line limit",
      raw: async (port) => {
        const c = await SmtpClient.connect(port);
        try {
          await c.reply();
          c.send("HELO " + "x".repeat(3000));
          return await c.reply();
        } finally {
          c.close();
        }
      },
      code: 500,
      text: /Line too long/,
    },
    // --- original format: more subjects ---
    subj("CLEANUP 21 2", /Seat 21 is outside the range \[1, 20\]/),
    subj("PURGE 21 2", /Seat 21 is outside the range/),
    subj("RESET 21 2", /Seat 21 is outside the range/),
    subj("RESET 0,3 2", /Seats 0,3 are outside the range/),
    subj("CREATE 1 a.b a@b.cd", /Malformed subject/),
    subj("CREATE 1 <x> a@b.cd", /Malformed subject/),
    subj(`CREATE 1 ${"c".repeat(65)} a@b.cd`, /Malformed subject/),
    subj("CREATE 1 2 a@@b.cd", /Invalid email address "a@@b.cd"/),
    subj("CREATE 1 2 a@-b.cd", /Invalid email/),
    subj("CREATE 1 2 a@b..cd", /Invalid email/),
    subj("CREATE 1 2 .a@b.cd", /Invalid email/),
    subj("CREATE 1 2 a@b.cd>", /Invalid email/),
    subj("CREATE 1 2 <a@b.cd>", /Invalid email/),
    subj("CREATE 1 2 a@b.cd,c@d.ef", /Invalid email/),
    subj("CREATE 1 2 a b@c.de", /Malformed subject/),
    subj("CREATE 1 2 a@b.c_d", /Invalid email/),
    subj("CREATE 1 2 a@b.cd\\n", /Invalid email/),
    subj("RESET 1,2,3 2", /Malformed subject/),
    subj("RESET 1-3 2", /Malformed subject/),
    subj("PURGE 1 2 3", /Malformed subject/),
    subj("CLEANUP", /Malformed subject/),
    subj("CREATE", /Malformed subject/),
    subj("WOD-ORDER2 1 2", /Unknown action "WOD-ORDER2"/),
    subj("Re: CREATE 1 2 a@b.cd", /Unknown action "Re:"/),
    subj("CREATE 1 2 a@b.cd", /Unknown workshop "WKSHP-TEST"/, "WKSHP-TEST"),
    // --- bodies ---
    body("WKSHP-Test extra", /Invalid workshop name/),
    body("WKSHP Test", /Invalid workshop name/),
    body("-WKSHP", /Invalid workshop name/),
    body("W", /Invalid workshop name/),
    body("$(id)", /Invalid workshop name/),
    body("`" + touch + "`", /Invalid workshop name/),
    body("WKSHP-Test/../x", /Invalid workshop name/),
    body("wkshp-test", /Unknown workshop "wkshp-test"/),
    body("CHLG-", /Invalid workshop name|Unknown workshop/),
    body("WKSHP-Test\tX", /Invalid workshop name/),
    {
      name: "JSON content type",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\nContent-Type: application/json\n\nWKSHP-Test\n" },
      code: 550,
      text: /Unsupported content type "application\/json"/,
    },
    {
      name: "invalid base64 body",
      conv: { message: "Subject: CREATE 1 2 a@b.cd\nContent-Transfer-Encoding: base64\n\n!!!\n" },
      code: 550,
      text: /Invalid base64 body/,
    },
    {
      name: "base64 body that decodes to a shell command",
      conv: {
        message: `Subject: CREATE 1 2 a@b.cd\nContent-Transfer-Encoding: base64\n\n${
          btoa(`WKSHP-Test;${touch}`)
        }\n`,
      },
      code: 550,
      text: /Invalid workshop name/,
    },
    {
      name: "quoted-printable body that decodes to 8-bit",
      conv: {
        message: "Subject: CREATE 1 2 a@b.cd\nContent-Transfer-Encoding: quoted-printable\n\nWKSHP-Test=FF\n",
      },
      code: 550,
      text: /non-ASCII or control/,
    },
    {
      name: "two Content-Type headers",
      conv: {
        message:
          "Subject: CREATE 1 2 a@b.cd\nContent-Type: text/plain\nContent-Type: text/html\n\nWKSHP-Test\n",
      },
      code: 550,
      text: /Duplicate content-type/,
    },
    {
      name: "two Content-Transfer-Encoding headers",
      conv: {
        message:
          "Subject: CREATE 1 2 a@b.cd\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\nWKSHP-Test\n",
      },
      code: 550,
      text: /Duplicate content-transfer-encoding/,
    },
    // --- signed format: more fields ---
    sig("version 2", {}, /Unsupported signed order version 2/, (o) => (o.v = 2)),
    sig("no ts", {}, /Invalid field "ts"/, (o) => delete o.ts),
    sig("ts as text", {}, /Invalid field "ts"/, (o) => (o.ts = String(o.ts))),
    sig("seats as text", {}, /Invalid field "seats"/, (o) => (o.seats = "2")),
    sig("three seats", {}, /Invalid field "seats"/, (o) => (o.seats = [1, 2, 3])),
    sig("lowercase action", {}, /Unknown action "create"/, (o) => (o.action = "create")),
    sig("uppercase environment", {}, /field "env"/, (o) => (o.env = "T")),
    sig("bad workshop name", {}, /field "workshop"/, (o) => (o.workshop = "../x")),
    sig("mode WKSHP", {}, /field "mode"/, (o) => (o.mode = "WKSHP")),
    sig("customer with a space", {}, /field "customer"/, (o) => (o.customer = "a b")),
    sig("bad email", {}, /Invalid email address/, (o) => (o.email = 'a"b@c.de')),
    sig(
      "an empty JSON object",
      {},
      /Unsupported signed order version/,
      (o) => Object.keys(o).forEach((k) => delete o[k]),
    ),
    {
      name: "signed order: a JSON array",
      conv: { message: "Subject: WOD-ORDER\n\n[1, 2]\n" },
      code: 550,
      text: /not one JSON object/,
    },
    sig("uppercase signature", {}, /field "sig"/, (o) => (o.sig = String(o.sig).toUpperCase())),
    sig("short signature", {}, /field "sig"/, (o) => (o.sig = String(o.sig).slice(0, 10))),
    sig("unknown workshop (valid signature)", { workshop: "WKSHP-Nope" }, /Unknown workshop "WKSHP-Nope"/),
    sig("seat outside the range (valid signature)", { seats: [25, 25] }, /Seat 25 is outside the range/),
    sig("inactive workshop (valid signature)", { workshop: "WKSHP-Off", seats: [21, 21] }, /not active/),
    sig("CREATE with a range (valid signature)", { seats: [2, 3] }, /CREATE takes one seat/),
  ];
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
      name: "quote and pipe in the email",
      conv: legacy('CREATE 1 2 a"|sh@b.cd'),
      code: 550,
      text: /Invalid email address "a"\|sh@b.cd"/,
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

async function runGroup(
  group: keyof typeof GROUPS,
  cases: Case[],
  marker: string,
): Promise<{ failures: string[]; logs: Record<string, unknown>[] }> {
  const t = await startTestListener(GROUPS[group]);
  const failures: string[] = [];
  const allowed: string[] = [];
  try {
    for (const c of cases) {
      for (const p of c.prior ?? []) {
        const r = await sendMessage(t.port, p);
        const m = /Order (\S+) accepted/.exec(r.text);
        if (r.code !== 250 || !m) failures.push(`${c.name}: the prior delivery got ${r.code} ${r.text}`);
        else allowed.push(m[1]);
      }
      const r = c.conv ? await sendMessage(t.port, c.conv) : await c.raw!(t.port);
      const ok = r.code === c.code && c.text.test(r.text) &&
        (c.stage === undefined || (r as { stage?: string }).stage === c.stage);
      if (!ok) failures.push(`${c.name}: got ${(r as { stage?: string }).stage ?? ""} ${r.code} ${r.text}`);
    }
    // Give the early-talker cases time to be processed, then check nothing else got through.
    await new Promise((r) => setTimeout(r, 300));
    await waitFor(() => t.listener.spool.depth === 0, 10_000, "the prior orders drained");
    if (t.listener.stats.accepted !== allowed.length) {
      failures.push(
        `${group}: ${t.listener.stats.accepted} orders accepted, expected only the ${allowed.length} prior ones`,
      );
    }
    const recorded = (await recordedIds(t.sinkDir)).sort();
    if (JSON.stringify(recorded) !== JSON.stringify(allowed.sort())) {
      failures.push(
        `${group}: recorded ${recorded.join(", ")}; only the prior orders ${allowed.join(", ")} may be`,
      );
    }
    for (const l of t.logs) {
      if (l.event === "accepted" && !allowed.includes(String(l.id))) {
        failures.push(`accepted: ${JSON.stringify(l)}`);
      }
    }
    assert(!existsSync(marker), "no shell command ran");
    return { failures, logs: t.logs };
  } finally {
    await t.close();
  }
}

Deno.test("the extended corpus (floods, slow clients, spoofed senders, repeats, ordering): every case gets its reply", async () => {
  const marker = join(await Deno.makeTempDir({ prefix: "wod-corpus-" }), "pwned");
  const cases = moreCases(marker);
  const all = corpus(marker).length + cases.length;
  assert(all >= 150, `the corpus has ${all} cases`);
  const names = cases.map((c) => c.name);
  assertEquals(names.length, new Set(names).size, "case names are unique");
  const failures: string[] = [];
  for (const group of Object.keys(GROUPS) as (keyof typeof GROUPS)[]) {
    const mine = cases.filter((c) => (c.group ?? "base") === group);
    if (mine.length) failures.push(...(await runGroup(group, mine, marker)).failures);
  }
  assertEquals(failures, []);
  await Deno.remove(join(marker, ".."), { recursive: true });
});

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
