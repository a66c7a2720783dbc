// The listener under a flood (issue 11, finding 1), as a real `wod listen` process under `ulimit -n 128`:
// connections from an address outside orders.networks that send bytes, idle connections from it held
// open (more than the descriptor limit), and idle sessions from allowed addresses that fill the
// descriptor budget. Afterwards: descriptors back to the baseline, an order from the allowed address
// accepted within 5 s, /health unhealthy (503) while the listener was full, SIGTERM done within 10 s
// with the spool drained.
import * as net from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { ENV_YAML, makeRoot, recordedIds, sendMessage, spawnListen, waitFor } from "./testing.ts";

const NOFILE = 128;

function descriptors(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Connect from `localAddress`; write `bytes` (if any); resolve with the first reply line ("" if none) once closed or after `holdMs`. */
function client(
  port: number,
  localAddress: string,
  bytes: string | undefined,
  holdMs: number,
  keep?: net.Socket[],
): Promise<string> {
  return new Promise((resolve) => {
    let first = "";
    const s = net.connect({ port, host: "127.0.0.1", localAddress });
    keep?.push(s);
    const timer = setTimeout(() => {
      if (!keep) s.destroy();
      resolve(first);
    }, holdMs);
    s.on("connect", () => {
      if (bytes) s.write(bytes);
    });
    s.on("data", (d: Buffer) => {
      if (!first) first = d.toString("latin1").split("\r\n")[0];
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve(first);
    });
  });
}

Deno.test({
  name:
    "a flood from outside the networks and idle sessions past the descriptor limit do not wedge the listener",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await makeRoot(
      ENV_YAML.replace("networks: [127.0.0.1/32]", "networks: [127.0.0.1/32, 127.0.1.0/24]"),
    );
    const spool = join(root, "spool");
    const sink = join(root, "sink");
    const lp = await spawnListen(root, [
      "--health",
      "127.0.0.1:0",
      "--spool",
      spool,
      "--record-to",
      sink,
      "--max-connections",
      "1000",
    ], { nofile: NOFILE });
    const pid = lp.proc.pid;
    const held: net.Socket[] = [];
    const health: { at: number; code: number; status?: string; problems?: string[] }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const at = Date.now();
        try {
          const r = await fetch(`http://127.0.0.1:${lp.healthPort}/health`, {
            signal: AbortSignal.timeout(1500),
          });
          const h = await r.json();
          health.push({ at, code: r.status, status: h.status, problems: h.problems });
        } catch {
          health.push({ at, code: 0 });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 500));
      const baseline = descriptors(pid);

      // 1. 300 connections from 127.0.0.2 (outside orders.networks), each sending bytes.
      const replies: string[] = [];
      for (let batch = 0; batch < 6; batch++) {
        replies.push(
          ...await Promise.all(
            Array.from(
              { length: 50 },
              () => client(lp.port, "127.0.0.2", "EHLO flood.test\r\nMAIL FROM:<ceo@front.test>\r\n", 3000),
            ),
          ),
        );
      }
      assert(
        replies.every((r) => r === "" || /^(554|421) /.test(r)),
        `outside connections are refused: ${[...new Set(replies)].join(" | ")}`,
      );
      assert(replies.some((r) => /^554 5\.7\.1 Client address 127\.0\.0\.2 is not allowed/.test(r)));

      // 2. 200 idle connections from 127.0.0.2, more than the descriptor limit: all closed by the server.
      const idle = await Promise.all(
        Array.from({ length: 200 }, () => client(lp.port, "127.0.0.2", undefined, 5000)),
      );
      assertEquals(idle.length, 200);
      await waitFor(
        () => descriptors(pid) < baseline + 20,
        2_000,
        `refused sockets released (${descriptors(pid)} descriptors, baseline ${baseline})`,
      );

      // 3. Idle sessions from 150 allowed addresses (127.0.1.x) hold more descriptors than the limit leaves.
      const greetings = await Promise.all(
        Array.from({ length: 150 }, (_, i) => client(lp.port, `127.0.1.${i + 1}`, undefined, 1500, held)),
      );
      const greeted = greetings.filter((g) => g.startsWith("220 ")).length;
      const busy = greetings.filter((g) => g.startsWith("421 ")).length;
      assert(greeted > 20 && greeted < 150, `sessions up to the descriptor budget: ${greeted} greeted`);
      assert(busy > 0, "connections beyond the budget are refused with 421");
      assert(descriptors(pid) < NOFILE, "never at the descriptor limit");
      const full = await waitFor(
        () => health.find((h) => h.code === 503 && h.status === "unhealthy"),
        5_000,
        "/health unhealthy while the listener is full",
      );
      assert(full.problems?.some((p) => /descriptors|accept stalled/.test(p)), JSON.stringify(full));
      for (const s of held) s.destroy();
      const floodEnd = Date.now();

      // The allowed address gets its order accepted within 5 s of the flood's end.
      let accepted = false;
      while (!accepted && Date.now() - floodEnd < 5_000) {
        const r = await sendMessage(lp.port, {
          message: "Subject: CREATE 4 77 pat@example.org\nWKSHP-Test\n",
        })
          .catch(() => ({ code: 0 }));
        accepted = r.code === 250;
        if (!accepted) await new Promise((r) => setTimeout(r, 100));
      }
      assert(accepted, "an order from 127.0.0.1 is accepted within 5 s of the flood's end");
      await waitFor(() => descriptors(pid) <= baseline + 10, 5_000, `descriptors back near ${baseline}`);
      const ok = await waitFor(
        () => health.find((h) => h.at > floodEnd + 1000 && h.code === 200),
        5_000,
        "/health ok again",
      );
      assertEquals(ok.status, "ok");

      // SIGTERM: done within 10 s, the spool drained.
      polling = false;
      await poller;
      const t0 = Date.now();
      lp.proc.kill("SIGTERM");
      const status = await lp.proc.status;
      assert(Date.now() - t0 < 10_000, `SIGTERM took ${Date.now() - t0} ms`);
      assertEquals(status.code, 0);
      const left = [...Deno.readDirSync(spool)].filter((e) => e.name.startsWith("seg-"));
      assertEquals(left, [], "spool drained");
      assertEquals((await recordedIds(sink)).length, 1);
    } finally {
      polling = false;
      for (const s of held) s.destroy();
      await poller;
      try {
        lp.proc.kill("SIGKILL");
      } catch { /* exited */ }
      await lp.proc.status;
      await lp.proc.stderr?.cancel().catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "SIGTERM with idle sessions and a client stuck in DATA open: done within 10 s, the spool drained",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await makeRoot();
    const spool = join(root, "spool");
    const sink = join(root, "sink");
    const lp = await spawnListen(root, ["--health", "none", "--spool", spool, "--record-to", sink]);
    const held: net.Socket[] = [];
    try {
      const r = await sendMessage(lp.port, { message: "Subject: CREATE 5 78 pat@example.org\nWKSHP-Test\n" });
      assertEquals(r.code, 250);
      const greeted = await Promise.all(
        Array.from({ length: 20 }, () => client(lp.port, "127.0.0.1", undefined, 300, held)),
      );
      assert(greeted.every((g) => g.startsWith("220 ")));
      const stuck = net.connect(lp.port, "127.0.0.1");
      stuck.on("error", () => {});
      held.push(stuck);
      stuck.write(
        "HELO c.test\r\nMAIL FROM:<api@front.test>\r\nRCPT TO:<wodadmin@b1.test>\r\nDATA\r\nSubject: CREATE 6 79",
      );
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      lp.proc.kill("SIGTERM");
      const status = await lp.proc.status;
      assert(Date.now() - t0 < 10_000, `SIGTERM took ${Date.now() - t0} ms`);
      assertEquals(status.code, 0);
      assertEquals([...Deno.readDirSync(spool)].filter((e) => e.name.startsWith("seg-")), []);
      assertEquals((await recordedIds(sink)).length, 1);
      assert(lp.lines.some((l) => l.includes('"stopped"')));
    } finally {
      for (const s of held) s.destroy();
      try {
        lp.proc.kill("SIGKILL");
      } catch { /* exited */ }
      await lp.proc.status;
      await lp.proc.stderr?.cancel().catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
