// Bench: a classroom arriving at once. N seats (WOD_BENCH_CLASSROOM_N, default 100) of WKSHP-Shell101
// on jup1 are created in one apply (their hub servers started, as a CREATE does in production), then
// all N students start together, with no stagger, through the public entry (nginx, HTTPS, the sandbox
// CA): the hub's login form with the delivered password -> their server ready (the redirect lands on
// the workshop's entry notebook) -> the contents API opens that notebook -> a token (asked with the
// password, as scripts/e2e/lab_test.ts does) -> a notebook session with the notebook's kernel -> the
// kernel's websocket -> one execute reply. Each student's time runs from the login request to that
// reply, with a per-student timeout (WOD_BENCH_CLASSROOM_TIMEOUT_S, default 180). Prints
//   classroom<N>_all_open_s        common start -> the last student's reply (n/a if any failed)
//   classroom<N>_open_p50_s/_p95_s each student's login -> kernel reply
//   classroom<N>_failed_logins / _failed_opens, and the median of each stage
// and the baseline from the same run: single_login_open_s, one student alone before the crowd (one
// more seat). Seats 120-N..120 of jup1 (docs/testbed.md: the bench range widened in a temporary copy
// of the repo; run alone); purged at the end. Needs root (the sandbox). Goal: all 100 open within 90 s
// on 2 cores with no failed login.
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { exec } from "../scripts/common/exec.ts";
import { ensureSandbox } from "../scripts/backend/sandbox.ts";
import { HubClient, hubFetch, HubSession, trustHubCa } from "../scripts/backend/hub.ts";
import { runSeatTasks } from "../scripts/backend/seats.ts";
import { loadConfig } from "../scripts/config/load.ts";
import { JupyterServer } from "../scripts/content/kernel.ts";
import { failureSummary, reportLines, type Stage, type StudentOutcome } from "./_classroom.ts";

const N = Number(Deno.env.get("WOD_BENCH_CLASSROOM_N") ?? 100);
const TIMEOUT_S = Number(Deno.env.get("WOD_BENCH_CLASSROOM_TIMEOUT_S") ?? 180);
// "create" (default, as in production: the CREATE starts each seat's server, the bench waits until all
// are ready) or "login" (cold: no server yet, each student's login spawns it).
const SPAWN = Deno.env.get("WOD_BENCH_CLASSROOM_SPAWN") ?? "create";
const LAST = 120;
const WORKSHOP = "WKSHP-Shell101";
const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

if (Deno.uid() !== 0) {
  console.error("error: bench classroom needs root (it runs the sandbox backend)");
  Deno.exit(1);
}
if (!Number.isInteger(N) || N < 1 || N > LAST - 1) {
  console.error(
    `error: WOD_BENCH_CLASSROOM_N must be a whole number from 1 to ${LAST - 1} (jup1 has ${LAST} students ` +
      `and the baseline needs one more seat), got "${Deno.env.get("WOD_BENCH_CLASSROOM_N")}"`,
  );
  Deno.exit(1);
}
if (!(TIMEOUT_S > 0)) {
  console.error(
    `error: WOD_BENCH_CLASSROOM_TIMEOUT_S must be a positive number of seconds, got "${TIMEOUT_S}"`,
  );
  Deno.exit(1);
}
if (SPAWN !== "create" && SPAWN !== "login") {
  console.error(`error: WOD_BENCH_CLASSROOM_SPAWN must be "create" or "login", got "${SPAWN}"`);
  Deno.exit(1);
}
const FIRST = LAST - N; // FIRST: the baseline student; FIRST+1..LAST: the crowd.
const seats = Array.from({ length: N + 1 }, (_, i) => FIRST + i);
const user = (seat: number) => `student${seat}`;

