// A temporary repository root for state tests: workshops/WKSHP-Shell101 (copied from this repo) and
// environments/<env>.yaml with a sandbox backend whose range for the workshop is inside seats 40-59
// (the state area's share of the shared sandbox), recorded state on a local bare remote.
import { join } from "node:path";
import { stringify } from "yaml";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { initBare } from "../common/git.ts";
import type { Environment, Order } from "../config/types.gen.ts";

const REPO = new URL("../../", import.meta.url).pathname;

export interface StateFixture {
  root: string;
  remote: string;
  env: string;
  cleanup(): Promise<void>;
}

export async function stateFixture(opts: {
  env?: string;
  range?: [number, number];
  extra?: Partial<Environment>;
  workshopPatch?: string;
} = {}): Promise<StateFixture> {
  const root = await Deno.makeTempDir({ prefix: "wod-state-root-" });
  const env = opts.env ?? "local";
  const remote = join(root, "remote.git");
  await initBare(remote);
  await Deno.mkdir(join(root, "workshops"), { recursive: true });
  await Deno.mkdir(join(root, "environments"), { recursive: true });
  await exec("cp", [
    "-r",
    join(REPO, "workshops", "WKSHP-Shell101"),
    join(root, "workshops", "WKSHP-Shell101"),
  ]);
  if (opts.workshopPatch) {
    const f = join(root, "workshops", "WKSHP-Shell101", "workshop.yaml");
    await Deno.writeTextFile(f, (await Deno.readTextFile(f)) + opts.workshopPatch);
  }
  const value: Environment = {
    name: env,
    description: "State tests (seats 40-59 of the shared sandbox).",
    admin_user: "wodadmin",
    backends: [{
      name: "jup1",
      sandbox: true,
      host: "127.0.0.1",
      fqdn: "localhost",
      students: [1, 120],
      uid_base: 2000,
      base_stdid: 0,
      ranges: { "WKSHP-Shell101": opts.range ?? [40, 59] },
    }],
    state: { store: "git", remote, branch: "state" },
    timing: { reminder_minutes: 60, provisioning_timeout_minutes: 10 },
    ...opts.extra,
  };
  await Deno.writeTextFile(
    join(root, "environments", `${env}.yaml`),
    "# yaml-language-server: $schema=../schemas/environment.schema.json\n" + stringify(value),
  );
  return { root, remote, env, cleanup: () => Deno.remove(root, { recursive: true }) };
}

/** An order from the CLI for seat `seat` of WKSHP-Shell101 on backend jup1 of environment "local". */
export function order(id: string, action: Order["action"], seat: number, extra: Partial<Order> = {}): Order {
  return {
    id,
    action,
    env: "local",
    backend: "jup1",
    workshop: "WKSHP-Shell101",
    seats: [seat, seat],
    source: "cli",
    received: new Date().toISOString(),
    ...extra,
  };
}

/** The argv of `wod order ACTION --env ENV --workshop WKSHP-Shell101 --seat SEAT ...extra` for `fx`. */
export function orderArgs(
  fx: StateFixture,
  action: string,
  seat: number | string,
  ...extra: string[]
): string[] {
  return ["order", action, "--env", fx.env, "--workshop", "WKSHP-Shell101", "--seat", String(seat), ...extra];
}

/** Runs the CLI (`deno run -A scripts/wod.ts ...`) on `root`. */
export async function wod(root: string, args: string[], env: Record<string, string> = {}) {
  return await exec(Deno.execPath(), ["run", "-A", join(REPO, "scripts", "wod.ts"), ...args], {
    env: { WOD_ROOT: root, NO_COLOR: "1", ...env },
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
}
