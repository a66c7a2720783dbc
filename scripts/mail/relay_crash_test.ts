// Crash test of the relay queue (issue 17 item 1): `wod listen` is killed with SIGKILL while
// participant mail is being queued and the relay is down; after a restart with the relay up, every
// message that got its 250 reaches the relay (a real SMTP server, scripts/testing/smtp_sink.ts).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { ENV_YAML, type ListenProcess, makeRoot, SmtpClient, spawnListen, waitFor } from "./testing.ts";
import { type SmtpSink, startSmtpSink } from "../testing/smtp_sink.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One connection sending participant mail until `stop()`; collects the subjects acknowledged with 250. */
async function sender(port: number, conn: number, acked: string[], stop: () => boolean): Promise<void> {
  let c: SmtpClient;
  try {
    c = await SmtpClient.connect(port);
  } catch {
    return;
  }
  try {
    if ((await c.reply()).code !== 220) return;
    if ((await c.cmd("EHLO api.front.test")).code !== 250) return;
    for (let i = 0; !stop(); i++) {
      if ((await c.cmd("MAIL FROM:<api@front.test>")).code !== 250) return;
      if ((await c.cmd(`RCPT TO:<p${conn}.${i}@participants.example>`)).code !== 250) return;
      if ((await c.cmd("DATA")).code !== 354) return;
      const subject = `m-${conn}-${i}`;
      const r = await c.cmd(`Subject: ${subject}\r\n\r\nPassword: secret-${conn}-${i}\r\n.`);
      if (r.code !== 250) return;
      acked.push(subject);
    }
  } catch {
    // killed
  } finally {
    c.close();
  }
}

Deno.test("kill -9 while participant mail is queued for a relay that is down: after a restart every acknowledged message is relayed", async () => {
  const relayPort = freePort();
  const root = await makeRoot(
    ENV_YAML.replace(
      "  accept_unsigned: true\n",
      `  accept_unsigned: true\n  relay: 127.0.0.1:${relayPort}\n`,
    ),
  );
  const spool = join(root, "spool");
  let child: ListenProcess | undefined;
  let sink: SmtpSink | undefined;
  try {
    child = await spawnListen(root, [
      "--health",
      "none",
      "--spool",
      spool,
      "--record-to",
      join(root, "sink"),
    ]);
    const acked: string[] = [];
    let killed = false;
    const senders = Array.from({ length: 4 }, (_, k) => sender(child!.port, k, acked, () => killed));
    await waitFor(() => acked.length >= 40, 60_000, "40 acknowledged messages");
    child.proc.kill("SIGKILL");
    killed = true;
    assertEquals((await child.proc.status).signal, "SIGKILL");
    await child.proc.stderr.cancel().catch(() => {});
    await Promise.all(senders);
    const ackedAtKill = [...acked];
    child = undefined;

    sink = await startSmtpSink(join(root, "relay-sink"), relayPort);
    child = await spawnListen(root, [
      "--health",
      "none",
      "--spool",
      spool,
      "--record-to",
      join(root, "sink"),
    ]);
    const got = await waitFor(
      async () => {
        const subjects = new Set((await sink!.messages()).map((m) => m.subject));
        return ackedAtKill.every((s) => subjects.has(s)) ? subjects : undefined;
      },
      60_000,
      "every acknowledged message at the relay",
    );
    assert(got.size >= ackedAtKill.length);
    child.proc.kill("SIGTERM");
    assertEquals((await child.proc.status).code, 0);
    await child.proc.stderr.cancel().catch(() => {});
    const logs = child.lines.join("\n");
    assert(!logs.includes("participants.example"), "no participant address in the logs");
    assert(!logs.includes("secret-"), "no message body in the logs");
    child = undefined;
  } finally {
    if (child) {
      try {
        child.proc.kill("SIGKILL");
      } catch { /* gone */ }
      await child.proc.status;
      await child.proc.stderr.cancel().catch(() => {});
    }
    await sink?.close();
    await Deno.remove(root, { recursive: true });
  }
});
