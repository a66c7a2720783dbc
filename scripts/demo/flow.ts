// The whole flow on this machine, shared by `deno task demo` and the end-to-end test:
// sandbox backend -> local state remote -> age key -> maildev -> private overlay -> `wod listen` ->
// a CREATE order in the original front end's bytes -> recorded -> `wod apply` -> credentials email.
// Everything lives in one work directory with a state file (demo.json) listing what was started, so
// `demoDown` removes exactly that (processes by PID, the sandbox only when this demo started it).
//
// The demo's settings are a private overlay (<work>/private/environments/<env>.yaml, see
// docs/private-fork.md): the seat range of the demo workshop (seats 70-79 of the shared sandbox,
// docs/testbed.md), the mail catcher as SMTP relay with send_credentials, an age recipient for the
// participant's email (identity in <work>/age-identity.txt, 0600), and the state remote
// <work>/state.git. Nothing in the repository is changed.
import { join } from "node:path";
import { existsSync } from "node:fs";
import { stringify } from "yaml";
import { WodError } from "../common/errors.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { initBare } from "../common/git.ts";
import { newIdentity } from "../state/seal.ts";
import { openStore } from "../state/store.ts";
import { sendOriginalOrder } from "../orders/send.ts";
import { freePort, logTail, type ProcRecord, sleep, spawnDetached, stopProcess } from "./procs.ts";

export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const WOD = join(REPO, "scripts", "wod.ts");
const CONFIG = join(REPO, "deno.json");
const MAILDEV = "npm:maildev@3.0.0";

export interface DemoOptions {
  /** The repository the CLI acts on (WOD_ROOT). */
  root: string;
  /** Work directory (created; must not hold another demo). */
  work: string;
  env?: string;
  backend?: string;
  workshop?: string;
  /** The seat range given to the workshop in the overlay; the order is for its first seat. */
  range?: [number, number];
  seat?: number;
  customer?: string;
  email?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * The sandbox is shared with others (tests): start it when needed but never record it as the demo's,
   * so `demoDown` leaves it running (and purges the demo seat instead).
   */
  shareSandbox?: boolean;
  /**
   * Go through the registration portal (`wod portal`): the participant registers on it like a browser,
   * the portal sends the order (original subject/body format) and, called back by `wod apply`, the
   * credentials email. Without it the order is sent straight to the listener in the original bytes.
   */
  portal?: boolean;
}

export interface DemoState {
  version: 1;
  root: string;
  work: string;
  env: string;
  backend: string;
  workshop: string;
  seat: number;
  email: string;
  privateDir: string;
  identityFile: string;
  stateRemote: string;
  startedSandbox: boolean;
  procs: ProcRecord[];
  smtpPort?: number;
  webPort?: number;
  listenPort?: number;
  healthPort?: number;
  hubUrl?: string;
  mailUrl?: string;
  orderId?: string;
  portalPort?: number;
  portalUrl?: string;
  /** The participant's status page on the portal. */
  statusUrl?: string;
  /** The portal's callback API account, shared with `wod apply` (demo only; this file is 0600). */
  api?: { user: string; password: string };
  /** Output of the CLI commands run (apply), for the caller to check: never holds a password. */
  outputs: string[];
}

export interface StepTiming {
  name: string;
  seconds: number;
}

export function stateFile(work: string): string {
  return join(work, "demo.json");
}

async function save(st: DemoState): Promise<void> {
  await Deno.writeTextFile(stateFile(st.work), JSON.stringify(st, null, 2) + "\n", { mode: 0o600 });
}

export async function readDemoState(work: string): Promise<DemoState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(stateFile(work))) as DemoState;
  } catch {
    return undefined;
  }
}

