// The one remote step of a seat run (ansible/roles/wod_seats "Apply the seat actions"), run here as the
// role runs it (python3 -I -c SCRIPT STAGING TOOL, the job as JSON on stdin) with a stand-in for
// wod-seat that reports what it finds: the small archive is unpacked as root-owned files in a 0700
// folder, the tool gets the spec on its stdin and its output and exit code pass through, the folder
// is removed afterwards; an archive with a path leaving the folder or a link is refused (tool not run).
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { parse } from "yaml";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { ANSIBLE_DIR } from "./ansible.ts";

const isRoot = Deno.uid() === 0;

// Stands in for wod-seat: reports the staging folder's mode and files (mode, uid), echoes the spec.
const FAKE_TOOL = `#!/usr/bin/python3
import json, os, sys
spec = json.load(sys.stdin)
st = spec["staging"]
files = {}
for root, dirs, names in os.walk(st):
    for n in names:
        p = os.path.join(root, n)
        s = os.lstat(p)
        files[os.path.relpath(p, st)] = [oct(s.st_mode & 0o7777), s.st_uid, s.st_gid, open(p).read()]
print(json.dumps({"mode": oct(os.stat(st).st_mode & 0o777), "files": files, "spec": spec}))
sys.exit(3)
`;

async function applyScript(): Promise<string> {
  const tasks = parse(await Deno.readTextFile(join(ANSIBLE_DIR, "roles/wod_seats/tasks/main.yml"))) as {
    block?: { name: string; "ansible.builtin.command"?: { argv: string[] } }[];
  }[];
  const t = tasks.flatMap((x) => x.block ?? []).find((x) => x.name === "Apply the seat actions");
  assert(t?.["ansible.builtin.command"], "the role has no seat-actions command");
  return t["ansible.builtin.command"].argv[3];
}

async function apply(tmp: string, tarFile: string, dest: string) {
  const tool = join(tmp, "fake-wod-seat");
  await Deno.writeTextFile(tool, FAKE_TOOL, { mode: 0o755 });
  const job = {
    archive: Buffer.from(await Deno.readFile(tarFile)).toString("base64"),
    spec: { staging: dest, passwords: ["pw"] },
  };
  return await exec("python3", ["-I", "-c", await applyScript(), dest, tool], {
    stdin: JSON.stringify(job) + "\n",
    allowFailure: true,
  });
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test({
  name: "the seat run's one remote step unpacks the small archive root-only, runs the tool, then removes it",
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
      const ok = await apply(tmp, join(tmp, "ok.tar"), dest);
      // The tool's exit code and output pass through; the folder is gone afterwards.
      assertEquals(ok.code, 3, ok.stderr);
      assert(!await exists(dest));
      const seen = JSON.parse(ok.stdout);
      assertEquals(seen.mode, "0o700");
      assertEquals(seen.spec, { staging: dest, passwords: ["pw"] });
      assertEquals(seen.files["content/W/a.txt"], ["0o644", 0, 0, "hello\n"]);
      // Owner root, no setuid, no write for others; still executable.
      assertEquals(seen.files["hooks/W/public/create"], ["0o755", 0, 0, "#!/bin/sh\n"]);

      await Deno.symlink("/etc/shadow", join(src, "content", "W", "link"));
      await exec("tar", ["-C", src, "-cf", join(tmp, "link.tar"), "."]);
      const link = await apply(tmp, join(tmp, "link.tar"), join(tmp, "run", "2-abc"));
      assertEquals([link.code, link.stdout], [1, ""]);
      assertMatch(link.stderr, /refused archive member '\.\/content\/W\/link'/);
      assert(!await exists(join(tmp, "run", "2-abc")));

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
      const up = await apply(tmp, join(tmp, "up.tar"), join(tmp, "run", "3-abc"));
      assertEquals([up.code, up.stdout], [1, ""]);
      assertMatch(up.stderr, /refused archive member '\.\.\/W/);
      assert(!await exists(join(tmp, "W")));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
