// A hostile participant on the real sandbox (issue 11): a FIFO and links to /dev/zero and / posing as
// notebooks, a fork flood and a memory flood running from a kernel of the student's own hub server.
// The floods bound themselves (at most 600 processes, 6 GiB asked for, 512 MiB really touched), so a
// missing limit fails the test instead of taking the machine down. Seats 20-29 belong to this file.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { ensureSandbox, type SandboxInfo, sandboxSsh } from "./sandbox.ts";
import { HubClient, hubFetch, HubSession, hubWebSocket } from "./hub.ts";
import { runSeatTasks, type SeatResult, type SeatTask } from "./seats.ts";
import { loadConfig } from "../config/load.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const captured: string[] = [];
const log = (l: string) => captured.push(l);

async function copyDir(src: string, dest: string): Promise<void> {
  await Deno.mkdir(dest, { recursive: true });
  for await (const e of Deno.readDir(src)) {
    if (e.isDirectory) await copyDir(join(src, e.name), join(dest, e.name));
    else await Deno.copyFile(join(src, e.name), join(dest, e.name));
  }
}

/** A temp repo with WKSHP-Shell101 on seats 20-29 of the sandbox, and a workshop whose cleanup hook hangs. */
async function fixtureRepo(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-attack-test-" });
  await copyDir(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Shell101"));
  await copyDir(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Hang101"));
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Hang101/workshop.yaml"),
    "id: WKSHP-Hang101\ntitle: A cleanup hook that never ends\nduration: 2\n",
  );
  await Deno.mkdir(join(root, "workshops/WKSHP-Hang101/hooks"));
  await Deno.writeTextFile(
    join(root, "workshops/WKSHP-Hang101/hooks/cleanup"),
    "#!/bin/sh\nexec sleep 3600\n",
    {
      mode: 0o755,
    },
  );
  await Deno.mkdir(join(root, "environments"));
  await Deno.writeTextFile(
    join(root, "environments/local.yaml"),
    sandboxEnvYaml({ "WKSHP-Shell101": [20, 25], "WKSHP-Hang101": [26, 27] }),
  );
  return root;
}

async function seats(
  root: string,
  tasks: SeatTask[],
  extra: { seatTimeout?: number; startServers?: boolean } = {},
): Promise<SeatResult[]> {
  return runSeatTasks({
    config: await loadConfig(root),
    env: "local",
    backend: "jup1",
    tasks,
    log,
    ...extra,
  });
}

const FLOOD = `
import os, time
home = os.path.expanduser("~")
end = time.time() + 300  # every process of the flood ends by itself
forks = 0
for _ in range(600):  # fork flood, bounded
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        while time.time() < end:
            time.sleep(1)
        os._exit(0)
    forks += 1
with open(os.path.join(home, "forks.txt"), "w") as f:
    f.write(str(forks))
chunks, mib = [], 0
try:
    while mib < 6144:  # memory flood, bounded: 6 GiB asked for, the first 512 MiB touched
        b = bytearray(64 << 20)
        if mib < 512:
            for i in range(0, len(b), 4096):
                b[i] = 1
        chunks.append(b)
        mib += 64
except MemoryError:
    pass
with open(os.path.join(home, "memory.txt"), "w") as f:
    f.write(str(mib))
while time.time() < end:  # and a CPU hog
    sum(range(100000))
`;

/** What the participant does from a kernel of their own server: traps posing as notebooks, then the floods. */
const ATTACK = `
import os, subprocess, sys
ws = os.path.expanduser("~/WKSHP-Shell101")
os.mkfifo(os.path.join(ws, "x.ipynb"))
os.symlink("/dev/zero", os.path.join(ws, "zero.ipynb"))
os.symlink("/", os.path.join(ws, "everything"))
os.makedirs(os.path.join(ws, "sub"))
os.symlink("/dev/zero", os.path.join(ws, "sub", "deep.ipynb"))
subprocess.Popen([sys.executable, "-c", ${JSON.stringify(FLOOD)}], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("launched")
`;
import { sandboxEnvYaml } from "../config/testing.ts";

/** Runs `code` in a new python3 kernel of `user`'s server (Jupyter messaging over the kernel's websocket). */
async function runInKernel(hubUrl: string, user: string, token: string, code: string): Promise<string> {
  const auth = { Authorization: `token ${token}` };
  const res = await hubFetch(`${hubUrl}/user/${user}/api/kernels`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "python3" }),
  });
  if (res.status !== 201) throw new Error(`kernel not started: HTTP ${res.status} ${await res.text()}`);
  const { id } = await res.json() as { id: string };
  const ws = hubWebSocket(`${hubUrl.replace(/^http/, "ws")}/user/${user}/api/kernels/${id}/channels`, auth);
  const msgId = crypto.randomUUID();
  const out: string[] = [];
  let reply: string | undefined;
  let idle = false;
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply from the kernel: ${out.join("")}`)), 60_000);
      ws.onerror = (e) => reject(new Error(`kernel websocket: ${(e as ErrorEvent).message}`));
      ws.onopen = () =>
        ws.send(JSON.stringify({
          header: {
            msg_id: msgId,
            msg_type: "execute_request",
            username: user,
            session: crypto.randomUUID(),
            date: new Date().toISOString(),
            version: "5.3",
          },
          parent_header: {},
          metadata: {},
          content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false },
          channel: "shell",
          buffers: [],
        }));
      ws.onmessage = (ev) => {
        const m = JSON.parse(String(ev.data));
        if (m.parent_header?.msg_id !== msgId) return;
        if (m.msg_type === "stream") out.push(m.content.text);
        if (m.msg_type === "error") out.push(`${m.content.ename}: ${m.content.evalue}`);
        // The reply (shell channel) may overtake the output (iopub): finish once both the reply and
        // the kernel's "idle" (sent after every output of the request) have arrived.
        if (m.msg_type === "execute_reply") reply = m.content.status;
        if (m.msg_type === "status" && m.content.execution_state === "idle") idle = true;
        if (reply !== undefined && idle) {
          clearTimeout(timer);
          if (reply === "ok") resolve(out.join(""));
          else reject(new Error(`the kernel failed: ${out.join("")}`));
        }
      };
    });
  } finally {
    ws.close();
  }
}

/** A hub API token of the student, from their own password (the service token cannot mint tokens). */
async function studentToken(hubUrl: string, user: string, password: string): Promise<string> {
  const res = await hubFetch(`${hubUrl}/hub/api/users/${user}/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ auth: { username: user, password }, note: "attack test" }),
  });
  assertEquals(res.status, 201, `no token for ${user}: HTTP ${res.status}`);
  return (await res.json() as { token: string }).token;
}

