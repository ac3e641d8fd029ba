"""``grade mark DIR``: a page on 127.0.0.1 where a TA marks the written answers, one question at
a time, every student's answer under the prompt and the reference answer; each points field and
comment is saved into the marks file as it is typed.

The page is a Flask app served by Werkzeug on the loopback address only. Every request must
carry the random token printed with the URL (as Jupyter's ``?token=``; a write only in the
``X-Ex8-Token`` header, which another site's page cannot set), and a Host header naming
127.0.0.1 or localhost (a page of another site that rebinds its DNS name to 127.0.0.1 is
refused). Student text is untrusted: the templates escape everything, and the page runs under a
Content-Security-Policy that allows only its own inline script (by nonce) and requests to itself.
"""

from __future__ import annotations

import getpass
import secrets
import threading
import webbrowser
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from flask import Flask, Response, jsonify, request
from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .folder import MarkingFolder, Question
from .marks import (COMMENT_CHARS, Key, Mark, MarksError, answer_digest, parse_points,
                    points_text, read_marks, write_marks)

__all__ = ["create_app", "start", "serve", "Running", "TOKEN_HEADER", "ALLOWED_HOSTS"]

TOKEN_HEADER = "X-Ex8-Token"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
_REQUEST_BYTES = 64 << 10  # one mark: an id, a number and a comment of at most 10,000 characters


def _csp(nonce: str) -> str:
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; connect-src 'self'; "
            "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("grader.marking", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pts"] = points_text
    return env


def _hostname(host: str) -> str:
    """The name in a Host header (``127.0.0.1:8765`` -> ``127.0.0.1``); an IPv6 literal or
    anything odd stays whole, and is then not an allowed name."""
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def _same(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"),
                                                        token.encode())


def create_app(folder: MarkingFolder, token: str, marked_by: str = "") -> Flask:
    """The marking app of ``folder``; every request needs ``token``."""
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = _REQUEST_BYTES
    site = _Site(folder, token, marked_by)
    app.before_request(site.guard)
    app.after_request(_headers)
    app.add_url_rule("/", "first", site.first, methods=["GET"])
    app.add_url_rule("/q/<task>/<check>", "question", site.question, methods=["GET"])
    app.add_url_rule("/api/marks", "save", site.save, methods=["PUT"])
    return app


def _refuse(status: int, why: str) -> Response:
    if request.path.startswith("/api/"):
        return Response(_json_error(why), status, mimetype="application/json")
    return Response(why + "\n", status, mimetype="text/plain")


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _csp(secrets.token_urlsafe(8)))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


class _Refused(Exception):
    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status, self.why = status, why


