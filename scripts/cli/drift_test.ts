// wod drift against the shared sandbox backend (seats 60-69 only, docs/testbed.md): each kind
// of drift is planted for real (an account deleted, an unknown account added, a server started on
// a free seat through the hub API, the content of an active seat removed) and must be found, with
// exit 2; --repair records orders. Everything planted is undone at the end.
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { ensureSandbox, sandboxSsh } from "../backend/sandbox.ts";
import { hubFetch } from "../backend/hub.ts";
import { runWorkflow } from "../workflows/runner.ts";
import { cloneWorkingTree, commitAll } from "../workflows/workspace.ts";
import { gitText as git } from "../common/git.ts";
import { compare } from "./drift.ts";
import { hostKeyPinned, sshRun } from "../backend/probe.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNKNOWN = "student1069"; // outside the pool [1, 120]

Deno.test("host key pinning: plain and hashed known_hosts entries, wrong key refused", () => {
  const key = Buffer.from("ssh-ed25519-key-bytes");
  const other = Buffer.from("another-key");
  const b64 = key.toString("base64");
  assert(hostKeyPinned(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, "127.0.0.1", 2222, key));
  assert(!hostKeyPinned(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, "127.0.0.1", 2223, key));
  assert(!hostKeyPinned(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, "127.0.0.1", 2222, other));
  const salt = Buffer.from("0123456789abcdefghij");
  const hash = createHmac("sha1", salt).update("jup1.example").digest("base64");
  assert(hostKeyPinned(`|1|${salt.toString("base64")}|${hash} ssh-ed25519 ${b64}`, "jup1.example", 22, key));
  assert(!hostKeyPinned(`@revoked jup1.example ssh-ed25519 ${b64}`, "jup1.example", 22, key));
});

Deno.test("compare: each kind of drift from backend facts and recorded seats, parked seats included", () => {
  const facts = {
    info: { student_prefix: "student", students: [1, 4] as [number, number], home_root: "/student" },
    users: [1, 3, 4, 9].map((n) => ({
      seat: n,
      name: `student${n}`,
      uid: 2000 + n,
      home: `/student/student${n}`,
    })),
    content: { "3": false, "4": true },
  };
  const seats = [
    { backend: "b", seat: 3, status: "active" as const, workshop: "W", orders: [] },
    { backend: "b", seat: 4, status: "active" as const, workshop: "W", orders: [] },
    {
      backend: "b",
      seat: 2,
      status: "failed" as const,
      workshop: "W",
      orders: ["x"],
      pending: [{ action: "CLEANUP" as const, order: "x", since: "2026-01-01T10:00:00Z" }],
      attempts: 3,
      parked: "2026-01-01T10:30:00Z",
      reason: "CLEANUP failed: timed out: the seat action took more than 300 s",
    },
  ];
  const drift = compare("b", facts, new Set(["student1", "student4", "admin"]), seats);
  assertEquals(drift.map((d) => `${d.seat} ${d.kind} ${d.repair ?? "-"}`), [
    "1 server-on-free-seat PURGE",
    "2 missing-user PURGE",
    "2 parked-seat -",
    "3 content-missing -",
    "9 unknown-user -",
  ]);
  const parked = drift.find((d) => d.kind === "parked-seat")!;
  assertMatch(
    parked.detail,
    /CLEANUP parked since 2026-01-01T10:30:00Z after 3 failed attempt\(s\).*timed out/,
  );
});

async function hub(info: { hub_url: string; hub_token_file: string }, method: string, path: string) {
  const token = (await Deno.readTextFile(info.hub_token_file)).trim();
  const res = await hubFetch(`${info.hub_url.replace(/\/$/, "")}/hub/api${path}`, {
    method,
    headers: { Authorization: `token ${token}` },
  });
  await res.body?.cancel();
  return res.status;
}

