// Seat actions against the real shared sandbox (real sshd, ansible-playbook, JupyterHub with PAM).
// Seats 1-39 belong to the backend area (docs/testbed.md). Passwords must never reach any output:
// every log line and CLI output of this file is captured and searched for them, and so are the
// sandbox's own logs.
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { ensureSandbox, sandboxSsh } from "./sandbox.ts";
import { HubClient, HubSession } from "./hub.ts";
import { newPassword, runSeatTasks, type SeatResult, type SeatTask } from "./seats.ts";
import { loadConfig } from "../config/load.ts";
import { sandboxEnvYaml } from "../config/testing.ts";

const CORPUS = new URL("../../../shared/corpus/wod-notebooks/", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;

const captured: string[] = [];
const passwords: string[] = [];
const log = (l: string) => captured.push(l);

async function copyDir(src: string, dest: string, skip: string[] = []): Promise<void> {
  await Deno.mkdir(dest, { recursive: true });
  for await (const e of Deno.readDir(src)) {
    if (skip.includes(e.name)) continue;
    if (e.isDirectory) await copyDir(join(src, e.name), join(dest, e.name));
    else await Deno.copyFile(join(src, e.name), join(dest, e.name));
  }
}

/** A temp repo: WKSHP-Shell101 (ours) and the real WKSHP-Python101 from the corpus, ranges in seats 1-39. */
async function fixtureRepo(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-seats-test-" });
  await copyDir(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Shell101"));
  await copyDir(join(CORPUS, "WKSHP-Python101"), join(root, "workshops/WKSHP-Python101"), ["wod.yml"]);
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Python101/workshop.yaml"),
    "id: WKSHP-Python101\ntitle: Python 101\nduration: 2\ncapacity: 5\n",
  );
  await Deno.mkdir(join(root, "workshops/WKSHP-Shell101/hooks"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Shell101/hooks/post-copy"),
    '#!/bin/sh\nset -e\necho "hook $WOD_HOOK for $WOD_USER" > "$WOD_HOME/hook-ran.txt"\n',
    { mode: 0o755 },
  );
  // A workshop whose seats are held after CLEANUP until a RESET (with a reset hook).
  await copyDir(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Hold101"));
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Hold101/workshop.yaml"),
    "id: WKSHP-Hold101\ntitle: Held seats\nduration: 2\nreset: true\n",
  );
  await Deno.mkdir(join(root, "workshops/WKSHP-Hold101/hooks"));
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Hold101/hooks/reset"),
    '#!/bin/sh\necho "$WOD_ACTION $WOD_SEAT" > "/tmp/wod-reset-hook-$WOD_SEAT"\n',
    { mode: 0o755 },
  );
  await Deno.mkdir(join(root, "environments"));
  await Deno.writeTextFile(
    join(root, "environments/local.yaml"),
    sandboxEnvYaml({ "WKSHP-Shell101": [1, 5], "WKSHP-Python101": [6, 10], "WKSHP-Hold101": [11, 12] }),
  );
  return root;
}

async function seats(root: string, tasks: SeatTask[]): Promise<SeatResult[]> {
  const res = await runSeatTasks({
    config: await loadConfig(root),
    env: "local",
    backend: "jup1",
    tasks,
    log,
  });
  for (const r of res) if (r.password) passwords.push(r.password);
  for (const r of res) assert(r.ok, `seat ${r.seat} ${r.action} failed: ${r.error}`);
  return res;
}

async function homeEntries(seat: number): Promise<string[]> {
  const info = await ensureSandbox();
  const r = await sandboxSsh(info, ["ls", "-A", `/student/student${seat}`]);
  assertEquals(r.code, 0, `ls of /student/student${seat} failed: ${r.stderr}`);
  return r.stdout.split("\n").filter((x) => x);
}

async function stopped(hub: HubClient, user: string): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (!(await hub.serverRunning(user))) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

Deno.test("new passwords are long, from a look-alike-free alphabet, and differ", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = newPassword();
    assert(p.length >= 12, "password shorter than 12");
    assertMatch(p, /^[A-HJ-NP-Za-km-z2-9]+$/);
    assert(!/[0O1lIio]/.test(p), `look-alike character in ${p.length}-char password`);
    seen.add(p);
  }
  assertEquals(seen.size, 200);
});

