// The runner's contract with Ansible: our stdout callback (ansible/callback_plugins/wod_events.py)
// writes JSON lines that parseOutput turns into task results and stats. The second test runs the
// real ansible-playbook (ansible-core alone) on localhost with the runner's callback settings.
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { ANSIBLE_DIR, parseOutput } from "./ansible.ts";

Deno.test("parseOutput reads task events and the final stats, ignoring other lines", () => {
  const stdout = [
    "[WARNING]: something Ansible printed",
    JSON.stringify({ event: "task", task: "Copy", host: "jup1", status: "ok", result: { changed: true } }),
    "{not json",
    JSON.stringify({ event: "task", task: "Break", host: "jup1", status: "failed", result: { msg: "boom" } }),
    JSON.stringify({ event: "task", task: "Maybe", host: "jup2", status: "skipped", result: {} }),
    JSON.stringify({
      event: "task",
      task: "Ping",
      host: "jup3",
      status: "unreachable",
      result: { msg: "no route" },
    }),
    JSON.stringify({ event: "other" }),
    JSON.stringify({
      event: "stats",
      stats: {
        jup1: { ok: 1, changed: 1, failures: 1, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 },
      },
    }),
  ].join("\n");
  const { stats, tasks } = parseOutput(stdout);
  assertEquals(tasks.map((t) => [t.task, t.host, t.changed, t.failed, t.skipped, t.unreachable]), [
    ["Copy", "jup1", true, false, false, false],
    ["Break", "jup1", false, true, false, false],
    ["Maybe", "jup2", false, false, true, false],
    ["Ping", "jup3", false, false, false, true],
  ]);
  assertEquals(tasks[1].msg, "boom");
  assertEquals(stats.jup1.failures, 1);
  assertEquals(stats.jup1.changed, 1);
});

Deno.test("parseOutput without a stats line returns empty stats (the runner reports no result)", () => {
  assertEquals(parseOutput("ERROR! Invalid callback for stdout specified: json\n"), { stats: {}, tasks: [] });
});

Deno.test("the wod_events callback of ansible/ runs with ansible-core alone and parses back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-callback-test-" });
  try {
    const secret = "Secret-" + crypto.randomUUID();
    const playbook = join(dir, "play.yml");
    await Deno.writeTextFile(
      playbook,
      `---
- name: Callback contract
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.command:
        argv: [echo, hello]
      changed_when: true
    - name: Hidden
      ansible.builtin.set_fact:
        hidden: "${secret}"
      no_log: true
    - name: Skipped one
      ansible.builtin.command:
        argv: ["true"]
      when: false
    - name: Fails on purpose
      ansible.builtin.fail:
        msg: planned failure
`,
    );
    const out = await exec(
      "ansible-playbook",
      [
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=/usr/bin/python3",
        playbook,
      ],
      {
        cwd: ANSIBLE_DIR,
        env: {
          ANSIBLE_CONFIG: join(ANSIBLE_DIR, "ansible.cfg"),
          ANSIBLE_STDOUT_CALLBACK: "wod_events",
          ANSIBLE_CALLBACK_PLUGINS: join(ANSIBLE_DIR, "callback_plugins"),
          ANSIBLE_NOCOLOR: "1",
          ANSIBLE_LOCAL_TEMP: join(dir, "tmp"),
        },
        allowFailure: true,
      },
    );
    const { stdout, stderr } = out;
    assertEquals(out.code, 2, `ansible-playbook should fail on the planned failure:\n${stderr}`);
    const { stats, tasks } = parseOutput(stdout);
    assertEquals(tasks.map((t) => [t.task, t.failed, t.skipped]), [
      ["Say hello", false, false],
      ["Hidden", false, false],
      ["Skipped one", false, true],
      ["Fails on purpose", true, false],
    ]);
    assertEquals(tasks[0].changed, true);
    assertEquals((tasks[0].result.stdout as string).trim(), "hello");
    assertEquals(tasks[3].msg, "planned failure");
    assertEquals(stats.localhost.failures, 1);
    assertEquals(stats.localhost.changed, 1);
    assert(!stdout.includes(secret) && !stderr.includes(secret), "a no_log value reached the output");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
