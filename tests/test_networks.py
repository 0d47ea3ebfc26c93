"""Bring your own detector: networks trained elsewhere (``torchscript``, ``state-dict``, ``bench.evaluate``).

A TorchScript export of a model the suite trained gives that model's rows; every bad file is
refused in one line with exit status 2 before any work; the file's digest keys the results.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.inputs.matrix import parse_matrix
from tests.test_cli import _cli
from tests.tiny import TINY_TOML, tiny_doc

# columns that name the model (the detector's canonical name, the cache keys) or time it: every
# other column of a row is a number or a setting the two detectors must share
NOT_COMPARED = ("detector", "model", "cell", "seconds", "train_seconds")


def _srm(classes: int = 2, width: int = 4, seed: int = 0) -> Any:
    import torch

    from detectors import create_detector

    torch.manual_seed(seed)
    return create_detector(f"srm[width={width}]", in_channels=1, num_classes=classes).eval()


def _small(classes: int = 2) -> Any:
    """A network that is cheap to export: a convolution, pooling and a linear layer."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))


def small_factory(*, in_channels: int = 1, num_classes: int = 2) -> Any:
    """An importable factory (``state-dict[factory=tests.test_networks:small_factory,...]``)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes)
    )


def _script(model: Any, path: Path) -> Path:
    import torch

    torch.jit.save(torch.jit.trace(model, torch.rand(1, 1, 64, 64), check_trace=False), str(path))
    return path


def _bad_files(folder: Path) -> dict[str, tuple[str, str]]:
    """Case -> (detector entry, a fragment of the one-line refusal)."""
    import torch
    from torch import nn

    torch.save(_srm(width=8).state_dict(), folder / "wide.pt")
    _script(_small(classes=3), folder / "three.pt")

    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x.mean((2, 3)), x.amax((2, 3))

    _script(Pair(), folder / "pair.pt")
    torch.save(_srm(), folder / "pickled.pt")
    _script(nn.Sequential(_small(), nn.Softmax(1)), folder / "softmax.pt")
    return {
        "state dict of the wrong shape": (
            "state-dict[factory=srm[width=4],path=wide.pt]",
            "does not fit factory srm[width=4]: size mismatch for",
        ),
        "TorchScript with 3 outputs on a 2-class task": ("torchscript[path=three.pt]", "returns shape (1, 3)"),
        "TorchScript returning a tuple": ("torchscript[path=pair.pt]", "returns a tuple of 2 outputs"),
        "pickled module as a state dict": ("state-dict[factory=srm[width=4],path=pickled.pt]", "never loaded"),
        "pickled module as TorchScript": ("torchscript[path=pickled.pt]", "holds a torch.save pickle"),
        "softmax outputs": ("torchscript[path=softmax.pt]", "returns probabilities"),
        "no such file": ("torchscript[path=nope.pt]", "nope.pt: no such network file"),
        "no path": ("torchscript", "path is empty"),
        "unknown factory": ("state-dict[factory=resnet,path=wide.pt]", "no such registered detector"),
    }


def test_bad_networks_are_refused_in_one_line_before_any_work(tmp_path: Path) -> None:
    cases = _bad_files(tmp_path)
    for case, (entry, fragment) in cases.items():
        toml = tmp_path / "m.toml"
        toml.write_text(TINY_TOML.replace('detectors = ["srm[width=4]"]', f'detectors = ["{entry}"]'))
        done = _cli(["run", "--matrix", str(toml), "--results", str(tmp_path / "results"), "-q"], tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (case, done.stderr)
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in done.stderr, (case, done.stderr)
        assert not (tmp_path / "results").exists(), case  # refused before anything was written


def test_a_state_dict_loads_into_a_registered_or_an_imported_factory(tmp_path: Path) -> None:
    import torch

    from detectors import create_detector
    from detectors._networks import network_digest

    x = torch.rand(2, 1, 64, 64)
    for factory, module in (("srm[width=4]", _srm()), ("tests.test_networks:small_factory", small_factory())):
        torch.save(module.state_dict(), tmp_path / "w.pt")
        entry = f"state-dict[factory={factory},path=w.pt]"
        spec = parse_matrix(tiny_doc(detectors=[entry]), base=tmp_path).detectors[0]
        loaded = create_detector(spec, in_channels=1, num_classes=2)
        with torch.no_grad():
            assert torch.equal(loaded(x), module.eval()(x)), factory
        assert len(network_digest(spec)) == 64


def test_training_defences_are_refused_with_a_network(tmp_path: Path) -> None:
    _script(_small(), tmp_path / "net.pt")
    doc = tiny_doc(detectors=["torchscript[path=net.pt]"], defenses=["none", "grad-penalty"])
    with pytest.raises(BenchError, match=r"grad-penalty.* trains the detector"):
        parse_matrix(doc, base=tmp_path)
    matrix = parse_matrix({**doc, "defenses": ["none", "jpeg"]}, base=tmp_path)  # transforms apply
    assert [str(d) for d in matrix.defenses] == ["none", "jpeg[quality=90]"]


def test_relative_paths_are_read_from_the_matrix_folder(tmp_path: Path) -> None:
    from bench.inputs.matrix import load_matrix

    _script(_small(), tmp_path / "net.pt")
    toml = tmp_path / "m.toml"
    toml.write_text(TINY_TOML.replace('detectors = ["srm[width=4]"]', 'detectors = ["torchscript[path=net.pt]"]'))
    matrix = load_matrix(toml)
    assert str(matrix.detectors[0]) == f"torchscript[path={(tmp_path / 'net.pt').resolve()}]"


def test_the_files_digest_keys_the_network(tmp_path: Path) -> None:
    """Editing the file re-keys its model (and so its cells); the same bytes keep the key; a
    state dict's key holds its factory's code; a registry model's key is unchanged by the entries."""
    import torch

    from bench.inputs.photos import builtin_source
    from bench.run.plan import make_plan

    def plan(detectors: list[str]) -> Any:
        return make_plan(parse_matrix(tiny_doc(detectors=detectors), base=tmp_path), builtin_source(), threads=1)

    _script(_srm(seed=0), tmp_path / "net.pt")
    torch.save(_srm(seed=0).state_dict(), tmp_path / "sd.pt")
    first = plan(["torchscript[path=net.pt]", "state-dict[factory=srm[width=4],path=sd.pt]", "srm[width=4]"])
    assert [j.pretrained for j in first.models] == [True, True, False]
    assert plan(["torchscript[path=net.pt]"]).models[0].key == first.models[0].key
    _script(_srm(seed=1), tmp_path / "net.pt")
    torch.save(_srm(seed=1).state_dict(), tmp_path / "sd.pt")
    second = plan(["torchscript[path=net.pt]", "state-dict[factory=srm[width=4],path=sd.pt]", "srm[width=4]"])
    assert [a.key != b.key for a, b in zip(first.models, second.models, strict=True)] == [True, True, False]
    assert {c.key for c in first.cells_of(first.models[0])}.isdisjoint(c.key for c in second.cells_of(second.models[0]))
    other_factory = plan(["state-dict[factory=srm[truncate=2.0;width=4],path=sd.pt]"])
    assert other_factory.models[0].key != second.models[1].key


