// wod install without a host: the environment -> variable table, the step log built from the callback's
// events, and the staleness decisions of drift and apply (install record read through an injected reader).
import { assert, assertEquals, assertMatch, assertRejects } from "../common/assert.ts";
import { join } from "node:path";
import { edit, withFixture } from "../config/testing.ts";
import { loadConfig } from "../config/load.ts";
import { ANSIBLE_DIR } from "./ansible.ts";
import { installFingerprint } from "./fingerprint.ts";
import {
  environmentInstallVars,
  formatStep,
  type InstallRecord,
  installStatus,
  StepTracker,
} from "./install.ts";
import {
  formatStale,
  installTargets,
  requireCurrentInstall,
  sharedMasterOptions,
  staleBackends,
} from "./install_targets.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6lqmkdM8bY0vB6ZOF6Kw0fj3dqQ3Vf7C1fNw0bq1Nq ops@example";

Deno.test("every install value comes from the environment file: pool, uid base, admin, keys, fqdn, hub URL", async () => {
  await withFixture(async (root) => {
    await edit(
      root,
      "environments/test.yaml",
      "name: test\n",
      `name: test\nadmin_user: ops\nadmin_ssh_keys: ["${KEY}"]\n`,
    );
    await edit(
      root,
      "environments/test.yaml",
      "    students: [1, 50]\n",
      "    students: [5, 50]\n    uid_base: 3000\n    fqdn: b1.example.org\n    hub_url: https://b1.example.org\n    ssh_user: deploy\n",
    );
    const cfg = await loadConfig(root);
    const env = cfg.environments.get("test")!.value;
    assertEquals(environmentInstallVars(env, env.backends[0]), {
      wod_backend_admin_user: "ops",
      wod_install_admin_ssh_keys: [KEY],
      wod_backend_students_first: 5,
      wod_backend_students_last: 50,
      wod_backend_uid_base: 3000,
      wod_backend_fqdn: "b1.example.org",
      wod_backend_hub_url: "https://b1.example.org",
    });
    const [t] = await installTargets(cfg, "test", ["b1"]);
    assertEquals([t.host.user, t.host.host, t.host.port], ["deploy", "127.0.0.1", 22]);
    await assertRejects(() => installTargets(cfg, "test", ["nope"]), /Unknown backend "nope"/);
  });
});

Deno.test("the step log groups tasks by task file, times each step and names what changed or failed", () => {
  let t = 0;
  const lines: string[] = [];
  const st = new StepTracker((s) => lines.push(formatStep("jup1", s, false)), () => t);
  const ev = (o: Record<string, unknown>) => st.event(JSON.stringify(o));
  const start = (task: string, path: string, action = "ansible.builtin.copy") =>
    ev({ event: "task_start", task, path, action });
  const done = (task: string, status: string, result: Record<string, unknown>) =>
    ev({ event: "task", task, host: "jup1", status, result });
  start("Gathering Facts", "/x/install.yml:6", "gather_facts");
  t = 1000;
  done("Gathering Facts", "ok", {});
  start(
    "wod_backend : Install packages",
    "/x/roles/wod_backend/tasks/main.yml:9",
    "ansible.builtin.include_tasks",
  );
  t = 1500;
  start("wod_backend : Install apt packages", "/x/roles/wod_backend/tasks/packages.yml:2");
  done("wod_backend : Install apt packages", "ok", { changed: true });
  t = 2500;
  start("wod_backend : Hold them", "/x/roles/wod_backend/tasks/packages.yml:9");
  done("wod_backend : Hold them", "ok", { changed: false });
  t = 4000;
  start("wod_backend : Skipped one", "/x/roles/wod_backend/tasks/other.yml:1");
  done("wod_backend : Skipped one", "skipped", {});
  t = 4200;
  start(
    "wod_backend : Wait for the hub API",
    "/x/roles/wod_backend/tasks/main.yml:40",
    "ansible.builtin.uri",
  );
  t = 5200;
  done("wod_backend : Wait for the hub API", "failed", { msg: "timed out" });
  ev({ event: "stats", stats: {} });
  assertEquals(lines, [
    "[jup1] Gathering Facts: ok (1 task, 1.0 s)",
    "[jup1] wod_backend/packages: changed: Install apt packages (2 tasks, 2.5 s)",
    "[jup1] Wait for the hub API: FAILED (Wait for the hub API: timed out) (1 task, 1.0 s)",
  ]);
  assertEquals(
    StepTracker.stepName("/a/roles/wod_install/tasks/record.yml:3", "x").name,
    "wod_install/record",
  );
});

