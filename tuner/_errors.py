"""A failed trial's error as its user wants to read it: their own frames first.

An objective's exception reaches the driver wrapped in Ray's and tuner's own calls: a
traceback of a dozen library frames (Ray's actor, Ray Tune's runner thread, tuner's
trainer) with the user's one or two frames at the bottom. :func:`trial_error_text`
formats a live exception and :func:`reorder_traceback_text` a traceback already turned
into text (Ray's pickled error carries its traceback as text), both the same way::

    ValueError: learning rate must be positive

    Your code (most recent call last):
      File "/home/me/objective.py", line 12, in objective
        raise ValueError("learning rate must be positive")

    Library frames (ray, tuner, installed packages; most recent call last):
      File ".../ray/air/_internal/util.py", line 107, in run
      ...

ANSI colour codes (Ray colours its tracebacks) are removed.
"""

from __future__ import annotations

import os
import re
import sysconfig
import traceback

__all__ = ["is_library_file", "reorder_traceback_text", "trial_error_text"]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+')
_USER_HEADER = "Your code (most recent call last):"
_LIBRARY_HEADER = "Library frames (ray, tuner, installed packages; most recent call last):"


def _library_roots() -> tuple[str, ...]:
    roots = [os.path.dirname(os.path.abspath(__file__))]  # tuner itself
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.append(os.path.abspath(path))
    return tuple(dict.fromkeys(roots))


_ROOTS = _library_roots()
_LIBRARY_PARTS = ("/site-packages/", "/dist-packages/", "/ray/", "/tuner/")


def is_library_file(filename: str) -> bool:
    """Whether a traceback frame's file belongs to Ray, tuner, Python or an installed
    package rather than to the user's own code. Paths of another machine (a remote
    worker's) are judged by their ``site-packages``, ``ray`` and ``tuner`` folders."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return filename.startswith("<frozen")
    path = filename.replace("\\", "/")
    if any(part in path for part in _LIBRARY_PARTS):
        return True
    absolute = os.path.abspath(filename)
    return any(absolute == root or absolute.startswith(root + os.sep) for root in _ROOTS)


def trial_error_text(exc: BaseException) -> str:
    """`exc`, raised by a trial's objective, as text for the trial's error: ``Type:
    message`` on the first line, then the traceback with the user's frames first and
    the library frames (Ray, tuner, installed packages) after them. Chained exceptions
    (``raise ... from``, an error while handling another) follow, one line each."""
    tb = traceback.TracebackException.from_exception(exc)
    summary = _summary(type(exc).__name__, str(exc))
    frames = [f for f in tb.stack.format() if _FRAME.match(f)]
    text = _assemble(summary, frames, _chain(exc))
    return ANSI.sub("", text)


def reorder_traceback_text(text: str, summary: str | None = None) -> str:
    """A traceback already formatted as text (Ray's error of a trial), rearranged as
    :func:`trial_error_text` does: `summary` (default: the text's last line) first, the
    user's frames, then the library frames, then the text's other lines (Ray's header,
    the exception lines) in their order. Text without frames is returned as it is,
    after `summary`."""
    text = ANSI.sub("", text)
    lines = text.splitlines()
    frames: list[list[str]] = []
    other: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if _FRAME.match(line):
            current = [line]
            frames.append(current)
        elif current is not None and line.startswith("    ") and not _FRAME.match(line):
            current.append(line)  # the frame's source line and its ^^^ markers
        else:
            current = None
            other.append(line)
    if summary is None:
        summary = next((line for line in reversed(lines) if line.strip()), "")
    summary = ANSI.sub("", summary).strip()
    if not frames:
        rest = "\n".join(other).strip("\n")
        return f"{summary}\n\n{rest}" if rest and rest.strip() != summary else summary
    blocks = ["\n".join(frame) + "\n" for frame in frames]
    user = [b for b, f in zip(blocks, frames, strict=True) if not _is_library_block(f[0])]
    library = [b for b, f in zip(blocks, frames, strict=True) if _is_library_block(f[0])]
    tail = [line for line in other if line.strip()]
    return _join(summary, user, library, tail)


def _is_library_block(first_line: str) -> bool:
    match = _FRAME.match(first_line)
    return match is not None and is_library_file(match.group("file"))


def _summary(type_name: str, message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{type_name}: {first}" if first else type_name


def _assemble(summary: str, frames: list[str], chain: list[str]) -> str:
    # Frame texts end with a newline; decide library or user from their first line.
    user = [f for f in frames if not _is_library_block(f.splitlines()[0])]
    library = [f for f in frames if _is_library_block(f.splitlines()[0])]
    return _join(summary, user, library, chain)


def _join(summary: str, user: list[str], library: list[str], tail: list[str]) -> str:
    parts = [summary, ""]
    if user:
        parts += [_USER_HEADER, "".join(user).rstrip("\n"), ""]
    if library:
        parts += [_LIBRARY_HEADER, "".join(library).rstrip("\n"), ""]
    if tail:
        parts += tail
    return "\n".join(parts).rstrip("\n")


def _chain(exc: BaseException) -> list[str]:
    """One line for each exception that `exc` was raised from or while handling."""
    lines: list[str] = []
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None:
        if current.__cause__ is not None:
            nxt, how = current.__cause__, "raised from"
        elif current.__context__ is not None and not current.__suppress_context__:
            nxt, how = current.__context__, "raised while handling"
        else:
            break
        if id(nxt) in seen:
            break
        seen.add(id(nxt))
        lines.append(f"({how} {_summary(type(nxt).__name__, str(nxt))})")
        current = nxt
    return lines
