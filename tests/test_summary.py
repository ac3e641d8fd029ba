"""The terminal summary: the same lines with colour on a terminal and without when piped."""

from __future__ import annotations

import io
import re

from grader import cli, pipeline
from grader.report import summary_lines, use_colour
from grader.results import CheckResult, MigrationHint, SubmissionResult, TaskResult

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _result(hints: int = 1) -> SubmissionResult:
    task1 = TaskResult("task1", "Task 1: LSTM with Dropout layers", (
        CheckResult("task1", "builder", "builder", "Task 1: builder function", 0.0, 2.0,
                    "failed", "no", cause="builder_placeholder",
                    todo="Write build_lstm_model(): it still raises NotImplementedError."),
        CheckResult("task1", "layers", "layers", "Task 1: layers", 0.0, 6.0, "failed", "no",
                    cause="builder_placeholder", todo="Write build_lstm_model(): ..."),
        CheckResult("task1", "history", "history", "Task 1: training history", 0.0, 0.0,
                    "failed", "no", cause="no_trained_model", todo="Train lstm_model."),
        CheckResult("task1", "compare", "manual", "Task 1: written answer", 0.0, 2.0, "pending",
                    "to be marked"),
    ))
    rnn = TaskResult("rnn", "SimpleRNN (worked example)", (
        CheckResult("rnn", "params", "param_count", "SimpleRNN: parameter count", 1.0, 1.0,
                    "passed", "yes"),))
    hint = MigrationHint(rule="history_keys", cell=12, line=12, task="rnn",
                         code="plt.plot(h.history['acc'])", message="renamed",
                         fix="plt.plot(h.history['accuracy'])", error="KeyError: 'acc'",
                         error_cells=(13,), code_cell=7,
                         first_line="def plot_history(network_history):")
    return SubmissionResult(submission="/x/ex8.ipynb", profile="structure", status="graded",
                            tasks=(rnn, task1), hints=(hint,) * hints)


def test_plain_summary_names_tasks_hints_and_total():
    assert summary_lines(_result(hints=10), max_hints=2) == [
        "SimpleRNN (worked example)                           1 / 1   ",
        "Task 1: LSTM with Dropout layers                     0 / 8    (2 to be marked by a TA)",
        # the first thing to do, as the page's summary says it; the cause is said once
        "  first (8 points: builder function, layers): Write build_lstm_model(): it still "
        "raises NotImplementedError. Then 1 more: see feedback.html.",
        "Keras 3 migration hints: 10 (10 of them raised an error; the others are advice, worth "
        "no points)",
        "  code cell 7 (“def plot_history(network_history):”), line 12: "
        "plt.plot(h.history['acc'])  ->  plt.plot(h.history['accuracy'])  (KeyError)",
        "  code cell 7 (“def plot_history(network_history):”), line 12: "
        "plt.plot(h.history['acc'])  ->  plt.plot(h.history['accuracy'])  (KeyError)",
        "  ... and 8 more in feedback.html",
        "ex8.ipynb: 1 / 9 points (structure profile); 2 points to be marked by a TA",
    ]


def test_colour_changes_nothing_but_the_colour():
    plain, coloured = summary_lines(_result()), summary_lines(_result(), colour=True)
    assert [ANSI.sub("", line) for line in coloured] == plain
    assert "\x1b[32m    1 / 1   \x1b[0m" in coloured[0]  # full marks: green
    assert "\x1b[31m    0 / 8   \x1b[0m" in coloured[1]  # points lost: red
    assert coloured[2].startswith("\x1b[31m  first (8 points")  # what to do first: red
    assert coloured[-1].startswith("\x1b[1;31mex8.ipynb: 1 / 9 points")
    assert coloured[-1].endswith("\x1b[33m; 2 points to be marked by a TA\x1b[0m")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(_Terminal()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Terminal())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not use_colour(_Terminal())


def test_grade_piped_prints_plain_text(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(pipeline, "grade_submission", lambda path, **kw: _result())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex8.ipynb").write_text("{}")  # a path that does not exist never gets this far
    assert cli.main(["ex8.ipynb"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == summary_lines(_result()) + ["feedback: ex8_graded/feedback.html"]
    assert "\x1b" not in out


def test_a_notebook_that_stopped_is_said_once_on_the_terminal():
    """Every task fails for one reason, the kernel's: the last line says it, each task points
    there instead of repeating it."""
    stopped = "Make the notebook run to its end: the kernel died in code cell 4 (“import os”)."
    checks = tuple(CheckResult("task1", c, c, f"Task 1: {c}", 0.0, 2.0, "failed", "no",
                               cause="notebook_stopped", todo=stopped)
                   for c in ("builder", "layers", "params", "output_shape"))
    result = SubmissionResult(submission="/x/ex8.ipynb", profile="structure", status="graded",
                              tasks=(TaskResult("task1", "Task 1: LSTM", checks),),
                              kernel="The kernel died in code cell 4 (“import os”).")
    lines = summary_lines(result)
    assert lines[1] == "  first (8 points, 4 checks): Make the notebook run to its end (see " \
                       "the last line)."
    assert sum("the kernel died" in line.lower() for line in lines) == 1
