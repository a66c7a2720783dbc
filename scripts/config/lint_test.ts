// Every schema rule and lint: a failing fixture (exact file:line:col: message) and a passing one.
// Each case is the small valid repo in testdata/repo with a few exact edits.
import { join } from "node:path";
import { assertEquals } from "../common/assert.ts";
import { loadConfig } from "./load.ts";
import { lintConfig } from "./lint.ts";
import { formatDiagnostic, sortDiagnostics } from "./report.ts";
import { edit, withFixture, write } from "./testing.ts";

type Edit = [file: string, from: string, to: string] | { write: string; text: string } | { remove: string };

interface Case {
  name: string;
  edits: Edit[];
  /** Exact `file:line:col: message` lines (errors and warnings), sorted by position. */
  expect: string[];
  privateEdits?: Edit[];
}

const ENV = "environments/test.yaml";
const A = "workshops/WKSHP-Alpha/workshop.yaml";
const B = "workshops/WKSHP-Beta/workshop.yaml";
const NB_A = "workshops/WKSHP-Alpha/0-ReadMeFirst.ipynb";
const NB = (cells: string) =>
  `{\n "cells": [\n  {\n   "cell_type": "markdown",\n   "metadata": {},\n   "source": [\n    ${cells}\n   ]\n  }\n ],\n` +
  ` "metadata": {},\n "nbformat": 4,\n "nbformat_minor": 5\n}\n`;

async function apply(root: string, edits: Edit[]): Promise<void> {
  for (const e of edits) {
    if (Array.isArray(e)) await edit(root, e[0], e[1], e[2]);
    else if ("write" in e) await write(root, e.write, e.text);
    else await Deno.remove(join(root, e.remove), { recursive: true });
  }
}

async function diagnose(root: string, privateDir?: string): Promise<string[]> {
  const cfg = await loadConfig(root, { privateDir });
  return sortDiagnostics([...cfg.diagnostics, ...await lintConfig(cfg)]).map(formatDiagnostic);
}

