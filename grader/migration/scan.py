"""Finding the rules' spellings in one cell or module."""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
import warnings

from .rules import (_ACC_KEYS, _INPUT_LAYERS, _LAYER_MODULE, _LEGACY, _OPTIMIZERS, Finding,
                    _removed_numpy_aliases)

__all__ = ["scan_source"]

# --------------------------------------------------------------------------- reading sources


def _mask_magics(lines: list[str]) -> list[str]:
    """IPython's ``%magic`` and ``!shell`` lines become ``pass``, so the cell parses and its
    line numbers stay those of the cell."""
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            out.append(line[:len(line) - len(stripped)] + "pass")
        else:
            out.append(line)
    return out


def _print_fix(args: str) -> str:
    args = args.strip()
    file = None
    if args.startswith(">>"):
        file, _, args = args[2:].partition(",")
        file, args = file.strip(), args.strip()
    end = args.endswith(",")
    args = args.rstrip(",").strip()
    extra = [a for a in ('end=" "' if end else "", f"file={file}" if file else "") if a]
    return "print(" + ", ".join(([args] if args else []) + extra) + ")"


_PRINT_LINE = re.compile(r"^(\s*)print(?:\s+|(?=>>))(?![\s=(.,;:)\[\]])(.*)$")
_STATEMENT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def _print_statements(lines: list[str]) -> list[Finding]:
    """Python 2 print statements, found by their tokens (by a regex where tokenizing fails)."""
    found: list[Finding] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        for number, line in enumerate(lines, 1):
            m = _PRINT_LINE.match(line)
            if m and m.group(2).strip():
                found.append(Finding("print_statement", number, number,
                                      fix=_print_fix(m.group(2))))
        return found
    depth = 0
    previous = None  # the last token that is not a comment or a line break inside brackets
    significant = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    for i, tok in enumerate(significant):
        at_start = previous is None or previous.type in _STATEMENT_START or (
            previous.type == tokenize.OP and (previous.string == ";" or
                                              (previous.string == ":" and depth == 0)))
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth = max(0, depth - 1)
        previous = tok
        if not (at_start and tok.type == tokenize.NAME and tok.string == "print"):
            continue
        nxt = significant[i + 1] if i + 1 < len(significant) else None
        if nxt is None or not (nxt.type in (tokenize.STRING, tokenize.NUMBER) or
                               (nxt.type == tokenize.NAME and nxt.string not in
                                ("in", "is", "and", "or", "if", "else", "for")) or
                               (nxt.type == tokenize.OP and nxt.string in (">>", "-", "{", "~"))):
            continue
        # the statement ends at the next NEWLINE or ';' outside brackets
        level, last = 0, tok
        for t in significant[i + 1:]:
            if t.type == tokenize.OP and t.string in "([{":
                level += 1
            elif t.type == tokenize.OP and t.string in ")]}":
                level -= 1
            if t.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (
                    t.type == tokenize.OP and t.string == ";" and level <= 0):
                break
            last = t
        args = _text_between(lines, tok.end, last.end)
        found.append(Finding("print_statement", tok.start[0], last.end[0],
                              fix=_print_fix(args)))
    return found


def _text_between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (r1, c1), (r2, c2) = start, end
    if r1 == r2:
        return lines[r1 - 1][c1:c2]
    return "\n".join([lines[r1 - 1][c1:], *lines[r1:r2 - 1], lines[r2 - 1][:c2]])


def _blank(lines: list[str], findings: list[Finding]) -> list[str]:
    out = list(lines)
    for f in findings:
        first = out[f.line - 1]
        out[f.line - 1] = first[:len(first) - len(first.lstrip())] + "pass"
        for n in range(f.line, f.end_line):
            out[n] = ""
    return out


