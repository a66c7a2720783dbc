// HS256 tokens like the original api-db's access tokens (a JWT valid 180 s), for the front-end test
// servers (frontend_server.ts, apidb_sim.ts).
import { createHmac } from "node:crypto";

function b64url(data: string | Uint8Array): string {
  const b = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...b)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

export function signToken(key: Uint8Array, sub: string, seconds = 180): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub, iat: now, exp: now + seconds }));
  const sig = b64url(createHmac("sha256", key).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

export function verifyToken(key: Uint8Array, token: string | null): boolean {
  if (!token) return false;
  const [head, body, sig] = token.split(".");
  if (!head || !body || !sig) return false;
  if (b64url(createHmac("sha256", key).update(`${head}.${body}`).digest()) !== sig) return false;
  const claims = JSON.parse(atob(body.replace(/-/g, "+").replace(/_/g, "/")));
  return typeof claims.exp === "number" && claims.exp > Date.now() / 1000;
}
