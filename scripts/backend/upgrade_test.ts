// Upgrading a backend with `wod install` while a student works: a student with a running kernel; a
// role default changes (in a temporary copy of ansible/, never the real role); --check names the
// change and changes nothing; the backend is stale for drift and apply refuses it; the install applies
// it (the hub restarts) and the student's server process, its kernel and the kernel's state survive;
// then nothing is stale and a second run has nothing to do.
// It runs on a sandbox of its own (WOD_SANDBOX_DIR + "-upgrade", brought up cold and taken down again)
// in a child `deno test`, so the hub restart never disturbs the tests sharing the main sandbox.
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { loadConfig } from "../config/load.ts";
import { REPO_ROOT, sandboxEnvYaml } from "../config/testing.ts";
import { JupyterServer, KernelChannel } from "../content/kernel.ts";
import { ANSIBLE_DIR } from "./ansible.ts";
import { HubClient, hubFetch, HubSession } from "./hub.ts";
import { installBackend, installStatus } from "./install.ts";
import { installTargets, requireCurrentInstall, staleBackends } from "./install_targets.ts";
import { ensureSandbox, SANDBOX_DIR, sandboxSsh } from "./sandbox.ts";
import { runSeatTasks } from "./seats.ts";

const isRoot = Deno.uid() === 0;
const CHILD = Deno.env.get("WOD_UPGRADE_TEST_CHILD") === "1";
const SCENARIO = "upgrade scenario on its own sandbox";
const WORKSHOP = "WKSHP-Shell101";
const SEAT = 30;
const USER = `student${SEAT}`;

Deno.test({
  name:
    "wod install upgrades a backend without stopping a student's server or kernel; drift then shows no stale backend",
  ignore: !isRoot || CHILD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const env = { WOD_SANDBOX_DIR: `${SANDBOX_DIR}-upgrade`, WOD_UPGRADE_TEST_CHILD: "1" };
    try {
      const out = await exec(
        Deno.execPath(),
        [
          "test",
          "-A",
          "--config",
          join(REPO_ROOT, "deno.json"),
          "--filter",
          SCENARIO,
          new URL(import.meta.url).pathname,
        ],
        { env, inherit: DENO_CHILD_INHERIT, allowFailure: true, cwd: REPO_ROOT },
      );
      assertEquals(out.code, 0, `the upgrade scenario failed:\n${(out.stdout + out.stderr).slice(-6000)}`);
      assertMatch(out.stdout, /1 passed/);
      // What each install run reported (the step lines are in the child's output).
      for (const l of out.stdout.split("\n")) if (/^\[jup1\] (changed|would|nothing)/.test(l)) console.log(l);
    } finally {
      await exec(Deno.execPath(), ["run", "-A", join(REPO_ROOT, "scripts/wod.ts"), "sandbox", "down"], {
        env,
        inherit: DENO_CHILD_INHERIT,
        allowFailure: true,
      });
    }
  },
});

/**
 * The sandboxes of this machine share one apt archive cache: an install running in another one holds
 * its lock for a while, so the cold install is retried (a re-run of `up` installs what is missing).
 */
async function sandboxWithRetry(log: (l: string) => void) {
  for (let attempt = 1;; attempt++) {
    try {
      return await ensureSandbox(log);
    } catch (err) {
      if (attempt >= 4 || !/Could not get lock/.test((err as Error).message)) throw err;
      log(`apt cache busy (another sandbox installing), retrying in 20 s (attempt ${attempt})`);
      await new Promise((r) => setTimeout(r, 20_000));
    }
  }
}

async function singleUserPids(info: Awaited<ReturnType<typeof ensureSandbox>>): Promise<string> {
  const r = await sandboxSsh(info, ["pgrep", "-u", USER, "-f", "jupyterhub-singleuser"]);
  return r.stdout.trim().split("\n").sort().join(",");
}

