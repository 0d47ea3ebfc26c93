"""A catalogue of bad inputs: matrix values, CLI options, image folders, results and cache folders,
damaged results files. Each is refused with exit status 2 and one line on stderr, without a
traceback, before any work, and leaves every file of the results folder as it was (listing and
digests compared)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.test_cli import _cli
from tests.tiny import TINY_TOML

REPO = Path(__file__).parents[1]
BASE = TINY_TOML


def _sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def _add(line: str, table: str | None = None) -> Callable[[str], str]:
    """Add a line at the top level or to a [table] (creating it)."""

    def edit(text: str) -> str:
        if table is None:
            return line + "\n" + text
        if f"[{table}]\n" in text:
            return text.replace(f"[{table}]\n", f"[{table}]\n{line}\n", 1)
        return text + f"\n[{table}]\n{line}\n"

    return edit


def _attacks(value: str) -> Callable[[str], str]:
    return _sub('attacks = ["foolbox.fgsm"]', f"attacks = {value}")


# case -> (edit of the tiny matrix, a fragment the error line must contain)
MATRICES: dict[str, tuple[Callable[[str], str], str]] = {
    "seed negative": (_sub("seed = 0", "seed = -1"), "seed: -1 is not allowed"),
    "seed a string": (_sub("seed = 0", 'seed = "0"'), "seed: '0' is not allowed"),
    "seed a float": (_sub("seed = 0", "seed = 1.5"), "seed: 1.5 is not allowed"),
    "seed a boolean": (_sub("seed = 0", "seed = true"), "seed: True is not allowed"),
    "seed too large": (_sub("seed = 0", "seed = 1099511627776"), "<= 4294967295"),
    "seed a list": (_sub("seed = 0", "seed = [0]"), "seed: [0] is not allowed"),
    "n_samples zero": (_sub("n_samples = 16", "n_samples = 0"), "n_samples: 0 is not allowed"),
    "n_samples a string": (_sub("n_samples = 16", 'n_samples = "10"'), "n_samples: '10' is not allowed"),
    "n_samples a list": (_sub("n_samples = 16", "n_samples = [10]"), "n_samples: [10] is not allowed"),
    "n_samples too large": (_sub("n_samples = 16", "n_samples = 1000000000"), "<= 100000"),
    "tasks empty": (_sub('tasks = ["median3"]', "tasks = []"), "tasks: must be a non-empty list"),
    "tasks a string": (_sub('tasks = ["median3"]', 'tasks = "median3"'), "tasks: must be a non-empty list"),
    "task unknown": (_sub('tasks = ["median3"]', 'tasks = ["median4"]'), "unknown task 'median4'"),
    "task a number": (_sub('tasks = ["median3"]', "tasks = [3]"), "tasks[0]: 3 is not a string"),
    "task twice": (_sub('tasks = ["median3"]', 'tasks = ["median3", "median3"]'), "median3 is listed twice"),
    "detector parameter below its bound": (
        _sub('detectors = ["srm[width=4]"]', 'detectors = ["srm[width=0]"]'),
        "width=0 is not allowed; width must be an integer >= 1 <= 256",
    ),
    "detector parameter above its bound": (
        _sub('detectors = ["srm[width=4]"]', 'detectors = ["srm[width=1e9]"]'),
        "width=1000000000.0 is not allowed",
    ),
    "detector parameter unknown": (
        _sub('detectors = ["srm[width=4]"]', 'detectors = ["srm[depth=4]"]'),
        "unknown parameter 'depth' for srm",
    ),
    "detector spec malformed": (_sub('detectors = ["srm[width=4]"]', 'detectors = ["srm[width]"]'), "key=value"),
    "defence quality zero": (_sub('defenses = ["none"]', 'defenses = ["jpeg[quality=0]"]'), "quality=0 is not allowed"),
    "defence steps unbounded": (
        _sub('defenses = ["none"]', 'defenses = ["adv-train[steps=1e20]"]'),
        "steps must be an integer >= 1 <= 1000",
    ),
    "defence eot samples unbounded": (
        _sub('defenses = ["none"]', 'defenses = ["gauss-noise[eot_samples=100000]"]'),
        "eot_samples must be an integer >= 1 <= 1000",
    ),
    "attack steps unbounded": (_attacks('["art.pgd[steps=1e20]"]'), "steps must be an integer >= 1 <= 10000"),
    "attack steps zero": (_attacks('["art.pgd[steps=0]"]'), "steps=0 is not allowed"),
    "attack steps not a number": (_attacks('["foolbox.pgd[steps=many]"]'), "steps='many' is not allowed"),
    "attack steps a fraction": (_attacks('["foolbox.pgd[steps=2.5]"]'), "steps=2.5 is not allowed"),
    "attack queries unbounded": (
        _attacks('["art.square[queries=10000000]"]'),
        "queries must be an integer >= 6 <= 100000",
    ),
    "attack evaluations unbounded": (
        _attacks('["art.hopskipjump[max_eval=1e9]"]'),
        "max_eval must be an integer >= 1 <= 100000",
    ),
    "attack binary steps unbounded": (_attacks('["art.cw-l2[binary_steps=1000]"]'), "binary_steps must be an integer"),
    "attack boundary steps unbounded": (_attacks('["foolbox.boundary[steps=1e7]"]'), "<= 100000"),
    "attack parameter twice": (_attacks('["art.pgd[steps=1,steps=2]"]'), "parameter 'steps' given twice"),
    "attack stepsize infinite": (_attacks('["art.pgd[rel_stepsize=inf]"]'), "rel_stepsize=inf is not allowed"),
    "attack unknown": (_attacks('["art.pgd2"]'), "unknown attack 'art.pgd2'"),
    "epsilons empty": (_sub("epsilons_255 = [2]", "epsilons_255 = []"), "epsilons_255: must be a non-empty list"),
    "epsilon zero": (_sub("epsilons_255 = [2]", "epsilons_255 = [0]"), "epsilons_255[0]: 0 is not allowed"),
    "epsilon above 255": (_sub("epsilons_255 = [2]", "epsilons_255 = [300]"), "epsilons_255[0]: 300 is not allowed"),
    "epsilon a string": (_sub("epsilons_255 = [2]", 'epsilons_255 = ["2"]'), "epsilons_255[0]: '2' is not allowed"),
    "epsilon twice": (_sub("epsilons_255 = [2]", "epsilons_255 = [2, 2.0]"), "is listed twice"),
    "epsilons a number": (_sub("epsilons_255 = [2]", "epsilons_255 = 2"), "epsilons_255: must be a non-empty list"),
    "unknown key": (_add("epochs = 3"), "unknown key 'epochs'"),
    "missing key": (_sub("seed = 0\n", ""), "missing key 'seed'"),
    "profile with a newline": (_sub('profile = "tiny"', 'profile = "nl\\n"'), "profile 'nl\\n' is not allowed"),
    "profile of 300 characters": (_sub('profile = "tiny"', f'profile = "{"p" * 300}"'), "1 to 64 letters"),
    "profile with a slash": (_sub('profile = "tiny"', 'profile = "../up"'), "profile '../up' is not allowed"),
    "profile empty": (_sub('profile = "tiny"', 'profile = ""'), "profile '' is not allowed"),
    "profile a number": (_sub('profile = "tiny"', "profile = 5"), "profile 5 is not allowed"),
    "description a number": (_add("description = 5"), "description must be a string"),
    "device unknown": (_add('device = "gpu"'), "m.toml: device gpu: not a device; allowed: auto, cpu, cuda, cuda:N"),
    "device index negative": (_add('device = "cuda:-1"'), "device cuda:-1: not a device; allowed:"),
    "device index missing": (_add('device = "cuda:"'), "device cuda:: not a device; allowed:"),
    "device a number": (_add("device = 0"), "device: 0 is not a device; allowed: auto, cpu, cuda, cuda:N"),
    "device with a newline": (_add('device = "cpu\\n"'), "device 'cpu\\n': not a device"),
    "epochs a list": (_sub("epochs = 1", "epochs = [4]"), "epochs=[4] is not allowed"),
    "lr a list": (_add("lr = [0.1]", "training"), "lr=[0.1] is not allowed"),
    "epochs a string": (_sub("epochs = 1", 'epochs = "4"'), "epochs='4' is not allowed"),
    "epochs a float": (_sub("epochs = 1", "epochs = 4.0"), "epochs=4.0 is not allowed"),
    "epochs zero": (_sub("epochs = 1", "epochs = 0"), "epochs=0 is not allowed"),
    "epochs unbounded": (_sub("epochs = 1", "epochs = 1000000"), "epochs must be an integer >= 1 <= 1000"),
    "lr zero": (_add("lr = 0", "training"), "lr=0 is not allowed"),
    "lr a string": (_add('lr = "0.1"', "training"), "lr='0.1' is not allowed"),
    "augment a string": (_add('augment = "true"', "training"), "augment='true' is not allowed"),
    "augment a number": (_add("augment = 1", "training"), "augment=1 is not allowed"),
    "batch size a date": (_add("batch_size = 1979-05-27", "training"), "batch_size=datetime.date(1979, 5, 27)"),
    "training key unknown": (_add("momentum = 0.9", "training"), "unknown key 'momentum'"),
    "max_train_patches negative": (_sub("max_train_patches = 256", "max_train_patches = -1"), "max_train_patches=-1"),
    "patch that no detector runs on": (_add("patch = 8", "data"), "patch=8 is not allowed; detector srm"),
    "patch too large for bayar": (
        lambda t: _add("patch = 128", "data")(t.replace('["srm[width=4]"]', '["bayar"]')),
        "patch=128 is not allowed; detector bayar",
    ),
    "patch below 8": (_add("patch = 4", "data"), "patch=4 is not allowed"),
    "patch unbounded": (_add("patch = 100000", "data"), "patch=100000 is not allowed"),
    "min_changed above 1": (_add("min_changed = 2.0", "data"), "min_changed=2.0 is not allowed"),
    "val_fraction above 1": (_add("val_fraction = 1.5", "data"), "val_fraction=1.5 is not allowed"),
    "stride a string": (_add('eval_stride = "64"', "data"), "eval_stride='64' is not allowed"),
    "data key unknown": (_add("jpeg = 90", "data"), "unknown key 'jpeg'"),
    "not TOML": (lambda t: t + "\n= broken\n", "not valid TOML"),
}
MATRICES["training not a table"] = (
    lambda t: t.replace("[training]\nepochs = 1\nmax_train_patches = 256\n", "").replace(
        'profile = "tiny"', 'profile = "tiny"\ntraining = 5'
    ),
    "[training]: must be a table of settings",
)


def _listing(folder: Path) -> dict[str, str]:
    """Every file under a folder with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(args: list[str], cwd: Path, results: Path, expected: str, status: int = 2) -> None:
    before = _listing(results)
    proc = _cli(args, cwd)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0], (expected, lines[0])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert _listing(results) == before  # nothing written, nothing removed


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder holding an earlier run's files, which no refused command may touch."""
    folder = tmp_path / "results"
    (folder / "tiny").mkdir(parents=True)
    (folder / "tiny" / "matrix.csv").write_text("an earlier run's table\n")
    (folder / ".cache" / "models").mkdir(parents=True)
    (folder / ".cache" / "models" / "k.json").write_text("{}")
    return folder