class _Site:
    """The app's views over one marking folder."""

    def __init__(self, folder: MarkingFolder, token: str, marked_by: str):
        self.folder, self.token, self.marked_by = folder, token, marked_by
        self.env = _env()
        self.lock = threading.Lock()  # one save at a time: each rewrites the whole file

    def guard(self) -> Response | None:
        if _hostname(request.host) not in ALLOWED_HOSTS:
            return _refuse(403, f"Refused: the Host header {request.host!r} is not 127.0.0.1 "
                                "or localhost.")
        # a read may carry the token in the URL (the page's own address); a write only in
        # the header, which a form or a page of another site cannot send
        given = request.headers.get(TOKEN_HEADER)
        if request.method in ("GET", "HEAD") and given is None:
            given = request.args.get("token")
        if not _same(given, self.token):
            return _refuse(403, "Refused: this page needs the token in the address that "
                                "`grade mark` printed.")
        return None

    def first(self) -> Response:
        return self.page(self.folder.questions[0])

    def question(self, task: str, check: str) -> Response:
        q = self.folder.question(task, check)
        if q is None:
            return _refuse(404, f"There is no written answer {task}/{check} to mark.")
        return self.page(q)

    def _marks(self) -> dict[Key, Mark]:
        folder = self.folder
        return read_marks(folder.marks_file, folder.items, [s.student for s in folder.students])

    def page(self, q: Question) -> Response:
        folder = self.folder
        nonce = secrets.token_urlsafe(16)
        problem: str | None = None
        marks: dict[Key, Mark] = {}
        try:
            marks = self._marks()
        except MarksError as err:
            problem = str(err)
        answers = folder.answers(q)
        rows: list[dict[str, Any]] = []  # the template's: each student's answer and mark
        absent = []
        for s in folder.students:
            answer = answers[s.student]
            if answer is None:
                absent.append(s)
                continue
            mark = marks.get((s.student, q.task, q.check))
            rows.append({"student": s, "answer": answer, "mark": mark,
                         "stale": mark is not None and mark.points is not None and
                         not mark.applies_to(answer)})
        counts = {other.key: sum(1 for (_, t, c), m in marks.items()
                                 if (t, c) == other.key and m.points is not None)
                  for other in folder.questions}
        html = self.env.get_template("mark.html.j2").render(
            q=q, questions=folder.questions, rows=rows, absent=absent, problem=problem,
            token=self.token, nonce=nonce, counts=counts, folder=folder,
            done=sum(1 for r in rows if r["mark"] is not None and r["mark"].points is not None),
            header=TOKEN_HEADER, marks_file=folder.marks_file)
        response = Response(html, 200, mimetype="text/html")
        response.headers["Content-Security-Policy"] = _csp(nonce)
        return response

    def save(self) -> Response:
        try:
            student, q, answer, points, comment = self._mark_request()
        except _Refused as refused:
            return _refuse(refused.status, refused.why)
        key = (student, q.task, q.check)
        with self.lock:
            try:
                marks = self._marks()
            except MarksError as err:  # edited by hand meanwhile: not overwritten
                return _refuse(409, str(err))
            if points is None and not comment.strip():
                marks.pop(key, None)
                saved = None
            else:
                saved = Mark(*key, points, comment, self.marked_by,
                             datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             answer_digest(answer))
                marks[key] = saved
            write_marks(self.folder.marks_file, marks.values())
        return jsonify({"student": student, "task": q.task, "check": q.check,
                        "points": points_text(points), "comment": comment,
                        "marked_at": saved.marked_at if saved else ""})

    def _mark_request(self) -> tuple[str, Question, str, float | None, str]:
        """The mark a PUT carries, checked: ``(student, question, answer, points, comment)``;
        raises ``_Refused`` with the sentence to answer."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise _Refused(400, "The request is not a JSON object.")
        fields = {k: data.get(k, "") for k in ("student", "task", "check", "points", "comment")}
        if isinstance(fields["points"], (int, float)) and not isinstance(fields["points"], bool):
            fields["points"] = f"{fields['points']}"
        if fields["points"] is None:
            fields["points"] = ""
        if not all(isinstance(v, str) for v in fields.values()):
            raise _Refused(400, "The student, task, check, points and comment must be text.")
        q = self.folder.question(fields["task"], fields["check"])
        if q is None:
            raise _Refused(400, f"There is no written answer {fields['task']}/"
                                f"{fields['check']} to mark.")
        student = next((s for s in self.folder.students if s.student == fields["student"]),
                       None)
        answer = self.folder.answer(student, q) if student is not None else None
        if student is None or answer is None:
            raise _Refused(400, f"There is no answer of student {fields['student']!r} to "
                                f"{q.slug} to mark.")
        try:
            points = parse_points(fields["points"], q.points)
        except ValueError as exc:
            raise _Refused(400, f"The points {fields['points']!r} {exc}.") from None
        comment = fields["comment"]
        if len(comment) > COMMENT_CHARS:
            raise _Refused(400, f"The comment is longer than {COMMENT_CHARS:,} characters.")
        return student.student, q, answer, points, comment


def _json_error(why: str) -> str:
    import json

    return json.dumps({"error": why})


class _QuietHandler(WSGIRequestHandler):
    """No line per request on the terminal: the page's address holds the token."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@dataclass
class Running:
    """A marking server running in a thread of its own (``start``)."""

    server: BaseWSGIServer
    thread: threading.Thread
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/?token={self.token}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def start(folder: MarkingFolder, *, port: int = 0, marked_by: str | None = None) -> Running:
    """Serve ``folder``'s marking page on 127.0.0.1 (``port`` 0: a free one) in a thread."""
    token = secrets.token_urlsafe(32)
    if marked_by is None:
        try:
            marked_by = getpass.getuser()
        except (KeyError, OSError):
            marked_by = ""
    app = create_app(folder, token, marked_by)
    try:
        server = make_server("127.0.0.1", port, app, threaded=True,
                             request_handler=_QuietHandler)
    except OSError as exc:
        from ..errors import InputError

        raise InputError(f"The marking page cannot listen on 127.0.0.1 port {port} "
                         f"({exc.strerror or exc}); choose another with --port.") from exc
    thread = threading.Thread(target=server.serve_forever, name="ex8-marking", daemon=True)
    thread.start()
    return Running(server, thread, token)


def serve(folder: MarkingFolder, *, port: int = 0, open_browser: bool = True,
          marked_by: str | None = None, out: TextIO | None = None,
          stop: threading.Event | None = None) -> None:
    """``grade mark``: start, print the address, open the browser, serve until Ctrl+C (or
    until ``stop`` is set)."""
    import sys

    out = out or sys.stdout
    running = start(folder, port=port, marked_by=marked_by)
    what = f"{len(folder.questions)} written answers of {len(folder.students)} " \
           f"student{'s' if len(folder.students) != 1 else ''}"
    print(f"Marking {what}: {running.url}", file=out)
    print(f"Marks are saved in {folder.marks_file} as they are typed; when done, press Ctrl+C "
          f"and run: grade rescore {_shell(folder.path)}", file=out, flush=True)
    if open_browser:  # as Jupyter does: a browser that blocks (a text one) does not stop us
        threading.Thread(target=webbrowser.open, args=(running.url,), kwargs={"new": 2},
                         daemon=True).start()
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    print(f"Stopped; the marks are in {folder.marks_file}.", file=out)


def _shell(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
