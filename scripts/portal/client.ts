// A small browser-like HTTP client for the portal (tests, bench, the demo): keeps cookies, does not
// follow redirects, reads the CSRF token from a page's form.
import { WodError } from "../common/errors.ts";

/** A browser-like client: keeps cookies, reads the CSRF token from forms. */
export class Client {
  cookies = new Map<string, string>();
  constructor(readonly base: string, readonly address?: string) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async request(path: string, init: RequestInit = {}): Promise<{ res: Response; text: string }> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set("cookie", this.cookieHeader());
    const res = await fetch(this.base + path, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(";");
      const i = kv.indexOf("=");
      const v = kv.slice(i + 1);
      if (/Max-Age=0/.test(c) || v === "") this.cookies.delete(kv.slice(0, i));
      else this.cookies.set(kv.slice(0, i), v);
    }
    return { res, text: await res.text() };
  }

  async get(path: string) {
    return await this.request(path);
  }

  async post(path: string, form: Record<string, string>) {
    return await this.request(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** The CSRF token of the first form on `path`. */
  async csrf(path: string): Promise<string> {
    const { text } = await this.get(path);
    const m = /name="csrf" value="([^"]+)"/.exec(text);
    if (!m) {
      throw new WodError(
        `No CSRF token in the form on ${path}: is the portal serving that page (status, login)?`,
      );
    }
    return m[1];
  }
}
