// The portal's small security pieces: random tokens and their hashes, CSRF tokens bound to a cookie,
// the admin password (scrypt, a slow memory-hard KDF), the callback API's expiring signed token
// (a JWT, HS256, 180 s like the original api-db's), and sliding-window rate limits.
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function hmac(key: string, text: string): string {
  return createHmac("sha256", key).update(text).digest("base64url");
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// ---------- CSRF: the form token is an HMAC of the browser's random cookie ----------

export const CSRF_COOKIE = "wod_csrf";

export function csrfToken(secret: string, cookie: string): string {
  return hmac(secret, `csrf:${cookie}`);
}

export function csrfOk(secret: string, cookie: string | undefined, token: string | undefined): boolean {
  if (!cookie || !token || cookie.length < 16) return false;
  return safeEqual(csrfToken(secret, cookie), token);
}

export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

// ---------- admin password: scrypt ----------

const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      SCRYPT.keylen,
      { N, r, p, maxmem: SCRYPT.maxmem },
      (err, key) => err ? reject(err) : resolve(key),
    )
  );
}

/** `scrypt$N$r$p$salt$hash` (base64url): what `wod portal --hash-password` prints. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64url")}$${
    key.toString("base64url")
  }`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored.trim());
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 1024 || N > 1 << 20 || r > 32 || p > 16) return false;
  const key = await scryptAsync(password, Buffer.from(m[4], "base64url"), N, r, p);
  const want = Buffer.from(m[5], "base64url");
  return key.length === want.length && timingSafeEqual(key, want);
}

export function isPasswordHash(stored: string): boolean {
  return /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/.test(stored.trim());
}

// ---------- the callback API's access token (JWT HS256) ----------

export const TOKEN_SECONDS = 180;

export function signJwt(secret: string, sub: string, nowSec = Math.floor(Date.now() / 1000)): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = `${enc({ alg: "HS256", typ: "JWT" })}.${
    enc({ sub, iat: nowSec, exp: nowSec + TOKEN_SECONDS })
  }`;
  return `${head}.${hmac(secret, head)}`;
}

/** The subject of a valid, unexpired token; undefined otherwise. */
export function verifyJwt(
  secret: string,
  token: string,
  nowSec = Math.floor(Date.now() / 1000),
): string | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  if (!safeEqual(hmac(secret, `${parts[0]}.${parts[1]}`), parts[2])) return undefined;
  try {
    const head = JSON.parse(Buffer.from(parts[0], "base64url").toString());
    const body = JSON.parse(Buffer.from(parts[1], "base64url").toString());
    if (head.alg !== "HS256" || typeof body.exp !== "number" || body.exp <= nowSec) return undefined;
    return typeof body.sub === "string" ? body.sub : undefined;
  } catch {
    return undefined;
  }
}

// ---------- rate limits ----------

/** At most `limit` hits per key in any `windowMs` (sliding window, kept in memory). */
export class RateLimiter {
  private hits = new Map<string, number[]>();
  constructor(readonly limit: number, readonly windowMs: number) {}

  /** Records a hit; false when the key is over its limit (the hit is then not counted). */
  hit(key: string, now = Date.now()): boolean {
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length >= this.limit) {
      this.hits.set(key, list);
      return false;
    }
    list.push(now);
    this.hits.set(key, list);
    if (this.hits.size > 100_000) this.prune(now);
    return true;
  }

  /** Seconds until `key` may try again. */
  retryAfter(key: string, now = Date.now()): number {
    const list = this.hits.get(key) ?? [];
    return list.length ? Math.max(1, Math.ceil((list[0] + this.windowMs - now) / 1000)) : 0;
  }

  private prune(now: number) {
    for (const [k, v] of this.hits) if (!v.some((t) => t > now - this.windowMs)) this.hits.delete(k);
  }
}
