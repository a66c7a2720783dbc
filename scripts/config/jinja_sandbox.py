#!/usr/bin/python3
"""Workshop content templates: one checker and one renderer sharing one Jinja2 environment.

`wod validate` runs `check`, the seat runner runs `render`; both parse with the same Jinja2
environment and the same whitelist, so what validate accepts is exactly what the backend renders.
The controller holds the environment's secrets, so content may use only the platform's variables:
output expressions, `if`/`elif`/`else`, `raw`, comments, comparisons, `and`/`or`/`not`, `~`, a few
string filters and tests. No lookups, no calls, no attribute access, no loops, no imports: every other
construct is refused with its line and column. Rendering also runs in Jinja2's SandboxedEnvironment
with no globals, and this program is started with an empty environment, so even a gap in the
whitelist would find nothing to read.

Usage (JSON on stdin, JSON or JSON lines on stdout; never reads its own environment):
  jinja_sandbox.py check   {"files": [{"path": P, "vars": [NAME...]}]}
                           -> {"problems": [{"path", "line", "col", "message"}]}
  jinja_sandbox.py render  {"templates": {KEY: {"path": P, "nl": bool}},
                            "seats": [{"seat": N, "templates": [{"key": KEY, "rel": R}], "vars": {...}}],
                            "output": FILE}
                           -> FILE: one line per rendered file: {"seat","path","nl"} TAB base64(content)
                           -> stdout {"files": N, "problems": [{"key", "seat"?, "path", "line", "col",
                              "message"}]}: a seat with a refused or failing template gets no line
"""
import base64
import json
import os
import re
import sys

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.lexer import Lexer
from jinja2.sandbox import SandboxedEnvironment

# String filters and tests that read nothing and cannot grow output beyond their input.
FILTERS = ("default", "d", "lower", "upper", "trim", "string", "int")
TESTS = ("defined", "undefined", "none", "eq", "ne", "equalto")
# Expression and statement nodes content may use; everything else is refused.
ALLOWED = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Const, nodes.Name, nodes.Compare,
    nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Concat, nodes.CondExpr, nodes.Tuple,
    nodes.List, nodes.Getitem, nodes.Filter, nodes.Test,
)
NEWLINES = re.compile(r"\r\n|\r")


def settings():
    # The template module's settings, so notebooks render as the original platform rendered them.
    return dict(trim_blocks=True, lstrip_blocks=False, keep_trailing_newline=False, autoescape=False,
                undefined=StrictUndefined, finalize=lambda v: "" if v is None else v)


def restrict(env):
    env.globals.clear()
    env.filters = {k: v for k, v in env.filters.items() if k in FILTERS}
    env.tests = {k: v for k, v in env.tests.items() if k in TESTS}
    return env


class OffsetLexer(Lexer):
    """Tokens carry their character offset + 1 in place of the line, so every node knows its column."""

    def tokeniter(self, source, name, filename=None, state=None):
        cursor = 0
        inner = super().tokeniter(source, name, filename, state)
        while True:
            try:
                lineno, token, value = next(inner)
            except StopIteration:
                return
            except TemplateSyntaxError as e:
                e.wod_offset = cursor  # the lexer stopped after the last token it produced
                raise
            at = source.find(value, cursor) if value else cursor
            if at < 0:
                at = cursor
            cursor = at + len(value)
            yield at + 1, token, value


class CheckEnvironment(SandboxedEnvironment):
    _offset_lexer = None

    @property
    def lexer(self):
        if self._offset_lexer is None:
            self._offset_lexer = OffsetLexer(self)
        return self._offset_lexer


CHECK_ENV = restrict(CheckEnvironment(**settings()))
RENDER_ENV = restrict(SandboxedEnvironment(**settings()))


# Statement nodes by the tag that writes them.
STATEMENTS = {"For": "for", "Assign": "set", "AssignBlock": "set", "Include": "include", "Import": "import",
              "FromImport": "from ... import", "Macro": "macro", "CallBlock": "call", "FilterBlock": "filter",
              "With": "with", "ExprStmt": "do", "Extends": "extends", "Block": "block", "Continue": "continue",
              "Break": "break", "Scope": "scope", "ScopedEvalContextModifier": "autoescape",
              "EvalContextModifier": "autoescape"}


