import { assertEquals, assertMatch, assertThrows } from "../common/assert.ts";
import { loadConfig } from "../config/load.ts";
import { makeRoot } from "../mail/testing.ts";
import { messageOrderId, orderId } from "./check.ts";
import type { Order } from "./order.ts";
import { assertOrderType, OrderInvalidError, orderProblem, validateOrder } from "./validate.ts";

const base: Order = {
  id: "c-1",
  action: "CREATE",
  env: "t",
  backend: "b1",
  workshop: "WKSHP-Test",
  seats: [3, 3],
  customer: "42",
  email: "a@b.cd",
  source: "mail",
  received: "2026-11-27T10:00:00Z",
};

Deno.test("validateOrder accepts a good order and says exactly what is wrong with a bad one, and the fix", async () => {
  const root = await makeRoot();
  try {
    const cfg = await loadConfig(root);
    assertEquals(validateOrder(cfg, base), base);
    assertEquals(orderProblem(cfg, { ...base, action: "RESET", seats: [1, 20] }), undefined);
    const bad: [Partial<Order> | Record<string, unknown>, RegExp][] = [
      [
        { action: "DESTROY" as never },
        /^Unknown action "DESTROY": expected one of CREATE, CLEANUP, RESET, PURGE$/,
      ],
      [{ env: "nope" }, /^Unknown environment "nope": expected one of t \(an environment is a file/],
      [{ env: "No Pe" }, /^Invalid environment name "No Pe"/],
      [{ backend: "b9" }, /^Unknown backend "b9" in environment "t": expected one of b1, b2/],
      [{ workshop: "WKSHP-Nope" }, /^Unknown workshop "WKSHP-Nope": no workshops\/WKSHP-Nope\/workshop.yaml/],
      [{ workshop: "WKSHP-Off", seats: [21, 21] }, /^Workshop "WKSHP-Off" is not active.*: set it active/],
      [
        { seats: [21, 21] },
        /^Seat 21 is outside the range \[1, 20\] of workshop "WKSHP-Test" on backend "b1" of environment "t": order seats inside that range$/,
      ],
      [{ backend: "b2", seats: [6, 6] }, /^Seat 6 is outside the range \[1, 5\].*backend "b2"/],
      [{ seats: [2, 3] }, /^CREATE takes one seat, got the range 2,3 \(only RESET takes a range\)$/],
      [{ action: "RESET", seats: [5, 2] }, /^Invalid seat range 5,2: the first seat is after the last$/],
      [{ seats: [1_000_000, 1_000_000] }, /^Invalid seats \[1000000,1000000\]: .* from 0 to 999999$/],
      [{ seats: [3] as never }, /^Invalid seats \[3\]/],
      [{ customer: "4 2" }, /^Invalid customer id "4 2"/],
      [{ email: "a;rm -rf@b.cd" }, /^Invalid email address/],
      [{ id: "../x" }, /^Invalid order id/],
      [{ source: "fax" as never }, /^Invalid order source "fax": expected one of mail, dispatch/],
      [{ received: "yesterday" }, /^Invalid received time "yesterday"/],
      // What only the schema says comes last, with the field named.
      [{ reason: "x".repeat(501) }, /^Invalid order: field reason must NOT have more than 500 characters/],
      [{ colour: "red" }, /^Invalid order: the order must NOT have additional properties/],
    ];
    for (const [over, re] of bad) {
      const order = { ...base, ...over };
      assertMatch(orderProblem(cfg, order) ?? "(accepted)", re, JSON.stringify(over));
      const err = assertThrows(() => validateOrder(cfg, order));
      assertEquals(err instanceof OrderInvalidError, true);
      assertEquals(err.message, orderProblem(cfg, order), "the error is the problem sentence");
    }
    assertMatch(orderProblem(cfg, [base]) ?? "", /^Invalid order: expected one JSON object/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("assertOrderType checks the schema only (what the state store asserts)", () => {
  assertOrderType(base);
  // Not in any configuration, but an order: the type holds.
  assertOrderType({ ...base, env: "elsewhere", workshop: "WKSHP-Anything" });
  const err = assertThrows(
    () => assertOrderType({ ...base, seats: "3" }),
    /^Invalid order: field seats must be array/,
  );
  assertEquals(err instanceof OrderInvalidError && err.orderId, "c-1");
});

Deno.test("order ids are deterministic from content or Message-ID", () => {
  assertEquals(orderId(["t", "b1", "CREATE", 3]), orderId(["t", "b1", "CREATE", 3]));
  assertMatch(orderId(["t", "b1", "CREATE", 3]), /^c-[0-9a-f]{40}$/);
  assertEquals(orderId([1, undefined]), orderId([1, null]));
  assertEquals(orderId(["a"]) === orderId(["b"]), false);
  assertEquals(messageOrderId("<X@Y>"), messageOrderId("x@y"));
  assertMatch(messageOrderId("<weird $(id)@y>"), /^m-[0-9a-f]{40}$/);
});