@pytest.mark.parametrize("case", list(MATRICES))
def test_a_bad_matrix_value_is_refused(tmp_path: Path, results: Path, case: str) -> None:
    edit, expected = MATRICES[case]
    (tmp_path / "m.toml").write_bytes(edit(BASE).encode())
    _refused(["run", "--matrix", "m.toml", "--results", "results", "-q"], tmp_path, results, expected)


def test_a_matrix_that_is_not_utf8_is_refused(tmp_path: Path, results: Path) -> None:
    (tmp_path / "m.toml").write_bytes(BASE.encode() + b"\n# \xff\xfe\n")
    _refused(["run", "--matrix", "m.toml", "--results", "results"], tmp_path, results, "cannot read")


def _images(folder: Path, count: int, broken: bool = False) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (160, 160), dtype=np.uint8)).save(folder / f"{i}.png")
    if broken:
        (folder / "x.png").write_bytes(b"not a png")


OPTIONS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "matrix file missing": (lambda d: ["run", "--matrix", "nope.toml"], "--matrix nope.toml: no such file"),
    "matrix is a folder": (lambda d: ["run", "--matrix", "results"], "--matrix results: cannot read"),
    "profile unknown": (lambda d: ["run", "--profile", "nope"], "--profile nope: no such built-in matrix"),
    "profile override with a newline": (
        lambda d: ["run", "--matrix", "m.toml", "--profile", "x\n"],
        "profile 'x\\n' is not allowed",
    ),
    "option unknown": (lambda d: ["run", "--fast"], "unrecognized arguments: --fast"),
    "command unknown": (lambda d: ["walk"], "invalid choice: 'walk'"),
    "images not a folder": (lambda d: ["run", "--matrix", "m.toml", "--images", "m.toml"], "not a directory"),
    "images missing": (lambda d: ["run", "--matrix", "m.toml", "--images", "nowhere"], "not a directory"),
    "images too few": (
        lambda d: (_images(d / "two", 2), ["run", "--matrix", "m.toml", "--images", "two"])[1],
        "found 2 images; at least 3 are needed",
    ),
    "images none": (lambda d: ((d / "none").mkdir(), ["run", "--matrix", "m.toml", "--images", "none"])[1], "found 0"),
    "image unreadable": (
        lambda d: (_images(d / "bad", 4, broken=True), ["run", "--matrix", "m.toml", "--images", "bad"])[1],
        "cannot read image",
    ),
    "results path is a file": (
        lambda d: ((d / "file").write_text("x"), ["run", "--matrix", "m.toml", "--results", "file"])[1],
        "is a file; give a folder",
    ),
    "results path under a file": (
        lambda d: ((d / "file").write_text("x"), ["run", "--matrix", "m.toml", "--results", "file/sub"])[1],
        "is a file; give a folder",
    ),
    "cache path is a file": (
        lambda d: ((d / "file").write_text("x"), ["run", "--matrix", "m.toml", "--cache-dir", "file"])[1],
        "--cache-dir file: ",
    ),
    "cache name too long": (lambda d: ["run", "--matrix", "m.toml", "--cache-dir", "c" * 300], "longer than 255"),
    "costs with images": (lambda d: ["costs", "--matrix", "m.toml", "--images", "x"], "--images is not supported"),
    "costs training negative": (lambda d: ["costs", "--matrix", "m.toml", "--training", "-1"], "--training -1"),
    "costs training not a number": (lambda d: ["costs", "--training", "many"], "invalid int value: 'many'"),
    "figures of a missing folder": (lambda d: ["figures", "nowhere"], "nowhere: no such results folder"),
    "report of a missing folder": (lambda d: ["report", "nowhere"], "nowhere: no such results folder"),
    "check without a baseline file": (
        lambda d: ["check", "--baseline", "nope.csv", "results/tiny"],
        "--baseline nope.csv: no such file",
    ),
}


