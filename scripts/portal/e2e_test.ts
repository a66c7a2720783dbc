// End to end through the portal on the sandbox backend (real parts only): a temporary copy of the
// repository (environments/, workshops/) whose private overlay gives WKSHP-Shell101 the seats 115-119
// of the sandbox (the portal's share: other tests use 1-79), a local bare git state remote, the order
// listener in process recording into it, a real SMTP sink for the participant emails, the portal, and
// `wod apply` / `wod expire` as processes with frontend.api_url pointed at the portal.
// Journey 1 (Chromium, signed orders): catalog -> WKSHP-Shell101 -> register -> welcome email ->
// apply -> credentials email -> the status page turns "ready" by itself (script) with the hub link ->
// login with the emailed password lands on the readme-first notebook -> expire after the end + apply
// -> "ended" and the seat count back. Journey 2 (no browser): the same with orders in the original
// subject/body format.
import { join } from "node:path";
import { chromium } from "playwright-core";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { freePort } from "../common/net.ts";
import { loadConfig } from "../config/load.ts";
import { startListener } from "../mail/listener.ts";
import { openStore } from "../state/store.ts";
import { newIdentity } from "../state/seal.ts";
import { startSmtpSink } from "../testing/smtp_sink.ts";
import { CHROMIUM, CHROMIUM_ARGS, hubBrowserSession } from "../e2e/browser.ts";
import { startPortal } from "./server.ts";
import { Client } from "./testing.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const RANGE: [number, number] = [115, 119];
const HMAC = "portal-e2e-key-not-a-secret-0123456789";
const API_USER = "apply";
const API_PASSWORD = "portal-e2e-api-password";

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  while (true) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function journey(format: "signed" | "original", browser: boolean) {
  const { ensureSandbox, sandboxTls } = await import("../backend/sandbox.ts");
  const { hubFetch } = await import("../backend/hub.ts");
  const sandbox = await ensureSandbox();
  const hubCert = (await sandboxTls()).cert;
  const root = await Deno.makeTempDir({ prefix: "wod-portal-e2e-" });
  const email = `portal-${format}@example.org`;
  const secrets: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const phase = (t: string) => console.log(`  [portal e2e ${format}] ${t}`);
  try {
    for (const d of ["environments", "workshops"]) await exec("cp", ["-r", join(REPO, d), join(root, d)]);
    const remote = join(root, "state.git");
    await exec("git", ["init", "-q", "--bare", remote]);
    const { identity, recipient } = await newIdentity();
    const identityFile = join(root, "age.txt");
    await Deno.writeTextFile(identityFile, identity + "\n", { mode: 0o600 });
    const sink = await startSmtpSink(join(root, "mail"));
    cleanups.push(() => sink.close());
    const listenPort = freePort();
    const portalPort = freePort();
    const privateDir = join(root, "private");
    await Deno.mkdir(join(privateDir, "environments"), { recursive: true });
    await Deno.writeTextFile(
      join(privateDir, "environments", "local.yaml"),
      `name: local
backends:
  - name: jup1
    ranges:
      WKSHP-Shell101: [${RANGE[0]}, ${RANGE[1]}]
orders:
  listen: 127.0.0.1:${listenPort}
  hmac_secret_env: WOD_PORTAL_E2E_HMAC
  accept_unsigned: ${format === "original"}
mail:
  from: wod-portal-e2e@localhost
  smtp_host: 127.0.0.1
  smtp_port: ${sink.port}
  send_credentials: false
frontend:
  api_url: http://127.0.0.1:${portalPort}
seal:
  recipients: [${recipient}]
state:
  store: git
  remote: ${remote}
  branch: state
portal:
  order_format: ${format}
`,
    );
    const cfg = await loadConfig(root, { privateDir });
    const bad = cfg.diagnostics.filter((d) => d.severity === "error");
    assertEquals(bad, [], "the e2e overlay validates");
    const stateSink = await openStore(root, "local", { config: cfg, privateDir });
    cleanups.push(() => stateSink.close());
    const listener = await startListener({
      cfg,
      env: "local",
      host: "127.0.0.1",
      port: listenPort,
      spoolDir: join(root, "spool"),
      sink: stateSink,
      hmacKey: HMAC,
      hostname: "localhost",
      drainDebounceMs: 5,
      log: () => {},
    });
    cleanups.unshift(() => listener.close());
    const vars: Record<string, string> = {
      WOD_PORTAL_E2E_HMAC: HMAC,
      WOD_FRONTEND_USER: API_USER,
      WOD_FRONTEND_PASSWORD: API_PASSWORD,
    };
    const portal = await startPortal({
      root,
      cfg,
      env: "local",
      privateDir,
      port: portalPort,
      getenv: (k) => vars[k] ?? Deno.env.get(k),
      tickMs: 500,
      log: () => {},
    });
    cleanups.unshift(() => portal.close());
    const wod = async (args: string[]) => {
      const r = await exec(Deno.execPath(), [
        "run",
        "-A",
        "--config",
        join(REPO, "deno.json"),
        join(REPO, "scripts/wod.ts"),
        ...args,
      ], {
        cwd: REPO,
        env: { WOD_ROOT: root, WOD_AGE_IDENTITY_FILE: identityFile, NO_COLOR: "1", ...vars },
        // The sandbox this test started (WOD_SANDBOX_DIR), not the default one.
        inherit: DENO_CHILD_INHERIT,
        allowFailure: true,
      });
      for (const s of secrets) {
        assert(!(r.stdout + r.stderr).includes(s), "a password appears in the CLI output");
      }
      assertEquals(r.code, 0, `wod ${args[0]} failed:\n${r.stdout}\n${r.stderr}`);
      return r;
    };
    const base = portal.url;

    phase("register");
    let statusPath: string;
    let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    let page: Awaited<ReturnType<NonNullable<typeof ctx>["newPage"]>> | undefined;
    const profile = await Deno.makeTempDir({ prefix: "wod-chromium-" });
    cleanups.push(() => Deno.remove(profile, { recursive: true }));
    if (browser) {
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 390, height: 844 }, // a phone
        timeout: 60_000,
      });
      cleanups.unshift(() => ctx!.close());
      page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(60_000);
      await page.goto(`${base}/`);
      assertStringIncludes(await page.textContent("main") ?? "", "5 seats free");
      await page.click('a[href="/workshops/WKSHP-Shell101"]');
      await page.fill("#f-email", email);
      await page.fill("#f-first_name", "Ada");
      await page.fill("#f-last_name", "Lovelace");
      await page.fill("#f-company", "Analytical Engines");
      await page.check("#f-consent");
      await Promise.all([page.waitForURL(/\/status\//), page.click("button[type=submit]")]);
      statusPath = new URL(page.url()).pathname;
      assertStringIncludes(await page.textContent("#live") ?? "", "Preparing");
    } else {
      const c = new Client(base);
      const csrf = await c.csrf("/workshops/WKSHP-Shell101");
      const r = await c.post("/register", {
        workshop: "WKSHP-Shell101",
        email,
        first_name: "Ada",
        last_name: "Lovelace",
        company: "Analytical Engines",
        consent: "yes",
        website: "",
        csrf,
      });
      assertEquals(r.res.status, 303);
      statusPath = r.res.headers.get("location")!.replace(/\?.*/, "");
    }
    const welcome = await sink.waitFor((m) => m.to.includes(email), 30_000);
    assertMatch(welcome.subject, /being prepared/);
    assertStringIncludes(welcome.text, `${base}${statusPath}`);

    phase("the order reaches recorded state");
    const [reg] = await portal.store.list();
    assert(reg.seat >= RANGE[0] && reg.seat <= RANGE[1], `seat ${reg.seat} outside the portal's range`);
    const probe = await openStore(root, "local", { config: cfg, privateDir });
    cleanups.push(() => probe.close());
    const order = await waitFor(
      "the CREATE order in state",
      60_000,
      async () => (await probe.readOrders()).find((o) => o.action === "CREATE" && o.seats[0] === reg.seat),
    );
    assertEquals([order.outcome, order.customer], ["accepted", String(reg.id)]);

    phase("wod apply");
    await wod(["apply", "--env", "local", "--private", privateDir]);
    const cred = await sink.waitFor((m) => m.to.includes(email) && /is ready/.test(m.subject), 30_000);
    const password = /Password:\s+(\S+)/.exec(cred.text)?.[1] ?? "";
    secrets.push(password);
    assert(password.length >= 12, "the credentials email holds a password");
    assertStringIncludes(cred.text, `student${reg.seat}`);
    const notebook = `WKSHP-Shell101/0-ReadMeFirst.ipynb`;
    const hubLink = `${sandbox.hub_url.replace(/\/+$/, "")}/user/student${reg.seat}/lab/tree/${notebook}`;
    if (page) {
      // The status page updates by itself (its script), no reload.
      await page.waitForSelector('[data-status="ready"]', { timeout: 30_000 });
      assertEquals(await page.getAttribute("#live a", "href"), hubLink);
      phase("Chromium: log in to JupyterHub with the emailed password");
      const run = await hubBrowserSession({
        hubUrl: sandbox.hub_url,
        username: `student${reg.seat}`,
        password,
        notebookPath: notebook,
        tlsCert: hubCert,
      });
      assert(run.login.ok, "the emailed password does not log in");
      assertMatch(run.notebook?.title ?? "", /0-ReadMeFirst/);
      assert((run.notebook?.cells ?? 0) >= 1, "the readme-first notebook shows its cells");
    } else {
      const c = new Client(base);
      const s = await c.get(statusPath);
      assertStringIncludes(s.text, 'data-status="ready"');
      assertStringIncludes(s.text, hubLink);
      const login = await hubFetch(`${sandbox.hub_url}/hub/login`).then((r) => r.text());
      assert(login.length > 0);
    }
    assertEquals((await portal.store.byId(reg.id))?.status, "ready");

    phase("wod expire --now <after the end>, wod apply");
    const seat = await waitFor(
      "the active seat",
      30_000,
      async () => (await probe.readSeats()).find((s) => s.seat === reg.seat && s.status === "active"),
    );
    const after = new Date(Date.parse(seat.expires!) + 60_000).toISOString();
    await wod(["expire", "--env", "local", "--private", privateDir, "--now", after]);
    await wod(["apply", "--env", "local", "--private", privateDir]);
    assertEquals((await portal.store.byId(reg.id))?.status, "ended");
    if (page) {
      await page.reload();
      assertStringIncludes(await page.textContent("#live") ?? "", "Ended");
      await page.goto(`${base}/`);
    }
    await waitFor("the seat count back to 5", 30_000, async () => {
      const t = await (await fetch(`${base}/`)).text();
      return t.includes("5 seats free") ? true : undefined;
    });
    const history = (await exec("git", ["log", "--all", "-p"], { cwd: remote })).stdout;
    assert(!history.includes(password), "the password is in git");
    assert(!history.includes(email), "the participant's email is in git in plain text");
    assert(!history.includes("Lovelace"), "the participant's name is in git");
  } catch (err) {
    const e = err as Error;
    let m = e.message;
    for (const s of secrets) m = m.split(s).join("[REDACTED]");
    throw new Error(m);
  } finally {
    for (const c of cleanups) await c().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

const ignore = Deno.uid() !== 0;
Deno.test({
  name: "portal e2e (Chromium, signed orders): catalog -> register -> welcome -> apply -> credentials -> " +
    "status ready by itself -> hub login on the readme-first notebook -> expire + apply -> ended, seat back",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => journey("signed", true),
});

Deno.test({
  name:
    "portal e2e (original subject/body orders): register -> welcome -> apply -> credentials -> ready -> " +
    "expire + apply -> ended, seat back",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => journey("original", false),
});
