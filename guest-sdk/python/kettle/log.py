"""Log lines, routed to the host's log and recorded as events of the innermost open span."""


def _log(level: str, message: str) -> None:
    from wit_world.imports import log as wit

    wit.log(getattr(wit.Level, level), str(message))


def debug(message: str) -> None:
    _log("DEBUG", message)


def info(message: str) -> None:
    _log("INFO", message)


def warn(message: str) -> None:
    _log("WARN", message)


def error(message: str) -> None:
    _log("ERROR", message)