@pytest.mark.parametrize("case", list(OPTIONS))
def test_a_bad_option_or_folder_is_refused(tmp_path: Path, results: Path, case: str) -> None:
    (tmp_path / "m.toml").write_text(BASE)
    make, expected = OPTIONS[case]
    args = make(tmp_path)
    if "--results" not in args and args[0] in ("run", "costs"):
        args += ["--results", "results"]
    _refused(args, tmp_path, results, expected)


def _finished(folder: Path) -> None:
    """A small results folder as a run writes it (tables and run.json; no figures yet)."""
    from bench.core.schema import MATRIX_COLUMNS, MODEL_COLUMNS, conform

    folder.mkdir(parents=True)
    row = {
        c: (0.5 if t == "float64" else 1 if t in ("int64", "Int64") else False if t == "bool" else "x")
        for c, t in MATRIX_COLUMNS.items()
    }
    row.update(
        attack="art.pgd", norm="linf", quantized="float", postprocess="none", error="", flags="", epsilon_255=2.0
    )
    conform(pd.DataFrame([row]), MATRIX_COLUMNS).to_parquet(folder / "matrix.parquet", index=False)
    model = {
        c: (0.5 if t == "float64" else 1 if t in ("int64", "Int64") else False if t == "bool" else "x")
        for c, t in MODEL_COLUMNS.items()
    }
    pd.DataFrame([{**model, "error": ""}]).to_csv(folder / "models.csv", index=False)
    (folder / "run.json").write_text('{"profile": "tiny"}')


