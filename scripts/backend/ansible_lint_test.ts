// The playbooks and roles under ansible/ pass ansible-lint (production profile) and a syntax check.
import { assertEquals } from "../common/assert.ts";
import { ANSIBLE_DIR } from "./ansible.ts";
import { exec } from "../common/exec.ts";

async function have(cmd: string): Promise<boolean> {
  try {
    await exec(cmd, ["--version"], { allowFailure: true });
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "ansible roles and playbooks are ansible-lint clean",
  ignore: !(await have("ansible-lint")),
  async fn() {
    const out = await exec("ansible-lint", ["--profile", "production", "--nocolor", "-q"], {
      cwd: ANSIBLE_DIR,
      env: { ANSIBLE_CONFIG: `${ANSIBLE_DIR}ansible.cfg` },
      allowFailure: true,
    });
    const text = out.stdout + out.stderr;
    assertEquals(out.code, 0, `ansible-lint found problems:\n${text}`);
  },
});
