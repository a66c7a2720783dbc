// wod doctor --env local: the backend checks run over SSH on the shared sandbox (a real sshd and a
// real Debian root), and a backend that is not running is one warning line, not a failure.
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { ensureSandbox } from "../backend/sandbox.ts";
import { backendChecks } from "./backend.ts";
import type { CheckResult } from "./checks.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "doctor --env local checks the running sandbox over SSH and finds it complete",
  ignore: Deno.uid() !== 0,
  async fn() {
    await ensureSandbox();
    const out = await exec(
      Deno.execPath(),
      ["run", "-A", join(ROOT, "scripts/wod.ts"), "doctor", "--env", "local", "--format", "json"],
      { cwd: ROOT, inherit: DENO_CHILD_INHERIT, allowFailure: true },
    );
    const text = out.stdout;
    const checks = (JSON.parse(text).checks as CheckResult[]).filter((c) =>
      c.scope === "backend jup1 (local)"
    );
    const names = checks.map((c) => c.name);
    for (const n of ["reachable over SSH", "os", "python3", "python: apt", "free disk /"]) {
      assert(names.includes(n), `no "${n}" check for the sandbox in ${names.join(", ")}`);
    }
    assertEquals(checks.filter((c) => c.status !== "ok").map((c) => `${c.name}: ${c.detail}`), []);
  },
});

Deno.test("an unreachable backend is one skipped warning line naming what to check", async () => {
  const checks = await backendChecks(
    ROOT,
    "test",
    {
      name: "gone",
      host: "127.0.0.1",
      ssh_port: 1,
      students: [1, 2],
    } as Parameters<typeof backendChecks>[2],
  );
  assertEquals(checks.length, 1);
  assertEquals([checks[0].status, checks[0].required], ["skipped", false]);
  assert(checks[0].detail.startsWith("not reachable: root@127.0.0.1"), checks[0].detail);
});
