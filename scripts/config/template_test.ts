import { assertEquals } from "../common/assert.ts";
import { findJsonError } from "./json_pos.ts";
import { offsetToPos, scanTemplate } from "./template.ts";

function problems(t: string): string[] {
  return scanTemplate(t).problems.map((p) => {
    const { line, col } = offsetToPos(t, p.offset);
    return `${line}:${col}: ${p.message}`;
  });
}

Deno.test("template scan: loop and set variables are local, filters and attributes are not variables", () => {
  const t =
    "{% for x in items %}{{ x.name | upper }}{% endfor %}{% set y = STDID %}{{ y }}{{ d['k'] | default('a') }}";
  assertEquals(problems(t), []);
  assertEquals(scanTemplate(t).vars.map((v) => v.name), ["items", "STDID", "d"]);
});

Deno.test("template scan: mismatched, stray and unclosed blocks are reported at their position", () => {
  assertEquals(problems("a\n{% if A %}b{% endfor %}"), [
    `2:12: {% endfor %} does not match the open "if" block: expected {% endif %}`,
  ]);
  assertEquals(problems("{% else %}"), ["1:1: Unexpected {% else %}: no open if or for block"]);
  assertEquals(problems("x {% raw %} {{ "), [
    '1:3: Template block "raw" opened here is never closed with {% endraw %}',
  ]);
  assertEquals(problems("{{ a "), [`1:1: Unterminated template expression "{{": expected "}}"`]);
  assertEquals(problems("{% frobnicate %}"), [`1:1: Unknown template tag "frobnicate"`]);
  assertEquals(problems("{%- if a -%}x{%+ elif b %}y{% else %}z{% endif -%}"), []);
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
