// The Ansible role wod_listener, applied for real with ansible-playbook (local connection, service
// manager "none" so no systemd is needed), renders a unit whose ExecStart/Environment/EnvironmentFile
// actually start a working listener: an original-format order sent to it lands in the git state store.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec, spawn } from "../common/exec.ts";
import { openStore } from "../state/store.ts";
import { fireAndClose, makeRoot, originalBytes, TEST_HMAC_ENV, waitFor } from "./testing.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("the wod_listener role installs a unit that runs a working listener", async () => {
  const tmp = await makeRoot(); // environments/t.yaml + workshops: the checkout's config
  let proc: Deno.ChildProcess | undefined;
  try {
    // A checkout: the config of the temp root plus the code of this repository (symlinks).
    for (const f of ["scripts", "deno.json", "deno.lock", "node_modules", "schemas"]) {
      await Deno.symlink(join(REPO, f), join(tmp, f));
    }
    const play = join(tmp, "play.yml");
    await Deno.writeTextFile(
      play,
      `- name: Install the listener
  hosts: all
  gather_facts: false
  roles:
    - role: wod_listener
      vars:
        wod_listener_env: t
        wod_listener_repo_dir: ${tmp}
        wod_listener_deno_path: ${Deno.execPath()}
        wod_listener_create_user: false
        wod_listener_user: root
        wod_listener_group: root
        wod_listener_listen: "127.0.0.1:0"
        wod_listener_health: "127.0.0.1:0"
        wod_listener_spool_dir: ${tmp}/spool
        wod_listener_config_dir: ${tmp}/etc
        wod_listener_systemd_dir: ${tmp}
        wod_listener_service_manager: none
        wod_listener_hmac_secret: role-test-key-not-a-secret
        wod_listener_hmac_secret_env: ${TEST_HMAC_ENV}
`,
    );
    const env = {
      ...Deno.env.toObject(),
      ANSIBLE_ROLES_PATH: join(REPO, "ansible", "roles"),
      ANSIBLE_CONFIG: join(REPO, "ansible", "ansible.cfg"),
      ANSIBLE_LOCALHOST_WARNING: "false",
      ANSIBLE_NOCOLOR: "1",
    };
    const run = await exec("ansible-playbook", ["-i", "localhost,", "-c", "local", play], {
      env,
      allowFailure: true,
    });
    assertEquals(run.code, 0, run.stdout + run.stderr);
    assert(!run.stdout.includes("role-test-key"), "the secret is not printed");
    const again = await exec("ansible-playbook", ["-i", "localhost,", "-c", "local", play], { env });
    assertMatch(again.stdout, /changed=0\b/, "idempotent");
    const envFile = join(tmp, "etc", "t.env");
    assertEquals((await Deno.stat(envFile)).mode! & 0o777, 0o640);
    // Start the service the way systemd would: WorkingDirectory, Environment, EnvironmentFile, ExecStart.
    const unit = await Deno.readTextFile(join(tmp, "wod-listener.service"));
    const val = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]);
    const svcEnv: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    for (const e of val("Environment")) {
      const i = e.indexOf("=");
      svcEnv[e.slice(0, i)] = e.slice(i + 1);
    }
    for (const line of (await Deno.readTextFile(val("EnvironmentFile")[0].replace(/^-/, ""))).split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (m) svcEnv[m[1]] = m[2];
    }
    assertEquals(svcEnv[TEST_HMAC_ENV], "role-test-key-not-a-secret");
    assertMatch(svcEnv.DENO_DIR, /spool\/\.deno$/);
    // The test reuses this machine's Deno cache (a fresh one would fetch npm metadata again).
    const info = JSON.parse((await exec(Deno.execPath(), ["info", "--json"])).stdout);
    svcEnv.DENO_DIR = Deno.env.get("DENO_DIR") ?? info.denoDir;
    const [cmd, ...args] = val("ExecStart")[0].split(" ");
    // Exactly the unit's environment, as systemd would give it.
    proc = spawn(cmd, args, { env: svcEnv, bare: true, cwd: val("WorkingDirectory")[0], stderr: "inherit" });
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    const port = await waitFor(
      async () => {
        const { value, done } = await reader.read();
        if (done) throw new Error(`listener exited: ${out}`);
        out += value;
        const m = /"event":"listening".*"smtp":"127\.0\.0\.1:(\d+)"/.exec(out);
        return m ? Number(m[1]) : undefined;
      },
      60_000,
      "the listener to start",
    );
    await fireAndClose(
      port,
      originalBytes({ subject: "CREATE 14 c14 role@example.com", body: "WKSHP-Test" }),
    );
    await waitFor(
      async () => {
        while (!/"event":"recorded"/.test(out)) {
          const { value, done } = await reader.read();
          if (done) return false;
          out += value;
        }
        return true;
      },
      60_000,
      "the order to be recorded",
    );
    proc.kill("SIGTERM");
    assertEquals((await proc.status).code, 0);
    reader.releaseLock();
    await proc.stdout.cancel().catch(() => {});
    proc = undefined;
    const store = await openStore(tmp, "t");
    try {
      const orders = await store.readOrders();
      assertEquals(orders.map((o) => [o.action, o.seats[0], o.customer]), [["CREATE", 14, "c14"]]);
    } finally {
      await store.close();
    }
  } finally {
    if (proc) {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
      await proc.status;
      await proc.stdout.cancel().catch(() => {});
    }
    await Deno.remove(tmp, { recursive: true });
  }
});
