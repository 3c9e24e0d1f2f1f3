"""How `emrad-sim` ends: documented exit codes, one-line messages, checked option values.

Exit codes:
  0    success
  1    a check failed (`regress` found drift) or an unexpected error (one line; --debug for the traceback)
  2    bad input: a scenario, manifest, activity log, option or output folder that cannot be used,
       with a message naming the file, field or option; nothing was written
  130  interrupted (Ctrl-C or SIGTERM); files already written are complete

No traceback reaches the user unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import math
import signal
import sys
import warnings
from typing import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class BadInput(ValueError):
    """Input the user can fix: the message names the file, field or option."""


# -- option types: argparse prefixes each message with the option's name ---------------------------

def count(text: str) -> int:
    """A whole number of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def number(text: str) -> float:
    """Any finite number."""
    return _float(text)


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def positive_floats(text: str) -> tuple[float, ...]:
    """Comma-separated numbers, each more than 0 (e.g. tariff multipliers 0.6,0.8,1)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("needs at least one number, e.g. 0.6,0.8,1")
    return tuple(positive_float(part) for part in parts)


def fraction(text: str) -> float:
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def encoding(text: str) -> str:
    try:
        return codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None


def size(text: str) -> float:
    from sim.estimate import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- running a command -------------------------------------------------------------------------------

def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"emrad-sim: warning: {message}", file=sys.stderr)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, debug: bool) -> int:
    """Call the verb's handler; map what it raises to a one-line message and an exit code."""
    from filelock import Timeout

    from sim.folders import FolderBusy

    previous = signal.signal(signal.SIGTERM, _sigterm) if _main_thread() else None
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            return handler(args)
    except KeyboardInterrupt:
        print("emrad-sim: interrupted; the results folder is as it was before this run "
              "(finished replications are cached for the next one)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place every error is turned into a message
        if debug:
            raise
        if isinstance(exc, (ValueError, FolderBusy, Timeout, OSError, LookupError)) and not isinstance(
                exc, (KeyError, IndexError)):
            print(f"emrad-sim: {_describe(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(exc, MemoryError):
            print("emrad-sim: out of memory (MemoryError); the run is larger than this machine: see the estimate "
                  "printed by `emrad-sim validate` and lower --max-memory", file=sys.stderr)
            return EXIT_FAILED
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"emrad-sim: unexpected error: {type(exc).__name__}: {first} "
              f"(run again with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
