"""Keras 2 -> Keras 3 migration hints: the lines of a submission written the exercise's 2018 way.

The exercise was written for Keras 2.1 and Python 2; students copy its code into Keras 3 and
meet errors that say little. Each hint names the cell and line, quotes it and gives the Keras 3
spelling. Hints are advice and cost no points; a hint whose line raised one of the run's
recorded errors says so. Sources are read with ``ast`` (and ``tokenize`` for Python 2 print
statements, which do not parse); a cell that still does not parse is read line by line.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from .results import CellError, MigrationHint
from .submission import cell_numbers

__all__ = ["find_hints", "scan_source", "RULES", "LEGACY_MODULES"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_CODE = 200

#: Keras 2 modules that Keras 3 folded into ``keras.layers``
LEGACY_MODULES = ("convolutional", "convolutional_recurrent", "embeddings", "normalization",
                  "recurrent", "core", "pooling", "merge", "wrappers", "advanced_activations",
                  "noise", "local", "cudnn_recurrent")
_LAYER_MODULE = (rf"(?P<name>(?P<keras>(?:tensorflow\.)?keras)\.layers\."
                 rf"(?:{'|'.join(LEGACY_MODULES)})\b[\w.]*)")
_LEGACY = re.compile(rf"^{_LAYER_MODULE}$")
#: NumPy's aliases of Python types, removed in 1.24 (the ones a NumPy may have brought back,
#: like ``np.bool`` in 2.0, are not flagged: see ``_removed_numpy_aliases``)
_NUMPY_ALIASES = {"float": "float", "int": "int", "bool": "bool", "object": "object",
                  "str": "str", "complex": "complex", "long": "int", "unicode": "str"}
_OPTIMIZERS = {"SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam", "AdamW",
               "Ftrl", "Lion", "Adafactor"}
_ACC_KEYS = {"acc": "accuracy", "val_acc": "val_accuracy"}
_INPUT_LAYERS = {"Input", "InputLayer"}
_PREDICT_CLASSES = '(model.predict(X) > 0.5).astype("int32")'


@dataclass(frozen=True)
class Rule:
    id: str
    message: str  # what changed, for a student; ``{name}`` is the offending name
    fix: str  # the Keras 3 spelling, when the line itself cannot be rewritten
    error: tuple[str, str] | None = None  # (exception name, regex of its message) it raises


RULES = {r.id: r for r in (
    Rule("predict_classes", "Keras models have no predict_classes any more (removed in "
         "TensorFlow 2.6): threshold the probabilities that predict returns.", _PREDICT_CLASSES,
         ("AttributeError", r"has no attribute 'predict_classes'")),
    Rule("predict_proba", "Keras models have no predict_proba any more: predict returns the "
         "probabilities.", "model.predict(X)",
         ("AttributeError", r"has no attribute 'predict_proba'")),
    Rule("history_keys", "Keras 3 records the accuracy as 'accuracy' and 'val_accuracy' "
         "(Keras 2.1 said 'acc' and 'val_acc').", "history.history['accuracy']",
         ("KeyError", r"^'(val_)?acc'$")),
    Rule("metrics_acc", "With metrics=['acc'] Keras 3 records the history as 'acc', not the "
         "'accuracy' that the exercise's plots and the grader read.", "metrics=['accuracy']"),
    Rule("numpy_alias", "np.{name} was removed in NumPy 1.24: it was only another name for "
         "Python's {builtin}.", "float",
         ("AttributeError", r"module 'numpy' has no attribute '(?P<name>\w+)'")),
    Rule("legacy_import", "Keras 3 has no module {name}: every layer is in keras.layers.",
         "from keras import layers", ("ModuleNotFoundError", rf"No module named '{_LAYER_MODULE}'")),
    Rule("embedding_input_length", "Keras 3 ignores Embedding's input_length (with a warning), "
         "so the model is not built until it sees data and summary() shows no shapes or "
         "parameters: start the model with keras.Input(shape=(500,)) instead.",
         "model.add(keras.Input(shape=(max_review_length,)))\n"
         "model.add(Embedding(top_words, embedding_vecor_length))"),
    Rule("input_shape", "Keras 3 takes the input shape from a keras.Input first layer; "
         "{name}= on a layer still works, with a warning.",
         "model.add(keras.Input(shape=(None, 40, 40, 1)))"),
    Rule("optimizer_lr", "Keras 3 optimizers take learning_rate=; lr= is refused with a "
         "ValueError.", "keras.optimizers.Adam(learning_rate=0.001)",
         ("ValueError", r"Argument\(s\) not recognized: \{'lr'")),
    Rule("adadelta", "Adadelta's default learning rate is now 0.001 (Keras 2.1 used 1.0): with "
         "optimizer='adadelta' the ConvLSTM barely trains.",
         "optimizer=keras.optimizers.Adadelta(learning_rate=1.0)"),
    Rule("print_statement", "This is a Python 2 print statement: in Python 3 print is a "
         "function, and a cell with a print statement does not run at all (SyntaxError).",
         "print(...)", ("SyntaxError", r"Missing parentheses in call to 'print'")),
)}


@dataclass
class _Finding:
    """One rule matched in one place of a source (lines are 1-based, edits are per character)."""

    rule: str
    line: int
    end_line: int
    edits: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, text) on line
    fix: str | None = None  # the whole Keras 3 statement, when editing the line is not enough
    name: str = ""  # the offending name, for the message

    def merge(self, other: "_Finding") -> None:
        self.end_line = max(self.end_line, other.end_line)
        self.edits += [e for e in other.edits if e not in self.edits]
        self.fix = self.fix or other.fix


def _removed_numpy_aliases() -> dict[str, str]:
    # vars(), not hasattr(): NumPy's module __getattr__ warns about the names it removed
    present = vars(numpy)
    return {k: v for k, v in _NUMPY_ALIASES.items() if k not in present}


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


def _print_statements(lines: list[str]) -> list[_Finding]:
    """Python 2 print statements, found by their tokens (by a regex where tokenizing fails)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        found = []
        for number, line in enumerate(lines, 1):
            m = _PRINT_LINE.match(line)
            if m and m.group(2).strip():
                found.append(_Finding("print_statement", number, number,
                                      fix=_print_fix(m.group(2))))
        return found
    found: list[_Finding] = []
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
        found.append(_Finding("print_statement", tok.start[0], last.end[0],
                              fix=_print_fix(args)))
    return found


