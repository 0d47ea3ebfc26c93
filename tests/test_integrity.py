"""The cache verifies what it serves: every kind of entry damaged three ways is reported in one
line, moved aside, recomputed, and the tables equal an undamaged run's."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bench.api import run
from bench.inputs.matrix import parse_matrix
from bench.run.execute import RunResult
from bench.run.store import Store
from tests.tiny import tiny_doc

# kind of entry -> (cache folder, file suffix); every kind the cache holds
KINDS = {
    "model weights": ("models", ".pt"),
    "model metadata": ("models", ".json"),
    "cell rows": ("cells", ".rows.parquet"),
    "cell samples": ("cells", ".samples.parquet"),
    "cell images": ("cells", ".images.npz"),
    "probes": ("probes", ".json"),
    "dataset": ("datasets", ".npz"),
    "dataset description": ("datasets", ".json"),
    "transfer pair": ("transfer", ".npz"),
}


def flip(path: Path) -> None:
    """Invert 64 bytes in the middle of the file."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 64, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGES = {"flipped": flip, "truncated": truncate, "emptied": empty}


@dataclass
class Cold:
    result: RunResult
    cache: Path


def _run(results: Path, cache: Path, warn: list[str]) -> RunResult:
    return run(parse_matrix(tiny_doc()), results_dir=results, cache_dir=cache, warn=warn.append)


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Cold:
    root = tmp_path_factory.mktemp("cold")
    warned: list[str] = []
    result = _run(root / "results", root / "cache", warned)
    assert not warned
    return Cold(result, root / "cache")


def _equal(a: RunResult, b: RunResult) -> None:
    """Equal tables in every column but timings and whether a model came from the cache."""
    timings = ["seconds", "train_seconds"]
    pd.testing.assert_frame_equal(a.table.drop(columns=timings), b.table.drop(columns=timings))
    pd.testing.assert_frame_equal(a.samples, b.samples)
    drop = ["train_seconds", "from_cache"]
    pd.testing.assert_frame_equal(a.models.drop(columns=drop), b.models.drop(columns=drop))
    assert a.probes is not None and b.probes is not None
    pd.testing.assert_frame_equal(a.probes.drop(columns="seconds"), b.probes.drop(columns="seconds"))
    assert a.transfer is not None and b.transfer is not None
    pd.testing.assert_frame_equal(a.transfer, b.transfer)


def _damage_and_rerun(cold: Cold, tmp_path: Path, kind: str, damage: str) -> None:
    folder, suffix = KINDS[kind]
    cache = tmp_path / "cache"
    shutil.copytree(cold.cache, cache)
    # one entry of its kind (a run has several cells: its attack's and the reference runs')
    target = min(p for p in (cache / folder).iterdir() if p.name.endswith(suffix) and "manifest" not in p.name)
    DAMAGES[damage](target)
    warned: list[str] = []
    again = _run(tmp_path / "results", cache, warned)
    assert len(warned) == 1 and "\n" not in warned[0], warned
    kind_named = {"transfer": "transfer pair"}.get(folder, folder[:-1])
    assert warned[0].startswith(f"cache: damaged {kind_named} entry {target.name.split('.')[0]}"), warned
    moved = list((cache / "damaged" / folder).rglob(target.name))
    assert len(moved) == 1 and moved[0].read_bytes() != (cold.cache / folder / target.name).read_bytes()
    if suffix in (".pt", ".npz", ".samples.parquet"):  # the others record timings
        assert target.read_bytes() == (cold.cache / folder / target.name).read_bytes()  # recomputed, same bytes
    computed = {
        "models": again.stats["models_trained"],
        "cells": again.stats["cells_computed"],
        "transfer": again.stats["transfer_pairs_computed"],
    }
    assert computed.get(folder, 1) == 1 and sum(computed.values()) == (folder in computed), again.stats
    assert Store(cache).probe(target.name.split(".")[0]) is not None if folder == "probes" else True
    _equal(cold.result, again)
    assert not Store(cache).damaged  # a fresh store reads everything back clean
    warned.clear()
    _run(tmp_path / "results", cache, warned)
    assert not warned


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.slow
def test_damaged_entry_is_reported_moved_aside_and_recomputed(
    cold: Cold, tmp_path: Path, kind: str, damage: str
) -> None:
    _damage_and_rerun(cold, tmp_path, kind, damage)


def test_a_manifest_lists_every_file_with_its_digest(tmp_path: Path) -> None:
    """Quick: one entry written, read back, damaged in the manifest itself, then reported."""
    store = Store(tmp_path, warn=lambda _: None)
    store.put_probe("k" * 20, {"n": 3})
    assert store.probe("k" * 20) == {"n": 3}
    manifest = tmp_path / "probes" / f"{'k' * 20}.manifest.json"
    manifest.write_text(manifest.read_text().replace('"bytes"', '"bites"'))
    assert store.probe("k" * 20) is None
    assert len(store.damaged) == 1 and "manifest unreadable" in store.damaged[0]
    assert not list((tmp_path / "probes").iterdir())  # moved aside, not deleted
    assert len(list((tmp_path / "damaged" / "probes").rglob("*"))) == 3  # its folder, the json and the manifest
    assert store.probe("k" * 20) is None and len(store.damaged) == 1  # now simply absent


def test_files_without_a_manifest_are_absent_not_served(tmp_path: Path) -> None:
    """An interrupted write (or a cache from before manifests) is recomputed, never trusted."""
    store = Store(tmp_path)
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / f"{'k' * 20}.json").write_text('{"n": 3}')
    assert store.probe("k" * 20) is None and not store.damaged
