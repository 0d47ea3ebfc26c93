"""Trust flags: each indicator fires on a constructed case and stays silent on a clean one; a
gradient-masked detector is caught end to end; --strict turns flags into exit status 3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.schema import FLAG_NAMES, MATRIX_COLUMNS, MODEL_COLUMNS, conform
from bench.core.stats import wilson
from bench.outputs.summary import flagged_curves
from bench.run import flags

BASE = {
    "task": "median3",
    "detector": "bayar",
    "defense": "none",
    "gradient": "exact",
    "norm": "linf",
    "quantized": "float",
    "postprocess": "none",
    "error": "",
}
THREATS = {
    "fgsm": "white-box",
    "pgd": "white-box",
    "square": "score",
    "boundary": "decision",
    "gaussian-noise": "control",
    "ensemble": "ensemble",
}


def _row(attack: str, robust: float, *, eps: float = 8.0, n: int = 500, **extra: object) -> dict:
    """One matrix row with ``robust`` accuracy over n samples and its Wilson interval."""
    kind = attack.split(".", 1)[-1].split("[")[0]
    k = round(robust * n)
    low, high = wilson(k, n)
    return {
        **BASE,
        "attack": attack,
        "library": attack.split(".")[0] if "." in attack else "ensemble",
        "threat": THREATS[kind],
        "minimum_norm": False,
        "epsilon": eps / 255,
        "epsilon_255": eps,
        "n": n,
        "clean_accuracy": 1.0,
        "robust_accuracy": k / n,
        "robust_accuracy_low": low,
        "robust_accuracy_high": high,
        **extra,
    }


def _table(*rows: dict) -> pd.DataFrame:
    """A matrix table of the given rows (other columns empty; flags not computed yet)."""
    from bench.core.schema import DERIVED

    frame = pd.DataFrame(rows)
    for column, dtype in MATRIX_COLUMNS.items():
        if column not in frame and column not in DERIVED:
            frame[column] = {"int64": 0, "Int64": pd.NA, "float64": np.nan}.get(dtype, "")
    return conform(frame, MATRIX_COLUMNS)


def _fired(table: pd.DataFrame, name: str, probes: pd.DataFrame | None = None) -> list[str]:
    """The attacks (with epsilon) of the rows raising flag ``name``."""
    out = flags.add_flags(table, probes)
    hit = out[out[f"flag_{name}"]]
    return [f"{a}@{e:g}" for a, e in zip(hit["attack"], hit["epsilon_255"])]


def test_flag_names_match_the_schema_and_are_documented() -> None:
    assert flags.FLAGS == FLAG_NAMES
    doc = (Path(__file__).parents[1] / flags.DOC).read_text()
    for name in FLAG_NAMES:
        assert f"### {name}" in doc, name
        assert f"flag_{name}" in MATRIX_COLUMNS


def test_non_monotone_fires_beyond_the_intervals_only() -> None:
    rising = _table(_row("art.pgd", 0.10, eps=1), _row("art.pgd", 0.50, eps=2), _row("art.pgd", 0.30, eps=4))
    assert _fired(rising, "non_monotone") == ["art.pgd@2", "art.pgd@4"]
    noisy = _table(_row("art.pgd", 0.10, eps=1), _row("art.pgd", 0.12, eps=2), _row("art.pgd", 0.0, eps=4))
    assert _fired(noisy, "non_monotone") == []
    other_variant = _table(_row("art.pgd", 0.10, eps=1), _row("art.pgd", 0.50, eps=2, postprocess="jpeg75"))
    assert _fired(other_variant, "non_monotone") == []


def test_single_step_beating_iterative_fires_on_both_rows() -> None:
    beaten = _table(_row("art.fgsm", 0.10), _row("art.pgd", 0.50), _row("foolbox.pgd", 0.08))
    assert sorted(_fired(beaten, "single_beats_iterative")) == ["art.fgsm@8", "art.pgd@8"]
    assert _fired(_table(_row("art.fgsm", 0.36), _row("art.pgd", 0.0)), "single_beats_iterative") == []
    close = _table(_row("art.fgsm", 0.10, n=60), _row("art.pgd", 0.20, n=60))  # intervals overlap
    assert _fired(close, "single_beats_iterative") == []
    # after JPEG re-compression, which attack's images survive says nothing about its optimisation
    jpeg = _table(_row("art.fgsm", 0.10, postprocess="jpeg85"), _row("art.pgd", 0.50, postprocess="jpeg85"))
    assert _fired(jpeg, "single_beats_iterative") == []
    rounded = _table(_row("art.fgsm", 0.10, quantized="uint8"), _row("art.pgd", 0.50, quantized="uint8"))
    assert sorted(_fired(rounded, "single_beats_iterative")) == ["art.fgsm@8", "art.pgd@8"]


def test_blackbox_beating_the_strongest_whitebox_fires() -> None:
    masked = _table(_row("art.fgsm", 0.90), _row("art.pgd", 0.80), _row("art.square", 0.40))
    assert sorted(_fired(masked, "blackbox_beats_whitebox")) == ["art.fgsm@8", "art.pgd@8", "art.square@8"]
    decision = _table(_row("art.pgd", 0.80), _row("foolbox.boundary", 0.40))
    assert sorted(_fired(decision, "blackbox_beats_whitebox")) == ["art.pgd@8", "foolbox.boundary@8"]
    # a weak white-box attack beaten by the black box is fine while the strongest one is below it
    healthy = _table(_row("art.fgsm", 0.90), _row("art.pgd", 0.0), _row("art.square", 0.40))
    assert _fired(healthy, "blackbox_beats_whitebox") == []
    # neither the control (noise) nor the ensemble counts as a black-box attack
    control = _table(_row("art.pgd", 0.80), _row("foolbox.gaussian-noise", 0.40), _row("ensemble", 0.40))
    assert _fired(control, "blackbox_beats_whitebox") == []
    other_eps = _table(_row("art.pgd", 0.80, eps=1), _row("art.square", 0.40, eps=8))
    assert _fired(other_eps, "blackbox_beats_whitebox") == []
    jpeg = _table(_row("art.pgd", 0.80, postprocess="jpeg75"), _row("art.square", 0.40, postprocess="jpeg75"))
    assert _fired(jpeg, "blackbox_beats_whitebox") == []


def test_libraries_disagree_compares_the_same_attack_and_parameters() -> None:
    apart = _table(_row("art.pgd[steps=10]", 0.10), _row("foolbox.pgd[steps=10]", 0.50))
    assert sorted(_fired(apart, "libraries_disagree")) == ["art.pgd[steps=10]@8", "foolbox.pgd[steps=10]@8"]
    agree = _table(_row("art.pgd[steps=10]", 0.10), _row("foolbox.pgd[steps=10]", 0.12))
    assert _fired(agree, "libraries_disagree") == []
    other_params = _table(_row("art.pgd[steps=10]", 0.10), _row("foolbox.pgd[steps=40]", 0.50))
    assert _fired(other_params, "libraries_disagree") == []


def test_too_few_samples_is_the_interval_half_width() -> None:
    table = _table(_row("art.pgd", 0.5, n=120), _row("art.fgsm", 0.5, n=500), _row("foolbox.pgd", 0.0, n=120))
    assert _fired(table, "too_few_samples") == ["art.pgd@8"]  # +-8.8 points; +-4.4 and [0, 3.1] pass
    failed = _table(_row("art.pgd", 0.5, n=120, error="RuntimeError: boom"))
    assert flags.add_flags(failed)["flags"].tolist() == [""]


def _probes(zero: float, unbounded: float, not_rising: float, gradient: str = "exact") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                **{c: BASE[c] for c in flags.MODEL if c != "gradient"},
                "gradient": gradient,
                "zero_gradient_share": zero,
                "unbounded_robust_accuracy": unbounded,
                "loss_not_increasing_share": not_rising,
                "error": "",
            }
        ]
    )


def test_probe_flags_attach_to_the_gradient_rows_of_the_probed_model() -> None:
    table = _table(
        _row("art.pgd", 0.8),
        _row("art.square", 0.8),
        _row("foolbox.gaussian-noise", 0.9),
        _row("ensemble", 0.7, gradient="any"),
        _row("art.pgd", 0.0, detector="srm"),
    )
    masked = _probes(zero=1.0, unbounded=0.8, not_rising=1.0)
    for name in ("zero_gradients", "unbounded_not_zero", "loss_not_increasing"):
        assert _fired(table, name, masked) == ["art.pgd@8", "ensemble@8"], name  # not the black box, not srm
    clean = _probes(zero=0.0, unbounded=0.0, not_rising=0.01)
    edge = _probes(
        zero=flags.ZERO_GRADIENT_SHARE, unbounded=flags.UNBOUNDED_ROBUST, not_rising=flags.LOSS_NOT_INCREASING_SHARE
    )  # at the thresholds: not above them
    for probes in (clean, edge, None):
        assert (flags.add_flags(table, probes)["flags"] == "").all()


def test_probes_catch_a_rounding_model_and_pass_a_linear_one() -> None:
    import torch
    from torch import nn

    from bench.run.probes import probe_model

    class Linear(nn.Module):
        def __init__(self, rounding: bool) -> None:
            super().__init__()
            self.w = torch.randn(64, generator=torch.Generator().manual_seed(0))
            self.rounding = rounding

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.rounding:
                x = torch.round(x * 255) / 255  # zero gradient
            score = x.flatten(1) @ self.w - 0.5 * self.w.sum()
            return torch.stack([score, -score], dim=1)

    x = (np.random.default_rng(0).integers(0, 256, (50, 1, 8, 8)) / 255).astype(np.float32)
    for rounding in (False, True):
        model = Linear(rounding)
        y = model(torch.from_numpy(x)).argmax(1).numpy()  # every sample correct
        probe = probe_model(model, x, y, seed=0)
        assert probe["clean_correct"] == 50
        assert probe["zero_gradient_share"] == float(rounding)
        assert probe["unbounded_robust_accuracy"] == float(rounding)  # nothing moves a masked model
        assert probe["loss_not_increasing_share"] == float(rounding)


def test_flags_column_joins_the_raised_names_in_order() -> None:
    table = _table(_row("art.fgsm", 0.0, n=120), _row("art.pgd", 0.50, n=120))
    out = flags.add_flags(table)
    assert out["flags"].tolist() == ["single_beats_iterative", "single_beats_iterative,too_few_samples"]
    assert flags.flag_counts(out) == {**dict.fromkeys(FLAG_NAMES, 0), "single_beats_iterative": 2, "too_few_samples": 1}
    cells = flagged_curves(out)
    assert set(cells["flag"]) == {"single_beats_iterative", "too_few_samples"}
    assert list(conform(out, MATRIX_COLUMNS).columns) == list(MATRIX_COLUMNS)


def test_smoke_profile_raises_too_few_samples_only(smoke) -> None:
    """n = 120: the interval is wider than +-5 points wherever robust accuracy is mid-range; the
    undefended detectors raise nothing else, ART and Foolbox agree, and the probes pass."""
    table = smoke.result.table
    counts = flags.flag_counts(table)
    assert counts["too_few_samples"] > 0
    assert {n: c for n, c in counts.items() if c and n != "too_few_samples"} == {}
    half = (table["robust_accuracy_high"] - table["robust_accuracy_low"]) / 2
    assert (table["flag_too_few_samples"] == (half > flags.MAX_HALF_WIDTH)).all()
    probes = pd.read_csv(smoke.results_dir / "smoke" / "probes.csv", keep_default_na=False)
    assert len(probes) == 2 and (probes["error"] == "").all()
    assert (probes["unbounded_robust_accuracy"] == 0).all() and (probes["zero_gradient_share"] == 0).all()


def test_every_rate_has_its_wilson_interval(smoke) -> None:
    table, models = smoke.result.table, smoke.result.models
    rates = {
        "clean_accuracy": table,
        "robust_accuracy": table,
        "tpr": table,
        "tnr": table,
        "attack_success_rate": table,
        "test_accuracy": models,
        "val_accuracy": models,
    }
    for rate, frame in rates.items():
        defined = frame[frame[rate].notna()]
        assert len(defined), rate
        assert (defined[f"{rate}_low"] <= defined[rate] + 1e-12).all(), rate
        assert (defined[rate] <= defined[f"{rate}_high"] + 1e-12).all(), rate
    assert {"val_accuracy_low", "val_accuracy_high"} <= set(MODEL_COLUMNS)


def test_masked_detector_is_caught_and_its_clean_twin_is_not(smoke, tmp_path: Path) -> None:
    """The test-only detector that rounds its input (zero gradient) against its twin without rounding."""
    from bench.api import run
    from bench.inputs.matrix import parse_matrix
    from tests.masked import registered

    with registered() as name:
        matrix = parse_matrix(
            {
                "profile": "masked",
                "seed": 0,
                "n_samples": 60,
                "tasks": ["median3"],
                "detectors": [name, f"{name}[mask=false]"],
                "defenses": ["none"],
                "attacks": ["art.fgsm", "art.square[queries=30]"],
                "epsilons_255": [8],
                "training": {"epochs": 1, "max_train_patches": 256},
            }
        )
        result = run(matrix, results_dir=tmp_path, cache_dir=smoke.cache_dir)
        table = result.table
    assert (table["error"] == "").all()
    rows = table[(table["quantized"] == "float") & (table["postprocess"] == "none")].set_index(["detector", "attack"])
    masked = rows.loc[(f"{name}[mask=true]", "art.fgsm")]
    assert masked["clean_accuracy"] > 0.8  # a working detector, its gradient masked
    assert masked["flag_zero_gradients"] and masked["flag_loss_not_increasing"]
    assert masked["flag_blackbox_beats_whitebox"] or masked["flag_unbounded_not_zero"]
    assert rows.loc[(f"{name}[mask=true]", "art.square[queries=30]"), "flag_blackbox_beats_whitebox"]
    twin = table[table["detector"] == f"{name}[mask=false]"]
    raised = {n for f in twin["flags"] for n in f.split(",") if n}
    assert raised <= {"too_few_samples"}, raised  # n = 60 is too few, nothing else
    assert result.probes is not None
    probes = result.probes.set_index("detector")
    assert probes.loc[f"{name}[mask=true]", "zero_gradient_share"] == 1.0
    assert probes.loc[f"{name}[mask=false]", "unbounded_robust_accuracy"] == 0.0
    assert (tmp_path / "masked" / "probes.csv").is_file()


def test_strict_exits_3_when_a_flag_is_raised(smoke, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import signal

    from bench.cli import main

    args = ["run", "--profile", "smoke", "--results", str(tmp_path), "--cache-dir", str(smoke.cache_dir), "-q"]
    handler = signal.getsignal(signal.SIGTERM)  # the CLI turns SIGTERM into an interruption: restore it after
    try:
        assert main(args) == 0  # flags are reported, not fatal, without --strict
        out = capsys.readouterr().out
        assert "TRUST FLAGS" in out and "too_few_samples" in out and "docs/flags.md#too_few_samples" in out
        assert main([*args, "--strict"]) == 3
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert (tmp_path / "smoke" / "matrix.csv").is_file()  # every output written first
