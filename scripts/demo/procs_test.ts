// Background processes of the demo: detached with a log file, stopped by their recorded PID only.
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { freePort, processStart, running, spawnDetached, stopProcess } from "./procs.ts";
import { spawn } from "../common/exec.ts";

Deno.test("spawnDetached: own session, output in the log, stopProcess ends exactly that PID", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-demo-procs-" });
  try {
    const log = join(dir, "p.log");
    const p = spawnDetached("sleeper", ["sh", "-c", 'echo "started $0"; exec sleep 30', "arg-one"], { log });
    assert(running(p), "the process is not running");
    const text = () => Deno.readTextFile(log).catch(() => "");
    for (let i = 0; i < 100 && !(await text()).includes("started"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals((await text()).trim(), "started arg-one");
    // setsid execs in place (checked once the program runs): the recorded PID leads its own session.
    const stat = await Deno.readTextFile(`/proc/${p.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    assertEquals(Number(fields[3]), p.pid, "the process is not a session leader");
    assertEquals(await stopProcess(p, 2_000), "stopped");
    assert(!running(p), "the process survived stopProcess");
    assertEquals(await stopProcess(p), "gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stopProcess leaves a process alone whose PID was reused (start time differs)", async () => {
  const child = spawn("sleep", ["30"], { stdout: "null", stderr: "null" });
  try {
    const start = processStart(child.pid)!;
    const wrong = { name: "other", pid: child.pid, start: String(Number(start) + 1), log: "/dev/null" };
    assertEquals(await stopProcess(wrong), "gone");
    assert(processStart(child.pid) === start, "a process that is not ours was killed");
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("freePort(true) returns a port whose successor is free too", () => {
  const p = freePort(true);
  const a = Deno.listen({ hostname: "127.0.0.1", port: p });
  const b = Deno.listen({ hostname: "127.0.0.1", port: p + 1 });
  a.close();
  b.close();
});
