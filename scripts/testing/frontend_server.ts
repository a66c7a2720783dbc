// A local stand-in for the original front end's REST API (wod-api-db, docs/interop.md callbacks):
// POST /login {username, password} -> {accessToken} (an HS256 JWT, exp 180 s); PUT /student/<id>
// and PUT /customer/<id> with header x-access-token; GET /workshops. It keeps what it received in
// memory so tests can check it (passwords stay in memory: never print `students`).
import { randomBytes } from "node:crypto";
import { signToken, verifyToken } from "./jwt.ts";
import { serveLoopback } from "./serve.ts";

export interface FrontendCall {
  method: string;
  path: string;
  /** Body keys only (values may be secrets). */
  keys: string[];
  status: number;
}

export interface FrontendServerOptions {
  username?: string;
  password?: string;
  /** Token lifetime in seconds (default 180 as the original). */
  tokenSeconds?: number;
}

export class FrontendServer {
  readonly students = new Map<string, Record<string, unknown>>();
  readonly customers = new Map<string, Record<string, unknown>>();
  readonly calls: FrontendCall[] = [];
  readonly workshops: {
    id: number;
    notebook: string;
    name: string;
    reset: boolean;
    [field: string]: unknown;
  }[] = [];
  private key = randomBytes(32);
  private server?: Deno.HttpServer;
  url = "";

  constructor(readonly opts: FrontendServerOptions = {}) {}

  get username() {
    return this.opts.username ?? "wod-backend";
  }
  get password() {
    return this.opts.password ?? "frontend-test-secret";
  }

  async start(): Promise<this> {
    ({ server: this.server, url: this.url } = await serveLoopback((req) => this.handle(req)));
    return this;
  }

  async close(): Promise<void> {
    await this.server?.shutdown();
  }

  private sign(sub: string): string {
    return signToken(this.key, sub, this.opts.tokenSeconds ?? 180);
  }

  private verify(token: string | null): boolean {
    return verifyToken(this.key, token);
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    let body: Record<string, unknown> = {};
    if (req.method === "POST" || req.method === "PUT") {
      try {
        body = await req.json();
      } catch {
        return this.answer(req, url, [], 400, { message: "Body must be JSON" });
      }
    }
    const keys = Object.keys(body);
    if (req.method === "POST" && url.pathname === "/login") {
      if (body.username === this.username && body.password === this.password) {
        return this.answer(req, url, keys, 200, { accessToken: this.sign(this.username) });
      }
      return this.answer(req, url, keys, 401, { message: "Invalid credentials" });
    }
    if (!this.verify(req.headers.get("x-access-token"))) {
      return this.answer(req, url, keys, 403, { message: "No valid token provided" });
    }
    const m = /^\/(student|customer|workshops)(?:\/([A-Za-z0-9_-]+))?$/.exec(url.pathname);
    if (!m) return this.answer(req, url, keys, 404, { message: "Not found" });
    if (req.method === "GET" && m[1] === "workshops") {
      return this.answer(
        req,
        url,
        keys,
        200,
        m[2] ? this.workshops.find((w) => String(w.id) === m[2]) : this.workshops,
      );
    }
    if (req.method === "PUT" && m[2] && (m[1] === "student" || m[1] === "customer")) {
      const map = m[1] === "student" ? this.students : this.customers;
      map.set(m[2], { ...(map.get(m[2]) ?? {}), ...body });
      return this.answer(req, url, keys, 200, { message: `${m[1]} ${m[2]} updated` });
    }
    return this.answer(req, url, keys, 404, { message: "Not found" });
  }

  private answer(req: Request, url: URL, keys: string[], status: number, value: unknown): Response {
    this.calls.push({ method: req.method, path: url.pathname, keys, status });
    return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
  }
}

export async function startFrontendServer(opts: FrontendServerOptions = {}): Promise<FrontendServer> {
  return await new FrontendServer(opts).start();
}
