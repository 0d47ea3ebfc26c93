"""Content keys: hashes of settings and fingerprints of the code that computes a result.

A cache key must change when something that can change the numbers changes, and only then. The
code part of a key is a *fingerprint*: a hash of a module's normalised syntax tree and of the
trees of every project module it imports, found by following its import statements (at module
level and inside functions), plus the versions of the third-party distributions those modules
import. Normalising drops what cannot change a number: docstrings, comments (the parser never
sees them), layout, type annotations of functions and local variables, and ``if TYPE_CHECKING:``
blocks. So editing a docstring changes no key, while editing any function a stage can call - in
its own module or in one it imports - changes the key of everything that stage computes. A new
module that nothing imports (a new registry entry) changes no existing key.

Three project modules are never followed (:data:`UNFOLLOWED`): the package's lazy public API
(``bench/__init__.py``), the error class and this module - none of them computes a number. The
``info=`` argument of a registration decorator (an entry's description, reference and registry
metadata) is dropped as well: whatever of it shapes a result (a defence's kind and gradients)
reaches the keys through the canonical names and the plan. The Python version is part of every
fingerprint, since the syntax tree's dump differs between versions.

The granularity is the module: editing one function of a module re-keys everything that imports
the module, whether or not it calls that function. Keep stage modules small and free of
orchestration (bench/run/plan.py lists the stage modules).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

KEY_LENGTH = 20  # hex digits of SHA-256 kept in keys and file names
PROJECT = ("bench", "detectors", "defenses")  # top-level packages whose imports are followed
UNFOLLOWED = frozenset({"bench", "bench.core.errors", "bench.core.fingerprint"})  # compute no number


def digest(*parts: Any) -> str:
    """Stable hash of JSON-serialisable parts (sorted keys; other objects by ``str``)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


class _Normalise(ast.NodeTransformer):
    """Drop what cannot change what the code computes: docstrings, annotations, TYPE_CHECKING blocks."""

    def __init__(self) -> None:
        self._in_class = False

    @staticmethod
    def _body(body: list[ast.stmt]) -> list[ast.stmt]:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            body = body[1:]
        return body or [ast.Pass()]

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._body(node.body)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = self._body(node.body)
        self._decorators(node)
        outer, self._in_class = self._in_class, True
        node = self.generic_visit(node)  # type: ignore[assignment]
        self._in_class = outer
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.body = self._body(node.body)
        node.returns = None
        self._decorators(node)
        outer, self._in_class = self._in_class, False
        node = self.generic_visit(node)  # type: ignore[assignment]
        self._in_class = outer
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.annotation = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if self._in_class:  # a class-level annotation declares a dataclass field or a ClassVar
            return self.generic_visit(node)
        if node.value is None:
            return None
        return self.generic_visit(ast.Assign(targets=[node.target], value=node.value, lineno=0))

    def visit_If(self, node: ast.If) -> Any:
        if _is_type_checking(node):  # never executed
            return [self.visit(n) for n in node.orelse] or None
        return self.generic_visit(node)

    def _decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        """A registration decorator's ``info=`` (description, reference, metadata) computes nothing."""
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call):
                decorator.keywords = [k for k in decorator.keywords if k.arg != "info"]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.cache
def _root(top: str) -> Path | None:
    """The folder of a top-level package (or the file of a top-level module), found without importing it."""
    spec = importlib.util.find_spec(top)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def module_file(name: str) -> Path | None:
    """The source file of a module of a followed package (None when there is none)."""
    top, *rest = name.split(".")
    root = _root(top)
    if root is None:
        return None
    if root.is_file():
        return root if not rest else None
    path = root.joinpath(*rest)
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _parsed(name: str) -> tuple[str, frozenset[str]]:
    """A module's normalised tree (as text) and every module name its import statements name."""
    path = module_file(name)
    if path is None:
        return "", frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
    text = ast.dump(_Normalise().visit(tree), annotate_fields=False, include_attributes=False)
    return text, frozenset(imported)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of a tree except those inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


@functools.cache  # importlib.metadata reads the distribution's files at every call
def _library_version(top: str) -> str | None:
    """``dist==version`` of the distribution behind a third-party top-level module (None: standard library)."""
    if top in sys.stdlib_module_names or top == "__future__":
        return None
    found = []
    for dist in sorted(set(_distributions().get(top, []))):
        try:
            found.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - a stale distribution record
            continue
    return ",".join(found) if found else f"{top}==unknown"


def _with_parents(name: str) -> list[str]:
    """A module and the packages above it (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The project modules a module reaches through its imports (itself and its parent packages
    included, sorted) and the third-party distributions they import (``dist==version``, sorted)."""
    followed = {*PROJECT, name.partition(".")[0]}
    seen: set[str] = set()
    libraries: set[str] = set()
    todo = [m for m in _with_parents(name) if m not in UNFOLLOWED]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        imports = {m for imported in _parsed(current)[1] for m in _with_parents(imported)}
        for imported in imports:
            top = imported.partition(".")[0]
            if top not in followed:
                if (lib := _library_version(top)) is not None:
                    libraries.add(lib)
            elif imported not in seen and imported not in UNFOLLOWED and module_file(imported) is not None:
                todo.append(imported)
    return tuple(sorted(m for m in seen if module_file(m) is not None)), tuple(sorted(libraries))


@functools.cache
def fingerprint(name: str) -> str:
    """Fingerprint of a module (given by its dotted name): its normalised code, that of every
    project module it imports (transitively) and the versions of the libraries they import."""
    modules, libraries = closure(name)
    if not modules:
        raise ValueError(f"no source file for module {name!r}")
    h = hashlib.sha256(f"python {sys.version_info.major}.{sys.version_info.minor}".encode())
    for module in modules:
        h.update(module.encode() + b"\0" + _parsed(module)[0].encode() + b"\0")
    for library in libraries:
        h.update(library.encode() + b"\0")
    return h.hexdigest()[:KEY_LENGTH]
