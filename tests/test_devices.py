"""Devices: the ``device`` setting checked and resolved (bench/core/devices.py), and the stages run
with an explicit ``device=torch.device("cpu")`` giving exactly the numbers they give without one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from bench.attacks import ATTACKS
from bench.core.config import TrainingConfig
from bench.core.devices import device_kind, on_device, parse_device, resolve_device
from bench.core.errors import BenchError
from bench.inputs.data import Dataset
from bench.inputs.matrix import parse_matrix
from bench.run.cells import compute_cell
from bench.run.plan import Cell, ModelJob
from bench.run.probes import probe
from bench.run.scoring import score_images
from bench.run.training import TrainedModel, train
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS
from tests.tiny import tiny_doc

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:12", "cuda:12"), ("CPU", "cpu")],
)
def test_parse_device_accepts(text: str, canonical: str) -> None:
    assert parse_device(text, "--device") == canonical


@pytest.mark.parametrize(
    "text", ["gpu", "", "cuda:", "cuda:-1", "cuda:01", "cuda:x", "cpu:0", " cpu", "cuda:0\nx", "mps"]
)
def test_parse_device_refuses_in_one_line(text: str) -> None:
    with pytest.raises(BenchError) as err:
        parse_device(text, "--device")
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("--device ") and "not a device; allowed: auto, cpu, cuda, cuda:N" in message


def test_parse_device_message_names_the_setting() -> None:
    with pytest.raises(BenchError, match=r"^--device gpu: not a device; allowed: auto, cpu, cuda, cuda:N$"):
        parse_device("gpu", "--device")
    with pytest.raises(BenchError, match=r"^m.toml: device: 5 is not a device"):
        parse_device(5, "m.toml: device")  # type: ignore[arg-type]  # a TOML number


def test_resolve_device_on_this_machine() -> None:
    assert resolve_device("cpu") == CPU
    with pytest.raises(BenchError, match="not a device"):
        resolve_device("gpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
        with pytest.raises(BenchError, match=r"^--device cuda:99: torch sees \d+ CUDA device"):
            resolve_device("cuda:99")
        return
    assert resolve_device("auto") == CPU
    for text in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(BenchError) as err:
            resolve_device(text)
        assert str(err.value) == (
            f"--device {text}: torch sees no CUDA device on this machine (CPU build or no GPU); allowed here: auto, cpu"
        )


def test_device_kind() -> None:
    assert device_kind(CPU) == "cpu"
    assert device_kind("cpu") == "cpu"
    assert device_kind("cuda:1") == "cuda"
    assert device_kind(torch.device("cuda", 0)) == "cuda"
    with pytest.raises(ValueError, match="unsupported kind"):
        device_kind("meta")


def test_matrix_device_key() -> None:
    assert parse_matrix(tiny_doc()).device == "auto"
    matrix = parse_matrix(tiny_doc(device="cuda:1"))
    assert matrix.device == "cuda:1" and matrix.to_dict()["device"] == "cuda:1"
    with pytest.raises(BenchError, match=r"^matrix: device gpu: not a device; allowed: auto, cpu, cuda, cuda:N$"):
        parse_matrix(tiny_doc(device="gpu"))


def _dataset() -> Dataset:
    """A tiny synthetic pristine-vs-median dataset (1 channel, 64x64): noise and smoothed noise."""
    rng = np.random.default_rng(0)
    x, y = {}, {}
    for split, n in (("train", 48), ("val", 16), ("test", 16)):
        images = rng.integers(0, 256, (n, 1, 64, 64)).astype(np.float64)
        labels = np.arange(n) % 2
        smooth = (images + np.roll(images, 1, axis=2) + np.roll(images, 1, axis=3)) / 3
        images[labels == 1] = smooth[labels == 1]
        x[split], y[split] = np.rint(images).astype(np.uint8), labels.astype(np.int64)
    source = {s: np.array([f"photo{i % 3}" for i in range(len(y[s]))]) for s in x}
    location = {s: np.zeros((len(y[s]), 2), dtype=np.int64) for s in x}
    return Dataset("synthetic", x, y, source, location, {"classes": list(TASKS.entry("median3").info.classes)})


def _weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    timings = [c for c in ("seconds", "train_seconds") if c in a.columns]
    pd.testing.assert_frame_equal(a.drop(columns=timings), b.drop(columns=timings))


def test_an_explicit_cpu_device_changes_no_number() -> None:
    dataset = _dataset()
    detector, none = DETECTORS.resolve("srm[width=4]"), DEFENSES.resolve("none")
    config = TrainingConfig(epochs=1, batch_size=16)
    model, meta = train(detector, dataset, none, config, 0)
    model_cpu, meta_cpu = train(detector, dataset, none, config, 0, device=CPU)
    weights, weights_cpu = _weights(model), _weights(model_cpu)
    assert weights.keys() == weights_cpu.keys()
    for k in weights:
        np.testing.assert_array_equal(weights[k], weights_cpu[k])
    assert (meta.val_accuracy, meta.test_accuracy, meta.history[0]["loss"]) == (
        meta_cpu.val_accuracy,
        meta_cpu.test_accuracy,
        meta_cpu.history[0]["loss"],
    )
    assert next(model_cpu.parameters()).device == CPU
    assert on_device(model, CPU) is model and on_device(model, None) is model  # nothing moved, nothing copied

    matrix = parse_matrix(tiny_doc(n_samples=16, epsilons_255=[2, 8]))
    trained = TrainedModel("m", model, meta, from_cache=False)
    task = TASKS.resolve("median3")
    for defense, attack, gradient in (
        ("none", "foolbox.fgsm", "exact"),
        ("gauss-noise[eot_samples=2]", "art.fgsm", "eot"),
        ("jpeg", "foolbox.fgsm", "bpda"),
    ):
        spec = DEFENSES.resolve(defense)
        job = ModelJob(task, detector, spec, "synthetic", "m", none, 0)
        cell = Cell(job, ATTACKS.resolve(attack), gradient, ATTACKS.resolve(attack), "c", keeps_images=True)
        rows, samples, images = compute_cell(cell, matrix, dataset, trained)
        rows_cpu, samples_cpu, images_cpu = compute_cell(cell, matrix, dataset, trained, device=CPU)
        _same_rows(rows, rows_cpu)
        pd.testing.assert_frame_equal(samples, samples_cpu)
        assert images is not None and images_cpu is not None and images.keys() == images_cpu.keys()
        for k in images:
            np.testing.assert_array_equal(images[k], images_cpu[k])

        numbers = probe(spec, gradient, dataset, model, n_samples=16, seed=0)
        numbers_cpu = probe(spec, gradient, dataset, model, n_samples=16, seed=0, device=CPU)
        assert {k: v for k, v in numbers.items() if k != "seconds"} == {
            k: v for k, v in numbers_cpu.items() if k != "seconds"
        }

    adv = images["adv"]
    scores = score_images(model, images["x"], adv, images["label"])
    scores_cpu = score_images(model, images["x"], adv, images["label"], device=CPU)
    for field in dataclasses.fields(scores):
        np.testing.assert_array_equal(getattr(scores, field.name), getattr(scores_cpu, field.name))


def test_deterministic_algorithms_sets_what_torch_use_deterministic_algorithms_sets() -> None:
    import torch

    from bench.core.devices import deterministic_algorithms

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(False)
        deterministic_algorithms()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
