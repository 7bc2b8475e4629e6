"""The interpreter of TEA's inline Python: a Kettle component node whose `config.code` is the
body of a `run:` / `script:` block.

The code runs as TEA runs it (the_edge_agent/yaml_nodes.py, `_create_inline_function`): when
the text contains `return` it is the body of a function whose result is the state update;
otherwise it is executed as a module body and its top-level names not starting with `_` are
the update. It sees `state`, `variables`, `json`, `actions` (empty), `requests` and `datetime`
(TEA's names), plus `llm`, `trace` and `log` from the Kettle SDK; in a fan-in node
`parallel_results`, in a `dynamic_parallel` item its item and index variables.

The host may call one instance many times in a run: compiled code is cached by its text, and
every execution gets fresh globals. `print` goes to the node's log (host-owned, bounded).
"""

import builtins
import json
import sys
import traceback
import types

from kettle import Failed, llm, log, node, trace

# At run time the interpreter has no files, so its standard library is what the component's
# snapshot holds: the modules imported while componentize-py builds it. TEA's inline code
# imports these; importing them here puts them in the snapshot. One that cannot load under
# WASI is left out (its import then fails in the inline code, with its own message).
_PRELOADED = (
    "base64", "bisect", "calendar", "concurrent.futures", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fnmatch", "fractions", "functools", "glob",
    "hashlib", "heapq", "html", "itertools", "logging", "math", "numbers", "operator",
    "pathlib", "pprint", "queue", "random", "re", "secrets", "shlex", "shutil", "statistics",
    "string", "struct", "subprocess", "tempfile", "textwrap", "threading", "time", "typing",
    "unicodedata", "urllib.parse", "uuid",
)
for _module in _PRELOADED:
    try:
        __import__(_module)
    except Exception:  # noqa: BLE001 - a module WASI cannot load is simply not preloaded
        pass

FILENAME = "<inline>"

# code text -> (code object, whether it is wrapped in a function, the line offset)
_compiled = {}


class _InlineSyntaxError(Exception):
    pass


def _compile(code):
    entry = _compiled.get(code)
    if entry is not None:
        return entry
    wrapped = "return" in code
    if wrapped:
        body = "\n".join("    " + line for line in code.split("\n"))
        source = "def __run_func__():\n" + body + "\n"
        offset = 1
    else:
        source = code
        offset = 0
    try:
        compiled = compile(source, FILENAME, "exec")
    except SyntaxError as error:
        line = (error.lineno or 1) - offset
        text = (error.text or "").strip()
        raise _InlineSyntaxError(
            f"line {line}: SyntaxError: {error.msg}" + (f"\n    {text}" if text else "")
        ) from None
    entry = (compiled, wrapped, offset)
    _compiled[code] = entry
    return entry


class _LogStream:
    """`sys.stdout` / `sys.stderr` during an execution: each line goes to the node's log."""

    def __init__(self, level):
        self._level = level
        self._pending = ""

    def write(self, text):
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._level(line)
        return len(text)

    def flush(self):
        if self._pending:
            self._level(self._pending)
            self._pending = ""

    def isatty(self):
        return False


# Module names whose import failing means "no network", to name the grant in the message.
_NETWORK_MODULES = {"socket", "ssl", "requests", "urllib3", "httpx", "aiohttp", "select"}


def _hint(error):
    if isinstance(error, OSError):
        return (
            "inline code is granted no files, sockets or environment variables; move the code"
            " into a component node and grant it `permissions: {fs: ...}`, `{http: ...}` or"
            " `{env: ...}`"
        )
    if isinstance(error, ImportError) and (error.name or "").split(".")[0] in _NETWORK_MODULES:
        return (
            "inline code has no network; move the code into a component node granted"
            " `permissions: {http: [HOST]}`"
        )
    return None


def _describe(error, offset, source_lines):
    """`line N: Type: message`, then the last frames of the inline code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == FILENAME]
    message = f"{type(error).__name__}: {error}"
    if not frames:
        return message
    last = frames[-1].lineno - offset
    lines = [f"line {last}: {message}"]
    for frame in frames[-3:]:
        number = frame.lineno - offset
        text = source_lines[number - 1].strip() if 0 < number <= len(source_lines) else ""
        where = "" if frame.name in ("<module>", "__run_func__") else f" in {frame.name}"
        lines.append(f"    line {number}{where}: {text}")
    return "\n".join(lines)


def _globals(context):
    names = {
        "__builtins__": builtins,
        "__name__": "__inline__",
        "state": context.get("state", {}),
        "variables": context.get("variables", {}),
    }
    names.update(context.get("extras", {}))
    names.update(
        {
            "json": json,
            "requests": None,
            "datetime": None,
            "actions": {},
            "llm": llm,
            "trace": trace,
            "log": log,
        }
    )
    return names


def _update_of_locals(names):
    return {
        key: value
        for key, value in names.items()
        if not key.startswith("_")
        and not isinstance(value, (types.ModuleType, types.FunctionType, type))
    }


@node
def run(ctx, context: dict) -> dict:
    code = ctx.config.get("code")
    if not isinstance(code, str):
        raise Failed("the interpreter was given no `code` in its config")
    try:
        compiled, wrapped, offset = _compile(code)
    except _InlineSyntaxError as error:
        raise Failed(str(error)) from None
    names = _globals(context)
    if "datetime" in code:
        import datetime

        names["datetime"] = datetime
    local_names = {}
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _LogStream(log.info), _LogStream(log.warn)
    try:
        exec(compiled, names, local_names)
        if wrapped:
            update = local_names["__run_func__"]()
        else:
            update = _update_of_locals(local_names)
    except llm.LlmError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - all are the inline code's failure
        message = _describe(error, offset, code.split("\n"))
        hint = _hint(error)
        raise Failed(message + (f"\n  hint: {hint}" if hint else "")) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
    if update is None:
        return {}
    if not isinstance(update, dict):
        raise Failed(
            f"the inline code returned {type(update).__name__}, not a dict (the state update)"
        )
    return update
