"""mkdocs hook: reference pages generated from the code at build time, never typed by hand.

* ``reference/api.md``: every name in ``sim.__all__`` (plus the study-design helpers the README
  shows), rendered from its docstring by mkdocstrings.
* ``reference/scenario.md``: every section and field of the pydantic scenario schema
  (``sim.scenario.Scenario`` and the sections it nests), with its type, unit, default and
  description. Units come from the field's description and name (``*_hours`` is hours, "£ per
  exam" in a description is £ per exam, a 0-1 constraint is a fraction, ...), so a new field is
  documented the moment it is added to the schema.
* ``reference/cli.md``: every verb and option of ``sim.cli.build_parser()``.

The functions return Markdown text and are tested on their own (tests/test_docs.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import types
import typing
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# documented beside sim.__all__: the study-design helpers the README shows (module-qualified)
EXTRA_API = ("sim.pilot.reproduce_pilot", "sim.experiment.replications_needed", "sim.warmup.suggest_warmup",
             "sim.warmup.plot_warmup")
NO_UNIT = "—"
DISTRIBUTION_UNIT = "the holding field's (minutes or hours)"
GENERATED = "<!-- generated at build time by docs/hooks/reference.py: edit the code, not this page -->"


# -- scenario schema ---------------------------------------------------------------------------

def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, constraints) of a possibly Annotated type; FieldInfo constraints are unpacked."""
    constraints: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        annotation, *meta = typing.get_args(annotation)
        for item in meta:
            constraints += item.metadata if isinstance(item, FieldInfo) else [item]
    return annotation, constraints


def _bounds(constraints: list[Any]) -> str:
    words = []
    for c in constraints:
        for cls, symbol in ((annotated_types.Ge, "≥"), (annotated_types.Gt, ">"), (annotated_types.Le, "≤"),
                            (annotated_types.Lt, "<")):
            if isinstance(c, cls):
                words.append(f"{symbol} {getattr(c, cls.__name__.lower())}")
        if isinstance(c, annotated_types.MinLen) and c.min_length:
            words.append(f"at least {c.min_length}")
    return ", ".join(words)


def _is_fraction(constraints: list[Any]) -> bool:
    ge = [c.ge for c in constraints if isinstance(c, annotated_types.Ge)]
    le = [c.le for c in constraints if isinstance(c, annotated_types.Le)]
    return ge == [0] and le == [1]


def _is_distribution(annotation: Any) -> bool:
    bare, _ = _split(annotation)
    return typing.get_origin(bare) is Union and all(
        isinstance(a, type) and issubclass(a, BaseModel) and "kind" in a.model_fields for a in typing.get_args(bare))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Scenario sections nested anywhere in a field's type (distributions are listed apart)."""
    if _is_distribution(annotation):
        return []
    bare, _ = _split(annotation)
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return [bare]
    return [m for arg in typing.get_args(bare) for m in _models_in(arg)]


def _anchor(name: str) -> str:
    return name.lower()


def type_text(annotation: Any, field_constraints: list[Any] = ()) -> str:
    """A field's type as a TOML author reads it, with its bounds: 'list of number (> 0)'.

    `field_constraints` are those pydantic moved from the annotation to FieldInfo.metadata.
    """
    if _is_distribution(annotation):
        return "[distribution](#distributions)"
    bare, constraints = _split(annotation)
    constraints = [*constraints, *field_constraints]
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    bounds = _bounds(constraints)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a) for a in kept)
        return f"{text}, or absent" if len(kept) < len(args) else text
    if origin is Literal:
        text = " | ".join(f'`"{a}"`' for a in args)
    elif origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            text = f"list of {type_text(args[0])}"
        else:
            text = "[" + ", ".join(type_text(a) for a in args) + "]"
    elif origin is dict:
        text = f"table: {type_text(args[0])} key → {type_text(args[1])}"
    elif isinstance(bare, type) and issubclass(bare, BaseModel):
        text = f"[{bare.__name__}](#{_anchor(bare.__name__)})"
    else:
        text = {float: "number", int: "integer", str: "text", bool: "boolean", dt.date: "date (YYYY-MM-DD)"}.get(
            bare, getattr(bare, "__name__", str(bare)))
    return f"{text} ({bounds})" if bounds else text


def _contains_fraction(annotation: Any, field_constraints: list[Any] = ()) -> bool:
    bare, constraints = _split(annotation)
    if _is_fraction([*constraints, *field_constraints]):
        return True
    return not _is_distribution(bare) and any(_contains_fraction(a) for a in typing.get_args(bare)
                                              if a is not Ellipsis)


SUFFIX_UNITS = (("_hours", "hours"), ("_minutes", "minutes"), ("_days", "days"), ("_weeks", "weeks"),
                ("_exams", "exams"))
