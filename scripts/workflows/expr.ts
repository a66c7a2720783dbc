// A small evaluator for the GitHub Actions expression language (`${{ ... }}`), enough for the
// expressions our workflows use: literals, contexts with `.`/`[]` access, ! == != < <= > >= && ||,
// parentheses, and the functions contains, startsWith, endsWith, format, join, toJSON, fromJSON,
// success, failure, always, cancelled. Semantics follow GitHub's documentation (loose equality,
// case-insensitive string comparison, `||`/`&&` returning operands).
import { WodError } from "../common/errors.ts";

export type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

export interface ExprContext {
  /** Contexts by name: github, env, inputs, secrets, vars, steps, needs, matrix, runner, job, strategy. */
  contexts: Record<string, Value>;
  /** Job status for success()/failure()/cancelled(); undefined where status functions are not allowed. */
  status?: "success" | "failure" | "cancelled";
}

type Tok = { kind: "num" | "str" | "id" | "op" | "end"; text: string; value?: Value; pos: number };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let s = "";
      for (;;) {
        if (j >= src.length) throw new WodError(`Unterminated string at column ${i + 1} in "${src}"`);
        if (src[j] === "'") {
          if (src[j + 1] === "'") {
            s += "'";
            j += 2;
            continue;
          }
          break;
        }
        s += src[j++];
      }
      toks.push({ kind: "str", text: src.slice(i, j + 1), value: s, pos: i });
      i = j + 1;
      continue;
    }
    const num = /^(0x[0-9a-fA-F]+|-?\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(src.slice(i));
    if (num && (c !== "-" || /\d/.test(src[i + 1] ?? ""))) {
      toks.push({ kind: "num", text: num[0], value: Number(num[0]), pos: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (id) {
      toks.push({ kind: "id", text: id[0], pos: i });
      i += id[0].length;
      continue;
    }
    const op = /^(==|!=|<=|>=|&&|\|\||[!<>()[\].,*])/.exec(src.slice(i));
    if (op) {
      toks.push({ kind: "op", text: op[0], pos: i });
      i += op[0].length;
      continue;
    }
    throw new WodError(`Unexpected character "${c}" at column ${i + 1} in expression "${src}"`);
  }
  toks.push({ kind: "end", text: "", pos: src.length });
  return toks;
}

type Node =
  | { t: "lit"; v: Value }
  | { t: "ctx"; name: string }
  | { t: "prop"; obj: Node; key: Node | string }
  | { t: "call"; fn: string; args: Node[] }
  | { t: "not"; e: Node }
  | { t: "bin"; op: string; l: Node; r: Node };

export function parseExpression(src: string): Node {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const fail = (msg: string): never => {
    throw new WodError(`${msg} at column ${peek().pos + 1} in expression "${src}"`);
  };
  const eat = (text: string) => {
    if (peek().text !== text || peek().kind === "str") fail(`Expected "${text}"`);
    p++;
  };
  const primary = (): Node => {
    const t = peek();
    if (t.kind === "num" || t.kind === "str") {
      p++;
      return { t: "lit", v: t.value as Value };
    }
    if (t.kind === "op" && t.text === "(") {
      p++;
      const e = or();
      eat(")");
      return e;
    }
    if (t.kind === "id") {
      p++;
      if (t.text === "true" || t.text === "false") return { t: "lit", v: t.text === "true" };
      if (t.text === "null") return { t: "lit", v: null };
      if (peek().text === "(" && peek().kind === "op") {
        p++;
        const args: Node[] = [];
        if (peek().text !== ")") {
          args.push(or());
          while (peek().text === ",") {
            p++;
            args.push(or());
          }
        }
        eat(")");
        return { t: "call", fn: t.text.toLowerCase(), args };
      }
      return { t: "ctx", name: t.text };
    }
    return fail(`Unexpected "${t.text || "end of expression"}"`);
  };
  const postfix = (): Node => {
    let e = primary();
    for (;;) {
      if (peek().kind === "op" && peek().text === ".") {
        p++;
        const t = peek();
        if (t.kind === "id") {
          p++;
          e = { t: "prop", obj: e, key: t.text };
        } else if (t.text === "*") fail("Object filters (.*) are not supported by the local evaluator");
        else fail("Expected a property name");
      } else if (peek().kind === "op" && peek().text === "[") {
        p++;
        const k = or();
        eat("]");
        e = { t: "prop", obj: e, key: k };
      } else return e;
    }
  };
  const unary = (): Node => {
    if (peek().kind === "op" && peek().text === "!") {
      p++;
      return { t: "not", e: unary() };
    }
    return postfix();
  };
  const binary = (ops: string[], next: () => Node) => (): Node => {
    let l = next();
    while (peek().kind === "op" && ops.includes(peek().text)) {
      const op = toks[p++].text;
      l = { t: "bin", op, l, r: next() };
    }
    return l;
  };
  const cmp = binary(["<", "<=", ">", ">="], unary);
  const eq = binary(["==", "!="], cmp);
  const and = binary(["&&"], eq);
  const or = binary(["||"], and);
  const e = or();
  if (peek().kind !== "end") fail(`Unexpected "${peek().text}"`);
  return e;
}

export function truthy(v: Value): boolean {
  return !(v === null || v === false || v === 0 || v === "" || (typeof v === "number" && isNaN(v)));
}

function toNumber(v: Value): number {
  if (v === null) return 0;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") return v.trim() === "" ? 0 : Number(v);
  return NaN;
}

export function toText(v: Value): string {
  if (v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v, null, 2);
}

function looseEquals(a: Value, b: Value): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  if (typeof a === typeof b && (typeof a !== "object" || a === null || b === null)) return a === b;
  if (typeof a === "object" && a !== null || typeof b === "object" && b !== null) return a === b;
  const x = toNumber(a), y = toNumber(b);
  return !isNaN(x) && !isNaN(y) && x === y;
}

function compare(a: Value, b: Value): number {
  if (typeof a === "string" && typeof b === "string") {
    const x = a.toLowerCase(), y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return toNumber(a) - toNumber(b);
}

function statusFn(ctx: ExprContext, fn: string): boolean {
  if (ctx.status === undefined) throw new WodError(`Function ${fn}() is not allowed here`);
  if (fn === "always") return true;
  if (fn === "success") return ctx.status === "success";
  if (fn === "failure") return ctx.status === "failure";
  return ctx.status === "cancelled";
}

function evalNode(n: Node, ctx: ExprContext): Value {
  switch (n.t) {
    case "lit":
      return n.v;
    case "ctx":
      return ctx.contexts[n.name] ?? null;
    case "prop": {
      const o = evalNode(n.obj, ctx);
      const k = typeof n.key === "string" ? n.key : evalNode(n.key, ctx);
      if (o === null || typeof o !== "object") return null;
      if (Array.isArray(o)) return typeof k === "number" ? o[k] ?? null : null;
      const key = toText(k);
      if (key in o) return o[key];
      const found = Object.keys(o).find((x) => x.toLowerCase() === key.toLowerCase());
      return found === undefined ? null : o[found];
    }
    case "not":
      return !truthy(evalNode(n.e, ctx));
    case "bin": {
      if (n.op === "&&") {
        const l = evalNode(n.l, ctx);
        return truthy(l) ? evalNode(n.r, ctx) : l;
      }
      if (n.op === "||") {
        const l = evalNode(n.l, ctx);
        return truthy(l) ? l : evalNode(n.r, ctx);
      }
      const l = evalNode(n.l, ctx), r = evalNode(n.r, ctx);
      switch (n.op) {
        case "==":
          return looseEquals(l, r);
        case "!=":
          return !looseEquals(l, r);
        case "<":
          return compare(l, r) < 0;
        case "<=":
          return compare(l, r) <= 0;
        case ">":
          return compare(l, r) > 0;
        default:
          return compare(l, r) >= 0;
      }
    }
    case "call": {
      if (["success", "failure", "always", "cancelled"].includes(n.fn)) return statusFn(ctx, n.fn);
      const a = n.args.map((x) => evalNode(x, ctx));
      switch (n.fn) {
        case "contains":
          if (Array.isArray(a[0])) return a[0].some((x) => looseEquals(x, a[1]));
          return toText(a[0]).toLowerCase().includes(toText(a[1]).toLowerCase());
        case "startswith":
          return toText(a[0]).toLowerCase().startsWith(toText(a[1]).toLowerCase());
        case "endswith":
          return toText(a[0]).toLowerCase().endsWith(toText(a[1]).toLowerCase());
        case "format":
          return toText(a[0]).replace(/\{(\d+)\}/g, (_, i) => toText(a[Number(i) + 1] ?? null));
        case "join":
          return Array.isArray(a[0])
            ? a[0].map(toText).join(a.length > 1 ? toText(a[1]) : ",")
            : toText(a[0]);
        case "tojson":
          return JSON.stringify(a[0], null, 2);
        case "fromjson":
          try {
            return JSON.parse(toText(a[0]));
          } catch (err) {
            throw new WodError(`fromJSON() got invalid JSON ${JSON.stringify(toText(a[0]))}`, { cause: err });
          }
        default:
          throw new WodError(`Function ${n.fn}() is not supported by the local evaluator`);
      }
    }
  }
}

export function evaluate(src: string, ctx: ExprContext): Value {
  return evalNode(parseExpression(src), ctx);
}

const TEMPLATE = /\$\{\{([\s\S]*?)\}\}/g;

/** The `${{ }}` expressions inside a string, with their source text. */
export function expressionsIn(text: string): { expr: string; raw: string; index: number }[] {
  return [...text.matchAll(TEMPLATE)].map((m) => ({ expr: m[1].trim(), raw: m[0], index: m.index ?? 0 }));
}

/**
 * Evaluate a value that may contain `${{ }}`: a string made of exactly one expression keeps the
 * expression's type (so `fromJSON(...)` gives an array); otherwise expressions are interpolated.
 */
export function evaluateTemplate(text: string, ctx: ExprContext): Value {
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(text);
  if (whole && !whole[1].includes("}}")) return evaluate(whole[1].trim(), ctx);
  return interpolate(text, ctx);
}

export function interpolate(text: string, ctx: ExprContext): string {
  return text.replace(TEMPLATE, (_, e: string) => toText(evaluate(e.trim(), ctx)));
}

/** An `if:` condition: with or without `${{ }}`; success() is implied unless a status function is used. */
export function evaluateCondition(cond: string | boolean | undefined, ctx: ExprContext): boolean {
  if (cond === undefined) return ctx.status === undefined || ctx.status === "success";
  if (typeof cond === "boolean") return cond && (ctx.status === undefined || ctx.status === "success");
  let src = cond.trim();
  const whole = /^\$\{\{([\s\S]*)\}\}$/.exec(src);
  if (whole) src = whole[1].trim();
  const usesStatus = /\b(success|failure|always|cancelled)\s*\(/.test(src);
  const value = truthy(evaluate(src, ctx));
  if (usesStatus || ctx.status === undefined) return value;
  return ctx.status === "success" && value;
}
