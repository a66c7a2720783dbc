// Issue 17 item 1: participant mail from the original front end (sent through the order listener, as
// the api-db does without a SendGrid key) is relayed to orders.relay, durably; without a relay it is
// refused at RCPT with a reason in the log. The relay is a real SMTP server (scripts/testing/smtp_sink.ts,
// npm smtp-server); the client is nodemailer, as the api-db's.
import { join } from "node:path";
import nodemailer from "nodemailer";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { ENV_YAML, sendMessage, startTestListener, waitFor } from "./testing.ts";
import { type SmtpSink, startSmtpSink } from "../testing/smtp_sink.ts";
import { SmtpServer } from "./smtp.ts";

const PARTICIPANT = "pat.o'brien@acme-corp.io";
const PASSWORD = "Pw-relay-7f3a9c";

function withRelay(port: number): string {
  return ENV_YAML.replace(
    "  accept_unsigned: true\n",
    `  accept_unsigned: true\n  relay: 127.0.0.1:${port}\n`,
  );
}

/** A free loopback port (bound, then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Participant mail the way the api-db sends it: nodemailer to the order port, from its sender. */
async function sendParticipantMail(port: number, opts: { from?: string; to?: string } = {}) {
  const t = nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true });
  try {
    return await t.sendMail({
      from: opts.from ?? "api@front.test",
      to: opts.to ?? PARTICIPANT,
      subject: "Workshops-on-Demand credentials",
      text: `User Name: student3\nPassword: ${PASSWORD}\n`,
    });
  } finally {
    t.close();
  }
}

function logText(logs: Record<string, unknown>[]): string {
  return logs.map((l) => JSON.stringify(l)).join("\n");
}

function assertClean(text: string) {
  assert(!text.includes(PASSWORD), "the relayed body (its password) is in the logs");
  assert(!text.includes("acme-corp.io") && !text.includes("o'brien"), "a participant address is in the logs");
}

Deno.test("participant mail from an allowed sender is queued durably, answered 250 and relayed to orders.relay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-relay-" });
  const sink = await startSmtpSink(join(dir, "relay"));
  const t = await startTestListener({ envYaml: withRelay(sink.port) });
  try {
    const info = await sendParticipantMail(t.port);
    assertMatch(String(info.response), /^250 2\.0\.0 Queued for relay as r/);
    const got = await sink.waitFor((m) => m.subject === "Workshops-on-Demand credentials");
    assertEquals(got.to, [PARTICIPANT]);
    assertEquals(got.from, "api@front.test");
    assertMatch(got.text, new RegExp(`Password: ${PASSWORD}`));
    const raw = await Deno.readTextFile(got.file);
    assertMatch(raw, /\r\nReceived: from \S+ \(\[127\.0\.0\.1\]\) by \S+ \(wod listen\) with SMTP; /);
    await waitFor(() => t.listener.relay!.stats.relayed === 1, 10_000, "relayed");
    assertEquals((await t.listener.relay!.list()).length, 0, "the queue file is deleted once relayed");
    assertEquals(t.listener.healthReport().relay_queue, 0);
    const text = logText(t.logs);
    assertMatch(text, /"event":"relay-queued"/);
    assertMatch(text, /"event":"relayed"/);
    assertClean(text);
  } finally {
    await t.close();
    await sink.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without orders.relay, participant mail is refused at RCPT and the log says orders.relay is not set", async () => {
  const t = await startTestListener();
  try {
    const r = await sendMessage(t.port, { to: PARTICIPANT, message: "Subject: Welcome\n\nHello\n" });
    assertEquals([r.stage, r.code], ["rcpt", 550]);
    assertMatch(r.text, /orders\.relay is not set/);
    const line = t.logs.find((l) => l.event === "refused" && l.stage === "rcpt");
    assert(line, "no refusal logged");
    assertMatch(String(line.reason), /not relayed \(orders\.relay is not set\)/);
    assertClean(logText(t.logs));
    assertEquals(t.listener.healthReport().relay, undefined);
  } finally {
    await t.close();
  }
});

