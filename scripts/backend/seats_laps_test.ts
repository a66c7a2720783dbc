// The controller-side timings of a seat run: each second of the playbook is attributed to the phase
// it was spent in, from the callback's event lines as they arrive.
import { assertEquals } from "../common/assert.ts";
import { taskLaps } from "./seats.ts";

Deno.test("seat run timings attribute startup, each task, the gaps between tasks and the end", () => {
  let t = 1000;
  const laps = taskLaps(() => t);
  const at = (ms: number, line: string) => {
    t = ms;
    laps.line(line);
  };
  at(2500, JSON.stringify({ event: "task_start", task: "Install the seat tool" }));
  at(2800, JSON.stringify({ event: "task", task: "Install the seat tool", host: "jup1", status: "ok" }));
  at(2850, JSON.stringify({ event: "task_start", task: "Apply the seat actions" }));
  at(3000, "not an event line");
  at(4850, JSON.stringify({ event: "task", task: "Apply the seat actions", host: "jup1", status: "ok" }));
  at(4900, "{ broken json");
  t = 5100;
  assertEquals(laps.done(), {
    startup: 1.5,
    "Install the seat tool": 0.3,
    between: 0.05,
    "Apply the seat actions": 2,
    end: 0.25,
  });
});