/** The student's whole open, stage by stage; never throws (a failure is an outcome). */
async function openNotebook(hubUrl: string, name: string, password: string): Promise<StudentOutcome> {
  const out: StudentOutcome = { user: name, ok: false, seconds: 0, stages: {} };
  const t0 = performance.now();
  const deadline = t0 + TIMEOUT_S * 1000;
  let stage: Stage = "login";
  let t = t0;
  const done = (s: Stage) => {
    const now = performance.now();
    out.stages[s] = (now - t) / 1000;
    t = now;
  };
  const left = () => Math.max(1, deadline - performance.now());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no reply within the ${TIMEOUT_S} s per-student timeout`)),
      left(),
    );
  });
  let cleanup: (() => void) | undefined;
  const run = async () => {
    const s = new HubSession(hubUrl, name);
    if (!await s.login(password)) throw new Error("the hub refused the delivered password");
    done(stage);
    stage = "server";
    // As a browser after the login (/hub/ -> /hub/spawn): spawns the server unless it runs (a spawn the
    // hub gave up on at CREATE time is retried here), then waits for it.
    const spawn = await s.follow("/hub/spawn");
    await spawn.res.body?.cancel();
    // Its own timeout a little earlier than the student's: its error names the last answer.
    const landing = await s.openServer(Math.round(Math.max(1000, left() - 1000)));
    done(stage);
    stage = "contents";
    const tree = landing.indexOf("/lab/tree/");
    const path = tree >= 0 ? landing.slice(tree + "/lab/tree/".length) : `${WORKSHOP}/0-ReadMeFirst.ipynb`;
    const nb = await s.contents(path);
    if (nb.status !== 200 || !nb.model) {
      throw new Error(`the contents API answered HTTP ${nb.status} for ${path}`);
    }
    const meta = (nb.model.content as { metadata?: { kernelspec?: { name?: string } } })?.metadata;
    const kernel = meta?.kernelspec?.name ?? "python3";
    done(stage);
    stage = "token";
    const tok = await hubFetch(`${hubUrl}/hub/api/users/${name}/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ auth: { username: name, password }, note: "bench classroom", expires_in: 900 }),
    });
    if (tok.status !== 201) {
      await tok.body?.cancel();
      throw new Error(`the hub answered HTTP ${tok.status} to the token request`);
    }
    const server = new JupyterServer(`${hubUrl}/user/${name}`, (await tok.json() as { token: string }).token);
    done(stage);
    stage = "session";
    const session = await server.createSession(path, kernel);
    done(stage);
    stage = "kernel";
    // As JupyterLab keeps waiting for a kernel that is still starting: the student's remaining time.
    const channel = await server.connect(session.kernel.id, left());
    cleanup = () => channel.close();
    done(stage);
    stage = "execute";
    const r = await channel.execute(kernel === "bash" ? "echo open" : "print('open')", left());
    if (r.status !== "ok") throw new Error(`the cell ended with status ${r.status}`);
    done(stage);
  };
  try {
    await Promise.race([run(), expired]);
    out.ok = true;
  } catch (e) {
    out.failedAt = stage;
    out.error = ((e as Error).message ?? String(e)).split("\n")[0].replaceAll(name, "<user>");
  } finally {
    clearTimeout(timer);
    out.seconds = (performance.now() - t0) / 1000;
    cleanup?.();
  }
  return out;
}

