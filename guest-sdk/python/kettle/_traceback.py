"""A node's failure as the host shows it: the exception, then the last frames of the node's own
files (path relative to the node folder, line, function, source line), the same whether the
folder was built into a component or runs from source in Kettle's Python interpreter.

A component has no files at run time: the node's source lines are put in `linecache` when the
component is built (`remember_sources`), so they are part of its snapshot.
"""

import linecache
import sys
import traceback

# How many of the node's innermost frames a failure shows.
FRAMES = 3

# The node folder as frames' file names show it ("" until the node is loaded).
_root = ""


def set_root(root: str) -> None:
    global _root
    _root = root.rstrip("/")


def remember(filename: str, text: str) -> None:
    """Keeps `text` as the lines of `filename`; `mtime` None: never checked against a file."""
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)


def remember_sources() -> None:
    """Keeps the source of every loaded module under the node folder (at build time)."""
    if not _root:
        return
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None) or ""
        if filename.startswith(_root + "/"):
            try:
                with open(filename, encoding="utf-8") as file:
                    remember(filename, file.read())
            except (OSError, UnicodeDecodeError):
                pass


def describe(error: BaseException) -> str:
    """`Type: message`, then the node's last frames, innermost last."""
    message = f"{type(error).__name__}: {error}"
    if not _root:
        return message
    prefix = _root + "/"
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename.startswith(prefix)
    ]
    if not frames:
        return message
    lines = [message, "Traceback (most recent call last):"]
    for frame in frames[-FRAMES:]:
        lines.append(f'  File "{frame.filename[len(prefix):]}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return "\n".join(lines)