DAMAGED_RESULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "matrix table truncated": (
        lambda f: (f / "matrix.parquet").write_bytes((f / "matrix.parquet").read_bytes()[:100]),
        "matrix.parquet: unreadable",
    ),
    "matrix table without its columns": (
        lambda f: pd.DataFrame({"a": [1]}).to_parquet(f / "matrix.parquet"),
        "matrix.parquet: lacks the columns",
    ),
    "matrix table with a rate above 1": (
        lambda f: pd.read_parquet(f / "matrix.parquet").assign(robust_accuracy=7.0).to_parquet(f / "matrix.parquet"),
        "column robust_accuracy holds rates outside [0, 1]",
    ),
    "models table not CSV": (lambda f: (f / "models.csv").write_bytes(b"\x00\xff" * 50), "models.csv: "),
    "models table with text for numbers": (
        lambda f: (f / "models.csv").write_text((f / "models.csv").read_text().replace(",0.5,", ",lots,", 1)),
        "holds values that are not numbers",
    ),
    "run.json not JSON": (lambda f: (f / "run.json").write_text("{"), "run.json: unreadable"),
    "run.json not an object": (lambda f: (f / "run.json").write_text("[1, 2]"), "run.json: not a JSON object"),
    "run.json with a number for a table": (
        lambda f: (f / "run.json").write_text('{"configuration": 5}'),
        "run.json: configuration is not a JSON object",
    ),
    "models table without a column": (
        lambda f: pd.read_csv(f / "models.csv").drop(columns="test_accuracy_low").to_csv(f / "models.csv"),
        "models.csv: lacks the columns test_accuracy_low",
    ),
    "matrix table without an interval": (
        lambda f: (
            pd.read_parquet(f / "matrix.parquet").drop(columns="robust_accuracy_low").to_parquet(f / "matrix.parquet")
        ),
        "matrix.parquet: lacks the columns robust_accuracy_low",
    ),
    "costs table of other columns": (
        lambda f: (f / "costs.csv").write_text("foo,bar\n1,2\n"),
        "costs.csv: lacks the columns",
    ),
    "examples not npz": (lambda f: (f / "examples.npz").write_bytes(b"PK\x03\x04broken"), "examples.npz: unreadable"),
    "examples without their arrays": (
        lambda f: np.savez(f / "examples.npz", index=np.array('[{"task": "t"}]')),
        "examples.npz: example 0 lacks",
    ),
    "samples truncated": (lambda f: (f / "samples.parquet").write_bytes(b"PAR1"), "samples.parquet: unreadable"),
    "transfer table empty": (lambda f: (f / "transfer.parquet").write_bytes(b""), "transfer.parquet: unreadable"),
}


