import { assertEquals } from "./assert.ts";
import { createLogger, jsonLine, REDACTED, redactText, textLine } from "./log.ts";

Deno.test("redactText replaces every secret, the longest first, and ignores empty ones", () => {
  assertEquals(
    redactText("pw=abc123 and abc, again abc123", ["abc", "abc123", ""]),
    "pw=*** and ***, again ***",
  );
  assertEquals(redactText("nothing here", []), "nothing here");
  assertEquals(REDACTED, "***");
});

Deno.test("a JSON logger writes one line per event with the time, the event and the fields, secrets masked", () => {
  const out: string[] = [];
  const log = createLogger({ write: (s) => out.push(s), secrets: ["hunter2"], sync: true });
  log("seat-ready", { seat: 12, note: "password hunter2" });
  assertEquals(out.length, 1);
  assert1Line(out[0]);
  const entry = JSON.parse(out[0]);
  assertEquals([entry.event, entry.seat, entry.note], ["seat-ready", 12, "password ***"]);
  assertEquals(typeof entry.t, "string");
});

Deno.test("a text logger writes event key=value, quoting values with spaces; batches until flush", () => {
  const out: string[] = [];
  const log = createLogger({ format: "text", write: (s) => out.push(s) });
  log("order-accepted", { seat: 3, who: "a b", skip: undefined });
  log("done");
  assertEquals(out, []);
  log.flush();
  assertEquals(out, ['order-accepted seat=3 who="a b"\ndone\n']);
  assertEquals(textLine("x", { list: [1, 2] }), "x list=[1,2]");
  assertEquals(JSON.parse(jsonLine("e", { a: 1 }, new Date(0))), {
    t: "1970-01-01T00:00:00.000Z",
    event: "e",
    a: 1,
  });
});

function assert1Line(s: string) {
  assertEquals(s.endsWith("\n") && s.indexOf("\n") === s.length - 1, true, `not one line: ${s}`);
}
