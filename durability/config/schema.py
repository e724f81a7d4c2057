"""One schema drives validation, the sample config and the docs.

Settings are frozen records (`Settings` subclasses) whose fields are declared with
`setting(...)`. The
builder walks a parsed TOML table against them, converting units (durations, sizes,
percentages) and collecting *every* problem as "At 'path.to.key': what is wrong",
so an operator fixes a file in one go.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping

from durability.records import Field, Record, field_types
from durability.units import parse_duration, parse_percent, parse_percent_or_off, parse_size

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any


def _origin(hint: Any) -> Any:
    """Return the origin of `tuple[str, ...]`-style hints (tuple), UnionType for `X | None`."""
    if isinstance(hint, types.UnionType):
        return types.UnionType
    return getattr(hint, "__origin__", None)


def _args(hint: Any) -> tuple[Any, ...]:
    return tuple(getattr(hint, "__args__", ()))


_NO_DEFAULT: Any = object()


class Settings(Record):
    """Base of every config section: a frozen record whose fields are `setting(...)`s."""


def _is_settings(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Settings)


def _setting_fields(cls: type[Settings]) -> dict[str, Field]:
    fields = {}
    for name in cls.__fields__:
        default = cls.__defaults__.get(name)
        fields[name] = default if isinstance(default, Field) else Field(default)
    return fields


def setting(
    default: Any = _NO_DEFAULT,
    *,
    help: str,
    kind: str | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    example: str | None = None,
    factory: Callable[[], Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """Declare one config key.

    `kind` is one of "duration" (a string such as "26h", stored as seconds),
    "percent" ("30%", stored as a fraction), "percent-or-off" (the same, or "off", stored
    as infinity), "size" ("2GiB", stored as bytes) or None.
    `example` is the TOML text shown in the sample when there is no default.
    `check` returns a problem sentence or None for further validation.
    """
    metadata = {
        "help": help,
        "kind": kind,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "example": example,
        "check": check,
    }
    if factory is not None:
        return Field(factory=factory, metadata=metadata)
    if default is _NO_DEFAULT:
        return Field(metadata=metadata)
    return Field(default, metadata=metadata)


def _type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def build(cls: type[Any], raw: Any, path: str, problems: list[str]) -> Any:
    """Given a settings dataclass and a parsed TOML table, return an instance.

    Problems are appended to `problems`; when there are any, the returned object may
    hold defaults in place of the bad values and must not be used.
    """
    if not isinstance(raw, Mapping):
        problems.append(f"At '{path}': expected a table, got {_type_name(raw)}")
        return _defaults(cls)
    hints = field_types(cls)
    # A field named `from_` is the TOML key `from` (a Python keyword).
    fields = {name.rstrip("_"): (name, f) for name, f in _setting_fields(cls).items()}
    for key in raw:
        if key not in fields:
            import difflib

            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(f"At '{_join(path, key)}': unknown key{suggestion}")
    values: dict[str, Any] = {}
    for name, (attribute, field) in fields.items():
        key_path = _join(path, name)
        if name in raw:
            converted = _convert(raw[name], hints[attribute], field.metadata, key_path, problems)
            if converted is not _NO_DEFAULT:
                values[attribute] = converted
        elif field.required:
            problems.append(f"At '{key_path}': required key is missing")
    try:
        return cls(**values)
    except TypeError:
        return None


def _defaults(cls: type[Any]) -> Any:
    try:
        return cls()
    except TypeError:
        return None


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _convert(value: Any, hint: Any, meta: Mapping[str, Any], path: str, problems: list[str]) -> Any:
    before = len(problems)
    result = _convert_type(value, hint, meta, path, problems)
    if len(problems) == before and meta.get("check") is not None:
        problem = meta["check"](result)
        if problem:
            problems.append(f"At '{path}': {problem}")
    return result


def _convert_type(
    value: Any, hint: Any, meta: Mapping[str, Any], path: str, problems: list[str]
) -> Any:
    origin = _origin(hint)
    args = _args(hint)
    if origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        return _convert_type(value, inner[0], meta, path, problems)
    kind = meta.get("kind")
    if kind is not None and origin is not tuple:
        return _convert_unit(value, kind, path, problems)
    if origin is tuple:
        if not isinstance(value, list):
            problems.append(f"At '{path}': expected a list, got {_type_name(value)}")
            return _NO_DEFAULT
        item_type = args[0]
        return tuple(
            _convert_item(item, item_type, meta, f"{path}[{index}]", problems)
            for index, item in enumerate(value)
        )
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            problems.append(f"At '{path}': expected a table, got {_type_name(value)}")
            return _NO_DEFAULT
        return dict(value)
    if _is_settings(hint):
        return build(hint, value, path, problems)
    return _convert_scalar(value, hint, meta, path, problems)


def _convert_item(
    value: Any, hint: Any, meta: Mapping[str, Any], path: str, problems: list[str]
) -> Any:
    if _is_settings(hint):
        return build(hint, value, path, problems)
    kind = meta.get("kind")
    if kind is not None:
        return _convert_unit(value, kind, path, problems)
    return _convert_scalar(value, hint, meta, path, problems)


def _convert_unit(value: Any, kind: str, path: str, problems: list[str]) -> Any:
    parsers: dict[str, Callable[[str], Any]] = {
        "duration": parse_duration,
        "percent": parse_percent,
        "percent-or-off": parse_percent_or_off,
        "size": parse_size,
    }
    if kind == "duration" and isinstance(value, int | float) and not isinstance(value, bool):
        problems.append(f"At '{path}': give a duration with its unit, e.g. \"{value}s\"")
        return _NO_DEFAULT
    if kind == "size" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        problems.append(f"At '{path}': expected a string, got {_type_name(value)}")
        return _NO_DEFAULT
    try:
        return parsers[kind](value)
    except ValueError as error:
        problems.append(f"At '{path}': {error}")
        return _NO_DEFAULT


def _convert_scalar(
    value: Any, hint: Any, meta: Mapping[str, Any], path: str, problems: list[str]
) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(f"At '{path}': expected true or false, got {_type_name(value)}")
            return _NO_DEFAULT
        return value
    if hint is int or hint is float:
        numeric_ok = isinstance(value, int) if hint is int else isinstance(value, int | float)
        if isinstance(value, bool) or not numeric_ok:
            wanted = "an integer" if hint is int else "a number"
            problems.append(f"At '{path}': expected {wanted}, got {_type_name(value)}")
            return _NO_DEFAULT
        low, high = meta.get("minimum"), meta.get("maximum")
        if low is not None and value < low:
            problems.append(f"At '{path}': must be at least {low}, got {value}")
        if high is not None and value > high:
            problems.append(f"At '{path}': must be at most {high}, got {value}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            problems.append(f"At '{path}': expected a string, got {_type_name(value)}")
            return _NO_DEFAULT
        choices = meta.get("choices")
        if choices and value not in choices:
            problems.append(f"At '{path}': must be one of {', '.join(choices)}; got {value!r}")
        return value
    problems.append(f"At '{path}': unsupported setting type {hint!r}")
    return _NO_DEFAULT


def sample_lines(cls: type[Any], path: str) -> list[str]:
    """Return commented TOML lines documenting every key of a settings class."""
    lines: list[str] = []
    hints = field_types(cls)
    nested: list[tuple[str, Any, Mapping[str, Any]]] = []
    for name, field in _setting_fields(cls).items():
        hint = hints[name]
        meta = field.metadata
        target = _args(hint)[0] if _origin(hint) is tuple else hint
        if _is_settings(target):
            nested.append((name, hint, meta))
            continue
        for help_line in _wrap(meta.get("help", "")):
            lines.append(f"# {help_line}")
        lines.append(_sample_value(name, field, meta))
        lines.append("")
    for name, hint, nested_meta in nested:
        for help_line in _wrap(nested_meta.get("help", "")):
            lines.append(f"# {help_line}")
        if _origin(hint) is tuple:
            lines.append(f"# [[{_join(path, name)}]]")
            inner = sample_lines(_args(hint)[0], _join(path, name))
            # Keys of a list of tables are indented, to tell them from the parent's keys.
            lines.extend(f"#   {line[2:]}" if line.startswith("# ") else line for line in inner)
        else:
            lines.append(f"[{_join(path, name)}]")
            lines.extend(sample_lines(hint, _join(path, name)))
    return lines


def _sample_value(name: str, field: Field, meta: Mapping[str, Any]) -> str:
    key = name.rstrip("_")
    if meta.get("example") is not None:
        return f"# {key} = {meta['example']}"
    if field.required:
        return f"# {key} = (required)"
    return f"# {key} = {_toml_value(field.make(), meta.get('kind'))}"


def _toml_value(value: Any, kind: str | None) -> str:
    from durability.units import format_duration

    if value is None:
        return "(not set)"
    if kind == "duration":
        return f'"{format_duration(value).replace(" ", "")}"'
    if kind == "percent-or-off" and value == float("inf"):
        return '"off"'
    if kind in ("percent", "percent-or-off"):
        return f'"{value * 100:g}%"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v, kind) for v in value) + "]"
    return str(value)


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, 86) if text else []