Deno.test("install status: no record, the same fingerprint, changed values, changed code", async () => {
  await withFixture(async (root) => {
    const cfg = await loadConfig(root);
    const [t] = await installTargets(cfg, "test", ["b1"]);
    const fp = await installFingerprint(ANSIBLE_DIR, t.vars);
    const none = await installStatus(t, ANSIBLE_DIR, () => Promise.resolve(undefined));
    assert(none.stale && none.codeStale);
    assertMatch(none.detail, /never installed by wod install/);
    const current: InstallRecord = {
      fingerprint: fp.fingerprint,
      code: fp.code,
      values_hash: fp.values,
      values: t.vars,
    };
    const same = await installStatus(t, ANSIBLE_DIR, () => Promise.resolve(current));
    assert(!same.stale);
    const oldValues = { ...t.vars, wod_backend_students_last: 40 };
    const values = await installStatus(
      t,
      ANSIBLE_DIR,
      () => Promise.resolve({ ...current, fingerprint: "f0", values_hash: "v0", values: oldValues }),
    );
    assert(values.stale && !values.codeStale);
    assertMatch(values.detail, /environment values changed \(wod_backend_students_last\)/);
    const code = await installStatus(
      t,
      ANSIBLE_DIR,
      () => Promise.resolve({ ...current, fingerprint: "f0", code: "c0" }),
    );
    assert(code.stale && code.codeStale);
    assertMatch(code.detail, /roles, install.yml or the seat script changed/);
    const lines = formatStale("test", [none, same, code]);
    assertEquals(lines.length, 2);
    assertMatch(lines[0], /^b1: stale-install: .*\(fix: deno task wod install --env test --backend b1\)$/);
  });
});

Deno.test("apply refuses seat actions on a backend with older roles or seat script, naming the fix", async () => {
  await withFixture(async (root) => {
    const cfg = await loadConfig(root);
    const [t] = await installTargets(cfg, "test", ["b1"]);
    const fp = await installFingerprint(ANSIBLE_DIR, t.vars);
    const logs: string[] = [];
    const old = () => Promise.resolve({ fingerprint: "f0", code: "c0", values_hash: fp.values });
    const err = await assertRejects(
      () =>
        requireCurrentInstall({
          root,
          config: cfg,
          env: "test",
          backends: ["b1"],
          read: old,
          log: (l) => logs.push(l),
        }),
    );
    assertMatch((err as Error).message, /Refusing seat actions on stale backend\(s\) of "test": b1 \(/);
    assertMatch((err as Error).message, /deno task wod install --env test/);
    // Only values differ (e.g. a wider pool): reported, not blocking.
    const valuesOnly = () =>
      Promise.resolve({
        fingerprint: "f0",
        code: fp.code,
        values_hash: "v0",
        values: { ...t.vars, wod_backend_uid_base: 1 },
      });
    const current = await requireCurrentInstall({
      root,
      config: cfg,
      env: "test",
      backends: ["b1"],
      read: valuesOnly,
      log: (l) => logs.push(l),
    });
    assertMatch(logs.join("\n"), /b1: install values differ .*wod_backend_uid_base/);
    // Its code is this repository's: named current (the seat run need not copy the seat script).
    assertEquals(current, ["b1"]);
    // An unreachable backend is left to the seat run (which fails and retries on its own).
    const unchecked = await requireCurrentInstall({
      root,
      config: cfg,
      env: "test",
      backends: ["b1"],
      read: () => Promise.reject(new Error("ssh: connect refused")),
      log: (l) => logs.push(l),
    });
    assertMatch(logs.join("\n"), /b1: install record not checked: ssh: connect refused/);
    // ... and is not named current: its seat run copies the seat script again.
    assertEquals(unchecked, []);
    const st = await staleBackends(cfg, "test", { read: old });
    assertEquals(st.map((s) => [s.backend, s.stale]), [["b1", true], ["b2", true]]);
  });
});

Deno.test("the install-record read joins ansible's SSH control master (same socket name as ansible.cfg)", async () => {
  const home = await Deno.makeTempDir();
  try {
    const opts = await sharedMasterOptions(home);
    const dir = join(home, ".ansible", "cp");
    assertEquals(opts, [
      "-o",
      "ControlMaster=auto",
      "-o",
      "ControlPersist=60s",
      "-o",
      `ControlPath=${dir}/wod-%C`,
    ]);
    assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
    const cfg = await Deno.readTextFile(join(ANSIBLE_DIR, "ansible.cfg"));
    assertMatch(cfg, /^control_path = %\(directory\)s\/wod-%%C$/m);
    assertMatch(cfg, /ControlPersist=60s/);
    assertEquals(await sharedMasterOptions(""), []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
