"""What a batch shows while it runs: done, running and failed submissions, the time elapsed and
an estimate of what is left; a rich progress bar on a terminal, else one line per submission."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from .stored import Row

__all__ = ["Progress"]


class Progress:
    """Done / running / failed, elapsed and an estimate: a rich bar on a terminal, else lines."""

    def __init__(self, stream: TextIO | None, total: int):
        self.stream, self.total, self.done, self.failed, self.running = stream, total, 0, 0, 0
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.bar = None
        self.slots = 0  # on Dask: the cluster's task slots (what runs is not reported)
        if stream is not None and stream.isatty() and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("{task.fields[counts]}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("left"),
                                TimeRemainingColumn(),
                                console=Console(file=stream, highlight=False))
            self.task = self.bar.add_task("grading", total=total, counts=self._counts())
            self.bar.start()

    def _counts(self) -> str:
        running = min(self.slots, self.total - self.done) if self.slots else self.running
        return f"done {self.done}, running {running}, failed {self.failed}"

    def say(self, text: str) -> None:
        if self.bar is not None:
            from rich.markup import escape

            self.bar.console.print(escape(text))
        elif self.stream is not None:
            print(text, file=self.stream, flush=True)

    def started_one(self) -> None:
        with self.lock:
            self.running += 1
            if self.bar is not None:
                self.bar.update(self.task, counts=self._counts())

    def finished(self, row: Row) -> None:
        with self.lock:
            self.done += 1
            self.failed += row.status != "graded"
            self.running = max(0, self.running - 1)
            score = "" if row.total is None else f" {row.total:g} points,"
            who = row.student + (f" ({row.name})" if row.name else "")
            line = f"{who}: {row.status},{score} {row.seconds:.0f} s" + \
                (f": {row.reason}" if row.reason and row.status != "graded" else "")
            if self.bar is not None:
                self.bar.update(self.task, advance=1, counts=self._counts())
                self.say(line)
                return
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * (self.total - self.done)
            self.say(f"[{self.done}/{self.total}] {line} | {self._counts()} | elapsed "
                     f"{_clock(elapsed)}, about {_clock(left)} left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