# (pattern in the description, unit; None: the matched text is the unit); the first match wins
STATED_UNITS = (  # a unit the description states outright beats anything the name suggests
    (r"£ per (?:[\w-]+ )*?(?:exam|hour)\b", None),
    (r"\b(?:exams|hours|people|weeks) per \w+", None),
    (r"\bfractional growth per year\b", "fraction per year"),
    (r"\bexams\b[\w ]* per (?:\w+ )?day\b", "exams per day"),
)
HINTED_UNITS = (  # weaker hints, tried after the field's name and constraints
    (r"\bHH:MM\b", "time of day (HH:MM)"),
    (r"\bpeople\b", "people"),
    (r"\bhours\b", "hours"),
)


def unit_text(name: str, field: FieldInfo) -> str:
    """The unit of a scenario field, from its description, its name and its constraints; never empty."""
    description = field.description or ""
    if _models_in(field.annotation):
        return "section"
    for pattern, unit in STATED_UNITS:
        found = re.search(pattern, description)
        if found:
            return unit or found.group(0)
    per = re.fullmatch(r"(?:\w+_)?(\w+?)_per_(\w+)", name)
    if per:
        return f"{per.group(1)} per {per.group(2).replace('wte_', 'WTE-')}"
    for suffix, unit in SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    if _contains_fraction(field.annotation, field.metadata) or "probability" in name:
        return "fraction (0-1)"
    if any(w in name for w in ("multiplier", "factor", "speed")) or re.search(r"\b(relative|scales)\b", description):
        return "ratio (×)"
    for pattern, unit in HINTED_UNITS:
        if re.search(pattern, description):
            return unit
    element = _element(field.annotation)
    if element is bool or element is str or typing.get_origin(element) is Literal:
        return NO_UNIT  # switches, codes, names and choices
    if element is dt.date:
        return "date"
    if element is int:
        return {"count": "count", "priority": "rank"}.get(name, "band number" if "band" in name else "integer")
    return "number"


def _element(annotation: Any) -> Any:
    """The scalar inside lists and optionals: list of X -> X, X | None -> X."""
    bare, _ = _split(annotation)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if origin in (Union, types.UnionType) and not _is_distribution(bare):
        return _element(next(a for a in args if a is not type(None)))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _element(args[0])
    return bare


def _toml(value: Any) -> str:
    """A default as it would be written in TOML."""
    if value is None:
        return "absent"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, BaseModel):
        return f"the [{type(value).__name__}](#{_anchor(type(value).__name__)}) defaults"
    if isinstance(value, (tuple, list)):
        if not value:
            return "[] (empty)"
        if len(value) > 3 and len(set(value)) == 1:
            return f"[{_toml(value[0])}] × {len(value)}"
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{} (empty)" if not value else "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return f"`{_toml(field.default_factory())}`"
    if field.default is PydanticUndefined:
        return "**required**"
    text = _toml(field.default)
    return text if isinstance(field.default, BaseModel) else f"`{text}`"


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped, and <...> outside code spans shown, not
    taken for HTML tags (help texts say results/<scenario>)."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def schema_sections(root: type[BaseModel]) -> dict[type[BaseModel], list[str]]:
    """Every section reachable from `root`, depth first, with the TOML tables where it appears.

    `[outsourcing]` is a table, `[[staff]]` an array of tables; the root has the path "".
    """
    found: dict[type[BaseModel], list[str]] = {root: [""]}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            origin = typing.get_origin(_split(field.annotation)[0])
            for nested in _models_in(field.annotation):
                table = f"[[{path}]]" if origin is tuple else f"[{path}.KEY]" if origin is dict else f"[{path}]"
                if table not in found.setdefault(nested, []):
                    found[nested].append(table)
                walk(nested, path)

    walk(root, "")
    return found


