import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { findJsonError } from "./json_pos.ts";
import {
  checkTemplates,
  contentFiles,
  isTemplateText,
  PLATFORM_VARS,
  PYTHON,
  renderBundle,
} from "./template.ts";

const VARS = [...PLATFORM_VARS];

/** `line:col: message` of every problem the checker finds in `text`. */
async function problems(text: string, vars = VARS): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "wod-template-test-" });
  try {
    await Deno.writeTextFile(join(dir, "t.txt"), text);
    return (await checkTemplates([{ path: join(dir, "t.txt"), vars }])).map((p) =>
      `${p.line}:${p.col}: ${p.message}`
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("template check: variables, if/elif/else, comparisons, raw and allowed filters pass", async () => {
  assertEquals(
    await problems(
      "{{ STDID }}{% if MODEWS == 'CHLG' %}a{% elif MODEWS in ['WKSHP', 'X'] and not BRANDING %}b{% else %}c" +
        "{% endif %}{% raw %}{{ lookup('env','HOME') }} ${#arr[@]}{% endraw %}{# note #}" +
        "{{ BRANDING | default('wod') | upper }}{{ 'x' ~ STDID if STDID is defined else '' }}" +
        "{{ hostvars[inventory_hostname]['IP-WKSHP-X'] }}",
      [...VARS, "IP-WKSHP-X"],
    ),
    [],
  );
  assertEquals(
    (await problems("{{ hostvars['IP-WKSHP-X'] }}{{ hostvars[inventory_hostname]['OTHER'] }}")).map((p) =>
      p.slice(0, 4)
    ),
    ["1:12", "1:60"],
  );
});

Deno.test("template check: mismatched, stray and unclosed blocks are reported at their position", async () => {
  assertEquals(await problems("a\n{% if MODEWS %}b"), [
    `2:1: Template block "if" opened here is never closed with {% endif %}`,
  ]);
  assertEquals(
    (await problems("a\n{% if MODEWS %}b{% endfor %}"))[0].slice(0, 45),
    "2:20: Template syntax error: Encountered unkn",
  );
  assertEquals(await problems("x {% raw %} {{ "), [
    '1:3: Template block "raw" opened here is never closed with {% endraw %}',
  ]);
  assertEquals(await problems("echo ${#arr}"), [
    '1:7: Unterminated template comment "{#": expected "#}" (to show a literal "{#", wrap it in {% raw %}...{% endraw %})',
  ]);
});

Deno.test("template check: every route to the controller is refused with its line and column", async () => {
  const attacks = [
    "{{ lookup('env','WOD_FRONTEND_PASSWORD') }}",
    "{{ query('pipe','id -un') }}",
    "{{ lookup('pipe', 'id -un') | string }}",
    "{{ STDID | pipe }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ namespace }}",
    "{{ config }}",
    "{{ range(10) }}",
    "{{ lipsum.__globals__ }}",
    "{{ BRANDING.__class__.__mro__ }}",
    "{{ BRANDING['__class__'] }}",
    "{{ BRANDING | attr('__class__') }}",
    "{{ BRANDING | map('upper') }}",
    "{{ '%s' | format(BRANDING) }}",
    "{% for x in BRANDING %}{% endfor %}",
    "{% set x = 1 %}",
    "{% include '/etc/passwd' %}",
    "{% import 'x' as y %}",
    "{% macro m() %}{% endmacro %}",
    "{% with a = 1 %}{% endwith %}",
    "{{ 'a' * 100000000 }}",
    "{{ ansible_env }}",
    "{{ environment }}",
    "{{ hostvars['other']['x'] }}",
  ];
  const dir = await Deno.makeTempDir({ prefix: "wod-template-test-" });
  try {
    const files: { path: string; vars: string[] }[] = [];
    for (const [i, a] of attacks.entries()) {
      await Deno.writeTextFile(join(dir, `${i}.txt`), `line one\n  ${a}`);
      files.push({ path: join(dir, `${i}.txt`), vars: VARS });
    }
    const found = await checkTemplates(files);
    for (const [i, a] of attacks.entries()) {
      const mine = found.filter((p) => p.path === files[i].path);
      assert(mine.length >= 1, `not refused: ${a}`);
      assertEquals(mine[0].line, 2, `${a}: ${mine[0].message}`);
      assert(mine[0].col >= 3, `${a}: column ${mine[0].col}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(await problems("{{ STDID }} {{ lookup('env','HOME') }}"), [
    `1:16: Template uses a call of "lookup": content may use only the platform's variables, if/elif/else, ` +
    "comparisons and raw blocks (no lookups, calls, attributes, loops or imports)",
  ]);
});

Deno.test("template render: only the given variables, sandboxed, trailing newline restored by the reader", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-template-test-" });
  try {
    await Deno.writeTextFile(
      join(dir, "a.txt"),
      "{{ STDID }} {% if MODEWS == 'CHLG' %}chlg{% else %}wkshp{% endif %} {{ BRANDINGLOGO }}\n",
    );
    await Deno.writeTextFile(join(dir, "bad.txt"), "{{ lookup('env','HOME') }}");
    const out = join(dir, "bundle.jsonl");
    const vars = { STDID: 7, MODEWS: "CHLG", BRANDINGLOGO: null };
    const ok = await renderBundle({
      templates: { a: { path: join(dir, "a.txt"), nl: true } },
      seats: [{ seat: 7, templates: [{ key: "a", rel: "x/a.txt" }], vars }],
      output: out,
    });
    assertEquals(ok, { files: 1, problems: [] });
    const [head, body] = (await Deno.readTextFile(out)).trim().split("\t");
    assertEquals(JSON.parse(head), { seat: 7, path: "x/a.txt", nl: true });
    assertEquals(atob(body), "7 chlg ");
    assertEquals((await Deno.stat(out)).mode! & 0o777, 0o600);
    // A refused template: its seat gets nothing, the other seat is rendered.
    const mixed = await renderBundle({
      templates: { a: { path: join(dir, "a.txt"), nl: true }, b: { path: join(dir, "bad.txt"), nl: false } },
      seats: [
        { seat: 7, templates: [{ key: "a", rel: "a.txt" }, { key: "b", rel: "b.txt" }], vars },
        { seat: 8, templates: [{ key: "a", rel: "a.txt" }], vars: { ...vars, STDID: 8 } },
      ],
      output: out,
    });
    assertEquals(mixed.files, 1);
    assertEquals(mixed.problems.map((p) => `${p.key} ${p.line}:${p.col}`), ["b 1:4"]);
    assertStringIncludes(mixed.problems[0].message, 'a call of "lookup"');
    assertEquals(JSON.parse((await Deno.readTextFile(out)).split("\t")[0]).seat, 8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JSON error finder gives the offset of the first invalid character", () => {
  assertEquals(findJsonError('{"a": [1, 2,]}'), { offset: 12, message: `Unexpected "]": expected a value` });
  assertEquals(findJsonError('{"a": "x\ny"}'), {
    offset: 8,
    message: "Unescaped control character in string (a raw newline or tab?)",
  });
  assertEquals(findJsonError('{"a": 1} x'), {
    offset: 9,
    message: `Unexpected "x" after the end of the JSON value`,
  });
  assertEquals(findJsonError('{"a": [true, null, -1.5e3, "\\u00e9"]}'), undefined);
});

const CORPUS_NOTEBOOKS = new URL("../../../shared/corpus/wod-notebooks/", import.meta.url).pathname;

Deno.test({
  name: "template check: every text file of the real corpus workshops passes (their notebooks still deploy)",
  // The corpus sits beside the repository (../shared); a bare clone (the clean-root check) has none.
  ignore: !existsSync(CORPUS_NOTEBOOKS),
}, async () => {
  const corpus = CORPUS_NOTEBOOKS;
  const files: { path: string; vars: string[] }[] = [];
  for (const e of Deno.readDirSync(corpus)) {
    if (!e.isDirectory) continue;
    for (const p of await contentFiles(join(corpus, e.name))) {
      const data = await Deno.readFile(join(corpus, e.name, p));
      if (isTemplateText(data)) files.push({ path: join(corpus, e.name, p), vars: VARS });
    }
  }
  assert(files.length >= 30, `only ${files.length} corpus files`);
  assertEquals(await checkTemplates(files), []);
});

Deno.test("template render: the sandbox alone (check bypassed) reaches no environment variable", async () => {
  // Second line of defence: even a template the check would refuse, rendered directly in the render
  // environment, finds no way to the process environment (here holding a canary on purpose).
  const attacks = [
    "{{ lookup('env', 'WOD_CANARY') }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ config }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ STDID.__class__.__base__.__subclasses__() }}",
    "{{ range.__self__ }}",
    "{{ STDID | attr('__class__') }}",
    "{% for k in ''.__class__.__base__.__subclasses__() %}{{ k }}{% endfor %}",
    "{% set x = namespace() %}{{ x }}",
    "{% include '/proc/self/environ' %}",
    "{% import '/proc/self/environ' as e %}",
  ];
  const program = `
import json, sys
sys.path.insert(0, sys.argv[1])
import jinja_sandbox as j
out = []
for a in json.load(sys.stdin):
    try:
        out.append(j.RENDER_ENV.from_string(a).render({"STDID": 7}))
    except Exception as e:
        out.append("error: %s: %s" % (type(e).__name__, e))
print(json.dumps(out))
`;
  const canary = "canary-env-3d9c";
  const r = await exec(PYTHON, ["-I", "-B", "-c", program, new URL(".", import.meta.url).pathname], {
    bare: true,
    env: { WOD_CANARY: canary },
    stdin: JSON.stringify(attacks),
  });
  const outputs = JSON.parse(r.stdout) as string[];
  assertEquals(outputs.length, attacks.length);
  for (const [i, o] of outputs.entries()) {
    assert(!o.includes(canary), `the canary leaked through ${attacks[i]}`);
    assert(!/PATH=|HOME=|environ\(/.test(o), `environment-like output for ${attacks[i]}: ${o.slice(0, 200)}`);
  }
});
