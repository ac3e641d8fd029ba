"""Kernel side of the output cap: ipykernel runs ``cap_output`` before the first cell.

Its source is handed to ipykernel as ``exec_lines`` (``cells.output_cap_lines``). The two
streams become a subclass whose ``write`` keeps count per cell and drops what a cell writes
past the limit, so a loop of prints cannot pile up messages in the kernel (IPython 9 keeps every
print of a cell) faster than the grader drops them. IPython 9 wraps ``write`` around each cell
and then assigns back what it found, so ``write`` is a property: an assigned wrapper is used
(it calls ours), and the plain method put back means ours again. A submission may undo all
this; then the kernel's memory limit is what stops it.
"""


def cap_output(limit):
    import sys
    import types
    from typing import Any

    state: dict[str, Any] = {"cell": None, "used": 0}
    for stream in (sys.stdout, sys.stderr):
        base = type(stream)
        if base.__name__ != "OutStream":
            continue

        def capped(self, text, _base=base):
            header = getattr(self, "parent_header", None) or {}
            cell = header.get("msg_id") if isinstance(header, dict) else None
            if cell != state["cell"]:
                state.update(cell=cell, used=0)
            room = limit - state["used"]
            state["used"] += len(text) if isinstance(text, str) else 0
            if room <= 0:
                return len(text)
            if isinstance(text, str) and len(text) > room:
                note = "\n[the rest of this cell's output was dropped]\n"
                _base.write(self, text[:room] + note)
                return len(text)
            return _base.write(self, text)

        def get(self):
            return self.__dict__.get("_ex8_write") or types.MethodType(capped, self)

        def put(self, value, _base=base):
            if getattr(value, "__func__", None) is _base.write:
                self.__dict__.pop("_ex8_write", None)
            else:
                self.__dict__["_ex8_write"] = value

        stream.__dict__.pop("write", None)
        stream.__class__ = type(base.__name__, (base,), {"write": property(get, put)})
