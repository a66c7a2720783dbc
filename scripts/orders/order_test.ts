import { assertEquals, assertThrows } from "../common/assert.ts";
import { UsageError } from "../common/errors.ts";
import { ACTIONS, formatSeats, MAX_SEAT, parseSeats, seatList, seatRangeProblem } from "./order.ts";
import { validator } from "../config/schema.ts";

Deno.test("the action list is the order schema's", () => {
  const schema = JSON.parse(
    Deno.readTextFileSync(new URL("../../schemas/order.schema.json", import.meta.url)),
  );
  assertEquals([...ACTIONS], schema.properties.action.enum);
  assertEquals(validator("order") !== undefined, true);
});

Deno.test("parseSeats reads N and N-M with one limit (six digits), a range only for RESET", () => {
  assertEquals(parseSeats("7"), [7, 7]);
  assertEquals(parseSeats("007"), [7, 7]);
  assertEquals(parseSeats("3-9", { action: "RESET" }), [3, 9]);
  assertEquals(parseSeats("3-9"), [3, 9], "no action: any range (wod seats)");
  assertEquals(parseSeats(`0-${MAX_SEAT}`, { action: "RESET" }), [0, MAX_SEAT]);
  const refused: [string, string | undefined, RegExp][] = [
    [
      "",
      undefined,
      /^Invalid seat "": expected a seat number N or a range N-M \(numbers from 0 to 999999\)$/,
    ],
    ["1000000", undefined, /expected a seat number N or a range N-M/],
    ["-3", undefined, /expected a seat number/],
    ["3-", undefined, /expected a seat number/],
    ["3,5", "RESET", /expected a seat number/],
    ["9-3", "RESET", /^Invalid seat "9-3": the first seat is after the last$/],
    [
      "3-5",
      "PURGE",
      /^Invalid --seat "3-5": PURGE takes one seat, got the range 3,5 \(only RESET takes a range\)$/,
    ],
  ];
  for (const [text, action, re] of refused) {
    const what = action === "PURGE" ? "--seat" : undefined;
    const err = assertThrows(() => parseSeats(text, { action, what }), re, text);
    assertEquals(err instanceof UsageError, true, "a usage error");
  }
});

Deno.test("seat ranges: the same rule for parsed text and for JSON numbers", () => {
  assertEquals(seatRangeProblem([3, 3], "CREATE"), undefined);
  assertEquals(
    seatRangeProblem([3, 4], "CREATE"),
    "CREATE takes one seat, got the range 3,4 (only RESET takes a range)",
  );
  assertEquals(
    seatRangeProblem([1.5, 2]),
    "Invalid seats [1.5,2]: expected [first, last], seat numbers from 0 to 999999",
  );
  assertEquals(seatRangeProblem([-1, 2]) !== undefined, true);
  assertEquals(formatSeats([4, 4]), "4");
  assertEquals(formatSeats([4, 6]), "4-6");
  assertEquals(seatList([4, 6]), [4, 5, 6]);
  assertEquals(parseSeats(formatSeats([40, 45])), [40, 45]);
});
