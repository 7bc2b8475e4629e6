"""The interpreter of TEA's inline Python: a Kettle component node whose `config.code` is the
body of a `run:` / `script:` block.

The code runs as TEA runs it (the_edge_agent/yaml_nodes.py, `_create_inline_function`): when
the text contains `return` it is the body of a function whose result is the state update;
otherwise it is executed as a module body and its top-level names not starting with `_` are
the update. It sees `state`, `variables`, `json`, `actions` (empty), `requests` and `datetime`
(TEA's names), plus `llm`, `trace` and `log` from the Kettle SDK; in a fan-in node
`parallel_results`, in a `dynamic_parallel` item its item and index variables.

It also runs Python node folders from source (`kettle run` on a folder that needs nothing but
the SDK): the config's `kettle_node_folder` holds the folder's `.py` files and its module, and
`config` the node's own `config:`. The folder's modules are imported from those files, and its
`@node` function is called as a built component's would be, with the node's context.

The host may call one instance many times in a run: compiled code is cached by its text, and
every execution gets fresh globals. `print` goes to the node's log (host-owned, bounded).
"""

import builtins
import importlib.machinery
import json
import sys
import traceback
import types

from kettle import Failed, llm, log, node, trace
from kettle import _traceback

# The SDK's module `kettle.node` (the package's attribute `node` is the decorator).
_sdk_node = sys.modules["kettle.node"]

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


# Where a node folder's files appear to be, in frames and `__file__`.
FOLDER_ROOT = "/kettle-node"


class _FolderFinder:
    """Imports a node folder's modules from its files, handed in the config."""

    def __init__(self, files):
        self._files = files

    def find_spec(self, name, path=None, target=None):
        base = name.replace(".", "/")
        for relative, package in ((f"{base}.py", False), (f"{base}/__init__.py", True)):
            if relative in self._files:
                spec = importlib.machinery.ModuleSpec(
                    name, self, origin=f"{FOLDER_ROOT}/{relative}", is_package=package
                )
                spec.has_location = True
                if package:
                    spec.submodule_search_locations = [f"{FOLDER_ROOT}/{base}"]
                return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename = module.__spec__.origin
        text = self._files[filename[len(FOLDER_ROOT) + 1 :]]
        _traceback.remember(filename, text)
        module.__file__ = filename
        try:
            code = compile(text, filename, "exec")
        except SyntaxError as error:
            shown = f"\n    {error.text.strip()}" if error.text else ""
            raise Failed(
                f"SyntaxError: {error.msg}\nTraceback (most recent call last):\n"
                f'  File "{filename[len(FOLDER_ROOT) + 1 :]}", line {error.lineno}{shown}'
            ) from None
        exec(code, module.__dict__)


def _run_folder(ctx, state, folder):
    """One execution of a node folder's `@node` function, as its component would run it."""
    files = folder.get("files") or {}
    module = folder.get("module") or "app"
    _traceback.set_root(FOLDER_ROOT)
    # The folder's modules replace any module of the same name (the interpreter is `app`).
    local = {path.split("/")[0].removesuffix(".py") for path in files}
    for name in list(sys.modules):
        if name.split(".")[0] in local:
            del sys.modules[name]
    sys.meta_path.insert(0, _FolderFinder(files))
    interpreter = _sdk_node._registered
    _sdk_node._registered = None
    try:
        __import__(module)
        function = _sdk_node._registered
    finally:
        _sdk_node._registered = interpreter
    if function is None:
        raise Failed(
            "no @node function: decorate the node's run function with @kettle.node"
        )
    config = ctx.config.get("config")
    node_ctx = _sdk_node.Context(
        run_id=ctx.run_id,
        node_name=ctx.node_name,
        attempt=ctx.attempt,
        config=config if isinstance(config, dict) else {},
    )
    return function(node_ctx, state)


@node
def run(ctx, context: dict) -> dict:
    folder = ctx.config.get("kettle_node_folder")
    if isinstance(folder, dict):
        return _run_folder(ctx, context, folder)
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
