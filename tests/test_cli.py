"""Command line: bad input gets one clear line, exit status 2 and nothing written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from detectors import DETECTORS

GOOD = """
seed = 0
n_samples = 10
tasks = ["median3"]
detectors = ["bayar"]
defenses = ["none"]
attacks = ["art.fgsm"]
epsilons_255 = [1, 2]
"""


def _process(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same in this process (fast): ``main`` in ``cwd``, its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    here, handler = Path.cwd(), signal.getsignal(signal.SIGTERM)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(here)
        signal.signal(signal.SIGTERM, handler)  # the run command turns SIGTERM into an interruption
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


BAD_MATRICES = {
    "unknown detector": (
        GOOD.replace('["bayar"]', '["bayar", "resnet"]'),
        f"detectors[1]: unknown detector 'resnet'; allowed: {', '.join(DETECTORS.names())}",
    ),
    "negative epsilon": (
        GOOD.replace("[1, 2]", "[1, -2]"),
        "epsilons_255[1]: -2 is not allowed; epsilons are numbers > 0 and <= 255",
    ),
    "missing key": (GOOD.replace('attacks = ["art.fgsm"]\n', ""), "missing key 'attacks'; required keys: seed"),
    "unknown key": (GOOD + "epochs = 3\n", "unknown key 'epochs'; allowed keys:"),
    "unknown parameter": (
        GOOD.replace('["none"]', '["grad-penalty[beta=1]"]'),
        "unknown parameter 'beta' for grad-penalty; allowed: lambda, squared",
    ),
    "bad parameter value": (GOOD.replace('["art.fgsm"]', '["art.pgd[steps=-3]"]'), "steps must be an integer >= 1"),
    "wrong type": (GOOD.replace("n_samples = 10", 'n_samples = "ten"'), "n_samples: 'ten' is not allowed"),
    "empty list": (GOOD.replace('["none"]', "[]"), "defenses: must be a non-empty list"),
    "bad settings": (
        GOOD + "[training]\nepochs = 0\n",
        "[training]: epochs=0 is not allowed; epochs must be an integer >= 1",
    ),
    "unknown setting": (GOOD + "[data]\npatches = 3\n", "[data]: unknown key 'patches'; allowed: patch,"),
    "not toml": (GOOD + "this is = = not toml\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_MATRICES))
def test_bad_matrix_is_refused_with_one_line(tmp_path: Path, case: str) -> None:
    text, expected = BAD_MATRICES[case]
    (tmp_path / "bad.toml").write_text(text)
    proc = _cli(["run", "--matrix", "bad.toml"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.toml: "), proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # nothing written, no results/


def test_the_real_process_refuses_bad_input_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    text, expected = BAD_MATRICES["unknown detector"]
    (tmp_path / "bad.toml").write_text(text)
    proc = _process(["run", "--matrix", "bad.toml"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: bad.toml: ")
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--matrix", "missing.toml"], "--matrix missing.toml: no such file"),
        (
            ["run", "--profile", "nosuch"],
            "--profile nosuch: no such built-in matrix; allowed: default, defenses, grad-penalty-sweep, smoke, zhao2018, zoo",
        ),
        (["run", "--profile", "smoke", "--images", "nodir"], "--images nodir: not a directory"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_options_are_refused_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = _cli(args, tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_list_names_every_entry_with_a_description(tmp_path: Path) -> None:
    proc = _cli(["list"], tmp_path)
    assert proc.returncode == 0
    for name in (
        "median3",
        "bayar[",
        "srm[",
        "none",
        "grad-penalty[lambda=",
        "art.fgsm",
        "art.pgd[",
        "foolbox.fgsm",
        "foolbox.pgd[",
        "smoke",
        "default",
    ):
        assert name in proc.stdout
    assert "Bayar-Stamm" in proc.stdout


def test_builtin_matrices_are_valid() -> None:
    from bench.inputs.matrix import builtin_matrix_path, builtin_profiles, load_matrix

    assert {"default", "grad-penalty-sweep", "smoke"} <= set(builtin_profiles())
    default = load_matrix(builtin_matrix_path("default"))
    assert default.epsilons_255 == (1.0, 2.0, 4.0, 8.0, 16.0)
    from bench.attacks import ATTACKS, attack_class

    classes = [attack_class(a.name) for a in default.attacks]
    assert {a.name for a in default.attacks} <= set(ATTACKS.names())
    # the default covers both libraries, both norms, minimum-norm attacks and every threat model
    assert {c.library for c in classes} == {"art", "foolbox"} and {c.norm for c in classes} == {"linf", "l2"}
    assert any(c.minimum_norm for c in classes)
    assert {c.threat for c in classes} == {"white-box", "score", "decision", "control"}
    assert default.profile == "default"
    # a built-in file is recognised however its path is written (relative, with "..")
    path = builtin_matrix_path("smoke")
    relative = os.path.relpath(path.parent.parent / ".." / "inputs" / "matrices" / "smoke.toml")
    assert default.builtin and load_matrix(relative).builtin


@pytest.mark.slow
def test_terminated_run_exits_130_and_keeps_finished_cells(tmp_path: Path) -> None:
    import signal

    (tmp_path / "tiny.toml").write_text(
        GOOD.replace('["bayar"]', '["srm[width=4]"]').replace(
            '["art.fgsm"]', '["art.fgsm", "art.pgd[steps=100]", "foolbox.pgd[steps=100]"]'
        )
        + "[training]\nepochs = 1\nmax_train_patches = 256\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--matrix", "tiny.toml"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "[1/" in line:  # the first of the cells (the matrix's and the reference runs)
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "finished cells and 1 trained models are saved" in err and "Traceback" not in err
    import pandas as pd

    table = pd.read_csv(tmp_path / "results" / "tiny" / "matrix.csv")
    assert len(table) >= 2 and (table["error"].isna()).all()  # at least the first cell, both epsilons
    rerun = _process(["run", "--matrix", "tiny.toml"], tmp_path)
    assert rerun.returncode == 0 and "from cache" in rerun.stdout


def test_unreadable_image_is_refused_with_one_line(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96), dtype=np.uint8)).save(images / name)
    (images / "d.png").write_bytes(b"not a png")
    proc = _cli(["run", "--profile", "smoke", "--images", "imgs"], tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()  # refused before the run starts: its only line
    assert len(lines) == 1 and lines[0].startswith("error: --images: cannot read image ") and "d.png" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_zoo_trains_and_writes_its_tables(tmp_path: Path) -> None:
    import pandas as pd

    (tmp_path / "tiny.toml").write_text(
        'seed = 0\nn_samples = 10\ntasks = ["median3", "noise"]\ndetectors = ["srm[width=4]", "mfr[width=4]"]\n'
        'defenses = ["none"]\n[training]\nepochs = 1\nmax_train_patches = 128\n'
    )
    proc = _process(["zoo", "--matrix", "tiny.toml"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    models = pd.read_csv(tmp_path / "results" / "tiny" / "models.csv")
    assert len(models) == 4 and (models["parameters"] > 0).all() and models["error"].isna().all()
    per_photo = pd.read_csv(tmp_path / "results" / "tiny" / "per_photo.csv")
    assert set(per_photo["photo"]) == {"camera", "cell", "hubble_deep_field", "ihc"}
    table = (tmp_path / "results" / "tiny" / "zoo.md").read_text()
    assert "| `median3` (" in table and "| `noise[sigma=2.0]` (" in table and table.strip() in proc.stdout
    again = _process(["zoo", "--matrix", "tiny.toml"], tmp_path)  # served from the cache
    assert again.returncode == 0 and "training" not in again.stderr


@pytest.mark.parametrize(
    ("args", "matrix", "suggestion"),
    [
        (["run", "--profile", "smok"], "", "; did you mean 'smoke'?"),
        (["rnu"], "", "invalid choice: 'rnu' (choose from 'run', "),
        (["rnu"], "", "; did you mean 'run'?"),
        (["list", "detector"], "", "; did you mean 'detectors'?"),
        (["run", "--profle", "smoke"], "", "unrecognized arguments: --profle smoke; did you mean '--profile'?"),
        (
            ["run", "--matrix", "m.toml"],
            GOOD.replace('["bayar"]', '["bayr"]'),
            "bayar, bondi, mfr, plain, srm, state-dict, torchscript; did you mean 'bayar'?",
        ),
        (["run", "--matrix", "m.toml"], GOOD.replace('["bayar"]', '["SRM"]'), "; did you mean 'srm'?"),
        (["run", "--matrix", "m.toml"], GOOD.replace('["art.fgsm"]', '["pgd"]'), "; did you mean 'art.pgd'?"),
        (
            ["run", "--matrix", "m.toml"],
            GOOD.replace('["none"]', '["grad-penalty[lamda=1]"]'),
            "did you mean 'lambda'?",
        ),
        (["run", "--matrix", "m.toml"], GOOD.replace("epsilons_255", "epsilon_255"), "; did you mean 'epsilons_255'?"),
    ],
)
def test_unknown_names_get_the_closest_allowed_name(
    tmp_path: Path, args: list[str], matrix: str, suggestion: str
) -> None:
    if matrix:
        (tmp_path / "m.toml").write_text(matrix)
    proc = _cli(args, tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert suggestion in proc.stderr and proc.stderr.rstrip().endswith("?"), proc.stderr


def test_no_suggestion_without_a_close_name(tmp_path: Path) -> None:
    from bench.core.errors import did_you_mean

    assert did_you_mean("resnet", DETECTORS.names()) == "" and did_you_mean("", ["a"]) == ""
    assert did_you_mean("Bondi", ["bayar", "bondi"]) == "; did you mean 'bondi'?"
    proc = _cli(["run", "--profile", "nosuch"], tmp_path)
    assert proc.returncode == 2 and "did you mean" not in proc.stderr


def test_bad_input_is_refused_before_the_heavy_imports(tmp_path: Path) -> None:
    """Each refusal, in one process, names no heavy module loaded at that point (they would come with
    bench.api and the run): torch, pandas, ART, Foolbox, matplotlib, Dask."""
    (tmp_path / "bad.toml").write_text(GOOD.replace('["bayar"]', '["bayr"]'))
    (tmp_path / "m.toml").write_text(GOOD)
    cases = [
        ["run", "--matrix", "--profile", "nosuch"],
        ["run", "--matrix", "missing.toml"],
        ["run", "--matrix", "bad.toml"],
        ["zoo", "--profile", "nosuch"],
        ["costs", "--matrix", "m.toml", "--images", "photos"],
        ["run", "--matrix", "m.toml", "--device", "tpu"],
        ["run", "--matrix", "m.toml", "--images", "photos"],
        ["run", "--matrix", "m.toml", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
        ["zoo", "--matrix", "m.toml", "--scheduler-file", "missing.json"],
        ["run", "--matrix", "m.toml", "--results", "bad.toml"],
        ["run", "--matrix", "m.toml", "--workers", "0"],
        ["run", "--frobnicate"],
    ]
    code = (
        "import contextlib, io, json, sys\nfrom bench.cli import main\nout = []\n"
        f"for args in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        status = main(args)\n"
        "    heavy = [m for m in ('torch', 'pandas', 'art', 'foolbox', 'matplotlib', 'dask') if m in sys.modules]\n"
        "    out.append([args, status, err.getvalue(), heavy])\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == len(cases)
    for args, status, err, heavy in results:
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert heavy == [], (args, heavy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "m.toml"]  # nothing written


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.split() == ["python", "-m", "bench", version("forensic-robustness-bench")]


@pytest.mark.parametrize(
    "command", [[], *([c] for c in ("run", "zoo", "costs", "list", "figures", "tables", "report", "check"))]
)
def test_help_is_plain_text(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: ")
    assert "`" not in out and ":func:" not in out and "::" not in out, out  # no reStructuredText markup


def test_the_console_script_is_documented_and_is_the_cli() -> None:
    import tomllib

    from bench import cli

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {cli.SCRIPT: "bench.cli:main"}
    for page in ("README.md", "docs/usage.md"):
        assert f"`{cli.SCRIPT}`" in (root / page).read_text(), page
    script = Path(sys.executable).parent / cli.SCRIPT  # installed beside the interpreter (pip install -e .)
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.split()[0] == cli.SCRIPT, proc.stdout + proc.stderr