def describe(node):
    if isinstance(node, nodes.Getattr):
        return 'attribute access ".%s"' % node.attr
    if isinstance(node, nodes.Call):
        callee = node.node
        if isinstance(callee, nodes.Name):
            return 'a call of "%s"' % callee.name
        if isinstance(callee, nodes.Getattr):
            return 'a call of ".%s"' % callee.attr
        return "a call"
    if isinstance(node, nodes.Stmt):
        tag = STATEMENTS.get(type(node).__name__, type(node).__name__.lower())
        return "{%% %s %%}" % tag
    return "the expression %s" % type(node).__name__


ENDS = {"if": "endif", "for": "endfor", "macro": "endmacro", "call": "endcall", "filter": "endfilter",
        "block": "endblock", "with": "endwith", "autoescape": "endautoescape", "raw": "endraw"}


def unclosed_block(source):
    """(offset, name) of the innermost block still open at the end, from the tokens alone."""
    stack = []
    previous = None
    opened_at = 0
    try:
        for at, token, value in CHECK_ENV.lexer.tokeniter(source, None):
            if token == "raw_begin":
                stack.append((at - 1, "raw"))
            elif token == "raw_end" and stack:
                stack.pop()
            elif token == "block_begin":
                opened_at = at - 1
            elif token == "name" and previous == "block_begin":
                if value in ENDS and value != "raw":
                    stack.append((opened_at, value))
                elif value.startswith("end") and stack and ENDS.get(stack[-1][1]) == value:
                    stack.pop()
            if token != "whitespace":
                previous = token
    except TemplateSyntaxError:
        pass
    return stack[-1] if stack else None


def problems_of(source, names):
    """Problems of one template: [(offset, message)], offsets into the newline-normalized source."""
    try:
        tree = CHECK_ENV.parse(source)
    except TemplateSyntaxError as e:
        text = re.sub(r" at \d+$", "", e.message or "")
        # Lexer errors: where the lexer stopped; parser errors: the token's offset (OffsetLexer).
        offset = getattr(e, "wod_offset", None)
        if offset is None:
            offset = min(max((e.lineno or 1) - 1, 0), len(source))
        if text.startswith("Unexpected end of template"):
            opened = unclosed_block(source)
            if opened:
                return [(opened[0], 'Template block "%s" opened here is never closed with {%% %s %%}'
                         % (opened[1], ENDS[opened[1]]))]
        if "end of raw directive" in text:
            raws = list(re.finditer(r"\{%[-+]?\s*raw\s*[-+]?%\}", source[:offset + 1]))
            return [(raws[-1].start() if raws else offset,
                     'Template block "raw" opened here is never closed with {% endraw %}')]
        if "comment" in text:
            start = source.rfind("{#", 0, offset + 2)
            return [(start if start >= 0 else offset, 'Unterminated template comment "{#": expected "#}" '
                     '(to show a literal "{#", wrap it in {% raw %}...{% endraw %})')]
        msg = "Template syntax error: %s" % text
        if "unexpected char '\\\\'" in text:
            msg += " (a JSON-escaped quote or newline inside a tag? use single quotes inside template tags)"
        return [(offset, msg)]
    out = []
    walk(tree, set(names), out)
    return out


