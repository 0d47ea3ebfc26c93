"""The Python API as a notebook uses it: docs/notebook.md runs, and library errors name arguments.

The walk-through's ```python blocks are run in order in one namespace, as notebook cells, in an
empty folder; the value of a block's last expression is what a notebook would show. The errors of
``bench.load_matrix``, ``bench.run_matrix`` / ``bench.api.run`` and ``bench.read_results`` name
the Python argument (``matrix``, ``workers``, ``folder``...), never a CLI flag; the CLI keeps its
flags (tests/test_cli.py, tests/test_catalogue.py).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import bench
from bench.core.errors import BenchError
from bench.inputs.matrix import builtin_profiles

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebook.md"


def cells() -> list[str]:
    """The walk-through's code cells, in order."""
    return re.findall(r"```python\n(.*?)\n```", NOTEBOOK.read_text(encoding="utf-8"), re.DOTALL)


def run_cell(source: str, namespace: dict[str, Any]) -> Any:
    """Run one cell as a notebook does: every statement, and the value of a last expression
    (None when the cell ends with a statement)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<notebook>", "exec"), namespace)  # noqa: S102 - the documentation's own code
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<notebook>", "eval"), namespace)


def test_the_notebook_uses_only_the_public_api() -> None:
    sources = cells()
    assert sources, "docs/notebook.md has no python cells"
    for source in sources:
        ast.parse(source)
    used = set(re.findall(r"\bbench\.(\w+)", "\n".join(sources)))
    assert used <= set(bench.__all__), f"not exported by bench: {used - set(bench.__all__)}"
    for name in ("load_matrix", "run_matrix", "read_results", "list_entries"):
        assert name in bench.__all__ and callable(getattr(bench, name))


def test_load_matrix_takes_a_profile_name_or_a_path(tmp_path: Path) -> None:
    smoke = bench.load_matrix("smoke")
    assert smoke.profile == "smoke" and smoke.builtin
    from bench.inputs.matrix import builtin_matrix_path

    assert bench.load_matrix(builtin_matrix_path("smoke")) == smoke
    own = tmp_path / "smoke"  # an existing file wins over the profile of the same name
    own.write_text(builtin_matrix_path("smoke").read_text().replace("n_samples = 120", "n_samples = 7"))
    assert bench.load_matrix(own).n_samples == 7 and not bench.load_matrix(own).builtin
    assert bench.load_matrix("smoke", profile="mine").profile == "mine"


def test_library_errors_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as missing:
        bench.load_matrix("smoek")
    message = str(missing.value)
    assert message.startswith("matrix 'smoek': no such file or built-in profile; profiles: ")
    assert all(p in message for p in builtin_profiles()) and message.endswith("did you mean 'smoke'?")
    with pytest.raises(BenchError, match=r"^matrix '.*folder': not a file"):
        (tmp_path / "folder").mkdir()
        bench.load_matrix(tmp_path / "folder")
    with pytest.raises(BenchError, match=r"^matrix 'nosuch': no such file or built-in profile"):
        bench.run_matrix("nosuch", results_dir=tmp_path)
    from bench.api import run

    smoke = bench.load_matrix("smoke")
    refusals = {
        "workers": {"workers": 0},
        "workers and scheduler": {"workers": 2, "scheduler": "tcp://127.0.0.1:1"},
        "scheduler_file": {"scheduler_file": tmp_path / "nosuch.json"},
        "device": {"device": "gpu"},
        "images": {"images": tmp_path / "nosuch"},
        "results_dir": {"results_dir": tmp_path / "file"},
    }
    (tmp_path / "file").write_text("")
    for argument, kwargs in refusals.items():
        with pytest.raises(BenchError) as err:
            run(smoke, **{"results_dir": tmp_path / "results", **kwargs})
        assert str(err.value).startswith(argument), (argument, str(err.value))
        # no flag of bench's CLI (a `command` of another tool, quoted, may have its own)
        assert "--" not in re.sub(r"`[^`]*`", "", str(err.value)), str(err.value)
    for folder, why in ((tmp_path / "nosuch", "no such results folder"), (tmp_path, "not a results folder")):
        with pytest.raises(BenchError, match=f"^folder '{re.escape(str(folder))}': {why}"):
            bench.read_results(folder)


def test_list_entries_lists_every_family_as_a_table() -> None:
    every = bench.list_entries()
    assert list(every.columns) == ["family", "name", "canonical", "description"]
    assert set(every["family"]) == {"tasks", "detectors", "defenses", "attacks", "profiles"}
    assert set(every.loc[every["family"] == "profiles", "name"]) == set(builtin_profiles())
    pgd = bench.list_entries("attacks", "art.pgd*")
    assert set(pgd["name"]) == {"art.pgd", "art.pgd-l2"}
    assert pgd.set_index("name").loc["art.pgd", "canonical"].startswith("art.pgd[")
    with pytest.raises(BenchError, match=r"^family 'atacks': not allowed; .*did you mean 'attacks'\?$"):
        bench.list_entries("atacks")


@pytest.mark.slow
def test_the_notebook_runs_and_ends_with_a_table_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        shown = [run_cell(source, namespace) for source in cells()]
    output = printed.getvalue()
    assert "matrix 'smoek': no such file or built-in profile" in output and "--matrix" not in output
    results = namespace["results"]
    assert isinstance(results, bench.api.RunTables) and results.folder == Path("results/quick")
    for name in ("matrix", "samples", "models", "transfer"):
        assert isinstance(getattr(results, name), pd.DataFrame) and len(getattr(results, name)), name
    last = shown[-1]
    assert isinstance(last, pd.DataFrame) and len(last)
    assert {"psnr_mean", "ssim_mean"} <= set(last.columns)
    pd.testing.assert_frame_equal(last, results.matrix.loc[last.index, last.columns])
    assert set(last["quantized"]) == {"float", "uint8"}
    fooled = last[last["robust_accuracy"] < results.matrix.loc[last.index, "clean_accuracy"]]
    assert len(fooled), "the walk-through's PGD rows flipped no patch: nothing to show"
    assert (fooled["psnr_mean"] > 0).all() and fooled["ssim_mean"].between(-1, 1).all()
    # the table read back is the table the run returned
    table = namespace["table"]
    pd.testing.assert_frame_equal(
        results.matrix.reset_index(drop=True), table.reset_index(drop=True), check_dtype=False, check_exact=False
    )
