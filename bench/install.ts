// `wod install` on a bare host and again on the installed one, on a sandbox of its own
// (WOD_SANDBOX_DIR + "-bench-install", taken down at the end), so the shared sandbox is not touched.
// Prints:
//   install_cold_s           bare sandbox host (fresh overlay of the debootstrap image) to ready: the
//                            install of `wod sandbox up` (packages come from the shared apt cache,
//                            not the network, once the cache is warm)
//   install_noop_s           `wod install --env local` on the installed host: "nothing to do" (CLI wall
//                            time, Deno start included)
//   install_noop_over_cold   ratio of the two (the baseline of this run)
import { join } from "node:path";
import { DENO_CHILD_INHERIT, exec } from "../scripts/common/exec.ts";

const repo = new URL("../", import.meta.url).pathname;
const base = Deno.env.get("WOD_SANDBOX_DIR") ?? "/var/lib/wod/sandbox";
const env = { WOD_SANDBOX_DIR: `${base}-bench-install` };
const wod = (args: string[]) =>
  exec(Deno.execPath(), ["run", "-A", join(repo, "scripts/wod.ts"), ...args], {
    env,
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
    cwd: repo,
  });

try {
  await wod(["sandbox", "down"]);
  let cold: number | undefined;
  for (let attempt = 1; cold === undefined; attempt++) {
    const up = await wod(["sandbox", "up"]);
    const m = up.stderr.match(/sandbox: installed in ([\d.]+) s/);
    if (up.code === 0 && m) cold = Number(m[1]);
    else {
      // The sandboxes of this machine share one apt cache: another one installing holds its lock.
      const busy = /Could not get lock/.test(up.stderr + up.stdout);
      await wod(["sandbox", "down"]);
      if (!busy || attempt >= 4) {
        throw new Error(`sandbox up failed (exit ${up.code}):\n${(up.stderr + up.stdout).slice(-3000)}`);
      }
      console.error(`apt cache busy (another sandbox installing), retrying in 20 s (attempt ${attempt})`);
      await new Promise((r) => setTimeout(r, 20_000));
    }
  }
  const t0 = performance.now();
  const noop = await wod(["install", "--env", "local"]);
  const noopS = (performance.now() - t0) / 1000;
  if (noop.code !== 0 || !/nothing to do: changed=0/.test(noop.stdout)) {
    throw new Error(`the second install was not a no-op (exit ${noop.code}):\n${noop.stdout.slice(-3000)}`);
  }
  console.log(`install_cold_s: ${cold.toFixed(1)} s`);
  console.log(`install_noop_s: ${noopS.toFixed(1)} s`);
  console.log(`install_noop_over_cold: ${(noopS / cold).toFixed(2)} ratio`);
} finally {
  await wod(["sandbox", "down"]);
}