@pytest.mark.parametrize("command", ["figures", "tables", "report"])
@pytest.mark.parametrize("case", list(DAMAGED_RESULTS))
def test_a_damaged_results_file_is_refused_before_anything_is_written(tmp_path: Path, case: str, command: str) -> None:
    folder = tmp_path / "results" / "tiny"
    _finished(folder)
    damage, expected = DAMAGED_RESULTS[case]
    damage(folder)
    _refused([command, "results/tiny"], tmp_path, tmp_path / "results", expected)


def test_check_refuses_damaged_results(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "tiny"
    _finished(folder)
    (tmp_path / "base.csv").write_text("task,detector\nx,y\n")
    _refused(["check", "--baseline", "base.csv", "results/tiny"], tmp_path, tmp_path / "results", "not a baseline")
    DAMAGED_RESULTS["matrix table truncated"][0](folder)
    from bench.outputs.formats import BASELINE_COLUMNS

    (tmp_path / "base.csv").write_text(",".join(BASELINE_COLUMNS) + "\n")
    _refused(["check", "--baseline", "base.csv", "results/tiny"], tmp_path, tmp_path / "results", "unreadable")


def _unshare() -> bool:
    """Whether this machine lets a user mount a tmpfs in a namespace of its own."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _in_mount(options: str, folder: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` with a fresh tmpfs (``options``) mounted on ``folder``, in a user
    and mount namespace of its own (no privileges needed; nothing outlives the process)."""
    script = f'mount -t tmpfs -o {options} tmpfs "$1" && shift && exec "$@"'
    command = ["unshare", "-rm", "sh", "-c", script, "sh", str(folder), sys.executable, "-m", "bench", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=900)


needs_mounts = pytest.mark.skipif(not _unshare(), reason="unshare cannot mount a tmpfs here (user namespaces off)")


@needs_mounts
@pytest.mark.parametrize("case", ["read-only results", "read-only cache"])
def test_an_unwritable_folder_is_refused_within_seconds(tmp_path: Path, case: str) -> None:
    (tmp_path / "m.toml").write_text(BASE)
    (tmp_path / "ro").mkdir()
    where = ["--results", "ro/r"] if case == "read-only results" else ["--cache-dir", "ro/c"]
    start = time.monotonic()
    proc = _in_mount("ro,size=1m", tmp_path / "ro", ["run", "--matrix", "m.toml", "-q", *where], tmp_path)
    assert time.monotonic() - start < 5
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "results").exists()


