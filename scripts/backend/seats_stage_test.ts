// The small-archive path of ansible/roles/wod_seats: the role's unpack script, run here as the role runs
// it (python3 -I -c SCRIPT DEST, the archive in base64 on stdin), unpacks regular files and folders
// owned by root into a root-only folder, and refuses an archive with a path leaving it or a link.
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { parse } from "yaml";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { ANSIBLE_DIR } from "./ansible.ts";

const isRoot = Deno.uid() === 0;

async function unpackScript(): Promise<string> {
  const tasks = parse(await Deno.readTextFile(join(ANSIBLE_DIR, "roles/wod_seats/tasks/main.yml"))) as {
    block?: { name: string; "ansible.builtin.command"?: { argv: string[] } }[];
  }[];
  const t = tasks.flatMap((x) => x.block ?? []).find((x) => /unpack the small archive/.test(x.name));
  assert(t?.["ansible.builtin.command"], "the role has no small-archive unpack task");
  return t["ansible.builtin.command"].argv[3];
}

async function unpack(tarFile: string, dest: string) {
  const b64 = Buffer.from(await Deno.readFile(tarFile)).toString("base64");
  return await exec("python3", ["-I", "-c", await unpackScript(), dest], { stdin: b64, allowFailure: true });
}

Deno.test({
  name:
    "the small archive unpacks as root-owned files in a 0700 folder; a path leaving it or a link is refused",
  ignore: !isRoot,
  async fn() {
    const tmp = await Deno.makeTempDir();
    try {
      const src = join(tmp, "src");
      await Deno.mkdir(join(src, "content", "W"), { recursive: true });
      await Deno.writeTextFile(join(src, "content", "W", "a.txt"), "hello\n");
      await Deno.mkdir(join(src, "hooks", "W", "public"), { recursive: true });
      await Deno.writeTextFile(join(src, "hooks", "W", "public", "create"), "#!/bin/sh\n");
      await Deno.chmod(join(src, "hooks", "W", "public", "create"), 0o4777);
      await exec("tar", [
        "-C",
        src,
        "--owner=1234",
        "--group=1234",
        "--numeric-owner",
        "-cf",
        join(tmp, "ok.tar"),
        ".",
      ]);
      const dest = join(tmp, "run", "1-abc");
      const ok = await unpack(join(tmp, "ok.tar"), dest);
      assertEquals(ok.code, 0, ok.stderr);
      assertEquals(await Deno.readTextFile(join(dest, "content", "W", "a.txt")), "hello\n");
      const st = await Deno.stat(dest);
      assertEquals([st.mode! & 0o777, st.uid], [0o700, 0]);
      const hook = await Deno.stat(join(dest, "hooks", "W", "public", "create"));
      // Owner root, no setuid, no write for others; still executable.
      assertEquals([hook.uid, hook.gid, hook.mode! & 0o7777], [0, 0, 0o755]);

      await Deno.symlink("/etc/shadow", join(src, "content", "W", "link"));
      await exec("tar", ["-C", src, "-cf", join(tmp, "link.tar"), "."]);
      const link = await unpack(join(tmp, "link.tar"), join(tmp, "run", "2-abc"));
      assert(link.code !== 0);
      assertMatch(link.stderr, /refused archive member '\.\/content\/W\/link'/);

      await Deno.remove(join(src, "content", "W", "link"));
      await exec("tar", [
        "-C",
        join(src, "content"),
        "-cf",
        join(tmp, "up.tar"),
        "--transform",
        "s,^W,../W,",
        "W",
      ]);
      const up = await unpack(join(tmp, "up.tar"), join(tmp, "run", "3-abc"));
      assert(up.code !== 0);
      assertMatch(up.stderr, /refused archive member '\.\.\/W/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