Deno.test("relaying is refused for a sender outside orders.senders and for a malformed recipient", async () => {
  const t = await startTestListener({ envYaml: withRelay(freePort()) });
  try {
    const r = await sendMessage(t.port, {
      from: "mallory@evil.test",
      to: PARTICIPANT,
      message: "Subject: x\n\nx\n",
    });
    assertEquals([r.stage, r.code], ["mail", 550], "not an allowed sender at all");
    // An allowed sender with a malformed recipient.
    const bad = await sendMessage(t.port, { to: "a b@x.test", message: "Subject: x\n\nx\n" });
    assertEquals(bad.code >= 500, true, bad.text);
    assertEquals(t.listener.stats.relayed, 0);
  } finally {
    await t.close();
  }
});

Deno.test("relay down: the message stays queued and is retried with backoff until the relay accepts it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-relay-" });
  const port = freePort();
  const t = await startTestListener({
    envYaml: withRelay(port),
    relay: { baseDelayMs: 100, maxDelayMs: 400 },
  });
  let sink: SmtpSink | undefined;
  try {
    await sendParticipantMail(t.port);
    await waitFor(() => t.listener.relay!.stats.deferred >= 2, 10_000, "two deferred attempts");
    const queued = await t.listener.relay!.list();
    assertEquals(queued.length, 1);
    assert(queued[0].attempts >= 2 && queued[0].last_error, "attempts and the last error are kept");
    assertEquals(t.listener.healthReport().relay_queue, 1);
    sink = await startSmtpSink(join(dir, "relay"), port);
    await sink.waitFor((m) => m.to.includes(PARTICIPANT));
    await waitFor(() => t.listener.relay!.stats.queued === 0, 10_000, "queue empty");
    const text = logText(t.logs);
    assertMatch(text, /"event":"relay-deferred".*"retry_ms":100/);
    assertClean(text);
  } finally {
    await t.close();
    await sink?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a relay that refuses (5xx), or one that stays down past the lifetime: dead-lettered with the reason in the log and /health", async () => {
  // A relay that refuses every recipient.
  const refusing = new SmtpServer({
    handlers: {
      onRcpt: () => ({ code: 550, text: "5.7.1 Relay access denied" }),
      onData: () => Promise.resolve({ code: 250, text: "ok" }),
    },
  });
  const r = await refusing.listen("127.0.0.1", 0);
  const t = await startTestListener({ envYaml: withRelay(r.port), relay: { baseDelayMs: 50 } });
  try {
    await sendParticipantMail(t.port);
    await waitFor(() => t.listener.relay!.stats.dead === 1, 10_000, "dead letter");
    const [dead] = await t.listener.relay!.deadLetters();
    assertMatch(dead.reason!, /refused it: .*550.*Relay access denied/);
    const h = t.listener.healthReport() as { warnings: string[]; relay_dead_letters: number };
    assertEquals(h.relay_dead_letters, 1);
    assertMatch(h.warnings.join("\n"), /1 relayed message\(s\) could not be delivered.*relay\/dead/);
    assertMatch(logText(t.logs), /"event":"relay-dead-letter"/);
    assertClean(logText(t.logs));
  } finally {
    await t.close();
    await refusing.close(100);
  }

  const t2 = await startTestListener({
    envYaml: withRelay(freePort()),
    relay: { baseDelayMs: 30, maxDelayMs: 60, lifetimeMs: 400 },
  });
  try {
    await sendParticipantMail(t2.port);
    await waitFor(() => t2.listener.relay!.stats.dead === 1, 10_000, "dead letter after the lifetime");
    const [dead] = await t2.listener.relay!.deadLetters();
    assertMatch(dead.reason!, /not accepted by the relay .* within \d+ min \(\d+ attempts\), last error/);
    assertEquals(t2.listener.relay!.stats.queued, 0);
  } finally {
    await t2.close();
  }
});
