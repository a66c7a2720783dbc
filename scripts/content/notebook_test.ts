// Pure parts of test-workshop: error positions from kernel tracebacks, the check-output normalisation,
// cell tags, notebook order, challenge-mode detection, report lines and the test-seat choice.
import { assert, assertEquals } from "../common/assert.ts";
import {
  cellTags,
  errorLine,
  hasChallengeMode,
  normaliseOutput,
  orderNotebooks,
  outputText,
} from "./notebook.ts";
import { failureLine, githubReport, markdownReport } from "./report.ts";
import { pickTestSeat, type WorkshopResult } from "./runner.ts";

const E = "\x1b[0;31m";
const R = "\x1b[0m";

Deno.test("errorLine finds the raising line of this cell in an IPython 8 traceback", () => {
  const tb = [
    `${E}---------------------------------------------------------------------------${R}`,
    `${E}NameError${R}                                 Traceback (most recent call last)`,
    `Cell ${E}In[5], line 2${R}\n${R}      1${R} a ${E}=${R} 1\n${E}----> 2${R} b ${E}=${R} undefined_name + a`,
    `${E}NameError${R}: name 'undefined_name' is not defined`,
  ];
  assertEquals(errorLine(tb, 5), 2);
});

Deno.test("errorLine prefers the innermost frame of the cell over frames of earlier cells", () => {
  const tb = [
    "Cell In[9], line 1\n----> 1 helper()",
    "Cell In[4], line 3, in helper()\n----> 3     raise ValueError('x')",
    "Cell In[9], line 7\n----> 7 inner()",
    "File /usr/lib/python3/dist-packages/x.py:10, in f()",
    "ValueError: x",
  ];
  assertEquals(errorLine(tb, 9), 7);
  assertEquals(errorLine(tb, null), 7);
});

Deno.test("errorLine reads IPython 7 tracebacks and syntax errors", () => {
  assertEquals(errorLine(["Input In [3], in <cell line: 4>()\n      3 x = 1\n----> 4 y()"], 3), 4);
  assertEquals(
    errorLine(["<ipython-input-2-5d9d2a1b3c4e> in <module>\n      1 a = 1\n----> 2 1/0\n"], 2),
    2,
  );
  assertEquals(
    errorLine(['  File "<ipython-input-6-aa11bb22cc33>", line 3\n    print(\n', "SyntaxError"], 6),
    3,
  );
  assertEquals(errorLine(["Traceback: nothing about cells"], 1), undefined);
});

Deno.test("normaliseOutput hides student numbers, times, durations and addresses, not real changes", () => {
  const stored =
    "student7 2024-01-02T03:04:05.123Z at 12:00:01 took 1.5 s\nGET http://10.0.0.3:8080/ ok  \n" +
    "<object at 0x7f3a2b1c0d90> localhost:43123 6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f\n\n";
  const fresh = "student112 2026-12-03 08:00 at 9:41:00.5 took 230ms\nGET http://127.0.0.1:9/ ok\n" +
    "<object at 0x55d0e1f2a3b4> localhost:8888 00000000-0000-4000-8000-000000000000";
  assertEquals(normaliseOutput(stored), normaliseOutput(fresh));
  assert(normaliseOutput("count: 2") !== normaliseOutput("count: 3"), "a changed number must still differ");
});

Deno.test("outputText joins streams, results and errors as a participant sees them", () => {
  assertEquals(
    outputText([
      { output_type: "stream", name: "stdout", text: "a\n" },
      { output_type: "execute_result", data: { "text/plain": ["4", "2"] }, execution_count: 1 },
      { output_type: "error", ename: "ValueError", evalue: "bad", traceback: [] },
    ]),
    "a\n42\nValueError: bad\n",
  );
});

Deno.test("cellTags reads wod tags and reports unknown ones", () => {
  const t = cellTags({
    cell_type: "code",
    source: "",
    metadata: { tags: ["wod:skip", "wod:check-output", "wod:timeout=90", "wod:skp", "other"] },
  });
  assertEquals(t, { skip: true, raises: false, checkOutput: true, timeoutS: 90, unknown: ["wod:skp"] });
  assertEquals(cellTags({ cell_type: "code", source: "" }).unknown, []);
});

Deno.test("notebooks run entry first then by name; CHLG detected only from the MODEWS test", () => {
  assertEquals(orderNotebooks(["2-b.ipynb", "1-a.ipynb", "0-ReadMeFirst.ipynb", "sub/0.ipynb"]), [
    "0-ReadMeFirst.ipynb",
    "1-a.ipynb",
    "2-b.ipynb",
    "sub/0.ipynb",
  ]);
  assert(hasChallengeMode(`{% if MODEWS == "CHLG" %}x{% endif %}`));
  assert(hasChallengeMode("{% if MODEWS=='CHLG' %}"));
  assert(!hasChallengeMode("MODEWS is WKSHP here"));
});

Deno.test("failure lines name the notebook, cell, line, error and mode", () => {
  const f = {
    file: "workshops/W/1-a.ipynb",
    cell: 3,
    line: 2,
    name: "NameError",
    message: "name 'x' is not defined",
  };
  assertEquals(
    failureLine(f, "WKSHP"),
    "workshops/W/1-a.ipynb: cell 3 (line 2 of the cell): NameError: name 'x' is not defined",
  );
  assertEquals(
    failureLine({ file: "workshops/W/1-a.ipynb", name: "MissingKernel", message: "m" }, "CHLG"),
    "workshops/W/1-a.ipynb: MissingKernel: m [mode CHLG]",
  );
  const r: WorkshopResult = {
    workshop: "W",
    mode: "WKSHP",
    backend: "jup1",
    seat: 3,
    notebooks: [],
    failures: [f],
    counts: { run: 2, passed: 1, failed: 1, skipped: 0, notRun: 0 },
    seconds: 1.25,
    createSeconds: 3,
    cleanedUp: true,
    ok: false,
  };
  const gh = githubReport([r, {
    ...r,
    failures: [{ file: "workshops/W/0.ipynb:7:9", name: "UndefinedVariable", message: "v" }],
  }]);
  assert(gh.includes("::error file=workshops/W/1-a.ipynb,title=cell 3 line 2%3A NameError::"), gh);
  assert(gh.includes("::error file=workshops/W/0.ipynb,line=7,col=9,title=UndefinedVariable::"), gh);
  const md = markdownReport([r]);
  assert(md.includes("| W | WKSHP | **FAIL** | 2 | 1 | 1 | 0 | 1.3 |"), md);
  assert(md.includes("workshops/W/1-a.ipynb: cell 3 (line 2 of the cell): NameError"), md);
});

Deno.test("the test seat is the highest seat neither recorded as held nor running", async () => {
  const held = new Set([10, 9]);
  const running = new Set([8]);
  const pick = (lo: number, hi: number) =>
    pickTestSeat([lo, hi], (s) => held.has(s), (s) => Promise.resolve(running.has(s)));
  assertEquals(await pick(1, 10), 7);
  assertEquals(await pick(8, 10), undefined);
  assertEquals(await pick(1, 5), 5);
});