def walk(node, names, out, parent=0):
    lineno = getattr(node, "lineno", None)
    off = lineno - 1 if lineno else parent
    if isinstance(node, nodes.Call) and getattr(node.node, "lineno", None):
        off = node.node.lineno - 1  # the callee, not its "("
    if not isinstance(node, ALLOWED):
        out.append((off, "Template uses %s: content may use only the platform's variables, if/elif/else, "
                         "comparisons and raw blocks (no lookups, calls, attributes, loops or imports)"
                    % describe(node)))
        return
    if isinstance(node, nodes.Name):
        if node.ctx != "load" or node.name not in names:
            out.append((off, 'Template variable "%s" is not a platform variable, nor in an environment\'s or '
                             "the workshop's vars: rendering this file would fail" % node.name))
        return
    if isinstance(node, nodes.Filter):
        if node.name not in FILTERS or node.dyn_args or node.dyn_kwargs:
            out.append((off, 'Template filter "%s" is not allowed (allowed: %s)' % (node.name, ", ".join(FILTERS))))
            return
    if isinstance(node, nodes.Test):
        if node.name not in TESTS or node.dyn_args or node.dyn_kwargs:
            out.append((off, 'Template test "%s" is not allowed (allowed: %s)' % (node.name, ", ".join(TESTS))))
            return
    if isinstance(node, nodes.Getitem):
        # Only hostvars[inventory_hostname]['NAME'] (the original's per-backend variables), NAME a variable.
        base = node.node
        ok = isinstance(node.arg, nodes.Const) and node.arg.value in names and \
            isinstance(base, nodes.Getitem) and isinstance(base.node, nodes.Name) and \
            base.node.name == "hostvars" and isinstance(base.arg, nodes.Name) and \
            base.arg.name == "inventory_hostname" and "hostvars" in names
        if not ok:
            out.append((off, "Template subscript is not allowed: only hostvars[inventory_hostname]['NAME'] with "
                             "NAME a variable of the environment or the workshop"))
        return
    for child in node.iter_child_nodes():
        walk(child, names, out, off)


def position(source, offset):
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def read(path):
    with open(path, "r", encoding="utf-8", newline="") as f:
        return NEWLINES.sub("\n", f.read())


def check(spec):
    problems = []
    for f in spec["files"]:
        source = read(f["path"])
        for offset, message in problems_of(source, f["vars"]):
            line, col = position(source, offset)
            problems.append({"path": f["path"], "line": line, "col": col, "message": message})
    return problems


def error_line(exc, path):
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line or 1


def render(spec):
    """Render every seat whose templates pass the check; problems name the template key (and seat)."""
    compiled = {}
    problems = []
    names = {}
    for seat in spec["seats"]:
        for item in seat["templates"]:
            names.setdefault(item["key"], set()).update(seat["vars"])
    for key, t in spec["templates"].items():
        source = read(t["path"])
        found = problems_of(source, names.get(key, set()))
        for offset, message in found:
            line, col = position(source, offset)
            problems.append({"key": key, "path": t["path"], "line": line, "col": col, "message": message})
        if not found:
            code = RENDER_ENV.compile(source, key, t["path"])
            compiled[key] = RENDER_ENV.template_class.from_code(RENDER_ENV, code, RENDER_ENV.globals, None)
    count = 0
    fd = os.open(spec["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for seat in spec["seats"]:
            if any(item["key"] not in compiled for item in seat["templates"]):
                continue  # a refused template: the seat is reported failed, nothing of it is written
            lines = []
            for item in seat["templates"]:
                t = spec["templates"][item["key"]]
                try:
                    text = compiled[item["key"]].render(seat["vars"])
                except Exception as e:  # noqa: BLE001 - reported for this seat, the others go on
                    problems.append({"key": item["key"], "seat": seat["seat"], "path": t["path"],
                                     "line": error_line(e, t["path"]), "col": 1,
                                     "message": "Rendering failed: %s" % e})
                    lines = None
                    break
                head = json.dumps({"seat": seat["seat"], "path": item["rel"], "nl": bool(t["nl"])})
                lines.append(head + "\t" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "\n")
            if lines:
                out.writelines(lines)
                count += len(lines)
    return problems, count


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("check", "render"):
        sys.stderr.write("usage: jinja_sandbox.py check|render < spec.json\n")
        return 2
    spec = json.load(sys.stdin.buffer)
    if mode == "check":
        json.dump({"problems": check(spec)}, sys.stdout)
        return 0
    problems, count = render(spec)
    json.dump({"files": count, "problems": problems}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
