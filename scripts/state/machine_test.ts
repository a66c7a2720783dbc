import { assertEquals, assertThrows } from "../common/assert.ts";
import type { Order, Seat } from "../config/types.gen.ts";
import { alreadyDone, failed, freeSeat, isParked, succeeded, transition } from "./machine.ts";

const now = "2026-01-01T10:00:00.000Z";
const ctx = { now };
const rctx = { now, durationHours: 2, resetPolicy: false };

function o(action: Order["action"], extra: Partial<Order> = {}): Order {
  return {
    id: `o-${action}-${extra.customer ?? ""}`,
    action,
    env: "local",
    backend: "jup1",
    workshop: "WKSHP-Shell101",
    seats: [40, 40],
    source: "cli",
    received: now,
    ...extra,
  };
}

Deno.test("seat life: CREATE -> active (expires after the duration) -> CLEANUP -> free", () => {
  let s: Seat = transition(freeSeat("jup1", 40), o("CREATE", { customer: "c1" }), ctx);
  assertEquals([s.status, s.customer, s.pending?.map((p) => p.action)], ["provisioning", "c1", ["CREATE"]]);
  s = succeeded(s, "CREATE", rctx);
  assertEquals([s.status, s.expires, s.pending], ["active", "2026-01-01T12:00:00.000Z", undefined]);
  s = transition(s, o("CLEANUP", { customer: "c1" }), ctx);
  assertEquals(s.status, "cleaning");
  s = succeeded(s, "CLEANUP", rctx, 70);
  assertEquals([s.status, s.customer, s.completion, s.expires], ["free", undefined, 70, undefined]);
});

Deno.test("a reset workshop holds the seat after CLEANUP until a RESET", () => {
  let s = succeeded(transition(freeSeat("jup1", 40), o("CREATE", { customer: "c1" }), ctx), "CREATE", rctx);
  s = succeeded(transition(s, o("CLEANUP"), ctx), "CLEANUP", { ...rctx, resetPolicy: true });
  assertEquals(s.status, "held-for-reset");
  assertThrows(() => transition(s, o("CREATE", { customer: "c2" }), ctx), /waiting for a RESET/);
  s = transition(s, o("RESET"), ctx);
  s = succeeded(s, "RESET", rctx);
  assertEquals(s.status, "free");
});

Deno.test("illegal transitions are refused with the seat, its holder and what was expected", () => {
  const held = transition(freeSeat("jup1", 40), o("CREATE", { customer: "alice" }), ctx);
  assertThrows(
    () => transition(held, o("CREATE", { customer: "bob" }), ctx),
    /^CREATE on seat jup1\/40 for customer bob refused: the seat is held by customer alice \(status provisioning, workshop WKSHP-Shell101, order o-CREATE-alice\); expected a free seat/,
  );
  assertThrows(
    () => transition(held, o("RESET"), ctx),
    /RESET on seat jup1\/40 refused: the seat is held by customer alice/,
  );
  assertThrows(() => transition(held, o("CLEANUP", { customer: "bob" }), ctx), /held by customer alice/);
});

Deno.test("a failed action stays pending with its reason and is retried; expire orders may clean any seat", () => {
  let s = transition(freeSeat("jup1", 41), o("CREATE", { customer: "c1" }), ctx);
  s = failed(s, "CREATE", "ssh: connection refused", now);
  assertEquals([s.status, s.reason, s.attempts, s.pending?.length], [
    "failed",
    "CREATE failed: ssh: connection refused",
    1,
    1,
  ]);
  s = succeeded(s, "CREATE", rctx);
  assertEquals([s.status, s.reason, s.attempts], ["active", undefined, undefined]);
  s = transition(s, o("CLEANUP", { customer: "someone-else", source: "expire" }), ctx);
  s = transition(s, o("PURGE", { source: "expire" }), ctx);
  assertEquals(s.pending?.map((p) => p.action), ["CLEANUP", "PURGE"]);
  s = succeeded(s, "CLEANUP", rctx);
  assertEquals(s.status, "cleaning");
  s = succeeded(s, "PURGE", rctx);
  assertEquals([s.status, s.pending], ["free", undefined]);
});

Deno.test("a seat whose action fails max_attempts times in a row is parked; a success or a new order unparks it", () => {
  let s: Seat = transition(freeSeat("jup1", 40), o("CREATE", { customer: "c" }), ctx);
  s = failed(s, "CREATE", "hub did not start", now, 2);
  assertEquals([s.attempts, isParked(s)], [1, false]);
  s = failed(s, "CREATE", "hub did not start", now, 2);
  assertEquals([s.attempts, s.parked, s.status], [2, now, "failed"]);
  assertEquals(isParked(succeeded(s, "CREATE", rctx)), false);
  const cleaned = transition(s, o("PURGE", { id: "p", customer: "c" }), ctx);
  assertEquals([isParked(cleaned), cleaned.attempts, cleaned.pending?.at(-1)?.action], [
    false,
    undefined,
    "PURGE",
  ]);
});

Deno.test("a CLEANUP of a seat already cleaned up (free or held for its RESET) is a success that owes the front end its final callback", () => {
  // Issue 17 item 6: both sides expire the seat about 10 s apart; the second CLEANUP must not be refused.
  const mail = (action: Order["action"], customer: string) =>
    o(action, { customer, source: "mail", id: `m-${action}` });
  const free = transition(freeSeat("jup1", 40), mail("CLEANUP", "c1"), ctx);
  assertEquals([free.status, free.pending, free.orders], ["free", undefined, ["m-CLEANUP"]]);
  assertEquals(free.notices, [{
    action: "CLEANUP",
    order: "m-CLEANUP",
    outcome: "done",
    customer: "c1",
    since: now,
  }]);
  let held = succeeded(
    transition(freeSeat("jup1", 41), o("CREATE", { customer: "c2" }), ctx),
    "CREATE",
    rctx,
  );
  held = succeeded(transition(held, o("CLEANUP", { customer: "c2", source: "expire" }), ctx), "CLEANUP", {
    ...rctx,
    resetPolicy: true,
  });
  assertEquals(held.status, "held-for-reset");
  const again = transition(held, mail("CLEANUP", "c2"), ctx);
  assertEquals([again.status, again.pending, again.notices?.[0].outcome], [
    "held-for-reset",
    undefined,
    "done",
  ]);
  assertEquals(
    alreadyDone(held, mail("CLEANUP", "c2")),
    "CLEANUP on seat jup1/41: already done (the seat is cleaned up and waits for its RESET); the final callback is sent again",
  );
  // An operator's CLEANUP (source cli) changes nothing and owes the front end nothing.
  assertEquals(transition(freeSeat("jup1", 42), o("CLEANUP"), ctx).notices, undefined);
  // A CLEANUP of a seat in use still cleans it.
  const inUse = transition(freeSeat("jup1", 43), o("CREATE", { customer: "c3" }), ctx);
  assertEquals(transition(inUse, mail("CLEANUP", "c3"), ctx).status, "cleaning");
});