Deno.test({
  name: SCENARIO,
  ignore: !isRoot || !CHILD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const log = (l: string) => console.log(l);
    const info = await sandboxWithRetry(log);
    const root = await Deno.makeTempDir({ prefix: "wod-upgrade-" });
    const ansible = join(await Deno.makeTempDir({ prefix: "wod-upgrade-ansible-" }), "ansible");
    try {
      await Deno.mkdir(join(root, "environments"));
      await Deno.writeTextFile(
        join(root, "environments/local.yaml"),
        sandboxEnvYaml({ [WORKSHOP]: [SEAT, SEAT] }) + "install:\n  auto: false\n",
      );
      await Deno.mkdir(join(root, "workshops"));
      await exec("cp", ["-a", join(REPO_ROOT, "workshops", WORKSHOP), join(root, "workshops", WORKSHOP)]);
      const cfg = await loadConfig(root);
      const [target] = await installTargets(cfg, "local");
      assert(!(await installStatus(target)).stale, "the freshly installed sandbox is stale");

      // A student with a running kernel holding some state.
      const [created] = await runSeatTasks({
        config: cfg,
        env: "local",
        backend: "jup1",
        tasks: [{ action: "CREATE", workshop: WORKSHOP, seat: SEAT }],
      });
      assert(created.ok && created.password, `CREATE failed: ${created.error}`);
      const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
      const session = new HubSession(info.hub_url, USER);
      assert(await session.login(created.password!), "the student cannot log in");
      await hub.requestServerStart(USER);
      const tok = await hubFetch(`${info.hub_url}/hub/api/users/${USER}/tokens`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ auth: { username: USER, password: created.password }, expires_in: 3600 }),
      });
      assertEquals(tok.status, 201);
      const { token } = await tok.json() as { token: string };
      const server = new JupyterServer(`${info.hub_url}/user/${USER}`, token);
      await server.waitReady(90_000);
      const k = await server.request<{ id: string }>("POST", "/kernels", { name: "python3" });
      assertEquals(k.status, 201);
      const kernelId = k.body.id;
      const ch = await KernelChannel.open(server, kernelId, 60_000);
      assertEquals((await ch.execute("x = 41", 30_000)).status, "ok");
      ch.close();
      const pidsBefore = await singleUserPids(info);
      assert(pidsBefore.length > 0, "no single-user server process");

      // A role default changes in a copy of ansible/ (a hub setting: the upgrade restarts the hub).
      await exec("cp", ["-a", ANSIBLE_DIR, ansible]);
      const defaults = join(ansible, "roles/wod_backend/defaults/main.yml");
      const text = await Deno.readTextFile(defaults);
      assert(text.includes("wod_backend_hub_concurrent_spawn_limit: 20"), "the default to change is gone");
      await Deno.writeTextFile(
        defaults,
        text.replace(
          "wod_backend_hub_concurrent_spawn_limit: 20",
          "wod_backend_hub_concurrent_spawn_limit: 19",
        ),
      );

      // --check names the change and changes nothing.
      const check = await installBackend({ target, ansibleDir: ansible, check: true, logDir: null, log });
      assert(check.ok, `check failed: ${check.error}`);
      assert(check.changedTasks.includes("Configure JupyterHub"), check.changedTasks.join("; "));
      assert(check.changedTasks.includes("Record the install"), check.changedTasks.join("; "));
      assert(!(await installStatus(target)).stale, "--check changed the install record");

      // Stale for drift; apply refuses seat actions there (install.auto is false in this environment).
      const stale = await staleBackends(cfg, "local", { ansibleDir: ansible });
      assert(stale[0].stale && stale[0].codeStale, stale[0].detail);
      await assertRejects(
        () =>
          requireCurrentInstall({ root, config: cfg, env: "local", backends: ["jup1"], ansibleDir: ansible }),
        /Refusing seat actions on stale backend\(s\) of "local": jup1 .*wod install --env local/,
      );

      // The upgrade: the hub restarts, the student's server and kernel do not.
      const logDir = join(root, ".wod/install/local");
      const up = await installBackend({ target, ansibleDir: ansible, logDir, log });
      assert(up.ok, `install failed: ${up.error}`);
      assert(up.changedTasks.includes("Configure JupyterHub"), up.changedTasks.join("; "));
      assert(
        up.changedTasks.some((t) => /Restart/.test(t)),
        `the hub was not restarted: ${up.changedTasks.join("; ")}`,
      );
      assertEquals((await Deno.stat(up.logFile!)).mode! & 0o777, 0o600);
      assertEquals(await singleUserPids(info), pidsBefore, "the student's server process was restarted");
      const kernels = await server.request<{ id: string }[]>("GET", "/kernels");
      assertEquals(kernels.status, 200, "the student's server is not routed after the hub restart");
      assert(kernels.body.some((x) => x.id === kernelId), "the kernel is gone");
      const again = await KernelChannel.open(server, kernelId, 60_000);
      const r = await again.execute("print(x + 1)", 30_000);
      again.close();
      assertEquals(r.status, "ok");
      assertMatch(JSON.stringify(r.outputs), /42/);
      // The new default is live in the hub's configuration.
      const conf = await sandboxSsh(info, [
        "grep",
        "concurrent_spawn_limit",
        "/etc/jupyterhub/jupyterhub_config.py",
      ]);
      assertMatch(conf.stdout, /= 19$/m);

      // Current now: drift shows no stale backend, apply goes on, and a second run has nothing to do.
      assertEquals((await staleBackends(cfg, "local", { ansibleDir: ansible })).filter((s) => s.stale), []);
      await requireCurrentInstall({
        root,
        config: cfg,
        env: "local",
        backends: ["jup1"],
        ansibleDir: ansible,
      });
      const noop = await installBackend({ target, ansibleDir: ansible, logDir: null, log });
      assert(noop.ok && noop.changed === 0, `second run changed: ${noop.changedTasks.join("; ")}`);
    } finally {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(join(ansible, ".."), { recursive: true }).catch(() => {});
    }
  },
});