/** A step failed: the next ones would only report its consequences. */
function assertStep(ok: boolean): void {
  if (!ok) throw new Error("a step failed (see above)");
}

async function readNumber(info: SandboxInfo, path: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await sandboxSsh(info, ["cat", path]);
    if (r.code === 0 && /^\d+$/.test(r.stdout.trim())) return Number(r.stdout.trim());
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${path} was not written within ${timeoutMs} ms`);
}

async function processCount(info: SandboxInfo, uid: number): Promise<number> {
  const r = await sandboxSsh(info, ["pgrep", "-c", "-u", String(uid)]);
  return Number(r.stdout.trim() || "0");
}

Deno.test({
  name:
    "a hostile participant (FIFO and /dev/zero notebooks, fork and memory floods) is contained, and the CLEANUP of the seat completes within 60 s while others log in and are served",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const info = await ensureSandbox(log);
    const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
    const root = await fixtureRepo();
    try {
      const created = await seats(root, [
        { action: "CREATE", workshop: "WKSHP-Shell101", seat: 20 },
        { action: "CREATE", workshop: "WKSHP-Shell101", seat: 22 },
      ]);
      assertEquals(created.map((r) => r.ok), [true, true], JSON.stringify(created.map((r) => r.error)));
      const [p20, p22] = created.map((r) => r.password!);

      assertStep(
        await t.step("the attack runs from a kernel of the student's own server", async () => {
          const s20 = new HubSession(info.hub_url, "student20");
          assert(await s20.login(p20), "student20 cannot log in");
          await s20.openServer();
          const token = await studentToken(info.hub_url, "student20", p20);
          assertMatch(await runInKernel(info.hub_url, "student20", token, ATTACK), /launched/);
        }),
      );

      assertStep(
        await t.step("the floods stop at the limits of the student's server", async () => {
          const forks = await readNumber(info, "/student/student20/forks.txt");
          const mib = await readNumber(info, "/student/student20/memory.txt");
          console.log(`attack: ${forks} processes forked, ${mib} MiB allocated`);
          assert(forks < 300, `the fork flood got ${forks} processes (limit: 256 for the account)`);
          assert(mib <= 4096, `the memory flood got ${mib} MiB (limit: 4096 per process)`);
          assert(await processCount(info, 2020) > 100, "the flood is not running");
        }),
      );

      assertStep(
        await t.step("another student logs in and opens their server during the attack", async () => {
          const s22 = new HubSession(info.hub_url, "student22");
          const t0 = performance.now();
          assert(await s22.login(p22), "student22 cannot log in during the attack");
          await s22.openServer(60_000);
          console.log(
            `login + server of student22 during the attack: ${
              ((performance.now() - t0) / 1000).toFixed(1)
            } s`,
          );
          assert(await processCount(info, 2020) > 100, "the flood ended before the login");
        }),
      );

      assertStep(
        await t.step(
          "CLEANUP of the attacked seat and CREATE of another, in one run, within 60 s",
          async () => {
            const t0 = performance.now();
            const res = await seats(root, [
              { action: "CLEANUP", workshop: "WKSHP-Shell101", seat: 20 },
              { action: "CREATE", workshop: "WKSHP-Shell101", seat: 21 },
            ]);
            const seconds = (performance.now() - t0) / 1000;
            console.log(`CLEANUP under attack (with a CREATE in the same run): ${seconds.toFixed(1)} s`);
            assertEquals(res.map((r) => r.ok), [true, true], JSON.stringify(res.map((r) => r.error)));
            assertEquals(res[0].status, "free");
            assertEquals(typeof res[0].completion, "number");
            assertEquals(res[1].status, "active");
            assert(seconds < 60, `the run took ${seconds.toFixed(1)} s`);
            assertEquals(await processCount(info, 2020), 0, "student20 still has processes");
            assertEquals((await sandboxSsh(info, ["ls", "-A", "/student/student20"])).stdout.trim(), "");
            const user = await hub.getUser("student20");
            assert(!user?.server, "the hub still lists the server of student20");
            // Nothing outside the home was touched by following the links.
            assertEquals((await sandboxSsh(info, ["test", "-c", "/dev/zero"])).code, 0);
          },
        ),
      );
    } finally {
      await seats(
        root,
        [20, 21, 22].map((seat) => ({ action: "PURGE" as const, workshop: "WKSHP-Shell101", seat })),
      )
        .catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "a seat action that overruns its time is reported failed while the other seats of the run complete",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureSandbox(log);
    const root = await fixtureRepo();
    try {
      // No hub servers: this test is about the hanging hook. Under load a server the CREATE started may
      // still be spawning when the CLEANUP stops it, and that stop alone could use the 15 s (CI saw it).
      const created = await seats(root, [
        { action: "CREATE", workshop: "WKSHP-Hang101", seat: 26 },
        { action: "CREATE", workshop: "WKSHP-Shell101", seat: 23 },
      ], { startServers: false });
      assertEquals(created.map((r) => r.ok), [true, true]);
      const t0 = performance.now();
      const res = await seats(root, [
        { action: "CLEANUP", workshop: "WKSHP-Hang101", seat: 26 },
        { action: "CLEANUP", workshop: "WKSHP-Shell101", seat: 23 },
      ], { seatTimeout: 15 });
      const seconds = (performance.now() - t0) / 1000;
      assertEquals(res[0].ok, false);
      // The overrun is reported by the part that ran out of time: the hanging hook, or (on a loaded
      // machine, the CREATE's server spawn still pending) the server stop before it.
      assertMatch(res[0].error ?? "", /timed out|cleanup hook|did not stop within \d+ s/);
      assertEquals(res[1].ok, true, res[1].error);
      assertEquals(res[1].status, "free");
      assert(seconds < 50, `the run took ${seconds.toFixed(1)} s with a 15 s seat timeout`);
    } finally {
      await seats(root, [{ action: "PURGE", workshop: "WKSHP-Shell101", seat: 23 }]).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a CREATE replayed with the order id it was applied with keeps the participant's work; a new order wipes it",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox(log);
    const root = await fixtureRepo();
    const work = "/student/student24/WKSHP-Shell101/my-work.txt";
    try {
      const [first] = await seats(root, [{
        action: "CREATE",
        workshop: "WKSHP-Shell101",
        seat: 24,
        order: "o-1",
      }]);
      assert(first.ok && !first.replayed, first.error);
      await sandboxSsh(info, ["sh"], `runuser -u student24 -- sh -c 'echo mine > ${work}'\n`);
      const [again] = await seats(root, [{
        action: "CREATE",
        workshop: "WKSHP-Shell101",
        seat: 24,
        order: "o-1",
      }]);
      assert(again.ok && again.replayed === true, JSON.stringify(again.error));
      assertEquals((await sandboxSsh(info, ["cat", work])).stdout.trim(), "mine");
      assert(again.password && again.password !== first.password);
      const s24 = new HubSession(info.hub_url, "student24");
      assert(await s24.login(again.password!), "the replayed CREATE's password does not log in");
      const [other] = await seats(root, [{
        action: "CREATE",
        workshop: "WKSHP-Shell101",
        seat: 24,
        order: "o-2",
      }]);
      assert(other.ok && !other.replayed, other.error);
      assertEquals((await sandboxSsh(info, ["test", "-e", work])).code, 1, "a new order kept the old home");
    } finally {
      await seats(root, [{ action: "PURGE", workshop: "WKSHP-Shell101", seat: 24 }]).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
