"""Cache keys change when something that can change the numbers changes, and only then.

Each test copies the package sources, edits the copy, and computes every key of a plan that uses
every registered entry (and every entry's fingerprint) in a fresh interpreter that imports the copy,
then compares with the keys of the unedited tree.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "detectors", "defenses")

# prints every key of a plan that uses every registered entry, and every entry's fingerprint
KEYS = """
import json
from bench.attacks import ATTACKS
from bench.inputs.photos import builtin_source
from bench.inputs.matrix import parse_matrix
from bench.run.plan import make_plan, pair_key
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS
from detectors._networks import is_network

families = {"tasks": TASKS, "detectors": DETECTORS, "defenses": DEFENSES, "attacks": ATTACKS}
doc = {name: registry.names() for name, registry in families.items()}
doc["detectors"] = [n for n in doc["detectors"] if not is_network(n)]  # they load a file: tests/test_networks.py
doc.update(seed=0, n_samples=10, epsilons_255=[1, 2])
plan = make_plan(parse_matrix(doc), builtin_source(), threads=1)
print(json.dumps({
    "dataset": {job.label: job.dataset_key for job in plan.models},
    "model": {job.label: job.key for job in plan.models},
    "cell": {cell.label: cell.key for cell in plan.cells},
    "probe": {f"{p.model.label} ({p.gradient})": p.key for p in plan.probes},
    "transfer": {c.label: pair_key(c.key, c.model_key) for c in plan.transfer_sources},
    "entry": {f"{f}:{n}": r.entry(n).fingerprint for f, r in families.items() for n in r.names()},
}))
"""


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _keys(root: Path) -> dict[str, dict[str, str]]:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", KEYS], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return keys


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return _keys(_copy(tmp_path_factory.mktemp("original")))


def _sources(root: Path) -> list[Path]:
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))


def _reword_docstrings_and_comments(path: Path) -> None:
    """Rewrite every docstring of a file and add comments everywhere a comment can go; no code changes."""
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    spans = []
    for node in [tree, *ast.walk(tree)]:
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                start = offsets[value.lineno - 1] + value.col_offset
                end = offsets[value.end_lineno - 1] + value.end_col_offset  # type: ignore[operator]
                spans.append((start, end))
    for start, end in sorted(set(spans), reverse=True):
        text = text[:start] + '"""Reworded: a docstring says what and why, never how much."""' + text[end:]
    inside = set()  # lines that end inside a multi-line string: no comment can go there
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0], token.end[0]))
    edited = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.rstrip("\n")
        if stripped.strip() and number not in inside and not stripped.endswith("\\"):
            line = stripped + "  # a comment\n"  # a trailing comment, even inside a bracket
        edited.append(line)
    path.write_text("# edited by tests/test_keys.py\n" + "".join(edited) + "# the end\n")


def test_docstring_and_comment_edits_to_every_source_file_change_no_key(
    original: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    root = _copy(tmp_path)
    for path in _sources(root):
        _reword_docstrings_and_comments(path)
    assert "Reworded" in (root / "bench" / "core" / "stats.py").read_text()
    assert _keys(root) == original


def _edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, f"{relative} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert before.keys() == after.keys()
    return {k for k in before if before[k] != after[k]}


def test_an_edit_to_the_interval_code_changes_no_key(original: dict[str, dict[str, str]], tmp_path: Path) -> None:
    """No stage computes an interval: cells and probes store rates, and every interval is derived from
    them when the tables are assembled (bench/run/tables.py), so it follows the edit on the next run
    without recomputing anything (tests/test_run.py checks the derivation)."""
    root = _copy(tmp_path)
    _edit(root, "bench/core/stats.py", "confidence: float = 0.95", "confidence: float = 0.9")
    assert _keys(root) == original


@pytest.mark.parametrize(
    ("relative", "old", "new"),
    [
        # wording of what a stage reports: the executor formats the training progress
        (
            "bench/run/execute.py",
            "val accuracy {val:.3f}",
            "validation {val:.3f}",
        ),
        # where the photographs come from: the keys hash their bytes
        ("bench/inputs/photos.py", "at least 3 are needed (one per split)", "three at least (one per split)"),
        # an entry's description (the decorator's info=)
        ("bench/attacks/art/pgd.py", "ART ProjectedGradientDescent, Linf", "ART's projected gradient descent, Linf"),
        # a new trust flag: derived when the tables are assembled, never part of a cell
        ("bench/core/schema.py", '    "too_few_samples",\n)', '    "too_few_samples",\n    "new_flag",\n)'),
        # the error class and the package's lazy public API compute nothing
        ("bench/core/errors.py", "class BenchError(Exception):", "class BenchError(ValueError):"),
        (
            "bench/__init__.py",
            '"parse_matrix": "bench.inputs.matrix",',
            '"parse_matrix": "bench.inputs.matrix",  "x": "y",',
        ),
    ],
    ids=["progress-wording", "photo-source-message", "entry-description", "new-flag", "error-class", "public-api"],
)
def test_an_edit_that_cannot_change_a_number_changes_no_key(
    original: dict[str, dict[str, str]], tmp_path: Path, relative: str, old: str, new: str
) -> None:
    root = _copy(tmp_path)
    _edit(root, relative, old, new)
    assert _keys(root) == original


@pytest.mark.parametrize(
    ("relative", "old", "new", "attacks"),
    [
        # the attack entry's own code: only its cells
        (
            "bench/attacks/art/pgd.py",
            "num_random_init=int(self.random_start)",
            "num_random_init=2",
            {"art.pgd", "art.pgd-l2"},
        ),
        # a helper an entry imports: the cells of the entries that import it
        (
            "bench/attacks/_starts.py",
            "dist.argmin(axis=1)",
            "dist.argmax(axis=1)",
            {"art.hopskipjump", "foolbox.boundary"},
        ),
        # the shared attack code every entry imports: every cell
        ("bench/attacks/base.py", "seed + 7919 * k", "seed + 7907 * k", None),
        # the post-processing every cell runs: every cell
        ("bench/run/postprocess.py", "JPEG_QUALITIES = (95, 85, 75)", "JPEG_QUALITIES = (95, 85, 70)", None),
    ],
    ids=["entry", "helper", "base", "postprocess"],
)
def test_an_edit_to_code_a_cell_calls_changes_the_keys_of_the_cells_that_use_it(
    original: dict[str, dict[str, str]], tmp_path: Path, relative: str, old: str, new: str, attacks: set[str] | None
) -> None:
    root = _copy(tmp_path)
    _edit(root, relative, old, new)
    keys = _keys(root)
    changed = _changed(original["cell"], keys["cell"])
    if attacks is None:
        assert changed == set(original["cell"])
    else:
        expected = {label for label in original["cell"] if label.split(" | ")[3].split("[")[0].split(" ")[0] in attacks}
        assert expected and changed == expected
    assert not _changed(original["model"], keys["model"])


def test_an_edit_to_training_or_a_detector_changes_its_models_and_their_cells(
    original: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    root = _copy(tmp_path)
    _edit(root, "detectors/bondi.py", "nn.Linear(", "nn.Bilinear(")
    keys = _keys(root)
    bondi = {label for label in original["model"] if " | bondi" in label}
    assert _changed(original["model"], keys["model"]) == bondi
    assert _changed(original["cell"], keys["cell"]) == {c for c in original["cell"] if " | bondi" in c}
    root = _copy(tmp_path / "training")
    _edit(root, "bench/run/training.py", "if val >= best_val:", "if val > best_val:")
    assert _changed(original["model"], _keys(root)["model"]) == set(original["model"])


def test_a_new_entry_of_every_family_changes_no_other_key(original: dict[str, dict[str, str]], tmp_path: Path) -> None:
    root = _copy(tmp_path)
    new_files = {
        "detectors/keytest.py": (
            "from detectors import DetectorInfo, register_detector\n\n"
            '@register_detector("keytest-detector", info=DetectorInfo("a new detector", reference="none"))\n'
            "def keytest_detector(*, in_channels: int = 1, num_classes: int = 2):\n"
            "    from torch import nn\n\n"
            "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n"
        ),
        "defenses/keytest.py": (
            "from defenses import Defense, DefenseInfo, register_defense\n"
            "from defenses.none import CrossEntropy\n\n"
            '@register_defense("keytest-defense", info=DefenseInfo("a new defence"))\n'
            "def keytest_defense() -> Defense:\n"
            "    return CrossEntropy()\n"
        ),
        "bench/attacks/art/keytest.py": (
            "from dataclasses import dataclass\n\n"
            "from bench.attacks import AttackInfo, register_attack\n"
            "from bench.attacks.art.fgsm import ArtFGSM\n\n"
            '@register_attack("art.keytest", info=AttackInfo("a new attack"))\n'
            "@dataclass(frozen=True, kw_only=True)\n"
            "class ArtKeyTest(ArtFGSM):\n"
            "    pass\n"
        ),
        "bench/tasks/keytest.py": (
            "from bench.tasks import Task, TaskInfo, binary, register_task\n\n"
            '@register_task("keytest-task", info=TaskInfo("pristine vs inverted", ("pristine", "keytest")))\n'
            "def keytest_task() -> Task:\n"
            '    return binary("keytest", lambda image, rng: 255 - image)\n'
        ),
    }
    for relative, text in new_files.items():
        (root / relative).write_text(text)
    keys = _keys(root)
    for kind, before in original.items():
        after = keys[kind]
        assert set(before) < set(after), kind  # the new entries add keys ...
        assert {k: after[k] for k in before} == before, kind  # ... and change none of the others


def test_no_project_module_takes_a_name_from_the_unfollowed_package_root() -> None:
    """bench/__init__.py is never followed by the fingerprints (it only re-exports, lazily): a
    ``from bench import parse_matrix`` in a stage would hide bench.inputs.matrix from its key.
    Sub-modules (``from bench import api``) are followed and allowed."""
    from bench.core.fingerprint import UNFOLLOWED, module_file

    assert "bench" in UNFOLLOWED
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "bench" / "__init__.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "bench":
                    offenders.extend(
                        f"{path.relative_to(REPO)}:{node.lineno}: from bench import {alias.name}"
                        for alias in node.names
                        if module_file(f"bench.{alias.name}") is None  # a re-exported name, not a sub-module
                    )
                elif isinstance(node, ast.Import) and any(alias.name == "bench" for alias in node.names):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: import bench")
    assert offenders == [], "import the defining module instead:\n" + "\n".join(offenders)