def _model_table(model: type[BaseModel], unit: str | None = None) -> list[str]:
    """A section's fields as a Markdown table; `unit` overrides every unit but that of `kind`."""
    lines = ["| field | type | unit | default | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        field_unit = unit if unit and name != "kind" else unit_text(name, field)
        lines.append(f"| `{name}` | {_cell(type_text(field.annotation, field.metadata))} | {_cell(field_unit)} "
                     f"| {_cell(default_text(field))} | {_cell(field.description or '')} |")
    return lines


def _doc(model: type) -> str:
    return " ".join((model.__doc__ or "").split("\n\n")[0].split())


def scenario_markdown() -> str:
    """The scenario schema page: one table per section, generated from sim.scenario."""
    from sim.distributions import Distribution
    from sim.scenario import Scenario

    lines = [GENERATED, "", "# Scenario schema", "",
             "A scenario is a TOML file validated by the pydantic model `sim.scenario.Scenario` "
             "(`emrad-sim validate FILE` checks one). Unknown keys are errors, and a file may "
             "`extends = \"other.toml\"` to override another file's values. Simulated time is in hours "
             "from the scenario's start (a Monday, 00:00); money is in £; shares are fractions (0-1). "
             "**required** fields have no default; a unit of — marks a switch, a code, a name or a choice. Units are taken from each field's name and "
             "description; where a field has no description, its name says what it is.", ""]
    sections = schema_sections(Scenario)
    for model, paths in sections.items():
        where = "the top level of the file" if paths == [""] else ", ".join(f"`{p}`" for p in paths)
        lines += [f"## {model.__name__}", "", _doc(model), "", f"Where: {where}.", ""]
        lines += _model_table(model) + [""]
    lines += ["## Distributions", "",
              "A reading time or a turnaround is a table with `kind` and that kind's parameters, in the unit "
              "of the field that holds it (minutes for `reading_minutes`, hours for `turnaround_hours`), "
              "e.g. `{ kind = \"lognormal\", mean = 16.0, sd = 9.6 }`.", ""]
    bare, _ = _split(Distribution)
    for kind in typing.get_args(bare):
        lines += [f"### {kind.model_fields['kind'].default}", "", _doc(kind), ""] + _model_table(kind, DISTRIBUTION_UNIT) + [""]
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------

def _argument_name(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(action.option_strings)
        return flags if action.nargs == 0 else f"{flags} {action.metavar or action.dest.upper()}"
    return action.metavar or action.dest


def _argument_default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def cli_markdown() -> str:
    """The command-line page: usage, every verb and every option, from sim.cli.build_parser()."""
    from sim.cli import build_parser

    parser = build_parser()
    lines = [GENERATED, "", "# Command line", "", f"{parser.description} Bad input ends with a one-line "
             "message naming the file and field, and exit code 2.", "", "```", _help(parser), "```", ""]
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in verbs._choices_actions}
    for name, sub in verbs.choices.items():
        summary = (helps.get(name) or "").rstrip(".")
        lines += [f"## emrad-sim {name}", "", summary[:1].upper() + summary[1:] + ".", "", "```",
                  _usage(sub), "```", "", "| argument | default | what |", "|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = action.help or ""
            if action.choices:
                what += f" (one of {', '.join(map(str, action.choices))})"
            lines.append(f"| `{_argument_name(action)}` | {_argument_default(action)} | {_cell(what)} |")
        lines.append("")
    return "\n".join(lines)


def _fixed_width(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)  # not the terminal's width
    return parser


def _help(parser: argparse.ArgumentParser) -> str:
    return _fixed_width(parser).format_help().strip()


def _usage(parser: argparse.ArgumentParser) -> str:
    return _fixed_width(parser).format_usage().strip()


# -- Python API --------------------------------------------------------------------------------

def api_markdown() -> str:
    """The API page: mkdocstrings blocks for sim.__all__ (functions, then classes) and EXTRA_API."""
    import inspect

    import sim

    functions = [n for n in sim.__all__ if not inspect.isclass(getattr(sim, n))]
    classes = [n for n in sim.__all__ if inspect.isclass(getattr(sim, n))]
    lines = [GENERATED, "", "# Python API", "", "```python", (sim.__doc__ or "").split("\n\n", 1)[1].strip(), "```", "",
             "Everything below is importable from the top-level package (`import sim`), except the "
             "study-design helpers, which live in their modules.", "", "## Functions", ""]
    # by the defining module: static analysis reads `sim.compare` as the module sim/compare.py
    lines += [_block(f"{getattr(sim, name).__module__}.{name}", f"sim.{name}") for name in functions]
    lines += ["## Classes", ""] + [_block(f"{getattr(sim, name).__module__}.{name}", f"sim.{name}")
                                   for name in classes]
    lines += ["## Study design and the pilot", ""] + [_block(path, path) for path in EXTRA_API]
    return "\n".join(lines) + "\n"


def _block(path: str, heading: str) -> str:
    """A mkdocstrings block for `path`, headed by the name users import it as."""
    return f"::: {path}\n    options:\n      heading: \"{heading}\"\n      toc_label: \"{heading}\"\n"


GENERATORS = {"reference/api.md": api_markdown, "reference/scenario.md": scenario_markdown,
              "reference/cli.md": cli_markdown}


def on_files(files, config):
    """mkdocs event: add the generated pages to the site."""
    from mkdocs.structure.files import File

    for path, generate in GENERATORS.items():
        files.append(File.generated(config, path, content=generate()))
    return files