const cases: Case[] = [
  // ---- schema: workshop
  {
    name: "workshop: missing required title",
    edits: [[A, "title: Alpha\n", ""]],
    expect: [`${A}:2:1: Missing required property "title" in the document`],
  },
  {
    name: "workshop: id not shell-safe",
    edits: [[A, "id: WKSHP-Alpha", "id: WKSHP Alpha;rm"]],
    expect: [
      `${A}:2:5: Invalid value "WKSHP Alpha;rm" for "id": must match ^[A-Za-z][A-Za-z0-9_-]{1,63}$ (letters, digits, '-' and '_': shell-safe)`,
    ],
  },
  {
    name: "workshop: duration above 12 hours",
    edits: [[A, "duration: 2", "duration: 12.5"]],
    expect: [`${A}:4:11: Out of bounds value for "duration": must be <= 12`],
  },
  {
    name: "workshop: duration at the 12 hour bound passes",
    edits: [[A, "duration: 2", "duration: 12"]],
    expect: [],
  },
  {
    name: "workshop: duration below half an hour",
    edits: [[A, "duration: 2", "duration: 0.25"], [ENV, "reminder_minutes: 60", "reminder_minutes: 10"]],
    expect: [`${A}:4:11: Out of bounds value for "duration": must be >= 0.5`],
  },
  {
    name: "workshop: unknown property",
    edits: [[A, "capacity: 15\n", "capacity: 15\ncapacty: 3\n"]],
    expect: [`${A}:6:1: Unknown property "capacty" in the document`],
  },
  {
    name: "workshop: wrong type",
    edits: [[A, "capacity: 15", "capacity: many"]],
    expect: [`${A}:5:11: Invalid type for "capacity": expected integer`],
  },
  {
    name: "workshop: hook outside hooks/",
    edits: [[A, "create: hooks/create.sh", "create: ../../etc/passwd"]],
    expect: [
      `${A}:8:11: Invalid value "../../etc/passwd" for "hooks.create": must match ^hooks/[A-Za-z0-9_.-]+$`,
    ],
  },
  {
    name: "workshop: id does not match its folder",
    edits: [[B, "id: WKSHP-Beta", "id: WKSHP-Gamma"]],
    expect: [`${B}:2:5: Workshop id "WKSHP-Gamma" does not match its folder name "WKSHP-Beta"`],
  },
  {
    name: "workshop: YAML syntax error",
    edits: [[B, "title: Beta", "title: [Beta"]],
    expect: [
      `${B}:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ],
  },
  {
    name: "workshop: folder without workshop.yaml",
    edits: [{ write: "workshops/WKSHP-Empty/README.md", text: "nothing\n" }],
    expect: [`workshops/WKSHP-Empty:1:1: Workshop folder "WKSHP-Empty" has no workshop.yaml`],
  },
  // ---- schema: environment
  {
    name: "environment: range key not shell-safe",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP Beta$(x): [11, 20]"]],
    expect: [
      `${ENV}:10:7: Invalid key "WKSHP Beta$(x)" in "backends.0.ranges": must match ^[A-Za-z][A-Za-z0-9_-]{1,63}$ (letters, digits, '-' and '_': shell-safe)`,
    ],
  },
  {
    name: "environment: seat pair with three numbers",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [11, 20, 30]"]],
    expect: [
      `${ENV}:10:19: Invalid value for "backends.0.ranges.WKSHP-Beta": must NOT have more than 2 items`,
    ],
  },
  {
    name: "environment: backend name not shell-safe",
    edits: [[ENV, "- name: b2", "- name: B 2"]],
    expect: [
      `${ENV}:11:11: Invalid value "B 2" for "backends.1.name": must match ^[a-z][a-z0-9-]{0,31}$ (letters, digits, '-' and '_': shell-safe)`,
    ],
  },
  {
    name: "environment: listen without a port",
    edits: [[ENV, "listen: 127.0.0.1:10025", "listen: 127.0.0.1"]],
    expect: [`${ENV}:18:11: Invalid value "127.0.0.1" for "orders.listen": must match ^[^:]+:[0-9]{1,5}$`],
  },
  {
    name: "environment: reminder above a day",
    edits: [[ENV, "reminder_minutes: 60", "reminder_minutes: 2000"]],
    expect: [
      `${ENV}:21:21: Out of bounds value for "timing.reminder_minutes": must be <= 1440`,
    ],
  },
  {
    name: "environment: missing backends",
    edits: [{ write: ENV, text: "name: test\n" }],
    expect: [
      `${ENV}:1:1: Missing required property "backends" in the document`,
    ],
  },
  {
    name: "environment: name does not match the file",
    edits: [[ENV, "name: test", "name: prod"]],
    expect: [`${ENV}:2:7: Environment name "prod" does not match its file name "test"`],
  },
  {
    name: "environment: defined twice (.yaml and .yml)",
    edits: [{ write: "environments/test.yml", text: "name: test\nbackends: []\n" }],
    expect: [
      `environments/test.yml:1:1: Environment "test" is defined twice in the public repo: ${ENV} and environments/test.yml`,
    ],
  },
  {
    name: "workshop: empty title",
    edits: [[A, "title: Alpha", 'title: ""']],
    expect: [`${A}:3:8: Invalid value for "title": must NOT have fewer than 1 characters`],
  },
  {
    name: "workshop: absolute entry path",
    edits: [[A, "entry: 0-ReadMeFirst.ipynb", "entry: /etc/passwd"]],
    expect: [`${A}:6:8: Invalid value "/etc/passwd" for "entry": must match ^[^/\\\\][^\\\\]*$`],
  },
  {
    name: "workshop: template variable name not allowed",
    edits: [[A, "COLOR: blue", "BAD NAME: blue"]],
    expect: [
      `${A}:10:3: Invalid key "BAD NAME" in "vars": must match ^[A-Za-z_][A-Za-z0-9_-]*$ (letters, digits, '-' and '_': shell-safe)`,
    ],
  },
  {
    name: "environment: backend without students",
    edits: [[ENV, "    students: [1, 20]\n", ""]],
    expect: [`${ENV}:11:5: Missing required property "students" in "backends.1"`],
  },
  {
    name: "environment: hub_url without a scheme",
    edits: [[ENV, "    host: 127.0.0.2\n", "    host: 127.0.0.2\n    hub_url: jup2.example.org\n"]],
    expect: [
      `${ENV}:13:14: Invalid value "jup2.example.org" for "backends.1.hub_url": must match ^https?://`,
    ],
  },
  {
    name: "environment: unknown state store",
    edits: [[ENV, "timing:\n", "state:\n  store: s3\ntiming:\n"]],
    expect: [`${ENV}:21:10: Invalid value for "state.store": expected one of "git", "github"`],
  },
  {
    name: "environment: seal recipient that is not an age key",
    edits: [[ENV, "timing:\n", "seal:\n  recipients: [not-a-key]\ntiming:\n"]],
    expect: [
      `${ENV}:21:16: Invalid value "not-a-key" for "seal.recipients.0": must match ^age1[0-9a-z]{58}$`,
    ],
  },
  {
    name: "environment: front end without api_url",
    edits: [[ENV, "timing:\n", "frontend:\n  username_env: WOD_USER\ntiming:\n"]],
    expect: [`${ENV}:21:3: Missing required property "api_url" in "frontend"`],
  },
  // ---- lints: ids
  {
    name: "ids: two workshops differing only by case",
    edits: [
      { write: "workshops/WKSHP-alpha/workshop.yaml", text: "id: WKSHP-alpha\ntitle: a\nduration: 2\n" },
      { write: "workshops/WKSHP-alpha/0-ReadMeFirst.ipynb", text: NB(`"hi"`) },
    ],
    expect: [
      `workshops/WKSHP-alpha/workshop.yaml:1:5: Workshop id "WKSHP-alpha" differs only by case from "WKSHP-Alpha" (${A}): ids must be unique`,
    ],
  },
  {
    name: "ids: CHLG- prefix is reserved for the challenge mode",
    edits: [
      { write: "workshops/CHLG-Alpha/workshop.yaml", text: "id: CHLG-Alpha\ntitle: a\nduration: 2\n" },
      { write: "workshops/CHLG-Alpha/0-ReadMeFirst.ipynb", text: NB(`"hi"`) },
    ],
    expect: [
      `workshops/CHLG-Alpha/workshop.yaml:1:5: Workshop id "CHLG-Alpha" is reserved: an order for CHLG-Alpha means the challenge mode (MODEWS=CHLG) of "WKSHP-Alpha"; name the folder WKSHP-Alpha`,
    ],
  },
  {
    name: "ids: duplicate backend name",
    edits: [[ENV, "- name: b2", "- name: b1"]],
    expect: [`${ENV}:11:11: Duplicate backend name "b1" in environment "test" (first at ${ENV}:4:11)`],
  },
  // ---- lints: pools and ranges
  {
    name: "range: outside the student pool",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [45, 55]"]],
    expect: [
      `${ENV}:10:7: Range [45, 55] of "WKSHP-Beta" is outside the student pool [1, 50] of backend "b1" (${ENV}:6:15)`,
    ],
  },
  {
    name: "range: at the pool's last seat passes",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [41, 50]"]],
    expect: [],
  },
  {
    name: "range: reversed",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [20, 11]"]],
    expect: [
      `${ENV}:10:7: Range [20, 11] of "WKSHP-Beta" on backend "b1" is reversed: first must not be above last`,
    ],
  },
  {
    name: "pool: reversed",
    edits: [[ENV, "students: [1, 20]", "students: [20, 1]"]],
    expect: [
      `${ENV}:13:15: Student pool [20, 1] of backend "b2" is reversed: first must not be above last`,
      `${ENV}:16:7: Range [1, 5] of "WKSHP-Alpha" is outside the student pool [20, 1] of backend "b2" (${ENV}:13:15)`,
    ],
  },
  {
    name: "range: overlap names both workshops and both positions",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [8, 20]"]],
    expect: [
      `${ENV}:10:7: Range [8, 20] of "WKSHP-Beta" (${ENV}:10:7) overlaps range [1, 10] of "WKSHP-Alpha" (${ENV}:9:7) on backend "b1": seats 8-10`,
    ],
  },
  {
    name: "range: adjacent ranges do not overlap",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [11, 25]"]],
    expect: [],
  },
  {
    name: "range: same seats on two backends do not overlap",
    edits: [[ENV, "WKSHP-Alpha: [1, 5]", "WKSHP-Alpha: [1, 5]\n      WKSHP-Beta: [6, 20]"]],
    expect: [],
  },
  {
    name: "front-end ids: base_stdid overlapping another backend",
    edits: [[ENV, "base_stdid: 100", "base_stdid: 40"]],
    expect: [
      `${ENV}:13:15: Front-end student ids 41-60 of backend "b2" (students + base_stdid) overlap ids 1-50 of backend "b1" (${ENV}:6:15): give each backend its own base_stdid`,
    ],
  },
  {
    name: "front-end ids: base_stdid right after the other pool passes",
    edits: [[ENV, "base_stdid: 100", "base_stdid: 50"]],
    expect: [],
  },
  // ---- capacity and durations
  {
    name: "capacity: above the size of the workshop's ranges",
    edits: [[A, "capacity: 15", "capacity: 16"]],
    expect: [
      `${A}:5:11: Capacity 16 of "WKSHP-Alpha" is above the 15 seat(s) of its ranges in environment "test" (b1 [1, 10], b2 [1, 5]): lower the capacity or widen the ranges`,
    ],
  },
  {
    name: "duration: not longer than the reminder",
    edits: [[A, "duration: 2", "duration: 1"]],
    expect: [
      `${A}:4:11: Duration 1 h of "WKSHP-Alpha" is not longer than the reminder sent 60 minutes before expiry in environment "test" (${ENV}:21:21): the reminder would come at the start`,
    ],
  },
  {
    name: "duration: one hour with a 30 minute reminder passes",
    edits: [[A, "duration: 2", "duration: 1"], [ENV, "reminder_minutes: 60", "reminder_minutes: 30"]],
    expect: [],
  },
  // ---- references
  {
    name: "reference: environment range names an unknown workshop",
    edits: [[ENV, "WKSHP-Beta: [11, 20]", "WKSHP-BETA: [11, 20]"]],
    expect: [
      `${ENV}:10:7: Unknown workshop "WKSHP-BETA" in the ranges of backend "b1": no workshops/WKSHP-BETA/workshop.yaml (did you mean "WKSHP-Beta"?)`,
    ],
  },
  {
    name: "reference: entry notebook missing",
    edits: [[A, "entry: 0-ReadMeFirst.ipynb", "entry: 0-Start.ipynb"]],
    expect: [`${A}:6:8: Entry notebook "0-Start.ipynb" not found in workshops/WKSHP-Alpha/`],
  },
  {
    name: "reference: default entry notebook missing",
    edits: [{ remove: "workshops/WKSHP-Beta/0-ReadMeFirst.ipynb" }],
    expect: [
      `${B}:2:1: Entry notebook "0-ReadMeFirst.ipynb" not found in workshops/WKSHP-Beta/ (the default entry; set "entry" to name another notebook)`,
    ],
  },
  {
    name: "reference: hook file missing",
    edits: [{ remove: "workshops/WKSHP-Alpha/hooks/create.sh" }],
    expect: [`${A}:8:11: Hook "create" file "hooks/create.sh" not found in workshops/WKSHP-Alpha/`],
  },
  // ---- notebooks
  {
    name: "notebook: not valid JSON",
    edits: [[NB_A, `"cell_type": "markdown",`, `"cell_type": "markdown"`]],
    expect: [
      `${NB_A}:5:4: Notebook is not valid JSON: Unexpected "\\"": expected ',' or '}'`,
    ],
  },
  {
    name: "notebook: valid JSON but not a notebook",
    edits: [{ write: NB_A, text: `{"cells": 3}\n` }],
    expect: [
      `${NB_A}:1:1: Notebook is not a Jupyter notebook: expected an object with "cells" (array) and "nbformat" (number)`,
    ],
  },
  {
    name: "notebook: unclosed if block",
    edits: [[NB_A, "challenge{% endif %}", "challenge"]],
    expect: [`${NB_A}:8:6: Template block "if" opened here is never closed with {% endif %}`],
  },
  {
    name: "notebook: stray {# (bash array length) outside raw",
    edits: [[NB_A, "Hello student", "Count: ${#arr[@]} student"]],
    expect: [
      `${NB_A}:7:14: Unterminated template comment "{#": expected "#}" (to show a literal "{#", wrap it in {% raw %}...{% endraw %})`,
    ],
  },
  {
    name: "notebook: {# inside raw passes",
    edits: [[NB_A, "Hello student", "Count: {% raw %}${#arr[@]}{% endraw %} student"]],
    expect: [],
  },
  {
    name: "notebook: JSON-escaped quote inside a tag",
    edits: [[NB_A, "MODEWS == 'CHLG'", `MODEWS == \\"CHLG\\"`]],
    expect: [
      `${NB_A}:8:22: Template syntax error: unexpected char '\\\\' (a JSON-escaped quote or newline inside a tag? use single quotes inside template tags)`,
    ],
  },
  {
    name: "notebook: unknown template variable is an error (rendering would fail)",
    edits: [[NB_A, "{{ COLOR }}", "{{ COLOUR }}"]],
    expect: [
      `${NB_A}:7:57: ${unknownVar("COLOUR")}`,
    ],
  },
  {
    name: "notebook: lookup('env') and lookup('pipe') are refused where they are",
    edits: [[
      NB_A,
      "{{ COLOR }}",
      "{{ lookup('env','WOD_FRONTEND_PASSWORD') }} {{ lookup('pipe','id -un') }}",
    ]],
    expect: [
      `${NB_A}:7:57: ${refused('a call of "lookup"')}`,
      `${NB_A}:7:101: ${refused('a call of "lookup"')}`,
    ],
  },
  {
    name: "notebook: query, a filter outside the platform's and attribute access are refused",
    edits: [[
      NB_A,
      "{{ COLOR }}",
      "{{ query('file','/etc/passwd') }}{{ STDID | pipe }}{{ BRANDING.__class__ }}{{ COLOR | attr('x') }}",
    ]],
    expect: [
      `${NB_A}:7:57: ${refused('a call of "query"')}`,
      `${NB_A}:7:98: Template filter "pipe" is not allowed (allowed: default, d, lower, upper, trim, string, int)`,
      `${NB_A}:7:116: ${refused('attribute access ".__class__"')}`,
      `${NB_A}:7:140: Template filter "attr" is not allowed (allowed: default, d, lower, upper, trim, string, int)`,
    ],
  },
  {
    name: "notebook: Jinja2 globals (cycler, namespace, range) are not variables; loops and set are refused",
    edits: [[NB_A, "{{ COLOR }}", "{{ cycler }}{% for x in [1] %}{% endfor %}{% set y = 1 %}"]],
    expect: [
      `${NB_A}:7:57: ${unknownVar("cycler")}`,
      `${NB_A}:7:69: ${refused("{% for %}")}`,
      `${NB_A}:7:99: ${refused("{% set %}")}`,
    ],
  },
  {
    name: "notebook: a variable only another environment sets is refused where this one deploys it",
    edits: [
      [NB_A, "{{ COLOR }}", "{{ ONLY_OTHER }}"],
      {
        write: "environments/other.yaml",
        text: "name: other\nbackends:\n  - name: o1\n    host: o1.example.org\n    students: [1, 5]\n" +
          "vars:\n  ONLY_OTHER: x\n",
      },
    ],
    expect: [`${NB_A}:7:57: ${unknownVar("ONLY_OTHER")}`],
  },
  {
    name: "content: a text file that is not a notebook is checked as the backend renders it",
    edits: [{ write: "workshops/WKSHP-Alpha/notes/run.sh", text: "echo {{ lookup('env','HOME') }}\n" }],
    expect: [`workshops/WKSHP-Alpha/notes/run.sh:1:9: ${refused('a call of "lookup"')}`],
  },
  // ---- overlay
  {
    name: "overlay: private id equal to a public one",
    edits: [],
    privateEdits: [
      {
        write: "workshops/WKSHP-Alpha/workshop.yaml",
        text: "id: WKSHP-Alpha\ntitle: Secret alpha\nduration: 2\n",
      },
      { write: "workshops/WKSHP-Alpha/0-ReadMeFirst.ipynb", text: NB(`"private"`) },
    ],
    expect: [
      `private:workshops/WKSHP-Alpha/workshop.yaml:1:5: Private workshop "WKSHP-Alpha" has the same id as the public ${A}; set "overrides: true" to replace it on purpose`,
    ],
  },
  {
    name: "overlay: private id equal to a public one with overrides: true passes",
    edits: [],
    privateEdits: [
      {
        write: "workshops/WKSHP-Alpha/workshop.yaml",
        text: "id: WKSHP-Alpha\ntitle: Secret alpha\nduration: 2\noverrides: true\n",
      },
      { write: "workshops/WKSHP-Alpha/0-ReadMeFirst.ipynb", text: NB(`"private"`) },
    ],
    expect: [],
  },
  {
    name: "overlay: overrides: true without a public workshop is a warning",
    edits: [],
    privateEdits: [
      {
        write: "workshops/WKSHP-Own/workshop.yaml",
        text: "id: WKSHP-Own\ntitle: Own\nduration: 2\noverrides: true\n",
      },
      { write: "workshops/WKSHP-Own/0-ReadMeFirst.ipynb", text: NB(`"own"`) },
    ],
    expect: [
      `private:workshops/WKSHP-Own/workshop.yaml:4:12: warning: Private workshop "WKSHP-Own" says "overrides: true" but there is no public workshop with that id`,
    ],
  },
  {
    name: "overlay: overrides in a public workshop is a warning",
    edits: [[B, "capacity: 10\n", "capacity: 10\noverrides: true\n"]],
    expect: [
      `${B}:6:12: warning: "overrides" only has a meaning in the private repo; remove it from public workshop "WKSHP-Beta"`,
    ],
  },
  {
    name: "overlay: private environment value is checked at the private file's position",
    edits: [],
    privateEdits: [{ write: ENV, text: "backends:\n  - name: b2\n    students: [1, 3]\n" }],
    expect: [
      `${ENV}:16:7: Range [1, 5] of "WKSHP-Alpha" is outside the student pool [1, 3] of backend "b2" (private:${ENV}:3:15)`,
    ],
  },
  {
    name: "overlay: a private folder with only hooks/ adds hooks to the public workshop of that id",
    edits: [],
    privateEdits: [{ write: "workshops/WKSHP-Alpha/hooks/create", text: "#!/bin/sh\nexit 0\n" }],
    expect: [],
  },
  {
    name: "overlay: a private folder for a public id without workshop.yaml may hold nothing but hooks/",
    edits: [],
    privateEdits: [
      { write: "workshops/WKSHP-Alpha/hooks/create", text: "#!/bin/sh\nexit 0\n" },
      { write: "workshops/WKSHP-Alpha/extra.ipynb", text: NB(`"x"`) },
    ],
    expect: [
      `private:workshops/WKSHP-Alpha:1:1: Private folder "WKSHP-Alpha" has no workshop.yaml: for the public workshop of that id it may hold only hooks/ (found extra.ipynb)`,
    ],
  },
  {
    name: "overlay: private schema error points into the private file",
    edits: [],
    privateEdits: [{ write: ENV, text: "backends:\n  - name: b2\n    ssh_port: 70000\n" }],
    expect: [`private:${ENV}:3:15: Out of bounds value for "backends.1.ssh_port": must be <= 65535`],
  },
];

Deno.test("the fixture repo itself is valid (the passing base of every case)", async () => {
  await withFixture(async (root) => assertEquals(await diagnose(root), []));
});

function unknownVar(name: string): string {
  return `Template variable "${name}" is not a platform variable, nor in an environment's or the workshop's vars: ` +
    "rendering this file would fail";
}

function refused(what: string): string {
  return `Template uses ${what}: content may use only the platform's variables, if/elif/else, comparisons ` +
    "and raw blocks (no lookups, calls, attributes, loops or imports)";
}

for (const c of cases) {
  Deno.test(`lint ${c.name}`, async () => {
    await withFixture(async (root) => {
      await apply(root, c.edits);
      let priv: string | undefined;
      if (c.privateEdits) {
        priv = await Deno.makeTempDir({ prefix: "wod-private-" });
        await apply(priv, c.privateEdits);
      }
      try {
        assertEquals(await diagnose(root, priv), c.expect);
      } finally {
        if (priv) await Deno.remove(priv, { recursive: true });
      }
    });
  });
}
