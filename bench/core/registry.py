"""One small registry per family (tasks, detectors, defences, attacks) with canonical names.

An entry is one decorated factory with keyword-only, typed parameters::

    @register_defense("grad-penalty", info=DefenseInfo(...))
    def grad_penalty(*, lambda_: Annotated[float, at_least(0.0)] = 0.05) -> Defense: ...

Its canonical name lists every parameter with sorted keys, ``grad-penalty[lambda=0.05]``; a
trailing underscore (needed for Python keywords such as ``lambda``) is not part of the key.
That string is the CLI selector, the table label, the figure legend, the test id and part of
the cache key. Registries hold names and factories only: entry modules import torch, ART or
Foolbox inside the factory, so listing entries stays cheap.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import math
import pkgutil
import re
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar

from bench.core.errors import BenchError, did_you_mean
from bench.core.fingerprint import digest, fingerprint

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.+_-]*$")
_SPEC_RE = re.compile(r"^\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*$")


@dataclass(frozen=True)
class Check:
    """A constraint on a parameter value, used as ``Annotated[float, at_least(0)]``."""

    predicate: Callable[[Any], bool]
    allowed: str


def at_least(bound: float) -> Check:
    """Value must be >= bound."""
    return Check(lambda v: v >= bound, f">= {bound}")


def greater_than(bound: float) -> Check:
    """Value must be > bound."""
    return Check(lambda v: v > bound, f"> {bound}")


def at_most(bound: float) -> Check:
    """Value must be <= bound."""
    return Check(lambda v: v <= bound, f"<= {bound}")


def less_than(bound: float) -> Check:
    """Value must be < bound."""
    return Check(lambda v: v < bound, f"< {bound}")


@dataclass(frozen=True)
class Param:
    """One typed keyword-only parameter of an entry."""

    key: str  # canonical key, e.g. "lambda"
    argname: str  # Python argument name, e.g. "lambda_"
    type: Any  # int, float, bool, str or a Literal[...]
    default: Any
    checks: tuple[Check, ...] = ()

    def allowed(self) -> str:
        """Human-readable description of allowed values."""
        if typing.get_origin(self.type) is Literal:
            return "one of " + ", ".join(format_value(v) for v in typing.get_args(self.type))
        text = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
        return " ".join([text, *(c.allowed for c in self.checks)])

    def coerce(self, value: Any, where: str, *, strict: bool = False) -> Any:
        """Convert a parsed or TOML value to this parameter's type, or raise BenchError.

        ``strict`` (values of a TOML table, which carry their own types): a string is not a
        number or a boolean, a float is not an integer; a list, a table or a date is never a value.
        """
        error = BenchError(f"{where}: {self.key}={value!r} is not allowed; {self.key} must be {self.allowed()}")
        if not isinstance(value, (bool, int, float, str)):
            raise error
        kind = self.type
        if typing.get_origin(kind) is Literal:
            choices = typing.get_args(kind)
            if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
                raise error
            return value
        if kind is bool:
            if isinstance(value, bool):
                return value
            if not strict and isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise error
        if strict and isinstance(value, str) and kind is not str:
            raise error
        if kind is int:
            if isinstance(value, bool) or (strict and isinstance(value, float)):
                raise error
            try:
                out: Any = int(value) if not isinstance(value, float) or value.is_integer() else None
            except ValueError:
                out = None
            if out is None:
                raise error
        elif kind is float:
            if isinstance(value, bool):
                raise error
            try:
                out = float(value)
            except (ValueError, OverflowError):
                raise error from None
            if not math.isfinite(out):
                raise error
        else:
            if strict and not isinstance(value, str):
                raise error
            out = str(value)
        if not all(check.predicate(out) for check in self.checks):
            raise error
        return out


def format_value(value: Any) -> str:
    """Canonical text of a parameter value (TOML-like booleans, repr of floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _parse_literal(text: str) -> Any:
    """Parse a value written inside ``name[k=v]``; typing happens later in Param.coerce."""
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class Spec:
    """A fully resolved entry: family, name and every parameter value (sorted by key)."""

    family: str
    name: str
    params: tuple[tuple[str, Any], ...]

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={format_value(v)}' for k, v in self.params)}]"

    def get(self, key: str) -> Any:
        """Value of one parameter by canonical key."""
        return dict(self.params)[key]


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered factory with its description and parameters."""

    name: str
    factory: Callable[..., T]
    info: Any
    params: tuple[Param, ...]
    context: tuple[str, ...]  # the registry's context arguments this factory accepts
    check: Callable[[dict[str, Any]], str | None] | None = None  # cross-parameter rule: message if broken
    version: int = 0  # bumped by hand when the entry's results change without its code changing

    @property
    def fingerprint(self) -> str:
        """The entry's part of every cache key that uses it: the code fingerprint of its module (and
        of the project modules that imports, bench/core/fingerprint.py) and its explicit version."""
        return digest("entry", self.name, self.version, fingerprint(self.factory.__module__))


@dataclass
class Registry(Generic[T]):
    """Name -> factory map for one family, filled by decorators and entry points.

    Args:
        family: singular noun used in messages ("detector").
        modules: built-in modules that register entries when imported (imported lazily), or
            the name of a package: then every module in it and in its sub-packages whose name
            does not start with an underscore, so a new built-in entry is one file dropped into
            the package. Helper modules (``_layers.py``) start with an underscore.
        group: entry-point group through which third-party packages add entries.
        context: keyword-only factory arguments supplied by the harness rather than the user
            (for detectors: the task's channels and number of classes); they are not parameters.
    """

    family: str
    modules: tuple[str, ...] | str
    group: str
    context: tuple[str, ...] = ()
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _loaded: bool = False

    def register(
        self,
        name: str,
        *,
        info: Any,
        check: Callable[[dict[str, Any]], str | None] | None = None,
        version: int = 0,
    ) -> Callable[[F], F]:
        """Decorator: register a factory (a function, or a class whose constructor takes the
        parameters) under ``name``; a duplicate name raises ValueError.

        ``check`` validates combinations of parameter values (keys as in the canonical name):
        it returns a message when they do not go together, and every spec is checked when it is
        resolved, so a matrix file with a bad combination is refused before anything runs.
        ``version`` is part of the entry's cache keys: bump it when its results change for a
        reason its code does not show.
        """

        def decorate(factory: F) -> F:
            if not _NAME_RE.match(name):
                raise ValueError(f"invalid {self.family} name {name!r}")
            if name in self._entries:
                raise ValueError(f"duplicate {self.family} name {name!r}")
            accepted = tuple(c for c in self.context if c in inspect.signature(factory).parameters)
            params = _params_of(factory, self.context)
            self._entries[name] = Entry(name, factory, info, params, accepted, check, version)
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Remove an entry (used by tests that register temporary fixtures)."""
        del self._entries[name]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin_modules():
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            ep.load()

    def builtin_modules(self) -> tuple[str, ...]:
        """The modules whose import registers the built-in entries."""
        if isinstance(self.modules, tuple):
            return self.modules
        package = importlib.import_module(self.modules)
        prefix = f"{self.modules}."
        found = pkgutil.walk_packages(package.__path__, prefix=prefix)
        public = (m.name for m in found if not any(p.startswith("_") for p in m.name[len(prefix) :].split(".")))
        return tuple(sorted(public))

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a glob pattern."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entry(self, name: str) -> Entry[T]:
        """The entry registered under ``name``, or BenchError listing the allowed names."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            names = self.names()
            raise BenchError(
                f"unknown {self.family} {name!r}; allowed: {', '.join(names)}{did_you_mean(name, names)}"
            ) from None

    def resolve(self, text: str | Spec, where: str | None = None) -> Spec:
        """Parse ``name[k=v,...]`` into a Spec with every parameter typed and filled in."""
        if isinstance(text, Spec):
            return text
        where = where or self.family
        match = _SPEC_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise BenchError(f"{where}: {text!r} is not of the form name or name[key=value,...]")
        name, body = match.group(1), match.group(2)
        try:
            self.entry(name)
        except BenchError as err:
            raise BenchError(f"{where}: {err}") from None
        given: dict[str, Any] = {}
        for item in filter(None, (body or "").split(",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise BenchError(f"{where}: {item.strip()!r} in {text!r} is not of the form key=value")
            if key in given:
                raise BenchError(f"{where}: parameter {key!r} given twice in {text!r}")
            given[key] = _parse_literal(value)
        return self.spec(name, given, where)

    def spec(self, name: str, given: dict[str, Any], where: str | None = None) -> Spec:
        """Build a Spec from a name and a mapping of parameter values."""
        where = where or self.family
        entry = self.entry(name)
        known = {p.key: p for p in entry.params}
        for key in given:
            if key not in known:
                allowed = ", ".join(known) or "none"
                raise BenchError(
                    f"{where}: unknown parameter {key!r} for {name}; allowed: {allowed}{did_you_mean(key, known)}"
                )
        values = tuple(
            (p.key, p.coerce(given[p.key], f"{where}: {name}") if p.key in given else p.default)
            for p in sorted(entry.params, key=lambda p: p.key)
        )
        if entry.check is not None and (message := entry.check(dict(values))):
            raise BenchError(f"{where}: {message} in {name}")
        return Spec(self.family, name, values)

    def create(self, spec: str | Spec, **context: Any) -> T:
        """Build the object named by ``spec``; ``context`` supplies harness-provided arguments."""
        spec = self.resolve(spec)
        entry = self.entry(spec.name)
        kwargs = {p.argname: spec.get(p.key) for p in entry.params}
        return entry.factory(**kwargs, **{k: v for k, v in context.items() if k in entry.context})


def _params_of(factory: Callable[..., Any], context: tuple[str, ...]) -> tuple[Param, ...]:
    """Read typed keyword-only parameters (with defaults) from a factory's signature (for a class,
    its constructor's: a keyword-only dataclass declares each parameter once, as a field)."""
    params = []
    namespace = vars(sys.modules[factory.__module__])
    # a class's fields may be inherited from a class of another module: resolve each where it is written
    fields = typing.get_type_hints(factory, include_extras=True) if isinstance(factory, type) else {}
    for p in inspect.signature(factory).parameters.values():
        if p.name in context:
            continue
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"{factory.__qualname__}: parameter {p.name!r} must be keyword-only with a default")
        hint = fields.get(p.name, p.annotation)
        if hint is inspect.Parameter.empty:
            hint = type(p.default)
        elif isinstance(hint, str):  # postponed annotation; the return type may be TYPE_CHECKING-only
            hint = eval(hint, namespace)
        checks: tuple[Check, ...] = ()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extra = typing.get_args(hint)
            checks = tuple(c for c in extra if isinstance(c, Check))
        if hint not in (int, float, bool, str) and typing.get_origin(hint) is not Literal:
            raise TypeError(f"{factory.__qualname__}: parameter {p.name!r} has unsupported type {hint!r}")
        params.append(Param(p.name.rstrip("_"), p.name, hint, p.default, checks))
    return tuple(params)
