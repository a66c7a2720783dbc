import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { git } from "./git.ts";

Deno.test("git reaches an ssh:// remote through the caller's GIT_SSH_COMMAND, and passes no other variable of the caller", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-git-ssh-" });
  const saved = { cmd: Deno.env.get("GIT_SSH_COMMAND"), secret: Deno.env.get("WOD_GIT_TEST_SECRET") };
  try {
    // (Port 1 on loopback: without the variable, the real ssh fails at once.)
    // A stand-in for ssh: records its arguments and environment, then fails like an unreachable host.
    const fake = join(dir, "fake-ssh");
    await Deno.writeTextFile(
      fake,
      [
        "#!/bin/sh",
        // git first asks `ssh -G` which ssh this is (OpenSSH answers 0).
        'case " $* " in *" -G "*) exit 0 ;; esac',
        `printf '%s\\n' "$@" > "${dir}/args"`,
        `env > "${dir}/env"`,
        "exit 255",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await Deno.chmod(fake, 0o755);
    Deno.env.set("GIT_SSH_COMMAND", `${fake} -o IdentitiesOnly=yes`);
    Deno.env.set("WOD_GIT_TEST_SECRET", "s3cret-value");
    const r = await git(["ls-remote", "ssh://wod@127.0.0.1:1/srv/state.git"], { allowFailure: true });
    assert(r.code !== 0, "the fake ssh fails, so ls-remote fails");
    const args = (await Deno.readTextFile(join(dir, "args"))).split("\n");
    assert(args.includes("IdentitiesOnly=yes"), `the command's own options reach ssh: ${args.join(" ")}`);
    assert(args.includes("wod@127.0.0.1"), `ssh is asked for the remote's user and host: ${args.join(" ")}`);
    assertEquals(
      args.some((a) => a.includes("git-upload-pack") && a.includes("/srv/state.git")),
      true,
      args.join(" "),
    );
    const env = await Deno.readTextFile(join(dir, "env"));
    assert(!env.includes("s3cret-value"), "a variable of the caller outside git's list stays out");
  } finally {
    for (const [k, v] of [["GIT_SSH_COMMAND", saved.cmd], ["WOD_GIT_TEST_SECRET", saved.secret]] as const) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
    await Deno.remove(dir, { recursive: true });
  }
});
