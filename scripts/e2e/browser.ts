// Debian's Chromium driven by playwright-core (docs/testbed.md): headless, no sandbox (root), no background
// networking, a fresh profile per launch. Used by the end-to-end test: log in on the JupyterHub 3.0
// login page as the student, open the entry notebook in the classic notebook UI, take a screenshot.
// Errors never carry the password (it is replaced before an error leaves this module).
import { chromium } from "playwright-core";
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

export interface BrowserRun {
  login: LoginOutcome;
  /** Set when the login worked and a notebook was asked for. */
  notebook?: { title: string; cells: number; screenshot: string };
}

/**
 * Logs in at `${hubUrl}/hub/login`; when `notebookPath` is given and the login worked, opens
 * `/user/<user>/notebooks/<notebookPath>`, waits for its cells and saves a full-page screenshot.
 */
export async function hubBrowserSession(opts: {
  hubUrl: string;
  username: string;
  password: string;
  notebookPath?: string;
  screenshot?: string;
  timeoutMs?: number;
}): Promise<BrowserRun> {
  const profile = await Deno.makeTempDir({ prefix: "wod-chromium-" });
  const timeout = opts.timeoutMs ?? 120_000;
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      timeout,
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(timeout);
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
        const err = await page.locator("p.login_error, .login_error, .alert-danger").first().textContent({
          timeout: 200,
        })
          .catch(() => null);
        if (err && err.trim()) login = { ok: false, url, message: err.trim() };
        else if (Date.now() > deadline) {
          login = { ok: false, url, message: "no redirect to the user's server" };
        } else await new Promise((r) => setTimeout(r, 200));
      }
    }
    const run: BrowserRun = { login };
    if (login.ok && opts.notebookPath) {
      const path = opts.notebookPath.split("/").map(encodeURIComponent).join("/");
      await page.goto(`${opts.hubUrl}/user/${opts.username}/notebooks/${path}`);
      await page.waitForSelector("#notebook-container .cell", { timeout });
      // Let the kernel indicator and the rendered markdown settle before the picture.
      await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout }).catch(() => {});
      const cells = await page.locator("#notebook-container .cell").count();
      const title = await page.title();
      const shot = opts.screenshot ?? `${profile}.png`;
      await page.screenshot({ path: shot, fullPage: false });
      run.notebook = { title, cells, screenshot: shot };
    }
    return run;
  } catch (err) {
    const e = err as Error;
    throw new Error(redactText(`Browser session failed: ${e.message}`, [opts.password]));
  } finally {
    await context?.close().catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
