// Crash test: `wod listen` is killed with SIGKILL during a burst of orders; after a restart every
// acknowledged order is recorded exactly once. Also: SIGTERM stops it gracefully (exit 0, spool drained).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { openStore } from "../state/store.ts";
import { type ListenProcess, makeRoot, recordedIds, SmtpClient, spawnListen, waitFor } from "./testing.ts";

/** `wod listen` as a child process; `sink` a DirSink directory, or undefined for the git state store. */
function startCli(root: string, spool: string, sink?: string): Promise<ListenProcess> {
  return spawnListen(root, ["--health", "none", "--spool", spool, ...(sink ? ["--record-to", sink] : [])]);
}

/** One connection sending orders back to back until `stop()`; collects the acknowledged ids. */
async function sender(port: number, conn: number, acked: string[], stop: () => boolean): Promise<void> {
  let c: SmtpClient;
  try {
    c = await SmtpClient.connect(port);
  } catch {
    return;
  }
  try {
    if ((await c.reply()).code !== 220) return;
    if ((await c.cmd("HELO burst.test")).code !== 250) return;
    for (let i = 0; !stop(); i++) {
      if ((await c.cmd("MAIL FROM:<api@front.test>")).code !== 250) return;
      if ((await c.cmd("RCPT TO:<wodadmin@b1.test>")).code !== 250) return;
      if ((await c.cmd("DATA")).code !== 354) return;
      const seat = 1 + ((conn * 7 + i) % 20);
      // One customer per seat: a CREATE for a seat another customer holds is refused before 250 (the
      // listener checks the seat's recorded state), a repeated CREATE of the holder is taken.
      const r = await c.cmd(
        `Subject: CREATE ${seat} k${seat} u${conn}.${i}@example.com\r\n\r\nWKSHP-Test\r\n.`,
      );
      if (r.code !== 250) return;
      const m = /Order (\S+) accepted/.exec(r.text);
      if (m) acked.push(m[1]);
    }
  } catch {
    // the listener was killed: stop
  } finally {
    c.close();
  }
}

/**
 * Senders on `conns` connections until `min` orders are acknowledged, then SIGKILL to `child`: the ids
 * acknowledged by the time every sender stopped, and the child's exit status.
 */
async function killDuringBurst(
  child: ListenProcess,
  conns: number,
  min: number,
): Promise<{ acked: string[]; status: Deno.CommandStatus }> {
  const acked: string[] = [];
  let killed = false;
  const senders = Array.from({ length: conns }, (_, k) => sender(child.port, k, acked, () => killed));
  await waitFor(() => acked.length >= min, 60_000, `${min} acknowledged orders`);
  child.proc.kill("SIGKILL");
  killed = true;
  const status = await child.proc.status;
  await Promise.all(senders);
  return { acked: [...acked], status };
}

/** Clean-up after a failure: kills a child still running and waits for it. */
async function killLeftover(child: ListenProcess | undefined): Promise<void> {
  if (!child) return;
  try {
    child.proc.kill("SIGKILL");
  } catch { /* gone */ }
  await child.proc.status;
  await child.proc.stderr.cancel().catch(() => {});
}

Deno.test("kill -9 during a burst: after a restart every acknowledged order is recorded exactly once", async () => {
  const root = await makeRoot();
  const spool = join(root, "spool");
  const sink = join(root, "sink");
  let child: ListenProcess | undefined;
  try {
    child = await startCli(root, spool, sink);
    const { acked: ackedAtKill, status } = await killDuringBurst(child, 8, 300);
    assertEquals(status.signal, "SIGKILL");
    child = await startCli(root, spool, sink);
    const recorded = await waitFor(
      async () => {
        const ids = await recordedIds(sink);
        const set = new Set(ids);
        return ackedAtKill.every((id) => set.has(id)) ? ids : undefined;
      },
      60_000,
      "every acknowledged order recorded",
    );
    await waitFor(
      async () => {
        for await (const e of Deno.readDir(spool)) if (e.name.startsWith("seg-")) return false;
        return true;
      },
      30_000,
      "empty spool",
    );
    const ids = await recordedIds(sink);
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    assertEquals(twice, [], "no order recorded twice");
    assert(
      recorded.length >= ackedAtKill.length,
      `${recorded.length} recorded >= ${ackedAtKill.length} acked`,
    );
    // Graceful stop: SIGTERM -> exit 0 with a "stopped" log line.
    child.proc.kill("SIGTERM");
    const st2 = await child.proc.status;
    assertEquals(st2.code, 0);
    await child.proc.stderr.cancel();
    assert(child.lines.some((l) => l.includes('"event":"stopped"')), "stopped logged");
    assert(child.lines.every((l) => !l.includes("example.com")), "no email address in the logs");
    child = undefined;
  } finally {
    await killLeftover(child);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("kill -9 during a burst with the git state store: every acknowledged order is in the store after a restart", async () => {
  const root = await makeRoot();
  const spool = join(root, "spool");
  let child: ListenProcess | undefined;
  try {
    child = await startCli(root, spool);
    const { acked: ackedAtKill } = await killDuringBurst(child, 4, 60);
    child = await startCli(root, spool);
    const stored = await waitFor(
      async () => {
        const store = await openStore(root, "t");
        try {
          const ids = (await store.readOrders()).map((o) => o.id);
          const set = new Set(ids);
          return ackedAtKill.every((id) => set.has(id)) ? ids : undefined;
        } finally {
          await store.close();
        }
      },
      90_000,
      "every acknowledged order in the git store",
    );
    assertEquals(new Set(stored).size, stored.length, "each order once");
    child.proc.kill("SIGTERM");
    assertEquals((await child.proc.status).code, 0);
    await child.proc.stderr.cancel();
    child = undefined;
  } finally {
    await killLeftover(child);
    await Deno.remove(root, { recursive: true });
  }
});
