import { assertEquals, assertMatch } from "../common/assert.ts";
import { loadConfig } from "../config/load.ts";
import { makeRoot } from "../mail/testing.ts";
import { checkOrder, messageOrderId, orderId } from "./check.ts";
import type { Order } from "../config/types.gen.ts";

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

Deno.test("checkOrder accepts a good order and says exactly what is wrong with a bad one", async () => {
  const root = await makeRoot();
  try {
    const cfg = await loadConfig(root);
    assertEquals(checkOrder(cfg, base), undefined);
    assertEquals(checkOrder(cfg, { ...base, action: "RESET", seats: [1, 20] }), undefined);
    const bad: [Partial<Order>, RegExp][] = [
      [
        { action: "DESTROY" as never },
        /Unknown action "DESTROY": expected one of CREATE, CLEANUP, RESET, PURGE/,
      ],
      [{ env: "nope" }, /Unknown environment "nope": expected one of t/],
      [{ backend: "b9" }, /Unknown backend "b9" in environment "t": expected one of b1, b2/],
      [{ workshop: "WKSHP-Nope" }, /Unknown workshop "WKSHP-Nope"/],
      [{ workshop: "WKSHP-Off", seats: [21, 21] }, /Workshop "WKSHP-Off" is not active/],
      [
        { seats: [21, 21] },
        /Seat 21 is outside the range \[1, 20\] of workshop "WKSHP-Test" on backend "b1"/,
      ],
      [{ backend: "b2", seats: [6, 6] }, /Seat 6 is outside the range \[1, 5\].*backend "b2"/],
      [{ seats: [2, 3] }, /CREATE takes one seat, got the range 2,3/],
      [{ action: "RESET", seats: [5, 2] }, /first seat is after the last/],
      [{ customer: "4 2" }, /Invalid customer id "4 2"/],
      [{ email: "a;rm -rf@b.cd" }, /Invalid email address/],
      [{ id: "../x" }, /Invalid order id/],
      [{ received: "yesterday" }, /Invalid received time/],
    ];
    for (const [over, re] of bad) {
      const r = checkOrder(cfg, { ...base, ...over } as Order);
      assertMatch(r ?? "(accepted)", re, JSON.stringify(over));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("order ids are deterministic from content or Message-ID", () => {
  assertEquals(orderId(["t", "b1", "CREATE", 3]), orderId(["t", "b1", "CREATE", 3]));
  assertMatch(orderId(["t", "b1", "CREATE", 3]), /^c-[0-9a-f]{40}$/);
  assertEquals(orderId([1, undefined]), orderId([1, null]));
  assertEquals(orderId(["a"]) === orderId(["b"]), false);
  assertEquals(messageOrderId("<X@Y>"), messageOrderId("x@y"));
  assertMatch(messageOrderId("<weird $(id)@y>"), /^m-[0-9a-f]{40}$/);
});