Deno.test({
  name: "seat actions on the sandbox: create, login, contents, isolation, cleanup, reset of a range, purge",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const info = await ensureSandbox(log);
    const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
    const root = await fixtureRepo();
    try {
      let py = "";
      let sh = "";
      await t.step("CREATE seats of WKSHP-Shell101 and the real WKSHP-Python101 in one run", async () => {
        const res = await seats(root, [
          { action: "CREATE", workshop: "WKSHP-Shell101", seat: 1 },
          { action: "CREATE", workshop: "WKSHP-Python101", seat: 6 },
          { action: "CREATE", workshop: "WKSHP-Python101", seat: 7, mode: "CHLG" },
        ]);
        sh = res[0].password!;
        py = res[1].password!;
        assert(sh.length >= 12 && py.length >= 12 && sh !== py);
        assertEquals(res.map((r) => r.status), ["active", "active", "active"]);
        const entries = await homeEntries(1);
        assert(entries.includes("WKSHP-Shell101") && entries.includes("hook-ran.txt"), entries.join(","));
      });

      const s6 = new HubSession(info.hub_url, "student6");
      await t.step(
        "the student logs in through the hub's login form and reads 0-ReadMeFirst.ipynb rendered",
        async () => {
          assert(await s6.login(py), "the hub refused the delivered password");
          await s6.openServer();
          const r = await s6.fetch(
            "/user/student6/api/contents/WKSHP-Python101/0-ReadMeFirst.ipynb?type=file&format=text&content=1",
            { headers: { Referer: `${info.hub_url}/user/student6/tree` } },
          );
          assertEquals(r.status, 200);
          const text = (await r.json()).content as string;
          assert(!text.includes("{{") && !text.includes("{%"), "template markers left in the notebook");
          const nb = JSON.parse(text);
          assert(Array.isArray(nb.cells) && nb.cells.length > 0, "no cells");
          assert(text.includes("Workshops-on-Demand"), "BRANDINGWOD not rendered");
          const model = await s6.contents("WKSHP-Python101/Pictures/wod-logo.png");
          assertEquals(model.status, 200, "pictures are copied");
          const orig = await Deno.readFile(join(CORPUS, "WKSHP-Python101/Pictures/wod-logo.png"));
          assertEquals(String(model.model?.content).replace(/\s/g, ""), btoaBytes(orig));
        },
      );

      await t.step("every real notebook renders to valid JSON, in WKSHP and in CHLG mode", async () => {
        const names = [
          "0-ReadMeFirst.ipynb",
          "1-WKSHP-Introduction-to-Python.ipynb",
          "2-WKSHP-Conclusion.ipynb",
        ];
        const text: Record<string, string> = {};
        for (const seat of [6, 7]) {
          for (const n of names) {
            const r = await sandboxSsh(info, ["cat", `/student/student${seat}/WKSHP-Python101/${n}`]);
            assertEquals(r.code, 0, r.stderr);
            assert(!r.stdout.includes("{{") && !r.stdout.includes("{%"), `template markers left in ${n}`);
            JSON.parse(r.stdout);
            text[`${seat}/${n}`] = r.stdout;
          }
        }
        assertStringIncludes(text["6/0-ReadMeFirst.ipynb"], "# Workshops-on-Demand Workshop");
        assertStringIncludes(text["7/0-ReadMeFirst.ipynb"], "# Workshops-on-Demand Challenge");
        assertStringIncludes(text["7/2-WKSHP-Conclusion.ipynb"], "http://localhost/survey-challenge");
        assert(!text["6/2-WKSHP-Conclusion.ipynb"].includes("survey-challenge"), "CHLG text in WKSHP mode");
      });

      await t.step("another student can neither list nor read that home", async () => {
        const s1 = new HubSession(info.hub_url, "student1");
        assert(await s1.login(sh));
        const other = await s1.contents("WKSHP-Python101/0-ReadMeFirst.ipynb", "student6");
        assert(other.status !== 200, `student1 read student6's notebook (HTTP ${other.status})`);
        const listing = await s1.contents("", "student6");
        assert(listing.status !== 200, `student1 listed student6's home (HTTP ${listing.status})`);
        const ls = await sandboxSsh(info, ["runuser", "-u", "student1", "--", "ls", "/student/student6"]);
        assert(
          ls.code !== 0 && /Permission denied/.test(ls.stderr),
          `ls as student1: ${ls.code} ${ls.stderr}`,
        );
        const cat = await sandboxSsh(info, [
          "runuser",
          "-u",
          "student1",
          "--",
          "cat",
          "/student/student6/WKSHP-Python101/0-ReadMeFirst.ipynb",
        ]);
        assert(cat.code !== 0, "student1 could read student6's file");
        const mode = await sandboxSsh(info, ["stat", "-c%a:%u:%g", "/student/student6"]);
        assertEquals(mode.stdout.trim(), "700:2006:2006");
      });

      await t.step(
        "each student's server listens on the student's own port (20000 + the number)",
        async () => {
          // /proc/net/tcp of the host: listening sockets (state 0A) with their port and owner uid.
          const tcp = await sandboxSsh(info, ["cat", "/proc/net/tcp", "/proc/net/tcp6"]);
          const listeners = tcp.stdout.split("\n").map((l) => l.trim().split(/\s+/))
            .filter((f) => f[3] === "0A" && f[1]?.includes(":"))
            .map((f) => ({ port: parseInt(f[1].split(":").at(-1)!, 16), uid: Number(f[7]) }));
          for (const n of [1, 6]) {
            const own = listeners.filter((x) => x.uid === 2000 + n).map((x) => x.port);
            assert(
              own.includes(20000 + n),
              `student${n} (uid ${2000 + n}) listens on ${JSON.stringify(own)}`,
            );
          }
        },
      );

      await t.step(
        "CLEANUP: old password refused, server stopped, home clean, completion reported",
        async () => {
          const [res] = await seats(root, [{ action: "CLEANUP", workshop: "WKSHP-Python101", seat: 6 }]);
          assertEquals(res.status, "free");
          assert(typeof res.completion === "number" && res.completion >= 0 && res.completion <= 100);
          assert(res.password && res.password !== py);
          assert(await stopped(hub, "student6"), "the server of student6 still runs");
          assertEquals(await homeEntries(6), []);
          const again = new HubSession(info.hub_url, "student6");
          assertEquals(await again.login(py), false, "the old password still works");
          const procs = await sandboxSsh(info, ["pgrep", "-u", "2006"]);
          assertEquals(procs.stdout.trim(), "", "student6 still has processes");
        },
      );

      await t.step("RESET of a range frees every seat in it", async () => {
        await seats(
          root,
          [2, 3, 4].map((seat) => ({ action: "CREATE" as const, workshop: "WKSHP-Shell101", seat })),
        );
        for (const s of [2, 3, 4]) assert((await homeEntries(s)).includes("WKSHP-Shell101"));
        const res = await seats(
          root,
          [2, 3, 4].map((seat) => ({
            action: "RESET" as const,
            workshop: "WKSHP-Shell101",
            seat,
          })),
        );
        assertEquals(res.map((r) => r.status), ["free", "free", "free"]);
        for (const s of [2, 3, 4]) {
          assertEquals(await homeEntries(s), [], `home of student${s} not clean`);
          assert(await stopped(hub, `student${s}`), `server of student${s} still runs`);
        }
      });

      await t.step(
        "a reset:true workshop holds the seat after CLEANUP until RESET runs its hook",
        async () => {
          await seats(root, [{ action: "CREATE", workshop: "WKSHP-Hold101", seat: 11 }]);
          const [held] = await seats(root, [{ action: "CLEANUP", workshop: "WKSHP-Hold101", seat: 11 }]);
          assertEquals(held.status, "held-for-reset");
          assert(await stopped(hub, "student11"));
          assert((await homeEntries(11)).includes("WKSHP-Hold101"), "home wiped before the RESET");
          await sandboxSsh(info, ["rm", "-f", "/tmp/wod-reset-hook-11"]);
          const [reset] = await seats(root, [{ action: "RESET", workshop: "WKSHP-Hold101", seat: 11 }]);
          assertEquals(reset.status, "free");
          assertEquals(await homeEntries(11), []);
          assertEquals((await sandboxSsh(info, ["cat", "/tmp/wod-reset-hook-11"])).stdout.trim(), "RESET 11");
        },
      );

      await t.step("PURGE stops the server, kills processes and wipes the home", async () => {
        // A detached student process (constant script on stdin, so ssh does not wait for it).
        await sandboxSsh(
          info,
          ["sh"],
          "runuser -u student1 -- setsid -f sleep 300 </dev/null >/dev/null 2>&1\n",
        );
        assertMatch((await sandboxSsh(info, ["pgrep", "-u", "2001"])).stdout, /\d/);
        const [res] = await seats(root, [{ action: "PURGE", workshop: "WKSHP-Shell101", seat: 1 }]);
        assertEquals(res.status, "free");
        assert(await stopped(hub, "student1"));
        assertEquals(await homeEntries(1), []);
        const procs = await sandboxSsh(info, ["pgrep", "-u", "2001"]);
        assertEquals(procs.stdout.trim(), "", "student1 still has processes");
      });

      await t.step("wod seats CLI: passwords only in the 0600 credentials file", async () => {
        const cred = join(root, "cred.json");
        /** `wod seats ACTION --env local --workshop WKSHP-Shell101 --seats 3-4 ...extra` in `root`, output captured. */
        const seatsCli = async (action: string, ...extra: string[]) => {
          const out = await exec(Deno.execPath(), [
            "run",
            "-A",
            join(REPO, "scripts/wod.ts"),
            "seats",
            action,
            "--env",
            "local",
            "--workshop",
            "WKSHP-Shell101",
            "--seats",
            "3-4",
            ...extra,
          ], { cwd: root, inherit: DENO_CHILD_INHERIT, allowFailure: true });
          const { stdout, stderr } = out;
          captured.push(stdout, stderr);
          return { code: out.code, stdout, stderr };
        };
        const { code, stdout, stderr } = await seatsCli("create", "--credentials", cred);
        assertEquals(code, 0, stderr);
        assertEquals((await Deno.stat(cred)).mode! & 0o777, 0o600);
        const rows = JSON.parse(await Deno.readTextFile(cred)) as {
          seat: number;
          username: string;
          password: string;
        }[];
        assertEquals(rows.map((r) => [r.seat, r.username]), [[3, "student3"], [4, "student4"]]);
        for (const r of rows) passwords.push(r.password);
        assertEquals(stdout.trim().split("\n").map((l) => JSON.parse(l).ok), [true, true]);
        const s3 = new HubSession(info.hub_url, "student3");
        assert(await s3.login(rows[0].password), "the password from the credentials file does not log in");
        const purge = await seatsCli("purge");
        assertEquals(purge.code, 0);
      });

      await t.step("no password in any captured output, nor in the sandbox's logs", async () => {
        assert(passwords.length >= 10, `only ${passwords.length} passwords collected`);
        const all = captured.join("\n");
        for (const p of passwords) assert(!all.includes(p), "a password appears in captured output");
        const logs = await sandboxSsh(
          info,
          ["grep", "-rlF", "-f", "/dev/stdin", "/var/log", "/var/lib/wod"],
          passwords.join("\n") + "\n",
        );
        assertEquals(logs.stdout.trim(), "", `passwords found in sandbox files: ${logs.stdout.trim()}`);
      });
    } finally {
      await runSeatTasks({
        config: await loadConfig(root),
        env: "local",
        backend: "jup1",
        tasks: [1, 2, 3, 4, 6].map((seat) => ({
          action: "PURGE" as const,
          workshop: "WKSHP-Shell101",
          seat,
        })),
        log,
      }).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

function btoaBytes(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
