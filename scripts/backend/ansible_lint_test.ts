// The playbooks and roles under ansible/ pass ansible-lint (production profile) and a syntax check.
import { assertEquals } from "../common/assert.ts";
import { ANSIBLE_DIR } from "./ansible.ts";

async function have(cmd: string): Promise<boolean> {
  try {
    await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "ansible roles and playbooks are ansible-lint clean",
  ignore: !(await have("ansible-lint")),
  async fn() {
    const out = await new Deno.Command("ansible-lint", {
      args: ["--profile", "production", "--nocolor", "-q"],
      cwd: ANSIBLE_DIR,
      env: { ANSIBLE_CONFIG: `${ANSIBLE_DIR}ansible.cfg`, HOME: Deno.env.get("HOME") ?? "/root" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `ansible-lint found problems:\n${text}`);
  },
});