class _Scanner(ast.NodeVisitor):
    """The rules that ``ast`` can see; columns are turned from UTF-8 bytes into characters."""

    def __init__(self, lines: list[str], numpy_names: set[str], aliases: dict[str, str]):
        self.lines = lines
        self.numpy_names = numpy_names
        self.aliases = aliases
        self.found: list[Finding] = []
        self.parents: dict[int, ast.AST] = {}
        self.call_funcs: set[int] = set()

    def run(self, tree: ast.AST) -> list[Finding]:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            if isinstance(node, ast.Call):
                self.call_funcs.add(id(node.func))
        self.visit(tree)
        return self.found

    # -- positions
    def _col(self, line: int, byte_col: int) -> int:
        return len(self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def _span(self, node) -> tuple[int, int, int] | None:
        """(line, start, end) in characters, for a node on one line."""
        if node.lineno != node.end_lineno:
            return None
        return (node.lineno, self._col(node.lineno, node.col_offset),
                self._col(node.lineno, node.end_col_offset))

    def _text(self, node) -> str:
        return ast.get_source_segment("\n".join(self.lines), node) or ""

    def _add(self, rule: str, node, new: str | None = None, *, fix=None, name="") -> None:
        """A finding at ``node``; ``new`` replaces ``node`` in its line (when on one line;
        else the rule's generic spelling is the fix)."""
        finding = Finding(rule, node.lineno, node.end_lineno, fix=fix, name=name)
        span = self._span(node)
        if new is not None and span is not None:
            finding.edits.append((span[1], span[2], new))
        self.found.append(finding)

    # -- helpers
    @staticmethod
    def _name(func) -> str | None:
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
        return None

    def _drop_keyword(self, kw: ast.keyword) -> tuple[int, int, str] | None:
        """An edit that removes ``kw`` and one comma beside it, when both are on one line."""
        span = self._span(kw)
        if span is None:
            return None
        line = self.lines[span[0] - 1]
        start, end = span[1], span[2]
        after = re.match(r"\s*,\s*", line[end:])
        if after:
            return start, end + after.end(), ""
        before = re.search(r",\s*$", line[:start])
        if before:
            return before.start(), end, ""
        return start, end, ""

    def _without_keyword(self, call: ast.Call, kw: ast.keyword, spec: str) -> str | None:
        """The statement holding ``call``, rewritten without ``kw`` and with
        ``keras.Input(spec)`` first: a statement before it, or an item before it in a list."""
        stmt: ast.AST | None = call
        while stmt is not None and not isinstance(stmt, ast.stmt):
            stmt = self.parents.get(id(stmt))
        drop = self._drop_keyword(kw)
        if stmt is None or drop is None or stmt.end_lineno is None or \
                stmt.end_lineno - stmt.lineno > 8:
            return None
        parent = self.parents.get(id(call))
        out = []
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) \
                and parent.func.attr == "add":
            first = self.lines[stmt.lineno - 1]
            indent = first[:len(first) - len(first.lstrip())]
            out.append(f"{indent}{self._text(parent.func.value)}.add(keras.Input({spec}))")
        for number in range(stmt.lineno, stmt.end_lineno + 1):
            text = self.lines[number - 1]
            if number == kw.lineno:
                text = _apply(text, [drop])
                if not text.strip():
                    continue
            if isinstance(parent, (ast.List, ast.Tuple)) and number == call.lineno \
                    and self._col(number, call.col_offset) == len(text) - len(text.lstrip()):
                out.append(f"{text[:len(text) - len(text.lstrip())]}keras.Input({spec}),")
            out.append(text)
        return textwrap.dedent("\n".join(out))

    def _string_swap(self, node: ast.Constant, table: dict[str, str], rule: str) -> None:
        value = node.value
        if not isinstance(value, str):  # the callers found it among the table's keys
            return
        text = self._text(node)
        self._add(rule, node, text.replace(value, table[value], 1), name=value)

    # -- visitors
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            m = _LEGACY.match(alias.name)
            if m:
                fix = f"from {m['keras']} import layers" + \
                    (f" as {alias.asname}" if alias.asname else "")
                self._add("legacy_import", node, fix=fix, name=alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        m = _LEGACY.match(node.module or "") if not node.level else None
        if m:
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "")
                              for a in node.names)
            self._add("legacy_import", node, fix=f"from {m['keras']}.layers import {names}",
                      name=node.module)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.numpy_names \
                and node.attr in self.aliases:
            self._add("numpy_alias", node, self.aliases[node.attr], name=node.attr)
        elif node.attr in ("predict_classes", "predict_proba") and id(node) not in \
                self.call_funcs:
            self._add(node.attr, node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = node.slice
        if isinstance(key, ast.Constant) and key.value in _ACC_KEYS:
            self._string_swap(key, _ACC_KEYS, "history_keys")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._name(node.func)
        kws = {kw.arg: kw for kw in node.keywords if kw.arg}
        if name in ("predict_classes", "predict_proba") and isinstance(node.func, ast.Attribute):
            receiver = self._text(node.func.value)
            args = self._text(node)[len(self._text(node.func)):]
            new = f"({receiver}.predict{args} > 0.5).astype(\"int32\")" \
                if name == "predict_classes" else f"{receiver}.predict{args}"
            self._add(name, node, new)
        if name == "Embedding" and "input_length" in kws:
            kw = kws["input_length"]
            self.found.append(Finding(
                "embedding_input_length", kw.lineno, kw.end_lineno or kw.lineno,
                fix=self._without_keyword(node, kw, f"shape=({self._text(kw.value)},)")))
        for key in ("input_shape", "batch_input_shape"):
            if key in kws and name not in _INPUT_LAYERS and name != "Embedding":
                kw = kws[key]
                self.found.append(Finding(
                    "input_shape", kw.lineno, kw.end_lineno or kw.lineno, name=key,
                    fix=self._without_keyword(node, kw, f"{'batch_' * (key != 'input_shape')}"
                                                        f"shape={self._text(kw.value)}")))
        if name in _OPTIMIZERS and "lr" in kws:
            kw = kws["lr"]
            col = self._col(kw.lineno, kw.col_offset)
            self.found.append(Finding("optimizer_lr", kw.lineno, kw.lineno,
                                       edits=[(col, col + 2, "learning_rate")]))
        if name == "Adadelta" and not node.args and not {"lr", "learning_rate"} & set(kws) \
                and not node.keywords:
            self._add("adadelta", node, f"{self._text(node.func)}(learning_rate=1.0)")
        optimizer = kws["optimizer"].value if "optimizer" in kws else (
            node.args[0] if name == "compile" and node.args else None)
        if isinstance(optimizer, ast.Constant) and isinstance(optimizer.value, str) \
                and optimizer.value.lower() == "adadelta":
            self._add("adadelta", optimizer, "keras.optimizers.Adadelta(learning_rate=1.0)")
        if "metrics" in kws:
            value = kws["metrics"].value
            items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
            for item in items:
                if isinstance(item, ast.Constant) and item.value == "acc":
                    self._string_swap(item, _ACC_KEYS, "metrics_acc")
        if "monitor" in kws:
            value = kws["monitor"].value
            if isinstance(value, ast.Constant) and value.value in _ACC_KEYS:
                self._string_swap(value, _ACC_KEYS, "history_keys")
        if name in ("get", "pop") and node.args and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value in _ACC_KEYS:
            self._string_swap(node.args[0], _ACC_KEYS, "history_keys")
        self.generic_visit(node)


#: the fallback for a cell that does not parse even without its print statements:
#: (rule, pattern, how the match is rewritten in the Keras 3 spelling, or None)
_LINE_RULES = (
    ("predict_classes", re.compile(r"\.predict_classes\s*\("), None),
    ("predict_proba", re.compile(r"\.predict_proba\s*\("), lambda m: ".predict("),
    ("history_keys", re.compile(r"\[\s*(['\"])(val_)?acc\1\s*\]"),
     lambda m: f"[{m[1]}{m[2] or ''}accuracy{m[1]}]"),
    ("legacy_import", re.compile(rf"^\s*from\s+{_LAYER_MODULE}\s+import\b"),
     lambda m: m[0].replace(m["name"], f"{m['keras']}.layers")),
    ("legacy_import", re.compile(rf"^\s*import\s+{_LAYER_MODULE}"), None),
    ("embedding_input_length", re.compile(r"\bEmbedding\s*\(.*\binput_length\s*="), None),
    ("optimizer_lr", re.compile(rf"(\b(?:{'|'.join(_OPTIMIZERS)})\s*\(.*)\blr(\s*=)"),
     lambda m: f"{m[1]}learning_rate{m[2]}"),
    ("adadelta", re.compile(r"\boptimizer\s*=\s*(['\"])adadelta\1", re.I),
     lambda m: "optimizer=keras.optimizers.Adadelta(learning_rate=1.0)"),
)


def _scan_lines(lines: list[str], numpy_names: set[str],
                aliases: dict[str, str]) -> list[Finding]:
    found = []
    numpy_attr = re.compile(rf"\b(?:{'|'.join(map(re.escape, numpy_names))})\.("
                            rf"{'|'.join(aliases)})\b") if aliases else None
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#"):
            continue
        for rule, pattern, rewrite in _LINE_RULES:
            m = pattern.search(line)
            if m:
                found.append(Finding(rule, number, number, name=m.groupdict().get("name", ""),
                                      fix=pattern.sub(rewrite, line).strip() if rewrite
                                      else None))
        for m in numpy_attr.finditer(line) if numpy_attr else ():
            found.append(Finding("numpy_alias", number, number,
                                  edits=[(m.start(), m.end(), aliases[m.group(1)])],
                                  name=m.group(1)))
    return found


def _numpy_names(sources) -> set[str]:
    names = {"np", "numpy"}
    for source in sources:
        names.update(re.findall(r"^\s*import\s+numpy\s+as\s+(\w+)", source, re.M))
    return names


def _parse(text: str) -> ast.Module:
    with warnings.catch_warnings():
        # a student's "\d" in a plain string warns; where warnings are errors, it would not parse
        warnings.simplefilter("ignore")
        return ast.parse(text)


def scan_source(source: str, numpy_names: set[str] | None = None) -> list[Finding]:
    """Every rule's findings in one cell (or module), in order of lines."""
    lines = _mask_magics(source.splitlines())
    names = numpy_names or _numpy_names([source])
    aliases = _removed_numpy_aliases()
    found: list[Finding] = []
    try:
        tree = _parse("\n".join(lines))
    except SyntaxError:
        prints = _print_statements(lines)
        found += prints
        try:
            tree = _parse("\n".join(_blank(lines, prints)))
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            tree = None
    except (RecursionError, MemoryError, ValueError):  # nested too deeply to parse; NUL bytes
        tree = None
    scanned = None
    if tree is not None:
        try:
            scanned = _Scanner(lines, names, aliases).run(tree)
        except RecursionError:  # an expression nested deeper than the visitor can follow
            scanned = None
    found += scanned if scanned is not None else _scan_lines(lines, names, aliases)
    merged: dict[tuple[str, int], Finding] = {}
    for f in found:  # one finding per rule and line
        if (f.rule, f.line) in merged:
            merged[(f.rule, f.line)].merge(f)
        else:
            merged[(f.rule, f.line)] = f
    return sorted(merged.values(), key=lambda f: (f.line, f.rule))

def _apply(line: str, edits) -> str:
    for start, end, text in sorted(edits, reverse=True):
        line = line[:start] + text + line[end:]
    return line
