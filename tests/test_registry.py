"""Registries: names, canonical forms, parameter validation, cheap imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.attacks import ATTACKS
from bench.core.errors import BenchError
from bench.core.registry import Registry, at_least
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS

REGISTRIES = {"task": TASKS, "detector": DETECTORS, "defense": DEFENSES, "attack": ATTACKS}
ALL_ENTRIES = [(family, name) for family, reg in REGISTRIES.items() for name in reg.names()]


def test_registries_hold_the_required_entries() -> None:
    assert {
        "median3",
        "median5",
        "blur",
        "resample",
        "jpeg",
        "gamma",
        "histeq",
        "noise",
        "manipulation-id",
        "camera-sim",
    } <= set(TASKS.names())
    assert {"bayar", "bondi", "mfr", "plain", "srm"} <= set(DETECTORS.names())
    assert {
        "none",
        "grad-penalty",
        "adv-train",
        "grad-penalty+adv-train",
        "trades",
        "jpeg",
        "median-smooth",
        "bit-depth",
        "gauss-noise",
    } <= set(DEFENSES.names())
    assert {
        "art.autoattack",
        "art.bim",
        "art.cw-l2",
        "art.deepfool",
        "art.fgsm",
        "art.hopskipjump",
        "art.pgd",
        "art.pgd-l2",
        "art.square",
        "foolbox.boundary",
        "foolbox.cw-l2",
        "foolbox.deepfool-l2",
        "foolbox.fgsm",
        "foolbox.fmn-l2",
        "foolbox.fmn-linf",
        "foolbox.gaussian-noise",
        "foolbox.pgd",
        "foolbox.pgd-l2",
    } <= set(ATTACKS.names())
    assert ATTACKS.names("art.pgd*") == ["art.pgd", "art.pgd-l2"]


@pytest.mark.parametrize(("family", "name"), ALL_ENTRIES, ids=[f"{f}:{n}" for f, n in ALL_ENTRIES])
def test_canonical_name_round_trips(family: str, name: str) -> None:
    registry = REGISTRIES[family]
    spec = registry.resolve(name)
    assert registry.resolve(str(spec)) == spec
    assert str(spec).startswith(name)
    assert registry.entry(name).info.description


def test_canonical_form_sorts_keys_and_types_values() -> None:
    spec = ATTACKS.resolve("art.pgd[steps=20, rel_stepsize=1e-1,random_start=false]")
    assert str(spec) == "art.pgd[random_start=false,rel_stepsize=0.1,steps=20]"
    assert str(DEFENSES.resolve("grad-penalty[lambda=1]")) == "grad-penalty[lambda=1.0,squared=false]"
    assert DEFENSES.resolve("grad-penalty[lambda=1]") == DEFENSES.resolve("grad-penalty[lambda=1.0]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuch", "unknown defense 'nosuch'; allowed: adv-train, bit-depth, gauss-noise, grad-penalty, "),
        ("grad-penalty[mu=1]", "unknown parameter 'mu' for grad-penalty; allowed: lambda, squared"),
        ("grad-penalty[lambda=-1]", "lambda must be a number >= 0.0"),
        ("grad-penalty[lambda=abc]", "lambda must be a number"),
        ("grad-penalty[lambda]", "is not of the form key=value"),
        ("grad-penalty[lambda=1,lambda=2]", "given twice"),
    ],
)
def test_bad_specs_are_refused_with_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(BenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DEFENSES.resolve(text)


def test_bad_values_for_typed_parameters() -> None:
    with pytest.raises(BenchError, match="steps must be an integer >= 1"):
        ATTACKS.resolve("art.pgd[steps=0]")
    with pytest.raises(BenchError, match="steps must be an integer"):
        ATTACKS.resolve("art.pgd[steps=2.5]")
    with pytest.raises(BenchError, match="random_start must be true or false"):
        ATTACKS.resolve("art.pgd[random_start=maybe]")


def test_duplicate_names_raise_and_factories_must_be_keyword_only() -> None:
    registry: Registry[object] = Registry("thing", modules=(), group="forensic_bench.test-things")

    @registry.register("a", info=None)
    def a(*, size: int = 1) -> object:
        return size

    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        registry.register("a", info=None)(a)
    with pytest.raises(TypeError, match="keyword-only"):

        @registry.register("b", info=None)
        def b(size: int = 1) -> object:
            return size

    assert registry.create("a[size=3]") == 3
    assert at_least(1).predicate(1) and not at_least(1).predicate(0)


def test_listing_entries_does_not_import_torch_or_attack_libraries() -> None:
    code = (
        "import sys; from bench.cli import main; main(['list']);"
        "heavy = [m for m in ('torch', 'art', 'foolbox') if m in sys.modules]; print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for _, name in ALL_ENTRIES:
        assert name in out


@pytest.mark.parametrize(("family", "name"), ALL_ENTRIES, ids=[f"{f}:{n}" for f, n in ALL_ENTRIES])
def test_every_built_in_entry_is_discovered_from_its_own_module(family: str, name: str) -> None:
    """An entry is one decorated definition in one module of its family's package, found without a
    hand-kept list (so adding one is one new file); shared code lives in modules starting with "_"."""
    registry = REGISTRIES[family]
    module = registry.entry(name).factory.__module__
    assert module in registry.builtin_modules()
    assert not any(part.startswith("_") for part in module.split("."))


def test_a_new_attack_may_subclass_a_built_in_one_and_add_a_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fields inherited from a class of another module keep their types and checks."""
    import importlib

    (tmp_path / "more_pgd_entry.py").write_text(
        "from dataclasses import dataclass\n\n"
        "from bench.attacks import AttackInfo, register_attack\n"
        "from bench.attacks.foolbox.pgd import FoolboxPGD\n\n\n"
        '@register_attack("test.more-pgd", info=AttackInfo("PGD with a field of its own"))\n'
        "@dataclass(frozen=True, kw_only=True)\n"
        "class MorePGD(FoolboxPGD):\n"
        "    restarts: int = 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("more_pgd_entry")
        spec = ATTACKS.resolve("test.more-pgd[steps=5]")
        assert str(spec) == "test.more-pgd[random_start=true,rel_stepsize=0.25,restarts=2,steps=5]"
        with pytest.raises(BenchError, match="steps must be an integer >= 1"):
            ATTACKS.resolve("test.more-pgd[steps=0]")
        assert ATTACKS.create(spec).params == {"random_start": True, "rel_stepsize": 0.25, "restarts": 2, "steps": 5}
    finally:
        ATTACKS.unregister("test.more-pgd")
        sys.modules.pop("more_pgd_entry", None)


ITERATIONS = re.compile(r"steps|queries|eval|iterations|samples|restarts")


@pytest.mark.parametrize("registry", [ATTACKS, DEFENSES, DETECTORS, TASKS], ids=lambda r: r.family)
def test_every_iteration_step_and_query_parameter_has_an_upper_bound(registry: Registry[Any]) -> None:
    """A matrix cannot ask for a run that never ends (``art.pgd[steps=1e20]``): the bound is in
    the one-line error."""
    for name in registry.names():
        for param in registry.entry(name).params:
            if param.type is int and ITERATIONS.search(param.key):
                assert any(c.allowed.startswith("<=") for c in param.checks), f"{name}: {param.key} has no upper bound"
                with pytest.raises(BenchError, match=rf"{param.key} must be an integer .*<= "):
                    registry.spec(name, {param.key: 10**12})
