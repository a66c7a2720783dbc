// A light Jinja2 scanner for workshop content: the backend renders every notebook with Ansible's
// Jinja2, so an unclosed block, a stray `{#` (e.g. bash's `${#array}`) or a JSON-escaped quote inside a
// tag fails there, at CREATE time, on a participant's seat. This finds those at PR time.
// It checks structure (balanced tags and blocks) and collects the variables used; it is not a full
// Jinja2 parser.

export interface TemplateProblem {
  offset: number;
  message: string;
}

export interface TemplateVar {
  name: string;
  offset: number;
}

export interface TemplateScan {
  problems: TemplateProblem[];
  vars: TemplateVar[];
}

/** Platform variables every notebook may use (INTEROP.md) and Ansible/Jinja2 globals. */
export const PLATFORM_VARS = new Set([
  "STDID",
  "PASSSTU",
  "HTTPPORT",
  "WODBEEXTFQDN",
  "BRANDING",
  "BRANDINGWOD",
  "BRANDINGLOGO",
  "BRANDINGURL",
  "SURVEYURL",
  "SURVEYCHALURL",
  "MODEWS",
  "WORKSHOP",
  "hostvars",
  "inventory_hostname",
  "groups",
  "lookup",
  "query",
  "range",
  "dict",
  "lipsum",
  "cycler",
  "joiner",
  "namespace",
  "loop",
  "item",
  "omit",
]);

const BLOCKS: Record<string, string> = {
  if: "endif",
  for: "endfor",
  macro: "endmacro",
  call: "endcall",
  filter: "endfilter",
  block: "endblock",
  with: "endwith",
  autoescape: "endautoescape",
};
const ENDS: Record<string, string> = { ...BLOCKS, set: "endset" };
const MIDDLE: Record<string, string[]> = { elif: ["if"], else: ["if", "for"] };
const SINGLE = new Set(["set", "include", "import", "from", "extends", "do", "break", "continue"]);
const KEYWORDS = new Set([
  "and",
  "or",
  "not",
  "in",
  "is",
  "if",
  "else",
  "true",
  "false",
  "none",
  "True",
  "False",
  "None",
  "recursive",
]);

/** Identifiers used as variables in a Jinja2 expression (not attributes, filters, tests or strings). */
function exprVars(expr: string, base: number, locals: Set<string>, out: TemplateVar[]): void {
  const re = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\S/g;
  let prev = "";
  let m: RegExpExecArray | null;
  while ((m = re.exec(expr)) !== null) {
    const tok = m[0];
    if (/^[A-Za-z_]/.test(tok)) {
      const next = expr.slice(re.lastIndex).trimStart();
      const isKwarg = next.startsWith("=") && !next.startsWith("==");
      if (
        prev !== "." && prev !== "|" && prev !== "is" && !KEYWORDS.has(tok) && !locals.has(tok) && !isKwarg
      ) {
        out.push({ name: tok, offset: base + m.index });
      }
    }
    prev = tok;
  }
}

