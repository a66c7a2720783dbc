// The sandbox's control host (ensureSandboxControlHost): one more host that is not a backend, at its own
// address, with sshd and git, where a state remote is a bare repository reached over SSH.
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { git } from "../common/git.ts";
import { ensureSandboxControlHost, ensureSandboxHosts, SANDBOX_CONTROL_NAME, sshOptions } from "./sandbox.ts";

Deno.test({
  name:
    "the control host is a separate SSH host with git: a bare repository there takes a push and gives it back over ssh://, and the backends stay the same",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const before = await ensureSandboxHosts();
    const ctl = await ensureSandboxControlHost();
    const again = await ensureSandboxControlHost();
    assertEquals(again.pid, ctl.pid, "a second call returns the running control host");
    assertEquals(ctl.name, SANDBOX_CONTROL_NAME);
    assert(!before.some((h) => h.host === ctl.host), `${ctl.host} is a backend's address`);
    const after = await ensureSandboxHosts();
    assertEquals(after.map((h) => [h.name, h.pid]), before.map((h) => [h.name, h.pid]));

    const ssh = [...sshOptions(ctl.ssh_key, ctl.known_hosts, ctl.ssh_port), `${ctl.ssh_user}@${ctl.host}`];
    const who = await exec("ssh", [...ssh, "hostname"]);
    assertEquals(who.stdout.trim(), SANDBOX_CONTROL_NAME);
    const repo = `/home/${ctl.ssh_user}/control-test-${crypto.randomUUID().slice(0, 8)}.git`;
    const dir = await Deno.makeTempDir({ prefix: "wod-ctl-test-" });
    const saved = Deno.env.get("GIT_SSH_COMMAND");
    try {
      await exec("ssh", [...ssh, "git", "init", "-q", "--bare", repo]);
      // git reaches it the way the bench's listener and reconciler do: GIT_SSH_COMMAND names the key.
      Deno.env.set("GIT_SSH_COMMAND", ["ssh", ...sshOptions(ctl.ssh_key, ctl.known_hosts, 22)].join(" "));
      const url = `ssh://${ctl.ssh_user}@${ctl.host}${repo}`;
      const work = join(dir, "work");
      await git(["init", "-q", "-b", "state", work]);
      await Deno.writeTextFile(join(work, "seat.json"), "{}\n");
      await git(["-C", work, "add", "seat.json"]);
      await git(["-C", work, "commit", "-q", "-m", "a seat"]);
      const head = (await git(["-C", work, "rev-parse", "HEAD"])).stdout.trim();
      await git(["-C", work, "push", "-q", url, "state"]);
      const remote = (await git(["ls-remote", url, "refs/heads/state"])).stdout.split("\t")[0];
      assertEquals(remote, head, "the pushed commit is the remote's state branch");
    } finally {
      if (saved === undefined) Deno.env.delete("GIT_SSH_COMMAND");
      else Deno.env.set("GIT_SSH_COMMAND", saved);
      await exec("ssh", [...ssh, "rm", "-rf", repo], { allowFailure: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
