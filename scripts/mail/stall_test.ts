// The accept watchdog (issue 11, finding 1): when the process runs out of descriptors, Deno's node:net
// accept loop stops for good. The listener's own caps keep clients from exhausting descriptors (see
// flood_test.ts), so here something else takes them: the test lowers the running listener's limit with
// prlimit(1) to what it already has open. SMTP clients then wait in the kernel's queue and the stall is
// logged; once the limit is back, the watchdog re-creates the listening socket and orders are accepted
// again.
import * as net from "node:net";
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { makeRoot, recordedIds, sendMessage, spawnListen, waitFor } from "./testing.ts";

Deno.test({
  name: "after descriptor exhaustion the listener accepts orders again (the watchdog re-listens)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await makeRoot();
    const spool = join(root, "spool");
    const sink = join(root, "sink");
    const lp = await spawnListen(
      root,
      ["--health", "127.0.0.1:0", "--spool", spool, "--record-to", sink],
      { nofile: 128 },
    );
    const waiting: net.Socket[] = [];
    try {
      // 1. Leave the listener no free descriptor.
      const pid = String(lp.proc.pid);
      const open = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
      await exec("prlimit", ["--pid", pid, `--nofile=${open}:`]);
      // 2. SMTP clients now wait in the kernel queue: no greeting.
      for (let i = 0; i < 5; i++) {
        const s = net.connect(lp.port, "127.0.0.1");
        s.on("error", () => {});
        waiting.push(s);
      }
      await waitFor(
        () => lp.lines.some((l) => l.includes('"accept-stalled"')),
        10_000,
        `the stall to be logged: ${lp.lines.slice(-5).join("\n")}`,
      );
      // 3. Give the descriptors back: within 5 s an order is accepted again.
      await exec("prlimit", ["--pid", pid, "--nofile=128:"]);
      const freed = Date.now();
      let accepted = false;
      while (!accepted && Date.now() - freed < 5_000) {
        const r = await Promise.race([
          sendMessage(lp.port, { message: "Subject: CREATE 4 77 pat@example.org\nWKSHP-Test\n" }),
          new Promise<{ code: number }>((r) => setTimeout(() => r({ code: 0 }), 1000)),
        ]).catch(() => ({ code: 0 }));
        accepted = r.code === 250;
      }
      assert(accepted, "an order is accepted within 5 s of the descriptors being free");
      assert(lp.lines.some((l) => l.includes('"relistened"')), "the listening socket was re-created");
      const h = await (await fetch(`http://127.0.0.1:${lp.healthPort}/health`)).json();
      assertEquals(h.relistens >= 1, true);
      lp.proc.kill("SIGTERM");
      assertEquals((await lp.proc.status).code, 0);
      assertEquals((await recordedIds(sink)).length, 1);
    } finally {
      for (const s of waiting) s.destroy();
      try {
        lp.proc.kill("SIGKILL");
      } catch { /* exited */ }
      await lp.proc.status;
      await lp.proc.stderr?.cancel().catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
