// A typed JupyterHub client: the REST API with a service token, and a browser-like session (login
// form, cookies, the single-user server's OAuth round trip, the contents API) for end-to-end checks.
import { WodError } from "../common/errors.ts";

export interface HubServer {
  name: string;
  ready: boolean;
  pending: string | null;
  url: string;
  started?: string;
  last_activity?: string;
}

export interface HubUser {
  name: string;
  admin: boolean;
  groups?: string[];
  server: string | null;
  pending: string | null;
  last_activity?: string | null;
  servers?: Record<string, HubServer>;
}

export class HubApiError extends WodError {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HubApiError";
  }
}

/** The hub REST API (`/hub/api`) with a token (the wod service token). */
export class HubClient {
  readonly base: string;
  constructor(hubUrl: string, private readonly token: string) {
    this.base = hubUrl.replace(/\/+$/, "");
  }

  static async fromTokenFile(hubUrl: string, tokenFile: string): Promise<HubClient> {
    return new HubClient(hubUrl, (await Deno.readTextFile(tokenFile)).trim());
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.base}/hub/api${path}`, {
      method,
      headers: {
        Authorization: `token ${this.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as T };
  }

  private fail(what: string, status: number, body: unknown): never {
    const msg = typeof body === "object" && body && "message" in body
      ? String(body.message)
      : String(body ?? "");
    throw new HubApiError(
      status,
      `JupyterHub API ${what} at ${this.base} failed: HTTP ${status} ${msg}`.trim(),
    );
  }

  async info(): Promise<{ version: string }> {
    const r = await this.request<{ version: string }>("GET", "/");
    if (r.status !== 200) this.fail("GET /", r.status, r.body);
    return r.body;
  }

  async getUser(name: string): Promise<HubUser | undefined> {
    const r = await this.request<HubUser>("GET", `/users/${encodeURIComponent(name)}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) this.fail(`GET /users/${name}`, r.status, r.body);
    return r.body;
  }

  async listUsers(): Promise<HubUser[]> {
    const r = await this.request<HubUser[]>("GET", "/users");
    if (r.status !== 200) this.fail("GET /users", r.status, r.body);
    return r.body;
  }

  async createUser(name: string): Promise<void> {
    const r = await this.request("POST", `/users/${encodeURIComponent(name)}`);
    if (r.status !== 201 && r.status !== 409) this.fail(`POST /users/${name}`, r.status, r.body);
  }

  /** Ask the hub to start the user's server (201 started, 202 pending, 400 already running). */
  async startServer(name: string): Promise<number> {
    const r = await this.request("POST", `/users/${encodeURIComponent(name)}/server`);
    if (![201, 202, 400].includes(r.status)) this.fail(`POST /users/${name}/server`, r.status, r.body);
    return r.status;
  }

  /**
   * Ask the hub to start the user's server without waiting for it to be ready: creates the hub user
   * when the hub does not know it yet (404) and retries while the hub has too many spawns pending
   * (429), for up to `retryMs`. Returns 201, 202 or 400 (already running); throws otherwise.
   */
  async requestServerStart(name: string, retryMs = 60_000): Promise<number> {
    const path = `/users/${encodeURIComponent(name)}/server`;
    let r = await this.request("POST", path);
    if (r.status === 404) {
      await this.createUser(name);
      r = await this.request("POST", path);
    }
    const deadline = Date.now() + retryMs;
    while (r.status === 429 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 1_000));
      r = await this.request("POST", path);
    }
    if (![201, 202, 400].includes(r.status)) this.fail(`POST /users/${name}/server`, r.status, r.body);
    return r.status;
  }

  async stopServer(name: string): Promise<number> {
    const r = await this.request("DELETE", `/users/${encodeURIComponent(name)}/server`);
    if (![202, 204, 400].includes(r.status)) this.fail(`DELETE /users/${name}/server`, r.status, r.body);
    return r.status;
  }

  /** True when the user has a running (or starting) default server. */
  async serverRunning(name: string): Promise<boolean> {
    const u = await this.getUser(name);
    return !!u && (!!u.server || !!u.pending);
  }
}

export interface ContentsModel {
  name: string;
  path: string;
  type: "file" | "directory" | "notebook";
  content: unknown;
  format?: string | null;
}

/** A browser-like session: login form, cookies, single-user server access. */
export class HubSession {
  readonly base: string;
  private cookies = new Map<string, string>();
  constructor(hubUrl: string, readonly username: string) {
    this.base = hubUrl.replace(/\/+$/, "");
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970|max-age=0/i.test(c) || value === "" || value === '""') {
        this.cookies.delete(name);
      } else this.cookies.set(name, value);
    }
  }

  /** One request with the session's cookies; no redirect following. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const url = path.startsWith("http") ? path : `${this.base}${path}`;
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set("Cookie", this.cookieHeader());
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    this.keep(res);
    return res;
  }

  /** Follow redirects (with cookies) from `path`; returns the final response and its URL. */
  async follow(path: string, max = 15): Promise<{ res: Response; url: string }> {
    let url = path.startsWith("http") ? path : `${this.base}${path}`;
    for (let i = 0; i < max; i++) {
      const res = await this.fetch(url);
      const loc = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && loc) {
        await res.body?.cancel();
        url = new URL(loc, url).href;
        continue;
      }
      return { res, url };
    }
    throw new WodError(`Too many redirects from ${path} at ${this.base}`);
  }

  /** The hub's login form (JupyterHub 3: a plain form POST). True when the hub accepted the password. */
  async login(password: string): Promise<boolean> {
    const res = await this.fetch("/hub/login", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: this.username, password }).toString(),
    });
    await res.body?.cancel();
    return res.status === 302;
  }

  /** Open the user's server (OAuth round trip), waiting until it is up. */
  async openServer(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const { res, url } = await this.follow(`/user/${this.username}/tree`);
      await res.body?.cancel();
      if (res.status === 200 && new URL(url).pathname.startsWith(`/user/${this.username}/tree`)) return;
      last = `${res.status} at ${new URL(url).pathname}`;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new WodError(
      `The server of ${this.username} at ${this.base} did not open within ${timeoutMs} ms (${last})`,
    );
  }

  /** GET the contents API of `owner`'s server (default: this user's). Returns status and model. */
  async contents(path: string, owner = this.username): Promise<{ status: number; model?: ContentsModel }> {
    const p = path.split("/").map(encodeURIComponent).join("/");
    const res = await this.fetch(`/user/${owner}/api/contents/${p}?content=1`, {
      headers: { Referer: `${this.base}/user/${owner}/tree` },
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return { status: res.status };
    }
    return { status: 200, model: await res.json() as ContentsModel };
  }
}
