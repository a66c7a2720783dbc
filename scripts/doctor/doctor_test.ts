// wod doctor: its table covers what the code uses, and it names the missing package.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { ansibleUses } from "./ansible_uses.ts";
import { ANSIBLE_PLUGINS, compareVersions, REQUIREMENTS } from "./checks.ts";
import { parseRemote, REMOTE_SCRIPT } from "./backend.ts";
import type { CheckResult } from "./checks.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("every module, lookup and callback ansible/ and the runner name is in doctor's plugin table", async () => {
  const table = new Set(ANSIBLE_PLUGINS.map((p) => `${p.kind}:${p.name}`));
  const used = await ansibleUses(ROOT);
  assert(used.some((u) => u.kind === "module"), "the scan found no module at all");
  const unchecked = used.filter((u) => !table.has(`${u.kind}:${u.name}`))
    .map((u) => `${u.kind} ${u.name} (${u.files.join(", ")})`);
  assertEquals(
    unchecked,
    [],
    "add these to ANSIBLE_PLUGINS in scripts/doctor/checks.ts, with what provides them",
  );
});

Deno.test("the plugin scan finds modules in blocks, with_ and lookup() lookups, and the runner's callback", async () => {
  const root = await Deno.makeTempDir({ prefix: "wod-doctor-scan-" });
  try {
    await Deno.mkdir(join(root, "ansible/roles/r/tasks"), { recursive: true });
    await Deno.mkdir(join(root, "ansible/roles/r/handlers"), { recursive: true });
    await Deno.mkdir(join(root, "scripts/backend"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "ansible/site.yml"),
      "- hosts: all\n  tasks:\n    - name: x\n      community.general.ufw:\n        rule: allow\n  roles: [r]\n",
    );
    await Deno.writeTextFile(
      join(root, "ansible/roles/r/tasks/main.yml"),
      `- name: Outer
  when: x
  block:
    - name: Inner
      ansible.builtin.debug:
        msg: "{{ lookup('ansible.builtin.env', 'HOME') }} {{ query('community.general.dig', 'a') }}"
  rescue:
    - ansible.builtin.ping:
- name: Loop
  ansible.builtin.debug:
    msg: "{{ item }}"
  with_fileglob: ["*.txt"]
- name: Old style
  action: shell echo hi
`,
    );
    await Deno.writeTextFile(join(root, "ansible/roles/r/handlers/main.yml"), "- name: h\n  service: {}\n");
    await Deno.writeTextFile(
      join(root, "ansible/ansible.cfg"),
      "[defaults]\ncallbacks_enabled = timer, profile_tasks\n",
    );
    await Deno.writeTextFile(
      join(root, "scripts/backend/ansible.ts"),
      'env: { ANSIBLE_STDOUT_CALLBACK: "mine" }\n',
    );
    const got = (await ansibleUses(root)).map((u) => `${u.kind}:${u.name}`);
    assertEquals(got, [
      "callback:mine",
      "callback:profile_tasks",
      "callback:timer",
      "lookup:ansible.builtin.env",
      "lookup:community.general.dig",
      "lookup:fileglob",
      "module:ansible.builtin.debug",
      "module:ansible.builtin.ping",
      "module:community.general.ufw",
      "module:service",
      "module:shell",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("every package .ci/apt-packages.txt installs is the fix of a doctor check", async () => {
  const pkgs = (await Deno.readTextFile(join(ROOT, ".ci/apt-packages.txt"))).split("\n")
    .map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
  const fixes = [
    ...REQUIREMENTS.map((r) => ({ fix: r.fix, required: r.required })),
    ...ANSIBLE_PLUGINS.map((p) => ({ fix: p.fix, required: true })),
  ];
  const uncovered = pkgs.filter((p) =>
    !fixes.some((f) =>
      new RegExp(String.raw`apt-get install (?:[\w.+-]+ )*${p.replace(/[+.]/g, "\\$&")}(?=$|[\s),;])`).test(
        f.fix,
      )
    )
  );
  assertEquals(uncovered, [], "add a check to REQUIREMENTS in scripts/doctor/checks.ts for these packages");
});

Deno.test("compareVersions orders dotted versions numerically", () => {
  assertEquals(compareVersions("2.14.18", "2.14"), 1);
  assertEquals(compareVersions("2.9.0", "2.14"), -1);
  assertEquals(compareVersions("2.14", "2.14.0"), 0);
});

/** A PATH directory with every program of the system's PATH except `without`, plus `extra` scripts. */
async function pathFarm(without: string[], extra: Record<string, string> = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wod-doctor-path-" });
  for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    try {
      for await (const e of Deno.readDir(d)) {
        if (without.includes(e.name) || e.name in extra) continue;
        try {
          await Deno.symlink(join(d, e.name), join(dir, e.name));
        } catch { /* first one on PATH wins */ }
      }
    } catch { /* no such dir */ }
  }
  for (const [name, text] of Object.entries(extra)) {
    await Deno.writeTextFile(join(dir, name), text, { mode: 0o755 });
  }
  return dir;
}

async function doctor(
  env: Record<string, string>,
): Promise<{ code: number; checks: CheckResult[]; text: string }> {
  const out = await exec(Deno.execPath(), [
    "run",
    "-A",
    join(ROOT, "scripts/wod.ts"),
    "doctor",
    "--format",
    "json",
  ], {
    cwd: ROOT,
    env,
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
  const text = out.stdout;
  return { code: out.code, checks: JSON.parse(text).checks, text };
}

Deno.test("doctor exits 1 naming a missing program's package and a too old ansible-core", async () => {
  const dir = await pathFarm(["swaks"], {
    "ansible-playbook": '#!/usr/bin/python3\nprint("ansible-playbook [core 2.9.0]")\n',
  });
  try {
    const { code, checks } = await doctor({ PATH: dir });
    assertEquals(code, 1);
    const swaks = checks.find((c) => c.name === "swaks")!;
    assertEquals([swaks.status, swaks.required, swaks.fix], ["missing", true, "apt-get install swaks"]);
    const ap = checks.find((c) => c.name === "ansible-playbook")!;
    assertEquals(ap.status, "wrong-version");
    assertStringIncludes(ap.detail, "2.9.0 found");
    assertStringIncludes(ap.fix!, "apt-get install ansible-core");
    const failing = checks.filter((c) => c.required && c.status !== "ok").map((c) => c.name);
    assertEquals(failing.sort(), ["ansible-playbook", "swaks"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing optional program (chromium) is a warning: doctor still exits 0", async () => {
  const { code, checks, text } = await doctor({
    PATH: Deno.env.get("PATH") ?? "",
    WOD_CHROMIUM: "/nonexistent/chromium",
  });
  const c = checks.find((x) => x.name === "chromium")!;
  assertEquals([c.status, c.required, c.fix], ["missing", false, "apt-get install chromium"]);
  assertEquals(code, 0, text);
});

Deno.test("the backend check script runs under sh and reports this Debian host", async () => {
  const res = await exec("sh", ["-s", "--", "sandbox", "json", "os", "no_such_module_xyz"], {
    stdin: REMOTE_SCRIPT,
    allowFailure: true,
  });
  const checks = parseRemote("backend test", res.stdout);
  const by = (n: string) => checks.find((c) => c.name === n);
  assertEquals(by("os")?.status, "ok");
  assertEquals(by("python3")?.status, "ok");
  const mods = by("python: backend script modules (3)")!;
  assertEquals(mods.status, "missing");
  assertStringIncludes(mods.detail, "no_such_module_xyz");
  assertEquals(by("systemctl"), undefined, "systemctl is only checked on systemd backends");
});
