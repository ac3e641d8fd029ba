"""Walk, chown and remove folder trees a kernel wrote, however deep and whatever they hold.

A notebook can leave a tree thousands of folders deep, names as long as the file system allows,
links anywhere: ``os.walk`` and ``shutil.rmtree`` recurse (Python 3.11) and pass whole paths,
so such a tree crashed the grader, then every later grading of the same submission. Here one
folder descriptor is open at a time, every step is relative to it, no link is followed, and
the depth costs a list of names, not the stack.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

__all__ = ["walk", "chown_tree", "remove_tree"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _entries(fd: int, on_entry: Callable[[int, str, bool], None]) -> list[str]:
    """The folder's entries, each handed to ``on_entry``; returns its sub-folders' names."""
    with os.scandir(fd) as listing:
        found = [(e.name, e.is_dir(follow_symlinks=False)) for e in listing]
    for name, is_dir in found:
        on_entry(fd, name, is_dir)
    return [name for name, is_dir in found if is_dir]


def walk(top: Path, on_entry: Callable[[int, str, bool], None],
         on_leave: Callable[[int, str], None] | None = None) -> None:
    """Depth first through the folder ``top``: ``on_entry(folder_fd, name, is_dir)`` for every
    entry (before its own entries), ``on_leave(parent_fd, name)`` after a sub-folder's."""
    fd = os.open(top, _DIR)
    pending, names = [_entries(fd, on_entry)], []
    try:
        while pending:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError:  # gone, or not a folder after all
                    continue
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(_entries(fd, on_entry))
                continue
            pending.pop()
            if not names:
                break
            parent = os.open("..", _DIR, dir_fd=fd)  # no link on the way down: the real one
            os.close(fd)
            fd = parent
            name = names.pop()
            if on_leave:
                on_leave(fd, name)
    finally:
        os.close(fd)


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give ``top`` and everything in it to ``uid``/``gid`` (links themselves, not targets)."""
    def give(fd: int, name: str, is_dir: bool) -> None:
        try:
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
        except OSError:
            pass

    try:
        os.lchown(top, uid, gid)
        if stat.S_ISDIR(os.lstat(top).st_mode):
            walk(Path(top), give)
    except OSError:
        pass


def remove_tree(top: Path) -> None:
    """Remove ``top`` (a folder, a file or a link) and everything in it; nothing if missing."""
    try:
        mode = os.lstat(top).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(top)
        return

    def unlink(fd: int, name: str, is_dir: bool) -> None:
        if not is_dir:
            os.unlink(name, dir_fd=fd)

    def rmdir(fd: int, name: str) -> None:
        os.rmdir(name, dir_fd=fd)

    walk(Path(top), unlink, rmdir)
    os.rmdir(top)
