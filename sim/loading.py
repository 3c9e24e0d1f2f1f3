"""Reading and writing scenario files: TOML, `extends` overlays, variants and readable errors."""

from __future__ import annotations

import copy
import tomllib
import warnings
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from sim.scenario import Scenario
from sim.scenario_bounds import value_problems
from sim.scenario_checks import reference_problems
from sim.scenario_warnings import ScenarioWarning, market_warnings


class ScenarioError(ValueError):
    """A scenario that cannot be used. `problems` holds (field path, reason) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {field or '(top level)'}: {reason}" for field, reason in problems]
        super().__init__("invalid scenario\n  " + "\n  ".join(lines))


#: Longest `extends` chain followed (a longer one is almost surely a mistake, and would exhaust the stack).
MAX_EXTENDS_DEPTH = 32
#: Largest scenario file read (a scenario is a few kB; this stops `validate /dev/zero` and the like).
MAX_SCENARIO_BYTES = 64 * 2**20


def _read_text(path: Path) -> str:
    """The file as UTF-8 text, or a ScenarioError naming the file (and the line of a bad byte)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(str(path), [("", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError(str(path), [("", "is a folder, not a scenario file")]) from None
    except OSError as exc:
        raise ScenarioError(str(path), [("", f"cannot read the file ({exc.strerror or exc})")]) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(str(path), [("", f"larger than {MAX_SCENARIO_BYTES // 2**20} MB: not a scenario file")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError(str(path), [("", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column "
                                             f"{column} (save the file as UTF-8)")]) from None


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's table with its `extends` chain merged underneath it."""
    if path in chain:
        raise ScenarioError(str(path), [("extends", "circular extends: " + " -> ".join(str(p) for p in (*chain, path)))])
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(str(chain[0]), [("extends", f"chain of more than {MAX_EXTENDS_DEPTH} files "
                                                        f"(stopped at {path})")])
    try:
        data = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), [("", f"not valid TOML: {exc}")]) from None
    except RecursionError:
        raise ScenarioError(str(path), [("", "not a usable scenario: arrays or tables nested too deeply")]) from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(str(path), [("extends", "must be a file name")])
    try:
        parent_path = (path.parent / parent).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ScenarioError(str(path), [("extends", f"not a usable file name ({exc})")]) from None
    base = _read_toml(parent_path, (*chain, path))
    return deep_merge(base, data)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value in `overlay` (lists included) replaces the base's."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_data(data: dict[str, Any], source: str) -> Scenario:
    """A Scenario from plain data, or a ScenarioError naming `source`, each field and reason."""
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(part) for part in err["loc"]), _reason(err)) for err in exc.errors()]
        raise ScenarioError(source, problems) from None
    problems = reference_problems(scn) + value_problems(scn)
    if problems:
        raise ScenarioError(source, problems)
    for field, reason in market_warnings(scn):
        warnings.warn(f"{source}: {field}: {reason}", ScenarioWarning, stacklevel=2)
    return scn


def _reason(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check spelling; see the schema in sim/scenario.py)"
    message = err["msg"]
    return message.removeprefix("Value error, ")


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge `extends` overlays and validate a scenario file."""
    path = Path(path).resolve()
    return validate_data(_read_toml(path), str(path))


def apply_changes(scn: Scenario, changes: dict[str, Any]) -> Scenario:
    """A new validated scenario with dotted-path changes applied; `scn` itself is untouched."""
    data = scn.model_dump(mode="json")
    for dotted, value in changes.items():
        target: Any = data
        parts = dotted.split(".")
        try:
            for part in parts[:-1]:
                target = target[_index(part)] if isinstance(target, list) else target[part]
            last = parts[-1]
            if isinstance(target, list):
                target[_index(last)] = value
            else:
                if last not in target and not isinstance(target, dict):
                    raise KeyError(last)
                target[last] = value
        except (KeyError, IndexError, ValueError, TypeError):
            raise ScenarioError(f"with_changes({scn.name!r})", [(dotted, "no such field")]) from None
    return validate_data(data, f"with_changes({scn.name!r})")


def _index(part: str) -> int:
    """A list index in a dotted path: a non-negative integer (negative ones are refused as ambiguous)."""
    index = int(part)
    if index < 0:
        raise IndexError(part)
    return index


def scenario_to_toml(scn: Scenario) -> str:
    """The resolved scenario as TOML (no `extends`), loadable by :func:`load_scenario`."""
    return tomli_w.dumps(scn.model_dump(mode="json", exclude_none=True))