def _text_between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (r1, c1), (r2, c2) = start, end
    if r1 == r2:
        return lines[r1 - 1][c1:c2]
    return "\n".join([lines[r1 - 1][c1:], *lines[r1:r2 - 1], lines[r2 - 1][:c2]])


def _blank(lines: list[str], findings: list[_Finding]) -> list[_Finding]:
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
        self.found: list[_Finding] = []
        self.parents: dict[int, ast.AST] = {}
        self.call_funcs: set[int] = set()

    def run(self, tree: ast.AST) -> list[_Finding]:
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
        finding = _Finding(rule, node.lineno, node.end_lineno, fix=fix, name=name)
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
        stmt = call
        while stmt is not None and not isinstance(stmt, ast.stmt):
            stmt = self.parents.get(id(stmt))
        drop = self._drop_keyword(kw)
        if stmt is None or drop is None or stmt.end_lineno - stmt.lineno > 8:
            return None
        parent = self.parents.get(id(call))
        out = []
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) \
                and parent.func.attr == "add":
            indent = re.match(r"\s*", self.lines[stmt.lineno - 1]).group()
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
        text = self._text(node)
        self._add(rule, node, text.replace(node.value, table[node.value], 1), name=node.value)

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
            self.found.append(_Finding(
                "embedding_input_length", kw.lineno, kw.end_lineno,
                fix=self._without_keyword(node, kw, f"shape=({self._text(kw.value)},)")))
        for key in ("input_shape", "batch_input_shape"):
            if key in kws and name not in _INPUT_LAYERS and name != "Embedding":
                kw = kws[key]
                self.found.append(_Finding(
                    "input_shape", kw.lineno, kw.end_lineno, name=key,
                    fix=self._without_keyword(node, kw, f"{'batch_' * (key != 'input_shape')}"
                                                        f"shape={self._text(kw.value)}")))
        if name in _OPTIMIZERS and "lr" in kws:
            kw = kws["lr"]
            col = self._col(kw.lineno, kw.col_offset)
            self.found.append(_Finding("optimizer_lr", kw.lineno, kw.lineno,
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
                aliases: dict[str, str]) -> list[_Finding]:
    found = []
    numpy_attr = re.compile(rf"\b(?:{'|'.join(map(re.escape, numpy_names))})\.("
                            rf"{'|'.join(aliases)})\b") if aliases else None
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#"):
            continue
        for rule, pattern, rewrite in _LINE_RULES:
            m = pattern.search(line)
            if m:
                found.append(_Finding(rule, number, number, name=m.groupdict().get("name", ""),
                                      fix=pattern.sub(rewrite, line).strip() if rewrite
                                      else None))
        for m in numpy_attr.finditer(line) if numpy_attr else ():
            found.append(_Finding("numpy_alias", number, number,
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


def scan_source(source: str, numpy_names: set[str] | None = None) -> list[_Finding]:
    """Every rule's findings in one cell (or module), in order of lines."""
    lines = _mask_magics(source.splitlines())
    names = numpy_names or _numpy_names([source])
    aliases = _removed_numpy_aliases()
    found: list[_Finding] = []
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
    merged: dict[tuple[str, int], _Finding] = {}
    for f in found:  # one finding per rule and line
        if (f.rule, f.line) in merged:
            merged[(f.rule, f.line)].merge(f)
        else:
            merged[(f.rule, f.line)] = f
    return sorted(merged.values(), key=lambda f: (f.line, f.rule))


# --------------------------------------------------------------------------- errors


_FRAME = re.compile(r"^\s*(?:Cell In\[(\d+)\], line (\d+)|File [^\n]*?\bsubmission\.py:(\d+))",
                    re.M)


def _classify(err: CellError) -> tuple[str, str] | None:
    """The rule whose Keras 2 spelling raises this error, and the name it names."""
    for rule in RULES.values():
        if rule.error and err.ename == rule.error[0]:
            m = re.search(rule.error[1], err.evalue)
            if m:
                return rule.id, (m.groupdict().get("name") or "")
    return None


def _full_traceback(notebook, err: CellError, places: dict[int, int]) -> str:
    """The whole traceback from the executed notebook (the recorded error keeps only a tail);
    ``places`` leads from a cell's number to its place in ``notebook``."""
    if err.cell in places:
        for output in notebook.cells[places[err.cell]].get("outputs", []):
            if output.get("output_type") == "error":
                return _ANSI.sub("", "\n".join(output.get("traceback", [])))
    return err.traceback


def _error_frame(traceback: str, counts: dict[int, int]) -> tuple[int | None, int] | None:
    """The innermost frame in the submission: (cell, line), or (None, line) in a module."""
    frames = _FRAME.findall(traceback)
    for count, line, module_line in reversed(frames):
        if module_line:
            return None, int(module_line)
        if int(count) in counts:
            return counts[int(count)], int(line)
    return None


# --------------------------------------------------------------------------- the hints


def _error_text(err: CellError) -> str:
    first = (err.evalue.splitlines() or [""])[0]
    first = re.sub(r"\s*\([^()]*\.py, line \d+\)$", "", first)  # IPython's name for the cell
    return f"{err.ename}: {first}"[:300]


def _apply(line: str, edits) -> str:
    for start, end, text in sorted(edits, reverse=True):
        line = line[:start] + text + line[end:]
    return line


def _fix(finding: _Finding, lines: list[str]) -> str:
    if finding.fix:
        fix = finding.fix
    elif finding.edits:
        fix = _apply(lines[finding.line - 1], finding.edits).strip() or \
            "(remove this line)"
    else:
        fix = RULES[finding.rule].fix
    return fix


def _message(rule: str, name: str) -> str:
    template = RULES[rule].message
    if rule == "numpy_alias":
        return template.format(name=name or "float", builtin=_NUMPY_ALIASES.get(name, name))
    if "{name}" in template:
        default = {"input_shape": "input_shape"}.get(rule, "keras.layers.convolutional")
        return template.format(name=name or default)
    return template


def _quote(lines: list[str], line: int | None) -> str:
    if line is None or not 0 < line <= len(lines):
        return ""
    text = lines[line - 1].strip()
    return text if len(text) <= _MAX_CODE else text[:_MAX_CODE - 3] + "..."


def find_hints(notebook, errors=(), owners=(), *, module: Path | None = None
               ) -> list[MigrationHint]:
    """Hints for an executed notebook: from its code cells, and from its recorded errors.

    ``notebook`` is the notebook as the kernel ran it, so execution counts lead from a
    traceback to its cell; cells are numbered as in the student's notebook (``cell_numbers``,
    like ``CellError.cell``), and the grader's own cells (injected parameters, harvest) are
    skipped. ``owners[i]`` is the task of the cell at place ``i`` of ``notebook``. ``module``
    is a ``.py`` submission, whose lines are read as well (cell ``None``).
    """
    numbers = cell_numbers(notebook)
    places = {number: i for i, number in enumerate(numbers) if number is not None}
    units: dict[int | None, list[str]] = {}
    for number, index in places.items():
        if notebook.cells[index].cell_type == "code":
            units[number] = notebook.cells[index].source.splitlines()
    if module is not None:
        units[None] = Path(module).read_text(encoding="utf-8", errors="replace").splitlines()
    names = _numpy_names("\n".join(lines) for lines in units.values())
    findings = {unit: scan_source("\n".join(lines), names) for unit, lines in units.items()}
    counts = {notebook.cells[i].get("execution_count"): number for number, i in places.items()
              if notebook.cells[i].cell_type == "code" and notebook.cells[i].get("execution_count")}

    caused: dict[int, list[CellError]] = {}  # id of a finding -> the errors it raised
    for err in errors:
        kind = _classify(err)
        if kind is None:
            continue
        rule, name = kind
        frame = _error_frame(_full_traceback(notebook, err, places), counts)
        unit, line = frame if frame else (err.cell, None)
        candidates = [f for f in findings.get(unit, []) if f.rule == rule and
                      (line is None or f.line <= line <= f.end_line)]
        if line is None and len(candidates) != 1:
            # no frame to tell which line raised it: only a name-matched, unique one will do
            candidates = [f for f in (x for fs in findings.values() for x in fs)
                          if f.rule == rule and name and f.name == name][:1]
        if not candidates and unit in units:
            # a Keras 2 spelling the scan did not see (built at run time): the error shows it
            f = _Finding(rule, line or 0, line or 0, name=name)
            findings[unit].append(f)
            candidates = [f]
        for f in candidates[:1]:
            caused.setdefault(id(f), []).append(err)

    hints = []
    for unit, found in findings.items():
        lines = units[unit]
        for f in found:
            errs = caused.get(id(f), [])
            place = places.get(unit) if unit is not None else None
            task = owners[place] if place is not None and place < len(owners) else None
            hints.append(MigrationHint(
                rule=f.rule, cell=unit, line=f.line or None, task=task,
                code=_quote(lines, f.line or None), message=_message(f.rule, f.name),
                fix=_fix(f, lines) if f.line else RULES[f.rule].fix,
                error=_error_text(errs[0]) if errs else None,
                error_cells=tuple(sorted({e.cell for e in errs}))))
    return sorted(hints, key=lambda h: (h.cell is not None, h.cell or 0, h.line or 0, h.rule))
