// Debian's Chromium driven by playwright-core (docs/testbed.md): headless, no sandbox (root), no background
// networking, a fresh profile per launch. Used by the end-to-end tests: log in on the JupyterHub login
// page as the student (over HTTPS through the backend's nginx), land on the server's default page (the
// workshop's entry notebook in JupyterLab), open notebooks with their kernels, take screenshots.
// The hub's self-signed certificate is accepted by its key alone (--ignore-certificate-errors-spki-list
// with that one key), never by switching certificate checks off. Errors never carry the password (it is
// replaced before an error leaves this module).
import { chromium, type Page } from "playwright-core";
import { X509Certificate } from "node:crypto";
import { redactText } from "../common/log.ts";

export const CHROMIUM = Deno.env.get("WOD_CHROMIUM") ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export type LoginOutcome = { ok: true; url: string } | { ok: false; url: string; message: string };

export interface NotebookView {
  path: string;
  title: string;
  cells: number;
  /** The kernel's display name in JupyterLab's toolbar ("Bash", "Python 3 (ipykernel)"). */
  kernel: string;
  /** Output of the first code cell, run in the browser (runFirstCell). */
  output?: string;
  screenshot?: string;
}

export interface BrowserRun {
  login: LoginOutcome;
  /** Path the student's server opened on after the login (its default URL), decoded. */
  landed?: string;
  /** Set when the login worked and a notebook was asked for. */
  notebook?: NotebookView;
  /** The notebooks of `run`, each opened in JupyterLab with its kernel started. */
  ran?: NotebookView[];
}

/** The base64 SHA-256 of a PEM certificate's public key (SubjectPublicKeyInfo), as Chromium pins it. */
export async function spkiPin(certPem: string): Promise<string> {
  const cert = new X509Certificate(certPem);
  const der = cert.publicKey.export({ type: "spki", format: "der" });
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(der)));
  return btoa(String.fromCharCode(...hash));
}

/** Open `path` (relative to the server's root) in JupyterLab and wait for its cells and an idle kernel. */
async function openNotebook(page: Page, hubUrl: string, user: string, path: string, timeout: number) {
  const p = path.split("/").map(encodeURIComponent).join("/");
  // ?reset: a fresh workspace (only this notebook open, not the ones the last visit left open).
  await page.goto(`${hubUrl}/user/${user}/lab/tree/${p}?reset`);
  await page.waitForSelector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", { timeout });
  await waitIdle(page, timeout);
}

async function waitIdle(page: Page, timeout: number) {
  // The notebook's kernel attached (the toolbar names it) and idle.
  await page.waitForFunction(
    `(() => {
      const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
      const name = panel?.querySelector(".jp-KernelName")?.textContent?.trim() ?? "";
      return name !== "" && name !== "No Kernel" && !/^(Kernel|Connecting)/.test(name);
    })()`,
    undefined,
    { timeout },
  );
  await page.waitForSelector(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]',
    { timeout },
  );
}

async function describe(page: Page, path: string): Promise<NotebookView> {
  const panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)");
  return {
    path,
    // The current document tab's label: the full file name (the page title is shortened by JupyterLab).
    title: ((await page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
      .first().textContent({ timeout: 5_000 }).catch(() => null)) ?? await page.title()).trim(),
    cells: await panel.locator(".jp-Notebook .jp-Cell").count(),
    kernel: ((await panel.locator(".jp-KernelName").first().textContent()) ?? "").trim(),
  };
}

/** Run the open notebook's first code cell (made the active cell, then the toolbar's run button) and
 * return its new output. */