@needs_mounts
@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_one_line_keeping_finished_cells(tmp_path: Path) -> None:
    """The cache fits the dataset, the model and the first cells, then the disk is full."""
    from bench.inputs.matrix import load_matrix
    from bench.inputs.photos import builtin_source
    from bench.run.execute import obtain_dataset
    from bench.run.plan import make_plan
    from bench.run.store import Store

    toml = BASE.replace(
        'attacks = ["foolbox.fgsm"]', 'attacks = ["foolbox.fgsm", "art.fgsm", "foolbox.pgd", "art.pgd"]'
    )
    (tmp_path / "m.toml").write_text(toml)
    matrix = load_matrix(tmp_path / "m.toml")
    job = make_plan(matrix, builtin_source(), threads=1).models[0]
    obtain_dataset(job.task, builtin_source(), matrix.data, matrix.seed, Store(tmp_path / "probe"), job.dataset_key)
    dataset = sum(p.stat().st_size for p in (tmp_path / "probe" / "datasets").iterdir())
    size = dataset // 1024 + 140  # KiB: the dataset, the model (~30 KiB) and a few cells (~35 KiB each)
    (tmp_path / "disk").mkdir()
    script = (
        f'mount -t tmpfs -o size={size}k tmpfs "$1" && shift && "$@"; status=$?; '
        'find "$0" -name "*.manifest.json" | sed "s|.*/\\(.*\\)/.*|\\1|" | sort | uniq -c; exit $status'
    )
    disk = tmp_path / "disk"
    command = [
        "unshare",
        "-rm",
        "sh",
        "-c",
        script,
        str(disk),
        str(disk),
        sys.executable,
        "-m",
        "bench",
        "run",
        "--matrix",
        "m.toml",
        "--results",
        "out",
        "--cache-dir",
        str(disk / "cache"),
        "-q",
    ]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=900)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 1, proc.stderr
    assert len(errors) == 1 and "No space left on device" in errors[0] and "kept in the cache" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    kept = {m.group(2): int(m.group(1)) for m in re.finditer(r"(\d+) (\w+)", proc.stdout)}
    finished = int(re.search(r"(\d+) finished cells", errors[0]).group(1))  # type: ignore[union-attr]
    assert kept.get("datasets") == 1 and kept.get("models") == 1 and kept.get("cells", 0) == finished >= 1, proc.stdout
