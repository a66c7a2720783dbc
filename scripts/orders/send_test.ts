// The original-format order sender behaves like the original front end: everything written before the
// greeting, bare LF, MAIL FROM without brackets, closes at the first server bytes.
import { assert, assertEquals, assertRejects, assertThrows } from "../common/assert.ts";
import { originalOrderBytes, sendOriginalOrder } from "./send.ts";

const ORDER = {
  helo: "api-db.localhost",
  from: "wodadmin@localhost",
  to: "wodadmin@localhost",
  subject: "CREATE 70 1070 student70@example.org",
  body: "WKSHP-Shell101",
};

Deno.test("original order bytes: bare LF, no brackets, no blank line after Subject", () => {
  assertEquals(
    new TextDecoder().decode(originalOrderBytes(ORDER)),
    "HELO api-db.localhost\nMAIL FROM: wodadmin@localhost\nRCPT TO: wodadmin@localhost\nDATA\n" +
      "Subject: CREATE 70 1070 student70@example.org\nWKSHP-Shell101\n.\n",
  );
});

Deno.test("original order bytes: a field with a line break is refused (no command injection)", () => {
  assertThrows(
    () => originalOrderBytes({ ...ORDER, subject: "CREATE 70 1 a@b.c\nRCPT TO: x@y" }),
    /one line/,
  );
});

Deno.test("sendOriginalOrder writes everything before the greeting and closes at the first bytes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = (async () => {
    const conn = await listener.accept();
    // Read the whole conversation BEFORE greeting: the client must not wait for us.
    const want = originalOrderBytes(ORDER).length;
    const got: number[] = [];
    const buf = new Uint8Array(4096);
    while (got.length < want) {
      const n = await conn.read(buf);
      if (n === null) break;
      got.push(...buf.subarray(0, n));
    }
    await conn.write(new TextEncoder().encode("220 test greeting\r\n"));
    // The client closes without reading more: our next read sees EOF (or a reset).
    const n = await conn.read(buf).catch(() => null);
    conn.close();
    return { text: new TextDecoder().decode(new Uint8Array(got)), closedAfterGreeting: n === null };
  })();
  const greeting = await sendOriginalOrder(port, ORDER);
  const seen = await server;
  listener.close();
  assertEquals(greeting, "220 test greeting\r\n");
  assertEquals(seen.text, new TextDecoder().decode(originalOrderBytes(ORDER)));
  assert(seen.closedAfterGreeting, "the client kept the connection open after the greeting");
});

Deno.test("sendOriginalOrder names the port when nothing listens", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assertRejects(() => sendOriginalOrder(port, ORDER), new RegExp(`127\\.0\\.0\\.1:${port}`));
});
