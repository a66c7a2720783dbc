import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import {
  csrfOk,
  csrfToken,
  hashPassword,
  RateLimiter,
  signJwt,
  TOKEN_SECONDS,
  verifyJwt,
  verifyPassword,
} from "./security.ts";

Deno.test("an API token is valid for 180 s, then refused; a tampered one is refused", () => {
  const t = signJwt("s".repeat(40), "apply", 1_000_000);
  assertEquals(verifyJwt("s".repeat(40), t, 1_000_000 + TOKEN_SECONDS - 1), "apply");
  assertEquals(verifyJwt("s".repeat(40), t, 1_000_000 + TOKEN_SECONDS), undefined);
  const [h, b, sig] = t.split(".");
  const other = btoa(JSON.stringify({ sub: "admin", iat: 1_000_000, exp: 9_999_999_999 })).replace(/=+$/, "");
  assertEquals(verifyJwt("s".repeat(40), `${h}.${other}.${sig}`, 1_000_000), undefined);
  assertEquals(verifyJwt("other-secret", `${h}.${b}.${sig}`, 1_000_000), undefined);
});

Deno.test("the admin password hash is scrypt with a random salt and verifies only the right password", async () => {
  const a = await hashPassword("correct horse battery");
  const b = await hashPassword("correct horse battery");
  assertMatch(a, /^scrypt\$32768\$8\$1\$/);
  assert(a !== b, "two hashes of one password share a salt");
  assert(await verifyPassword("correct horse battery", a));
  assert(!(await verifyPassword("correct horse batterz", a)));
  assert(!(await verifyPassword("correct horse battery", "plain-text")));
});

Deno.test("a CSRF token is only good with the cookie it was made for", () => {
  const secret = "k".repeat(40);
  const cookie = "c".repeat(32);
  const token = csrfToken(secret, cookie);
  assert(csrfOk(secret, cookie, token));
  assert(!csrfOk(secret, "d".repeat(32), token));
  assert(!csrfOk(secret, undefined, token));
  assert(!csrfOk(secret, cookie, undefined));
});

Deno.test("the rate limiter allows N hits per window and says when to come back", () => {
  const r = new RateLimiter(2, 60_000);
  assert(r.hit("a", 0));
  assert(r.hit("a", 1_000));
  assert(!r.hit("a", 2_000));
  assertEquals(r.retryAfter("a", 2_000), 58);
  assert(r.hit("b", 2_000), "another key has its own budget");
  assert(r.hit("a", 60_001), "the window slides");
});