@pytest.mark.slow  # TorchScript's profiling executor takes seconds to settle on its first calls
def test_a_loaded_network_copies_and_attacks_like_the_module_it_came_from(tmp_path: Path) -> None:
    """The harness's evaluation copy (deep copy, frozen, channels-last) of a TorchScript network
    gives the original module's logits and input gradients bit for bit."""
    import torch

    from bench.core.inference import evaluation_copy
    from detectors import create_detector

    model = _srm()
    network = create_detector(f"torchscript[path={_script(model, tmp_path / 'net.pt')}]")
    ours, theirs = evaluation_copy(network), evaluation_copy(model)
    x = torch.rand(4, 1, 64, 64)
    assert torch.equal(ours(x), theirs(x))
    grads = []
    for m in (ours, theirs):
        xg = x.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(m(xg)[:, 1].sum(), xg)[0])
    assert torch.equal(*grads)
    assert all(p.requires_grad for p in network.parameters())  # the original is left as it was
    assert copy.deepcopy(network).state_dict().keys() == network.state_dict().keys()


def test_an_export_is_named_by_what_it_computes() -> None:
    """Two exports of one module have one digest (TorchScript archives differ between exports);
    another weight gives another."""
    import torch
    from torch import nn

    from bench.evaluation import export, program_digest

    class Traced(nn.Module):
        """Not scriptable (this file's annotations are postponed, as the detectors'): traced."""

        def __init__(self) -> None:
            super().__init__()
            self.body = _small()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.body(2 * x - 1)
            return out

    model = Traced().eval()
    first, second = (program_digest(export(model, (1, 1, 64, 64))) for _ in range(2))
    assert first == second
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert program_digest(export(model, (1, 1, 64, 64))) != first
    assert model.training is False


def _rows(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=list(NOT_COMPARED)).reset_index(drop=True)


@pytest.mark.slow
def test_a_torchscript_export_gives_the_registry_models_rows(tmp_path: Path) -> None:
    """The acceptance test: the tiny matrix's trained detector, exported with torch.jit.trace and
    evaluated as ``torchscript[path=...]`` (and through ``bench.evaluate``), gives its rows."""
    import torch

    import bench
    from bench.api import run
    from bench.inputs.photos import builtin_source
    from bench.run.execute import obtain_model
    from bench.run.plan import plan_models
    from bench.run.store import Store

    cache = tmp_path / "cache"
    matrix = parse_matrix(tiny_doc())
    suite = run(matrix, results_dir=tmp_path / "results", cache_dir=cache)
    job = plan_models(matrix, builtin_source())[0]
    store = Store(cache)
    dataset = store.dataset(job.dataset_key)
    trained = obtain_model(job, dataset, matrix, store, device=torch.device("cpu"))
    assert trained.from_cache
    _script(trained.model, tmp_path / "net.pt")

    doc = tiny_doc(profile="mine", detectors=["torchscript[path=net.pt]"])
    mine = run(parse_matrix(doc, base=tmp_path), results_dir=tmp_path / "results", cache_dir=cache)
    assert set(mine.table["detector"]) == {f"torchscript[path={(tmp_path / 'net.pt').resolve()}]"}
    assert len(mine.table) == len(suite.table) > 0
    pd.testing.assert_frame_equal(_rows(mine.table), _rows(suite.table))
    numbers = ["test_accuracy", "test_n", "val_accuracy"]
    pd.testing.assert_frame_equal(mine.models[numbers], suite.models[numbers])
    assert mine.models["trained"].tolist() == [False] and suite.models["trained"].tolist() == [True]
    assert mine.models["epochs"].tolist() == [0]

    settings = {"n_samples": 16, "data": tiny_doc()["data"], "results_dir": tmp_path / "results", "cache_dir": cache}
    table = bench.evaluate(trained.model, task="median3", attacks=["foolbox.fgsm"], epsilons_255=[2], **settings)
    pd.testing.assert_frame_equal(_rows(table), _rows(suite.table))
    again = bench.evaluate(trained.model, task="median3", attacks=["foolbox.fgsm"], epsilons_255=[2], **settings)
    pd.testing.assert_frame_equal(again, table)
    assert len(list((cache / "networks").iterdir())) == 1  # one export file, named by what it computes