const info = await ensureSandbox((l) => console.error(`sandbox: ${l}`));
trustHubCa(info.ca_file);
const tmp = await Deno.makeTempDir({ prefix: "wod-bench-classroom-" });
const root = join(tmp, "repo");
let created = false;
try {
  // A temporary copy of the repo: the workshop's range on jup1 widened to the bench's seats.
  await Deno.mkdir(root);
  for (const d of ["environments", "workshops"]) await exec("cp", ["-r", join(REPO, d), join(root, d)]);
  const envFile = join(root, "environments", "local.yaml");
  const env = parse(await Deno.readTextFile(envFile)) as { backends: { name: string; ranges?: unknown }[] };
  const jup1 = env.backends.find((b) => b.name === "jup1");
  if (!jup1) throw new Error(`No backend jup1 in ${join(REPO, "environments", "local.yaml")}`);
  jup1.ranges = { [WORKSHOP]: [FIRST, LAST] };
  await Deno.writeTextFile(envFile, stringify(env));
  const wsFile = join(root, "workshops", WORKSHOP, "workshop.yaml");
  await Deno.writeTextFile(
    wsFile,
    (await Deno.readTextFile(wsFile)).replace(/^capacity: .*$/m, `capacity: ${N + 1}`),
  );
  const config = await loadConfig(root);

  // Start from free seats (an interrupted run may have left them active).
  created = true;
  const purge = await runSeatTasks({
    config,
    env: "local",
    backend: "jup1",
    tasks: seats.map((seat) => ({ action: "PURGE" as const, workshop: WORKSHOP, seat })),
  });
  const notFreed = purge.filter((r) => !r.ok);
  if (notFreed.length) {
    throw new Error(
      `PURGE before the bench failed for ${notFreed.length} seats (first: seat ${notFreed[0].seat}: ` +
        `${notFreed[0].error}); free them with wod and run the bench again`,
    );
  }
  console.error(`classroom: creating ${N + 1} seats (${user(FIRST)}-${user(LAST)}) in one apply`);
  const c0 = performance.now();
  created = true;
  const res = await runSeatTasks({
    config,
    env: "local",
    backend: "jup1",
    tasks: seats.map((seat) => ({ action: "CREATE" as const, workshop: WORKSHOP, seat })),
    startServers: SPAWN === "create",
  });
  const createS = (performance.now() - c0) / 1000;
  const bad = res.filter((r) => !r.ok || !r.password);
  if (bad.length) {
    throw new Error(
      `CREATE failed for ${bad.length} of ${seats.length} seats (first: seat ${bad[0].seat}: ${
        bad[0].error
      }); ` +
        "see the ansible output above",
    );
  }
  const password = new Map(res.map((r) => [r.seat, r.password!]));
  let serversUp = 0;
  if (SPAWN === "create") {
    // The spawns the CREATE started must be settled before anyone is timed (the baseline runs alone). A
    // spawn the hub gave up on (its http_timeout under load) leaves the seat without a server: its
    // student's login spawns it again, as in production; the count is reported.
    const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
    const names = new Set(seats.map(user));
    const end = Date.now() + 300_000;
    for (;;) {
      const users = (await hub.listUsers()).filter((u) => names.has(u.name));
      const pending = users.filter((u) => u.pending).length;
      serversUp = users.filter((u) => u.server && !u.pending).length;
      if (pending === 0 && users.length === names.size) break;
      if (Date.now() > end) {
        throw new Error(
          `${pending} of the ${names.size} server spawns the CREATE started were still pending after 300 s; ` +
            "check the hub log on jup1 (wod sandbox status names it)",
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.error(
      `classroom: spawns settled ${((performance.now() - c0) / 1000).toFixed(1)} s after the CREATE began: ` +
        `${serversUp} of ${names.size} servers up`,
    );
  }

  console.error(`classroom: one student alone (${user(FIRST)})`);
  const single = await openNotebook(info.hub_url, user(FIRST), password.get(FIRST)!);
  if (!single.ok) {
    console.error(`classroom: the single student failed at ${single.failedAt}: ${single.error}`);
  }
  const stageText = (o: StudentOutcome) =>
    Object.entries(o.stages).map(([k, v]) => `${k} ${v!.toFixed(2)} s`).join(", ");
  console.error(`classroom: the single student's stages: ${stageText(single)}`);

  const crowdSeats = seats.slice(1);
  console.error(`classroom: ${N} students at once (${user(crowdSeats[0])}-${user(LAST)})`);
  const start = performance.now();
  let finished = 0;
  const progress = setInterval(
    () =>
      console.error(
        `classroom: ${finished}/${N} done after ${((performance.now() - start) / 1000).toFixed(0)} s`,
      ),
    10_000,
  );
  const crowd = await Promise.all(crowdSeats.map(async (seat) => {
    const o = await openNotebook(info.hub_url, user(seat), password.get(seat)!);
    finished++;
    return { o, end: performance.now() };
  }));
  clearInterval(progress);
  const allOpenS = (Math.max(...crowd.map((c) => c.end)) - start) / 1000;
  const outcomes = crowd.map((c) => c.o);
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");

  for (const line of failureSummary([single, ...outcomes])) console.error(`classroom: ${line}`);
  for (const line of reportLines(N, outcomes, allOpenS, single)) console.log(line);
  console.log(`classroom${N}_create_seats_s: ${createS.toFixed(2)} s`);
  console.log(`classroom${N}_servers_started_at: ${SPAWN}`);
  if (SPAWN === "create") console.log(`classroom${N}_servers_up_before_login: ${serversUp} servers`);
  console.log(`load_average_after: ${load}`);
  const failed = outcomes.filter((o) => !o.ok).length;
  console.log(
    `goal: all ${N} open within 90 s with no failed login: ${
      failed === 0 && allOpenS <= 90 ? "met" : "MISSED"
    } (${navigator.hardwareConcurrency} cores)`,
  );
} finally {
  if (created) {
    // Free the seats (stops their servers and kernels) in one run.
    console.error(`classroom: purging seats ${FIRST}-${LAST}`);
    await loadConfig(root).then((config) =>
      runSeatTasks({
        config,
        env: "local",
        backend: "jup1",
        tasks: seats.map((seat) => ({ action: "PURGE" as const, workshop: WORKSHOP, seat })),
      })
    ).then((r) => {
      const bad = r.filter((x) => !x.ok);
      if (bad.length) {
        console.error(
          `warning: purge failed for ${bad.length} seats (first: ${bad[0].seat}: ${bad[0].error})`,
        );
      }
    }).catch((e) =>
      console.error(`warning: purge of seats ${FIRST}-${LAST} failed: ${(e as Error).message.split("\n")[0]}`)
    );
  }
  await Deno.remove(tmp, { recursive: true });
}
