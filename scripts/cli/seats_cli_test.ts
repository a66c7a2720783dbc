// `wod seats` parses its seats with the one seat-range parser (scripts/orders/order.ts) and checks them
// against the backend's student pool with the order pipeline's rule, before anything reaches a backend
// (the backend no longer re-checks: scripts/backend/seats.ts runSeatTasks trusts its tasks).
import { assertEquals, assertStringIncludes } from "../common/assert.ts";
import { makeRoot } from "../mail/testing.ts";
import { wod } from "../testing/state_fixture.ts";

Deno.test("wod seats refuses seats outside the pool and bad ranges, naming them, before touching a backend", async () => {
  const root = await makeRoot();
  try {
    const base = ["seats", "reset", "--env=t", "--workshop=WKSHP-Test", "--backend=b1"];
    const outside = await wod(root, [...base, "--seats=45-60"]);
    assertEquals(outside.code, 1);
    assertStringIncludes(
      outside.stderr,
      'error: Seats 45,60 are outside the student pool [1, 50] of backend "b1" of environment "t": choose seats inside the pool\n',
    );
    const reversed = await wod(root, [...base, "--seats=9-3"]);
    assertEquals(reversed.code, 1);
    assertStringIncludes(
      reversed.stderr,
      'error: Invalid --seats "9-3": the first seat is after the last\n',
    );
    const huge = await wod(root, [...base, "--seats=1-1000000"]);
    assertEquals(huge.code, 1);
    assertStringIncludes(huge.stderr, "numbers from 0 to 999999");
    const action = await wod(root, ["seats", "destroy", "--env=t", "--workshop=WKSHP-Test", "--seats=1"]);
    assertEquals(action.code, 1);
    assertStringIncludes(action.stderr, 'Unknown seat action "destroy"');
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