async function waitRunning(info: { hub_url: string; hub_token_file: string }, user: string) {
  const token = (await Deno.readTextFile(info.hub_token_file)).trim();
  for (let i = 0; i < 40; i++) {
    const res = await hubFetch(`${info.hub_url.replace(/\/$/, "")}/hub/api/users/${user}`, {
      headers: { Authorization: `token ${token}` },
    });
    const u = await res.json();
    if (u.server) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

Deno.test("wod drift finds each kind of drift planted on the sandbox (exit 2), --repair records orders", async () => {
  const info = await ensureSandbox();
  const dir = await Deno.makeTempDir({ prefix: "wod-drift-test-" });
  const ssh = async (...argv: string[]) => {
    const r = await sandboxSsh(info, argv);
    if (r.code !== 0) throw new Error(`ssh ${argv.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
  };
  try {
    // A workspace whose WKSHP-Shell101 range is this area's seats, with recorded state: seats 63
    // and 64 active.
    const ws = join(dir, "ws");
    await cloneWorkingTree(ROOT, ws);
    const envFile = join(ws, "environments/local.yaml");
    await Deno.writeTextFile(
      envFile,
      (await Deno.readTextFile(envFile)).replace(/WKSHP-Shell101: \[\d+, \d+\]/, "WKSHP-Shell101: [60, 69]"),
    );
    await commitAll(ws, "seats 60-69");
    const bare = join(ws, ".wod/state/local.git");
    const work = join(dir, "state-work");
    await Deno.mkdir(join(ws, ".wod/state"), { recursive: true });
    await git(dir, ["init", "-q", "--bare", "-b", "state", bare]);
    await git(dir, ["init", "-q", "-b", "state", work]);
    await Deno.mkdir(join(work, "state/local/jup1"), { recursive: true });
    for (const seat of [63, 64]) {
      await Deno.writeTextFile(
        join(work, `state/local/jup1/${seat}.json`),
        JSON.stringify(
          { backend: "jup1", seat, status: "active", workshop: "WKSHP-Shell101", orders: [] },
          null,
          2,
        ),
      );
    }
    await commitAll(work, "seats 63 and 64 active");
    await git(work, ["push", "-q", bare, "state:state"]);

    const drift = async (...extra: string[]) =>
      await exec("deno", ["run", "-A", join(ws, "scripts/wod.ts"), "drift", "--env", "local", ...extra], {
        cwd: ws,
        env: { ...Deno.env.toObject(), WOD_ROOT: ws },
        allowFailure: true,
      });
    const mine = (out: string) =>
      out.split("\n").filter((l) => /\| jup1 \| (6\d|1069) \|/.test(l)).map((l) =>
        l.split("|").slice(2, 4).map((c) => c.trim()).join(" ")
      );

    // Plant: seat 61 loses its account; an unknown account; a server on free seat 62; seat 63's
    // content removed; seat 64's content present.
    await ssh("userdel", "student61");
    await ssh("useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", UNKNOWN);
    const created = await hub(info, "POST", "/users/student62");
    assert([201, 409].includes(created), `hub user create: ${created}`);
    const started = await hub(info, "POST", "/users/student62/server");
    assert([201, 202, 400].includes(started), `server start: ${started}`);
    await waitRunning(info, "student62");
    await ssh("rm", "-rf", "/student/student63/WKSHP-Shell101");
    await ssh("mkdir", "-p", "/student/student64/WKSHP-Shell101");
    await ssh("touch", "/student/student64/WKSHP-Shell101/0-ReadMeFirst.ipynb");

    // The shared sandbox's install playbook (run by other areas' tests) recreates missing pool
    // accounts: plant the deletion again right before each check that needs it.
    const replant = async () => {
      await sandboxSsh(info, ["userdel", "student61"]);
    };
    let r = await drift("--format", "markdown");
    for (let i = 0; i < 3 && !mine(r.stdout).includes("61 missing-user"); i++) {
      await replant();
      r = await drift("--format", "markdown");
    }
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stdout, "### Drift on local");
    assertEquals(mine(r.stdout), [
      "61 missing-user",
      "62 server-on-free-seat",
      "63 content-missing",
      "1069 unknown-user",
    ]);
    assertMatch(
      r.stdout,
      /\| 63 \| content-missing \| student63 is recorded active for WKSHP-Shell101 but \/student\/student63\/WKSHP-Shell101 is missing or empty \| operator \|/,
    );

    // The same through drift.yml in the local workflow runner: the job fails and its summary lists
    // the drift.
    await replant();
    const run = await runWorkflow({
      workflow: join(ws, ".github/workflows/drift.yml"),
      workspace: ws,
      tempDir: join(dir, "runner"),
      event: { name: "workflow_dispatch", payload: { inputs: { environment: "local" } } },
    });
    const job = run.jobs.find((j) => j.id === "drift")!;
    assertEquals(job.concurrency, { group: "wod-apply-local", cancelInProgress: false });
    assertEquals(job.result, "failure");
    const step = job.steps.find((st) => st.id === "drift")!;
    assertEquals(step.code, 2, step.log);
    assertEquals(step.outputs, { repaired: "false" });
    assertEquals(step.annotations[0]?.props.title, "Drift on local");
    assertEquals(
      mine(job.summary).filter((l) => !l.startsWith("61 ")),
      mine(r.stdout).filter((l) => !l.startsWith("61 ")),
    );

    // --repair: PURGE orders for the missing account and the server on a free seat.
    await replant();
    const rep = await drift("--repair");
    assertEquals(rep.code, 2, rep.stderr);
    assertMatch(rep.stderr, /Recorded \d+ repair order\(s\)/);
    const state = await exec("deno", [
      "run",
      "-A",
      join(ws, "scripts/wod.ts"),
      "state",
      "--env",
      "local",
      "--json",
    ], {
      cwd: ws,
      env: { ...Deno.env.toObject(), WOD_ROOT: ws },
    });
    assertMatch(state.stdout, /drift-local-jup1-62-server-on-free-seat-\d{10}/);
  } finally {
    // Undo everything planted (pool accounts are recreated by the backend's own tool).
    await sandboxSsh(info, ["userdel", UNKNOWN]);
    await sandboxSsh(info, ["/usr/local/sbin/wod-seat", "accounts", "/etc/wod/backend.json"]);
    await hub(info, "DELETE", "/users/student62/server").catch(() => 0);
    await sandboxSsh(info, ["rm", "-rf", "/student/student64/WKSHP-Shell101"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("wod drift refuses a backend whose host key is not the pinned one", async () => {
  const info = await ensureSandbox();
  const dir = await Deno.makeTempDir({ prefix: "wod-drift-kh-" });
  try {
    const kh = join(dir, "known_hosts");
    const real = await Deno.readTextFile(info.known_hosts);
    // Same host, another (valid-looking) key.
    await Deno.writeTextFile(
      kh,
      real.replace(
        /(ssh-ed25519 )\S+/,
        "$1AAAAC3NzaC1lZDI1NTE5AAAAIBDWRJZ2Hn4ATtiwGgBAzJ3E4lrjYkALRAoXmNEk2FmC",
      ),
    );
    const conn = {
      host: info.host,
      port: info.ssh_port,
      user: info.ssh_user,
      keyFile: info.ssh_key,
      knownHostsFile: kh,
      hubUrl: info.hub_url,
      fqdn: "localhost",
    };
    let msg = "";
    try {
      await sshRun(conn, "true", "");
    } catch (err) {
      msg = String((err as Error).message);
    }
    assertMatch(
      msg,
      new RegExp(
        `Host key of ${info.host.replaceAll(".", "\\.")}:${info.ssh_port} is not the one pinned in ${kh}`,
      ),
    );
    // The real pin works.
    assertEquals(await sshRun({ ...conn, knownHostsFile: info.known_hosts }, "echo pinned", ""), "pinned\n");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