async function runFirstCodeCell(page: Page, timeout: number): Promise<string> {
  const cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell").first();
  const output = cell.locator(".jp-OutputArea");
  const before = ((await output.textContent().catch(() => "")) ?? "").trim();
  for (let i = 0; i < 10; i++) {
    await cell.scrollIntoViewIfNeeded();
    await cell.locator(".jp-InputPrompt").first().click();
    if (/jp-mod-active/.test((await cell.getAttribute("class")) ?? "")) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  await page.locator(
    '.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="notebook:run-cell-and-select-next"]',
  )
    .first().click();
  const deadline = Date.now() + timeout;
  for (;;) {
    const now = ((await output.textContent().catch(() => "")) ?? "").trim();
    const prompt = ((await cell.locator(".jp-InputPrompt").first().textContent()) ?? "").trim();
    if (now && now !== before && /\[\d+\]/.test(prompt)) return now;
    if (Date.now() > deadline) throw new Error(`the first code cell gave no new output (prompt ${prompt})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Logs in at `${hubUrl}/hub/login` and waits for the student's server to open its default page;
 * when `notebookPath` is given and the login worked, opens it in JupyterLab (its kernel started and
 * idle) and saves a screenshot; then opens each notebook of `run` the same way. `tlsCert`: the hub's PEM certificate, accepted by its key (a private CA's hub).
 */
export async function hubBrowserSession(opts: {
  hubUrl: string;
  username: string;
  password: string;
  notebookPath?: string;
  run?: string[];
  /** Also run the first code cell of each notebook opened, in the browser. */
  runFirstCell?: boolean;
  screenshot?: string;
  timeoutMs?: number;
  tlsCert?: string;
}): Promise<BrowserRun> {
  const profile = await Deno.makeTempDir({ prefix: "wod-chromium-" });
  const timeout = opts.timeoutMs ?? 120_000;
  const args = [...CHROMIUM_ARGS];
  if (opts.tlsCert) {
    args.push(
      `--ignore-certificate-errors-spki-list=${await spkiPin(await Deno.readTextFile(opts.tlsCert))}`,
    );
  }
  let context;
  const consoleErrors: string[] = [];
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args,
      viewport: { width: 1280, height: 900 },
      timeout,
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(timeout);
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") consoleErrors.push(m.text().slice(0, 300));
    });
    await page.goto(`${opts.hubUrl}/hub/login`);
    await page.fill("input[name=username]", opts.username);
    await page.fill("input[name=password]", opts.password);
    await Promise.all([
      page.waitForLoadState("load"),
      page.click("#login_submit, input[type=submit], button[type=submit]"),
    ]);
    // Accepted: the hub redirects to /user/<name>/... (spawning when needed). Refused: the login page again.
    const deadline = Date.now() + timeout;
    let login: LoginOutcome | undefined;
    while (!login) {
      const url = page.url();
      if (new URL(url).pathname.startsWith(`/user/${opts.username}/`)) login = { ok: true, url };
      else {
        // Only the login page's own message (the spawn-pending page has a hidden error box).
        const onLogin = new URL(url).pathname.startsWith("/hub/login");
        const err = onLogin
          ? await page.locator("p.login_error, .login_error, .alert-danger").first().textContent({
            timeout: 200,
          }).catch(() => null)
          : null;
        if (err && err.trim()) login = { ok: false, url, message: err.trim() };
        else if (Date.now() > deadline) {
          login = { ok: false, url, message: "no redirect to the user's server" };
        } else await new Promise((r) => setTimeout(r, 200));
      }
    }
    const run: BrowserRun = { login };
    if (!login.ok) return run;
    // The server's default page: JupyterLab on the workshop's entry notebook.
    await page.waitForLoadState("load");
    run.landed = decodeURIComponent(new URL(page.url()).pathname);
    if (opts.notebookPath) {
      await openNotebook(page, opts.hubUrl, opts.username, opts.notebookPath, timeout);
      const view = await describe(page, opts.notebookPath);
      if (opts.runFirstCell) view.output = await runFirstCodeCell(page, timeout);
      const shot = opts.screenshot ?? `${profile}.png`;
      await page.screenshot({ path: shot, fullPage: false });
      view.screenshot = shot;
      run.notebook = view;
    }
    run.ran = [];
    for (const path of opts.run ?? []) {
      await openNotebook(page, opts.hubUrl, opts.username, path, timeout);
      const view = await describe(page, path);
      if (opts.runFirstCell) view.output = await runFirstCodeCell(page, timeout);
      run.ran.push(view);
    }
    return run;
  } catch (err) {
    const e = err as Error;
    const tail = consoleErrors.slice(-6).join(" | ");
    throw new Error(
      redactText(`Browser session failed: ${e.message}${tail ? ` (browser console: ${tail})` : ""}`, [
        opts.password,
      ]),
    );
  } finally {
    await context?.close().catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