/** Runs `wod <args>` on the demo's root with its overlay identity; output captured. */
export async function wodCli(st: DemoState, args: string[]) {
  return await exec(Deno.execPath(), ["run", "-A", "--config", CONFIG, WOD, ...args], {
    cwd: REPO,
    env: {
      WOD_ROOT: st.root,
      WOD_AGE_IDENTITY_FILE: st.identityFile,
      NO_COLOR: "1",
      ...(st.api ? { WOD_FRONTEND_USER: st.api.user, WOD_FRONTEND_PASSWORD: st.api.password } : {}),
    },
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
}

/** Where the hub is, where the mail catcher is: what the demo prints at the end. */
export interface DemoResult {
  state: DemoState;
  steps: StepTiming[];
  hubUrl: string;
  mailUrl: string;
  username: string;
}

/** Emails in maildev (its REST API, GET /api/email). */
export interface MaildevEmail {
  id: string;
  subject: string;
  text?: string;
  to: { address: string }[];
  time: string;
}

export async function maildevEmails(webPort: number): Promise<MaildevEmail[]> {
  const res = await fetch(`http://127.0.0.1:${webPort}/api/email`);
  if (!res.ok) throw new WodError(`MailDev API answered ${res.status} on GET /api/email`);
  return await res.json() as MaildevEmail[];
}

export async function waitFor<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | undefined>,
  every = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new WodError(`Timed out after ${Math.round(ms / 1000)} s waiting for ${what}`);
    }
    await sleep(every);
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** One run of `demoUp`: its options with defaults filled in, its recorded state and its progress log. */
interface DemoRun {
  opts: DemoOptions;
  st: DemoState;
  log: (line: string) => void;
  range: [number, number];
  customer: string;
}

/** Runs the steps of `demoUp` as numbered progress lines with their timings; saves the state after each. */
function stepper(run: DemoRun, total: number, steps: StepTiming[]) {
  const { log, st } = run;
  return async <T>(name: string, fn: () => Promise<T>, detail?: (v: T) => string): Promise<T> => {
    const n = steps.length + 1;
    log(`[${n}/${total}] ${name} ...`);
    const t0 = performance.now();
    try {
      const v = await fn();
      const seconds = (performance.now() - t0) / 1000;
      steps.push({ name, seconds });
      log(`[${n}/${total}] ${name}: done in ${seconds.toFixed(1)} s${detail ? ` (${detail(v)})` : ""}`);
      await save(st);
      return v;
    } catch (err) {
      log(`[${n}/${total}] ${name}: FAILED after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      await save(st);
      throw err;
    }
  };
}

/** The programs the demo needs; a fresh machine gets them from .ci/setup (idempotent). */
async function checkTools(log: (line: string) => void): Promise<void> {
  if (Deno.uid() !== 0) {
    throw new WodError("The demo runs a sandbox backend (namespaces, chroot, mounts) and must run as root");
  }
  const missingTools = async () => {
    const missing: string[] = [];
    for (const tool of ["git", "ansible-playbook", "debootstrap", "ssh", "setsid"]) {
      const r = await exec("sh", ["-c", 'command -v "$1"', "sh", tool], { allowFailure: true });
      if (r.code !== 0) missing.push(tool);
    }
    return missing;
  };
  let missing = await missingTools();
  if (!missing.length) return;
  // A fresh machine: install the Debian packages and npm modules (.ci/setup is idempotent).
  log(`      missing ${missing.join(", ")}: running .ci/setup`);
  const { code } = await exec("bash", [join(REPO, ".ci", "setup")], {
    cwd: REPO,
    output: "inherit",
    allowFailure: true,
  });
  missing = await missingTools();
  if (code !== 0 || missing.length) {
    throw new WodError(
      `Missing programs: ${
        missing.join(", ") || "(none)"
      }; .ci/setup exited with ${code}: fix and run it again`,
    );
  }
}

async function startSandbox({ opts, st, log }: DemoRun) {
  const { sandboxStatus, ensureSandbox } = await import("../backend/sandbox.ts");
  const running = await sandboxStatus();
  if (running) return { info: running, reused: true };
  st.startedSandbox = !opts.shareSandbox;
  await save(st);
  const info = await ensureSandbox((l) => log(`      ${l}`));
  return { info, reused: false };
}

/**
 * Starts a background process of the demo (recorded at once, so `demoDown` stops it even when it never
 * becomes ready) and waits until `readyUrl` answers; a process that exits first fails with its log's tail.
 */
async function startAndWait(
  st: DemoState,
  name: string,
  argv: string[],
  readyUrl: string,
  opts: { env?: Record<string, string> } = {},
): Promise<void> {
  const what = name === "maildev" ? name : `the ${name}`;
  const p = spawnDetached(name, argv, { log: join(st.work, `${name}.log`), cwd: REPO, env: opts.env });
  st.procs.push(p);
  await save(st);
  await waitFor(`${what} to answer on ${readyUrl}`, 120_000, async () => {
    if (await httpOk(readyUrl)) return true;
    if (!existsSync(`/proc/${p.pid}`)) {
      throw new WodError(`${what[0].toUpperCase()}${what.slice(1)} exited: ${await logTail(p.log)}`);
    }
    return undefined;
  });
}

/** `deno run` of the wod CLI with the repository's config: the argv of the demo's CLI processes. */
function wodArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", "-A", "--config", CONFIG, WOD, ...args];
}

async function startMailCatcher(st: DemoState): Promise<void> {
  st.smtpPort = freePort();
  st.webPort = freePort();
  const mailDir = join(st.work, "maildev");
  await Deno.mkdir(mailDir, { recursive: true });
  st.mailUrl = `http://127.0.0.1:${st.webPort}/`;
  await startAndWait(st, "maildev", [
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    CONFIG,
    MAILDEV,
    "--ip",
    "127.0.0.1",
    "--web-ip",
    "127.0.0.1",
    "-s",
    String(st.smtpPort),
    "-w",
    String(st.webPort),
    "--mail-directory",
    mailDir,
  ], `http://127.0.0.1:${st.webPort}/api/healthz`);
}

/** The overlay: the demo's seat range, the mail catcher, the seal recipient, the state remote. */
async function writeOverlay({ opts, st, range }: DemoRun, recipient: string): Promise<void> {
  st.listenPort = freePort(true);
  st.healthPort = st.listenPort + 1;
  if (opts.portal) {
    st.portalPort = freePort();
    st.portalUrl = `http://127.0.0.1:${st.portalPort}`;
    st.api = { user: "wod-apply", password: crypto.randomUUID() };
  }
  await Deno.mkdir(join(st.privateDir, "environments"), { recursive: true });
  const overlay = {
    name: st.env,
    backends: [{ name: st.backend, ranges: { [st.workshop]: range } }],
    orders: { listen: `127.0.0.1:${st.listenPort}` },
    mail: {
      from: "wod-demo@localhost",
      smtp_host: "127.0.0.1",
      smtp_port: st.smtpPort,
      // With the portal, the portal emails the credentials (apply reports them to it).
      send_credentials: !opts.portal,
    },
    seal: { recipients: [recipient] },
    state: { store: "git", remote: st.stateRemote, branch: "state" },
    ...(opts.portal
      ? {
        frontend: { api_url: st.portalUrl },
        portal: {
          listen: `127.0.0.1:${st.portalPort}`,
          order_format: "original",
          order_sender: "wodadmin@localhost",
        },
      }
      : {}),
  };
  await Deno.writeTextFile(
    join(st.privateDir, "environments", `${st.env}.yaml`),
    `# The demo's private overlay (written by scripts/demo/flow.ts; removed by \`deno task demo --down\`).\n${
      stringify(overlay)
    }`,
  );
  const v = await wodCli(st, ["validate", "--private", st.privateDir]);
  if (v.code !== 0) throw new WodError(`The demo configuration does not validate:\n${v.stdout}${v.stderr}`);
}

async function prepareStateAndMail(run: DemoRun): Promise<void> {
  const { st } = run;
  await initBare(st.stateRemote);
  const { identity, recipient } = await newIdentity();
  await Deno.writeTextFile(
    st.identityFile,
    `# wod demo: opens the participant emails sealed in ${st.stateRemote}\n${identity}\n`,
    { mode: 0o600 },
  );
  await startMailCatcher(st);
  await writeOverlay(run, recipient);
}

/** `wod <command>` of a demo service: the demo's environment and overlay, listening on loopback `port`. */
function serviceArgs(st: DemoState, command: string, port: number): string[] {
  return [command, "--env", st.env, "--private", st.privateDir, "--listen", `127.0.0.1:${port}`];
}

async function startOrderListener(st: DemoState): Promise<void> {
  await startAndWait(
    st,
    "listener",
    wodArgv([
      ...serviceArgs(st, "listen", st.listenPort!),
      "--health",
      `127.0.0.1:${st.healthPort}`,
      "--spool",
      join(st.work, "spool"),
      "--hostname",
      "localhost",
    ]),
    `http://127.0.0.1:${st.healthPort}/health`,
    { env: { WOD_ROOT: st.root } },
  );
}

async function startPortal(st: DemoState): Promise<void> {
  await startAndWait(
    st,
    "portal",
    wodArgv([...serviceArgs(st, "portal", st.portalPort!), "--data-dir", join(st.work, "portal")]),
    `${st.portalUrl}/health`,
    { env: { WOD_ROOT: st.root, WOD_FRONTEND_USER: st.api!.user, WOD_FRONTEND_PASSWORD: st.api!.password } },
  );
}

/** Registers as a browser does: the form, its CSRF token, consent. */
async function registerOnPortal(st: DemoState): Promise<void> {
  const { Client } = await import("../portal/client.ts");
  const c = new Client(st.portalUrl!);
  const csrf = await c.csrf(`/workshops/${st.workshop}`);
  const r = await c.post("/register", {
    workshop: st.workshop,
    email: st.email,
    first_name: "Demo",
    last_name: "Participant",
    company: "wod demo",
    consent: "yes",
    website: "",
    csrf,
  });
  const loc = r.res.headers.get("location");
  if (r.res.status !== 303 || !loc) {
    throw new WodError(`The portal refused the registration (HTTP ${r.res.status}): ${r.text.slice(0, 300)}`);
  }
  st.statusUrl = `${st.portalUrl}${loc.replace(/\?.*/, "")}`;
}

async function waitUntilRecorded({ opts, st }: DemoRun) {
  const store = await openStore(st.root, st.env, { privateDir: st.privateDir });
  try {
    const order = await waitFor("the order to be recorded", 120_000, async () => {
      const orders = await store.readOrders();
      // Through the portal, the portal chose the seat (the lowest free one of the range).
      const o = orders.find((x) =>
        x.action === "CREATE" && x.backend === st.backend && (opts.portal || x.seats[0] === st.seat)
      );
      if (o) return o;
      const refused = (await logTail(join(st.work, "listener.log"), 50)).split("\n")
        .find((l) => l.includes('"event":"refused"'));
      if (refused) throw new WodError(`The listener refused the order: ${refused}`);
      return undefined;
    }, 250);
    if (order.outcome !== "accepted") {
      throw new WodError(`The order ${order.id} was recorded as ${order.outcome}: ${order.reason ?? ""}`);
    }
    st.orderId = order.id;
    st.seat = order.seats[0];
    return order;
  } finally {
    await store.close();
  }
}

async function applyOnce({ st, log }: DemoRun): Promise<void> {
  const r = await wodCli(st, ["apply", "--env", st.env, "--private", st.privateDir]);
  st.outputs.push(r.stdout, r.stderr);
  for (const l of (r.stdout + r.stderr).trimEnd().split("\n")) if (l.trim()) log(`      ${l}`);
  if (r.code !== 0) throw new WodError(`wod apply failed (exit ${r.code})`);
}

async function waitForCredentials({ opts, st }: DemoRun): Promise<MaildevEmail> {
  return await waitFor(`the credentials email to ${st.email} in maildev`, 120_000, async () => {
    const all = await maildevEmails(st.webPort!);
    // (Through the portal the welcome email comes first: the credentials one says "is ready".)
    return all.find((m) =>
      m.to.some((t) => t.address === st.email) && (!opts.portal || /is ready/.test(m.subject))
    );
  });
}

/** A new demo's recorded state in `opts.work` (created; must not hold another demo). */
async function newRun(opts: DemoOptions): Promise<DemoRun> {
  const range = opts.range ?? [70, 79];
  const seat = opts.seat ?? range[0];
  if (await readDemoState(opts.work)) {
    throw new WodError(
      `A demo is already recorded in ${stateFile(opts.work)}: run \`deno task demo --down\` first`,
    );
  }
  await Deno.mkdir(opts.work, { recursive: true, mode: 0o700 });
  const st: DemoState = {
    version: 1,
    root: opts.root,
    work: opts.work,
    env: opts.env ?? "local",
    backend: opts.backend ?? "jup1",
    workshop: opts.workshop ?? "WKSHP-Shell101",
    seat,
    email: opts.email ?? `student${seat}@example.org`,
    privateDir: join(opts.work, "private"),
    identityFile: join(opts.work, "age-identity.txt"),
    stateRemote: join(opts.work, "state.git"),
    startedSandbox: false,
    procs: [],
    outputs: [],
  };
  await save(st);
  const log = opts.log ?? ((l: string) => console.log(l));
  return { opts, st, log, range, customer: opts.customer ?? String(1000 + seat) };
}

/** Brings the whole demo up; on failure everything started so far stays recorded for `demoDown`. */
export async function demoUp(opts: DemoOptions): Promise<DemoResult> {
  const run = await newRun(opts);
  const { st } = run;
  const steps: StepTiming[] = [];
  const step = stepper(run, opts.portal ? 9 : 8, steps);
  await step("Check the tools", () => checkTools(run.log));
  const sandbox = await step(
    "Sandbox backend (wod sandbox up)",
    () => startSandbox(run),
    (v) => `${v.reused ? "already running" : "started"}, hub ${v.info.hub_url}`,
  );
  st.hubUrl = sandbox.info.hub_url;
  await step(
    "Local state remote, age key, mail catcher (maildev)",
    () => prepareStateAndMail(run),
    () => `SMTP 127.0.0.1:${st.smtpPort}, web ${st.mailUrl}`,
  );
  await step(
    "Order listener (wod listen)",
    () => startOrderListener(st),
    () => `SMTP 127.0.0.1:${st.listenPort}, health http://127.0.0.1:${st.healthPort}/health`,
  );
  if (opts.portal) {
    await step("Registration portal (wod portal)", () => startPortal(st), () => `${st.portalUrl}/`);
    await step(
      `Register for ${st.workshop} on the portal (as a browser does: form, CSRF token, consent)`,
      () => registerOnPortal(st),
      () => `status page ${st.statusUrl}`,
    );
  } else {
    const greeting = await step(
      `Send CREATE ${st.seat} ${st.workshop} as the original front end does (raw TCP, bare LF)`,
      () =>
        sendOriginalOrder(st.listenPort!, {
          helo: "api-db.localhost",
          from: "wodadmin@localhost",
          to: "wodadmin@localhost",
          subject: `CREATE ${st.seat} ${run.customer} ${st.email}`,
          body: st.workshop,
        }),
      (g) => `server said ${JSON.stringify(g.split("\r\n")[0].slice(0, 60))}`,
    );
    if (!greeting.startsWith("220")) throw new WodError(`Unexpected greeting from the listener: ${greeting}`);
  }
  await step(
    "Wait until the order is recorded in the state remote",
    () => waitUntilRecorded(run),
    (o) => `order ${o.id}, ${st.stateRemote}`,
  );
  await step("Apply (wod apply): account, notebooks, hub server, credentials email", () => applyOnce(run));
  await step(
    "Wait for the credentials email in the mail catcher",
    () => waitForCredentials(run),
    (m) => `"${m.subject}"`,
  );
  await save(st);
  return {
    state: st,
    steps,
    hubUrl: `${st.hubUrl}/hub/login`,
    mailUrl: st.mailUrl!,
    username: `student${st.seat}`,
  };
}

/** Removes what `demoUp` started in `work` (by its state file). Returns what it did, line by line. */
export async function demoDown(
  work: string,
  log: (line: string) => void = (l) => console.log(l),
): Promise<boolean> {
  const st = await readDemoState(work);
  if (!st) {
    log(`No demo recorded in ${stateFile(work)}: nothing to remove`);
    return false;
  }
  for (const p of [...st.procs].reverse()) {
    const r = await stopProcess(p);
    log(`${p.name} (pid ${p.pid}): ${r === "stopped" ? "stopped" : "was not running"}`);
  }
  const { sandboxDown, sandboxStatus } = await import("../backend/sandbox.ts");
  if (st.startedSandbox) {
    const stopped = await sandboxDown();
    log(`sandbox: ${stopped ? "stopped (the demo had started it)" : "was not running"}`);
  } else if (await sandboxStatus()) {
    // The sandbox is shared (tests, other work): leave it up, but free the demo's seat on it.
    try {
      const { runSeatTasks } = await import("../backend/seats.ts");
      const { loadConfig } = await import("../config/load.ts");
      const privateDir = existsSync(st.privateDir) ? st.privateDir : undefined;
      const [r] = await runSeatTasks({
        config: await loadConfig(st.root, { privateDir }),
        privateDir,
        env: st.env,
        backend: st.backend,
        tasks: [{ action: "PURGE", workshop: st.workshop, seat: st.seat }],
      });
      log(
        `seat student${st.seat}: ${
          r?.ok
            ? "purged on the sandbox (left running: the demo did not start it)"
            : `purge failed: ${r?.error}`
        }`,
      );
    } catch (err) {
      log(`seat student${st.seat}: purge failed: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  await Deno.remove(work, { recursive: true });
  log(`removed ${work}`);
  return true;
}
