// ansible-playbook gets an explicit environment: a lookup on the controller and a module started by it
// see neither a secret of ours (a WOD_* canary set in this process) nor anything we did not pass.
// Real ansible-playbook, local connection (the controller is the host that holds the secrets).
import { join, relative } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { ANSIBLE_DIR, runPlaybook } from "./ansible.ts";

const ALLOWED = /^(PATH|HOME|LANG|LC_ALL|LC_CTYPE|TZ|TMPDIR|ANSIBLE_[A-Z_]+|PWD|SHLVL|_|PYTHONPATH)$/;

Deno.test("ansible-playbook and its modules see no WOD_* secret of the controller, only what we pass", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-ansible-env-test-" });
  Deno.env.set("WOD_FRONTEND_PASSWORD", "canary-frontend-5be1");
  Deno.env.set("WOD_SMTP_PASSWORD", "canary-smtp-77a0");
  try {
    const playbook = join(dir, "env.yml");
    await Deno.writeTextFile(
      playbook,
      `- hosts: all
  gather_facts: false
  tasks:
    - name: Environment of a module
      ansible.builtin.command: env
      register: wod_env
    - name: Lookup on the controller
      ansible.builtin.debug:
        msg: "{{ lookup('env', 'WOD_FRONTEND_PASSWORD') }}|{{ lookup('env', 'GIVEN') }}"
`,
    );
    const run = await runPlaybook({
      playbook: relative(ANSIBLE_DIR, playbook),
      hosts: [{
        name: "controller",
        host: "127.0.0.1",
        port: 22,
        user: "root",
        vars: { ansible_connection: "local" },
      }],
      env: { GIVEN: "passed" },
    });
    assert(run.ok, `playbook failed: ${run.stderr}`);
    const moduleEnv = String(
      run.tasks.find((t) => t.task === "Environment of a module")?.result.stdout ?? "",
    );
    const lookup = String(run.tasks.find((t) => t.task === "Lookup on the controller")?.result.msg ?? "");
    assert(moduleEnv.includes("ANSIBLE_"), `no module output: ${JSON.stringify(run.tasks)}`);
    assert(!moduleEnv.includes("canary-"), "a controller secret reached the module's environment");
    assertEquals(lookup, "|passed");
    const names = moduleEnv.split("\n").filter((l) => l.includes("=")).map((l) => l.split("=")[0]);
    const extra = names.filter((n) => !ALLOWED.test(n) && n !== "GIVEN");
    assertEquals(extra, [], `unexpected variables in ansible-playbook's environment: ${extra.join(", ")}`);
  } finally {
    Deno.env.delete("WOD_FRONTEND_PASSWORD");
    Deno.env.delete("WOD_SMTP_PASSWORD");
    await Deno.remove(dir, { recursive: true });
  }
});
