"""Reading a file the grader did not write: a regular file only, checked on the open descriptor,
read with a bound.

The grader runs as root. A FIFO would block it, a device (``/dev/zero``) never ends, and a link
can point at a file only root may read: each is refused, saying what it is. The type is checked
with ``stat`` before opening (a device is never even opened) and again with ``fstat`` on the
descriptor, so nothing swapped in between a check and the reading is read; ``O_NONBLOCK`` makes
opening a FIFO return at once instead of waiting for a writer. What is read, hashed or copied
comes from that one descriptor.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .errors import InputError

__all__ = ["Refused", "TooLarge", "what_it_is", "open_regular", "open_beneath", "read_at_most",
           "hash_at_most", "copy_at_most", "read_submission_file"]

_BLOCK = 1 << 20


class Refused(Exception):
    """Not opened. ``what`` says what the path is instead of a regular file: ``"a link"``,
    ``"a FIFO"``, ``"a character device"``, ``"a folder"``, ``"missing"``..."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class TooLarge(Exception):
    """More bytes than the limit; ``size`` is at least how many there are."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def what_it_is(mode: int) -> str | None:
    """What a file of ``mode`` (``st_mode``) is, when it is not a regular file; else None."""
    kinds = ((stat.S_ISREG, None), (stat.S_ISLNK, "a link"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _refusal(exc: OSError, follow: bool) -> Refused:
    if exc.errno == errno.ENOENT:
        return Refused("missing")
    if exc.errno == errno.ELOOP and not follow:  # O_NOFOLLOW met a link
        return Refused("a link")
    if exc.errno == errno.ENOTDIR:
        return Refused("missing")
    return Refused(f"unreadable ({exc.strerror or exc})")


def open_regular(name: str | os.PathLike, *, dir_fd: int | None = None,
                 follow: bool = True) -> int:
    """A read-only descriptor of the regular file ``name`` (relative to ``dir_fd`` if given).

    ``follow=False``: a link is refused as well, and never followed. Raises ``Refused``.
    """
    try:
        kind = what_it_is(os.stat(name, dir_fd=dir_fd, follow_symlinks=follow).st_mode)
    except OSError as exc:
        raise _refusal(exc, follow) from None
    if kind:
        raise Refused(kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, follow) from None
    kind = what_it_is(os.fstat(fd).st_mode)  # what was opened, whatever the name is now
    if kind:
        os.close(fd)
        raise Refused(kind)
    return fd


def _folder_refusal(part: str, dir_fd: int, exc: OSError) -> Refused:
    try:
        kind = what_it_is(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        kind = None
    return Refused(kind) if kind and kind != "a folder" else _refusal(exc, False)


def open_beneath(root: str | os.PathLike, relative: str) -> int:
    """A descriptor of the regular file ``relative`` (``"bob/ex8.ipynb"``) inside the folder
    ``root``, where no part of ``relative`` may be a link. Raises ``Refused``."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or \
            any(p in (".", "..") for p in parts):
        raise Refused("outside the submissions folder")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=fd)
            except OSError as exc:  # O_NOFOLLOW with O_DIRECTORY: a link is ENOTDIR or ELOOP
                raise _folder_refusal(part, fd, exc) from None
            os.close(fd)
            fd = inner
        return open_regular(parts[-1], dir_fd=fd, follow=False)
    finally:
        os.close(fd)


def _blocks(fd: int, limit: int) -> Iterator[bytes]:
    """The file's bytes in blocks; ``TooLarge`` as soon as there are more than ``limit``."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise TooLarge(size)
    total = 0
    while True:
        block = os.read(fd, min(_BLOCK, limit + 1 - total))
        if not block:
            return
        total += len(block)
        if total > limit:  # it grew while being read
            raise TooLarge(total)
        yield block


def read_at_most(fd: int, limit: int) -> bytes:
    return b"".join(_blocks(fd, limit))


def hash_at_most(fd: int, limit: int) -> str:
    """The SHA-256 of the file's bytes (hex)."""
    digest = hashlib.sha256()
    for block in _blocks(fd, limit):
        digest.update(block)
    return digest.hexdigest()


def copy_at_most(fd: int, dest: Path, limit: int) -> str:
    """Copy the file's bytes into the new file ``dest`` (mode 0600); their SHA-256 (hex)."""
    digest = hashlib.sha256()
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600)
    with open(out, "wb") as fh:
        for block in _blocks(fd, limit):
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def read_submission_file(path: Path, suffixes: tuple[str, ...], limit: int) -> bytes:
    """The bytes of the submission ``path`` (a link the student chose is followed; what it
    points at must be a regular file); ``InputError`` with one sentence naming it if not."""
    try:
        fd = open_regular(path)
    except Refused as exc:
        if exc.what == "missing":
            raise InputError(f"{path} does not exist.", path=str(path)) from None
        if exc.what == "a folder":
            raise InputError(f"{path} is a folder, not a submission file.",
                             path=str(path)) from None
        raise InputError(f"{path} is {exc.what}, not a submission file.",
                         path=str(path)) from None
    try:
        if path.suffix not in suffixes:
            raise InputError(f"{path} is neither a notebook (.ipynb) nor a Python module (.py).",
                             path=str(path))
        return read_at_most(fd, limit)
    except TooLarge as exc:
        raise InputError(f"{path} is {exc.size >> 20} MB; a submission may have at most "
                         f"{limit >> 20} MB (clear the outputs).", path=str(path)) from None
    finally:
        os.close(fd)