/** Scan a Jinja2 template. `jsonText`: the file is JSON (a notebook), so a backslash in a tag is wrong. */
export function scanTemplate(text: string, jsonText = false): TemplateScan {
  const problems: TemplateProblem[] = [];
  const vars: TemplateVar[] = [];
  const stack: { name: string; offset: number }[] = [];
  const locals = new Set<string>();
  const open = /\{\{|\{%|\{#/g;
  let m: RegExpExecArray | null;
  while ((m = open.exec(text)) !== null) {
    const start = m.index;
    const kind = m[0];
    const closer = kind === "{{" ? "}}" : kind === "{%" ? "%}" : "#}";
    const end = text.indexOf(closer, start + 2);
    if (end < 0) {
      const what = kind === "{#" ? "comment" : kind === "{{" ? "expression" : "tag";
      problems.push({
        offset: start,
        message: `Unterminated template ${what} "${kind}": expected "${closer}"` +
          (kind === "{#" ? ` (to show a literal "{#", wrap it in {% raw %}...{% endraw %})` : ""),
      });
      break;
    }
    open.lastIndex = end + 2;
    if (kind === "{#") continue;
    let inner = text.slice(start + 2, end);
    let innerBase = start + 2;
    const lead = /^[-+]?/.exec(inner)![0].length;
    inner = inner.slice(lead).replace(/[-+]$/, "");
    innerBase += lead;
    if (jsonText && inner.includes("\\")) {
      problems.push({
        offset: start,
        message: `Template ${kind} ... ${closer} contains a backslash (a JSON-escaped quote or newline?): ` +
          `Jinja2 cannot parse it; use single quotes inside template tags`,
      });
      continue;
    }
    if (kind === "{{") {
      exprVars(inner, innerBase, locals, vars);
      continue;
    }
    const tm = /^\s*([A-Za-z_]+)/.exec(inner);
    if (!tm) {
      problems.push({ offset: start, message: `Empty or invalid template tag "{%${inner}%}"` });
      continue;
    }
    const tag = tm[1];
    const rest = inner.slice(tm[0].length);
    const restBase = innerBase + tm[0].length;
    if (tag === "raw") {
      const endRaw = /\{%[-+]?\s*endraw\s*[-+]?%\}/g;
      endRaw.lastIndex = end + 2;
      const em = endRaw.exec(text);
      if (!em) {
        problems.push({
          offset: start,
          message: `Template block "raw" opened here is never closed with {% endraw %}`,
        });
        break;
      }
      open.lastIndex = em.index + em[0].length;
      continue;
    }
    if (SINGLE.has(tag)) {
      if (tag === "set") {
        const sm = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=?)([\s\S]*)$/.exec(rest);
        if (sm) {
          if (sm[2]) exprVars(sm[3], restBase + rest.indexOf(sm[3]), locals, vars);
          else stack.push({ name: "set", offset: start });
          locals.add(sm[1]);
        }
      }
      continue;
    }
    if (tag in BLOCKS) {
      stack.push({ name: tag, offset: start });
      if (tag === "for") {
        const fm = /^\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s+in\s+([\s\S]*)$/.exec(
          rest,
        );
        if (fm) {
          for (const v of fm[1].split(",")) locals.add(v.trim());
          exprVars(fm[2], restBase + rest.indexOf(fm[2]), locals, vars);
        }
      } else if (tag === "if") exprVars(rest, restBase, locals, vars);
      else if (tag === "macro") {
        const mm = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)/.exec(rest);
        if (mm) {
          locals.add(mm[1]);
          for (const a of mm[2].split(",")) locals.add(a.split("=")[0].trim());
        }
      }
      continue;
    }
    if (tag in MIDDLE) {
      const top = stack[stack.length - 1];
      if (!top || !MIDDLE[tag].includes(top.name)) {
        problems.push({
          offset: start,
          message: `Unexpected {% ${tag} %}: no open ${MIDDLE[tag].join(" or ")} block`,
        });
      } else if (tag === "elif") exprVars(rest, restBase, locals, vars);
      continue;
    }
    if (tag.startsWith("end")) {
      const top = stack[stack.length - 1];
      if (!top) {
        problems.push({ offset: start, message: `Unexpected {% ${tag} %}: no open block to close` });
      } else if (ENDS[top.name] !== tag) {
        problems.push({
          offset: start,
          message: `{% ${tag} %} does not match the open "${top.name}" block: expected {% ${
            ENDS[top.name]
          } %}`,
        });
        stack.pop();
      } else stack.pop();
      continue;
    }
    problems.push({ offset: start, message: `Unknown template tag "${tag}"` });
  }
  for (const b of stack) {
    problems.push({
      offset: b.offset,
      message: `Template block "${b.name}" opened here is never closed with {% ${ENDS[b.name]} %}`,
    });
  }
  return { problems, vars };
}

/** 1-based line and column of a character offset. */
export function offsetToPos(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    last = i;
  }
  return { line, col: offset - last };
}
