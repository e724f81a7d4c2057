"""Light frozen records for the cron path.

`dataclasses` generates and compiles several methods per class at import time and pulls
in `inspect`; on a node where `durability raid` runs every few minutes that alone costs
more than the check itself. `Record` gives the same shape (keyword construction,
defaults, immutability, equality, `replace`) with nothing compiled at import.

    class Member(Record):
        device: str
        flags: frozenset[str] = frozenset()

Fields are the class annotations in definition order; a default is the class attribute
of the same name, or `factory(callable)` for a fresh mutable default.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    R = TypeVar("R", bound="Record")

else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


_MISSING: Any = object()


class Field:
    """A field declaration: a default, or a factory for a fresh default, and metadata."""

    __slots__ = ("default", "factory", "metadata")

    def __init__(
        self,
        default: Any = _MISSING,
        factory: Callable[[], Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.default = default
        self.factory = factory
        self.metadata = metadata or {}

    @property
    def required(self) -> bool:
        """Return True when the field has neither a default nor a factory."""
        return self.default is _MISSING and self.factory is None

    def make(self) -> Any:
        """Return the default value (a fresh one from the factory, if any)."""
        if self.factory is not None:
            return self.factory()
        return self.default


class _CompatField:
    __slots__ = ("_field_type", "default", "init", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.init = True
        self.default = None
        self._field_type = None


def field(
    default: Any = _MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Declare a field with a default or a factory (like dataclasses.field)."""
    return Field(default, factory, metadata)


def factory(make: Callable[[], Any]) -> Any:
    """Return a default that calls `make()` for each new record (like default_factory)."""
    return Field(factory=make)


@dataclass_transform(frozen_default=True, kw_only_default=False, field_specifiers=(field,))
class Record:
    """Base of frozen records: keyword or positional construction, equality, replace."""

    __slots__ = ()
    __fields__: tuple[str, ...] = ()
    __defaults__: dict[str, Any] = {}
    __dataclass_fields__: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        defaults: dict[str, Any] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Record) and base is not Record:
                names.extend(n for n in base.__fields__ if n not in names)
                defaults.update(base.__defaults__)
        for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063 - no inspect here
            if name.startswith("__"):
                continue
            if name not in names:
                names.append(name)
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                delattr(cls, name)  # the instance value lives in __dict__
        cls.__fields__ = tuple(names)
        cls.__defaults__ = defaults
        # Enough of the dataclass protocol for `dataclasses.replace(record, ...)` to work
        # in code that already imports dataclasses (it needs a name and `init` per field).
        cls.__dataclass_fields__ = {name: _CompatField(name) for name in names}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.__fields__
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, got {len(args)}")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key in values:
                raise TypeError(f"{type(self).__name__} got {key!r} twice")
            if key not in self.__defaults__ and key not in fields:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            values[key] = value
        target = self.__dict__
        for name in fields:
            if name in values:
                target[name] = values[name]
            elif name in self.__defaults__:
                default = self.__defaults__[name]
                if isinstance(default, Field):
                    if default.required:
                        raise TypeError(f"{type(self).__name__} missing field {name!r}")
                    target[name] = default.make()
                else:
                    target[name] = default
            else:
                raise TypeError(f"{type(self).__name__} missing field {name!r}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(_hashable(self.__dict__[n]) for n in self.__fields__)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self.__fields__)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _rebuild(cls: type[Record], values: dict[str, Any]) -> Record:
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record


def replace(record: R, **changes: Any) -> R:
    """Return a copy of a record with some fields changed (like dataclasses.replace)."""
    values = {name: record.__dict__[name] for name in record.__fields__}
    values.update(changes)
    return type(record)(**values)


def fields(record_or_class: Record | type[Record]) -> tuple[str, ...]:
    """Return the field names of a record class or instance, in definition order."""
    return record_or_class.__fields__


def asdict(record: Record) -> dict[str, Any]:
    """Return a record's fields as a dict (shallow)."""
    return {name: record.__dict__[name] for name in record.__fields__}


def field_types(cls: type[Record]) -> dict[str, Any]:
    """Return the evaluated annotation of every field of a record class.

    Annotations are strings (`from __future__ import annotations`); they are evaluated
    in the defining module, which needs no `typing` machinery for the builtin forms
    (`str | None`, `tuple[str, ...]`, `dict[str, str]`).
    """
    cached = cls.__dict__.get("_field_types_cache")
    if cached is not None:
        return dict(cached)
    namespace = dict(vars(sys.modules[cls.__module__]))
    types: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if name in cls.__fields__:
                types[name] = (
                    eval(annotation, namespace)  # noqa: S307 - our own annotations
                    if isinstance(annotation, str)
                    else annotation
                )
    type.__setattr__(cls, "_field_types_cache", types)
    return dict(types)
