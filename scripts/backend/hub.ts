// A typed JupyterHub client: the REST API with a service token, and a browser-like session (login
// form, cookies, the single-user server's OAuth round trip, the contents API) for end-to-end checks.
import { join } from "node:path";
import { existsSync } from "node:fs";
import { WodError } from "../common/errors.ts";
import { SANDBOX_DIR } from "../config/connection.ts";

// TLS trust for hubs behind a private CA (the sandbox's self-signed pair, or an operator's CA named in
// WOD_HUB_CA_FILE, several separated by ":"): added to the default roots for hub requests only, never
// a global switch-off of certificate checks.
const trusted = new Set<string>();
let client: Deno.HttpClient | undefined;

/** Trust the PEM CA certificate(s) in `file` for requests to hubs (idempotent). */
export function trustHubCa(file: string): void {
  if (!file || trusted.has(file)) return;
  trusted.add(file);
  client?.close();
  client = undefined;
}

/** The CA of this machine's sandbox hosts (`wod sandbox up` makes it; root-only folder). */
const SANDBOX_CA = join(SANDBOX_DIR, "tls", "ca.pem");

/** The PEM texts of the CAs trusted for hubs (WOD_HUB_CA_FILE, trustHubCa's, this machine's sandbox CA). */
export function hubCaCerts(): string[] {
  const files = [...(Deno.env.get("WOD_HUB_CA_FILE") ?? "").split(":").filter(Boolean), ...trusted];
  if (existsSync(SANDBOX_CA) && !files.includes(SANDBOX_CA)) files.push(SANDBOX_CA);
  return files.map((f) => {
    try {
      return Deno.readTextFileSync(f);
    } catch (e) {
      throw new WodError(
        `Cannot read the hub CA certificate ${f}: ${
          (e as Error).message
        }; fix WOD_HUB_CA_FILE or bring the sandbox up`,
      );
    }
  });
}

/** The HTTP client for hub requests (undefined: the default one, when no private CA is trusted). */
export function hubHttpClient(): Deno.HttpClient | undefined {
  if (!client) {
    const caCerts = hubCaCerts();
    if (caCerts.length === 0) return undefined;
    client = Deno.createHttpClient({ caCerts });
  }
  return client;
}

/** fetch() for hub URLs: trusts the hubs' private CAs. */
export function hubFetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
  const c = hubHttpClient();
  return fetch(url, c ? { ...init, client: c } as RequestInit : init);
}

/** A WebSocket to a hub URL (wss: trusts the hubs' private CAs), with optional handshake headers. */
export function hubWebSocket(url: string, headers?: Record<string, string>): WebSocket {
  const c = hubHttpClient();
  const opts: Record<string, unknown> = {};
  if (headers) opts.headers = headers;
  if (c) opts.client = c;
  return new (WebSocket as unknown as new (u: string, o: Record<string, unknown>) => WebSocket)(url, opts);
}

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
    const res = await hubFetch(`${this.base}/hub/api${path}`, {
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
    const res = await hubFetch(url, { ...init, headers, redirect: "manual" });
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

  /** The value of a cookie this session holds. */
  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  /**
   * The hub's login form, as a browser fills it: GET the form (its XSRF token, JupyterHub 4.1+), then
   * POST the name, password and token. True when the hub accepted the password.
   */
  async login(password: string): Promise<boolean> {
    const form = await this.fetch("/hub/login");
    const html = await form.text();
    const xsrf = html.match(/name="_xsrf"\s+value="([^"]+)"/)?.[1] ?? this.cookies.get("_xsrf");
    const body = new URLSearchParams({ username: this.username, password });
    if (xsrf) body.set("_xsrf", xsrf.replaceAll("&#124;", "|").replaceAll("&amp;", "&"));
    const res = await this.fetch("/hub/login", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Referer: `${this.base}/hub/login` },
      body: body.toString(),
    });
    await res.body?.cancel();
    return res.status === 302;
  }

  /**
   * Open the user's server (spawn, OAuth round trip), waiting until it is up. Returns the path the
   * server lands on (its default URL: the workshop's entry notebook in JupyterLab).
   */
  async openServer(timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const home = `/user/${this.username}/`;
    let last = "";
    while (Date.now() < deadline) {
      const { res, url } = await this.follow(home);
      await res.body?.cancel();
      const path = new URL(url).pathname;
      if (res.status === 200 && path.startsWith(home)) return decodeURIComponent(path);
      last = `${res.status} at ${path}`;
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
      headers: { Referer: `${this.base}/user/${owner}/lab` },
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return { status: res.status };
    }
    return { status: 200, model: await res.json() as ContentsModel };
  }
}
