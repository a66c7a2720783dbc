import { assertEquals, assertMatch, assertThrows } from "../common/assert.ts";
import {
  canonicalOrder,
  nativeBody,
  parseLegacy,
  parseNative,
  parseWorkshopBody,
  type SignedFields,
  splitMessage,
  textBody,
} from "./parse.ts";

Deno.test("original subjects parse into order fields, RESET ranges and CHLG included", () => {
  assertEquals(parseLegacy("CREATE 3 1001 a.b+c@ex-ample.com", "WKSHP-API101"), {
    action: "CREATE",
    seats: [3, 3],
    customer: "1001",
    email: "a.b+c@ex-ample.com",
    workshop: "WKSHP-API101",
  });
  assertEquals(parseLegacy("CLEANUP 7 99", "WKSHP-X1\n"), {
    action: "CLEANUP",
    seats: [7, 7],
    customer: "99",
    workshop: "WKSHP-X1",
  });
  assertEquals(parseLegacy("RESET 5,9 12", "WKSHP-X1").seats, [5, 9]);
  assertEquals(parseLegacy("RESET 5 12", "WKSHP-X1").seats, [5, 5]);
  assertEquals(parseLegacy("PURGE 5 12", "CHLG-X1"), {
    action: "PURGE",
    seats: [5, 5],
    customer: "12",
    workshop: "WKSHP-X1",
    mode: "CHLG",
  });
  // Extra blanks between fields (as some senders write them) are tolerated.
  assertEquals(parseLegacy("  CLEANUP  7\t99 ", "WKSHP-X1").seats, [7, 7]);
});

Deno.test("malformed original subjects are refused with the expected form", () => {
  assertMatch(
    assertThrows(() => parseLegacy("CREATE 3 1001", "WKSHP-X")).message,
    /Malformed subject "CREATE 3 1001": expected CREATE <seat> <customerId> <email>/,
  );
  assertMatch(
    assertThrows(() => parseLegacy("RESET 3-5 1", "WKSHP-X")).message,
    /expected RESET <seat> <customerId> or RESET <min>,<max> <customerId>/,
  );
  assertMatch(
    assertThrows(() => parseLegacy("CREATE 1;touch /tmp/x 2 a@b.c", "WKSHP-X")).message,
    /Malformed/,
  );
  assertMatch(assertThrows(() => parseLegacy("CREATE 1 2 a@b", "W")).message, /Invalid workshop name/);
  assertMatch(assertThrows(() => parseWorkshopBody("\n\n")).message, /Empty body/);
});

Deno.test("the original sender's message has no blank line after the headers and still splits", () => {
  const m = splitMessage("Subject: CREATE 1 2 a@b.cd\nWKSHP-Test\n");
  assertEquals(m.headers, [{ name: "subject", value: "CREATE 1 2 a@b.cd" }]);
  assertEquals(m.body, "WKSHP-Test");
  const n = splitMessage(
    "Subject: x\r\n  folded\r\nContent-Transfer-Encoding: base64\r\n\r\nV0tTSFAtVGVzdA==\r\n",
  );
  assertEquals(n.headers[0].value, "x folded");
  assertEquals(textBody(n), "WKSHP-Test");
  const qp = splitMessage("Subject: x\nContent-Transfer-Encoding: quoted-printable\n\nWKSHP=2DTest=\n\n");
  assertEquals(textBody(qp).trim(), "WKSHP-Test");
});

Deno.test("signed orders verify with the key, fail with another key, a changed field or a bad body", () => {
  const f: SignedFields = {
    action: "RESET",
    env: "prod",
    backend: "b1",
    workshop: "WKSHP-X",
    seats: [1, 4],
    customer: "c1",
    ts: 1764240000,
  };
  assertEquals(canonicalOrder(f), "wod-order-v1\nRESET\nprod\nb1\nWKSHP-X\n\n1\n4\nc1\n\n1764240000");
  const body = nativeBody("k1", f);
  const p = parseNative(body, "k1");
  assertEquals([p.action, p.seats, p.customer, p.ts], ["RESET", [1, 4], "c1", 1764240000]);
  assertMatch(assertThrows(() => parseNative(body, "k2")).message, /Bad signature/);
  const tampered = JSON.stringify({ ...JSON.parse(body), seats: [1, 5] });
  assertMatch(assertThrows(() => parseNative(tampered, "k1")).message, /Bad signature/);
  assertMatch(assertThrows(() => parseNative(body, undefined)).message, /not enabled/);
  assertMatch(assertThrows(() => parseNative("[1]", "k1")).message, /not one JSON object/);
});
