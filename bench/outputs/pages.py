"""Markdown results pages: ``docs/results/<name>.md`` generated from a reference table.

A results folder is summarised into a committed reference (``results/reference/<name>.csv`` and
``.json``, bench/outputs/formats.py); :func:`render_page` turns one into a Markdown page and
:func:`render_index` lists every page. Python computes every table and finding from the numbers
(plain dataclasses of pre-formatted frames and sentences); the Jinja2 templates in
``bench/outputs/templates/`` only lay them out. Measured results thus never live in hand-written
prose: a test regenerates each committed page from its reference and fails when they differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write_text
from bench.core.errors import BenchError
from bench.core.schema import FLAG_NAMES, MODEL_COLUMNS
from bench.outputs.formats import (
    Results,
    load_results,
    parse_reference,
    read_reference,
    reference_name,
    reference_texts,
)
from bench.outputs.summary import flagged_curves, parse_spec, pick_epsilon, reference_rows, short_labels

COMMAND = "python -m bench report --markdown"
# eps*: where the undefended detector's worst-case robust accuracy first falls below this
EPS_STAR_LEVEL = 0.30
# "broken": worst-case robust accuracy below this
BROKEN_LEVEL = 0.10
# the seed paper's bar for a defence at eps* (Zhao et al. 2018), in percentage points
BAR_GAIN = 30.0
BAR_COST = 5.0
NORMS = {"linf": "L∞", "l2": "L2"}
LIBRARIES = {"art": "ART", "foolbox": "Foolbox"}
BLACK_BOX = ("score", "decision")
DASH = "–"
_LISTED = 5  # exceptions named in one finding before "and N more"


@dataclass
class Table:
    """A titled table of pre-formatted cells."""

    title: str
    frame: pd.DataFrame
    note: str = ""


@dataclass
class Page:
    """Everything a results page shows, computed; the template lays it out."""

    name: str  # the reference's file name: docs/results/<name>.md
    profile: str
    description: str
    header: list[tuple[str, str]]
    findings: list[str]
    models: Table | None = None
    summary: list[Table] = field(default_factory=list)
    attacks: list[Table] = field(default_factory=list)
    postprocess: list[Table] = field(default_factory=list)
    defenses: Table | None = None
    transforms: Table | None = None
    transfer: list[Table] = field(default_factory=list)
    flags: Table | None = None  # rows per flag, when any fired
    flagged: Table | None = None  # the flagged attack curves
    flags_note: str = ""  # the all-clear line when none fired
    zoo: list[Table] = field(default_factory=list)
    costs: list[Table] = field(default_factory=list)
    names: list[tuple[str, str, str]] = field(default_factory=list)  # family, short label, canonical name


@dataclass
class IndexEntry:
    """One page of the index."""

    name: str
    profile: str
    description: str
    finished: str
    command: str


# --- formatting


def _finite(value: Any) -> bool:
    return value is not None and not pd.isna(value) and bool(np.isfinite(float(value)))


def rate(value: Any) -> str:
    """A rate with 3 decimals (a dash when missing)."""
    return f"{float(value):.3f}" if _finite(value) else DASH


def interval(value: Any, low: Any, high: Any) -> str:
    """``0.118 [0.092, 0.150]``: a rate and its 95% interval."""
    if not _finite(value):
        return DASH
    if not (_finite(low) and _finite(high)):
        return rate(value)
    return f"{float(value):.3f} [{float(low):.3f}, {float(high):.3f}]"


def eps(value: float) -> str:
    """An epsilon in 8-bit units: ``0.5/255``."""
    return f"{float(value):g}/255"


def points(value: float, *, sign: bool = False) -> str:
    """A difference of rates in percentage points, 1 decimal."""
    return f"{100 * value:+.1f}" if sign else f"{100 * value:.1f}"


def code(text: str) -> str:
    """Inline code."""
    return f"`{text}`"


def cell(value: Any) -> str:
    """Text for one table cell: ``|`` escaped, on one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame of text cells as a GitHub Markdown table."""
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|---" * len(frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _sentence_list(items: list[str]) -> str:
    if len(items) > _LISTED:
        return "; ".join(items[:_LISTED]) + f"; and {len(items) - _LISTED} more"
    return "; ".join(items)


# --- labels


@dataclass(frozen=True)
class Labels:
    """Short labels of every canonical name on a page (bench.outputs.summary.short_labels)."""

    detector: dict[str, str]
    defense: dict[str, str]
    attack: dict[str, str]

    def det(self, name: str) -> str:
        return code(self.detector.get(name, name))

    def dfn(self, name: str) -> str:
        return code(self.defense.get(name, name))

    def atk(self, name: str) -> str:
        return code("ensemble (worst case)" if name == "ensemble" else self.attack.get(name, name))

    def model(self, detector: str, defense: str) -> str:
        return f"{self.det(detector)} / {self.dfn(defense)}"

    def names(self) -> list[tuple[str, str, str]]:
        """(family, short label, canonical name) where the label shortens the name."""
        return [
            (family, short, full)
            for family, labels in (("detector", self.detector), ("defence", self.defense), ("attack", self.attack))
            for full, short in labels.items()
            if short != full
        ]


def _labels(results: Results) -> Labels:
    names: dict[str, list[str]] = {"detector": [], "defense": [], "attack": []}
    frames = [results.table, results.models, results.per_photo, results.costs, results.training_costs]
    for frame in frames:
        if frame is None:
            continue
        for family in names:
            if family in frame.columns:
                names[family] += [str(v) for v in frame[family] if str(v) != "ensemble"]
    if results.transfer is not None:
        for side in ("source", "target"):
            names["detector"] += [str(v) for v in results.transfer[f"{side}_detector"]]
            names["defense"] += [str(v) for v in results.transfer[f"{side}_defense"]]
        names["attack"] += [str(v) for v in results.transfer["attack"]]
    return Labels(*(short_labels(names[f]) for f in ("detector", "defense", "attack")))


# --- selections


def _ok(table: pd.DataFrame, variant: tuple[str, str] = ("float", "none")) -> pd.DataFrame:
    """Successful rows of one variant of the adversarial images."""
    return table[(table["error"] == "") & (table["quantized"] == variant[0]) & (table["postprocess"] == variant[1])]


def _norms(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(str(n) for n in table["norm"]))
    return [n for n in NORMS if n in present] + [n for n in present if n not in NORMS]


def _reference(table: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The norm of the summarising rows (``linf`` when present) and those rows."""
    norms = _norms(_ok(table))
    if not norms:
        return "linf", reference_rows(table.iloc[:0])
    return norms[0], reference_rows(table, norms[0])


def _models(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    return list(
        dict.fromkeys(zip(frame["task"].astype(str), frame["detector"].astype(str), frame["defense"].astype(str)))
    )


def _in_model_order(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each model's rows in the order the models were run (the ensemble rows, written
    after every cell and sorted, follow the order of the models' own attack rows)."""
    models = _models(table[table["attack"] != "ensemble"]) + _models(table)
    rank = {model: i for i, model in reversed(list(enumerate(models)))}
    keys = np.array([rank[m] for m in zip(*(table[c].astype(str) for c in ("task", "detector", "defense")))])
    return table.iloc[np.argsort(keys, kind="stable")] if len(table) else table


def _epsilons(frame: pd.DataFrame) -> list[float]:
    return sorted({float(e) for e in frame["epsilon_255"]})


def _at(frame: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    return frame[np.isclose(frame["epsilon_255"].astype(float), epsilon)]


def _model_rows(frame: pd.DataFrame, model: tuple[str, str, str]) -> pd.DataFrame:
    task, detector, defense = model
    return frame[(frame["task"] == task) & (frame["detector"] == detector) & (frame["defense"] == defense)]


def _is_training_defense(name: str, table: pd.DataFrame) -> bool:
    """A training-time defence: attacked with the exact gradient only (an input transform is always
    attacked obliviously too, bench/run/plan.py)."""
    gradients = set(table.loc[table["defense"] == name, "gradient"].astype(str))
    return gradients <= {"exact", "any"}


# --- sections


def _header(results: Results) -> list[tuple[str, str]]:
    run, table = results.run, results.table
    versions = run.get("versions") or {}
    host = run.get("host") or {}
    out = [("produced by", code(_command(results)))]
    if run.get("finished"):
        out.append(("finished", str(run["finished"])))
    shown = [
        f"{label} {versions[key]}"
        for key, label in (("torch", "torch"), ("adversarial-robustness-toolbox", "ART"), ("foolbox", "Foolbox"))
        if key in versions
    ]
    if shown:
        out.append(("versions", ", ".join(shown)))
    if host:
        threads = f"{host['torch_threads']} torch threads" if "torch_threads" in host else ""
        cpus = f"{host['cpu_count']} CPUs" if "cpu_count" in host else ""
        out.append(("host", ", ".join(t for t in (str(host.get("platform", "")), threads, cpus) if t)))
    if len(table):
        n = sorted({int(v) for v in table["n"]})
        seed = sorted({int(v) for v in table["seed"]})
        text = str(n[0]) if len(n) == 1 else f"{n[0]} to {n[-1]}"
        out.append(("attacked test patches per cell", text + (f" (seed {seed[0]})" if len(seed) == 1 else "")))
    if len(results.seeds) > 1:
        out.append(
            (
                "training seeds",
                (
                    f"{', '.join(results.seeds)}: every model trained once per seed and attacked on the same patches; "
                    "the tables show the mean over the seeds with an interval spanning every seed's 95% interval"
                ),
            )
        )
    stats = run.get("stats") or {}
    if stats:
        out.append(("run statistics", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items())))
    total = (run.get("timings") or {}).get("total_seconds")
    if isinstance(total, int | float):
        out.append(("wall time", f"{total:.0f} s"))
    return out


def _command(results: Results) -> str:
    """The command that produced the results: run.json records the matrix file and whether it is
    a built-in profile (folders written before it did are taken to come from one)."""
    profile = results.name
    matrix = results.run.get("matrix") or {}
    # a built-in profile's own file: `--profile NAME` alone reruns it (a built-in file run under
    # another profile name needs the file); folders written before run.json recorded the matrix
    # come from a built-in profile
    builtin = bool(matrix.get("builtin", True)) and Path(str(matrix.get("file") or f"{profile}.toml")).stem == profile
    images = (results.run.get("images") or {}).get("source")
    if results.table.empty and results.models is not None:
        command = "python -m bench zoo"
        if profile != "zoo" or not builtin:
            command += ("" if builtin else " --matrix FILE") + f" --profile {profile}"
    else:
        command = "python -m bench run --matrix" + ("" if builtin else " FILE") + f" --profile {profile}"
    if images and images != "skimage":
        command += f" --images {images}"
    return command


def _models_table(results: Results, labels: Labels) -> Table | None:
    models = results.models
    if models is None or models.empty:
        return None
    rows = []
    seeded = len(results.seeds) > 1
    for _, m in models.iterrows():
        error = str(m["error"]) if pd.notna(m["error"]) else ""
        rows.append(
            {
                "task": code(str(m["task"])),
                "detector": labels.det(str(m["detector"])),
                "defence": labels.dfn(str(m["defense"])),
                **({"seed": str(m["training_seed"])} if seeded else {}),
                "test n": str(int(m["test_n"])),
                "clean accuracy [95% CI]": f"failed: {error}"
                if error
                else interval(m["test_accuracy"], m["test_accuracy_low"], m["test_accuracy_high"]),
                "epochs": str(int(m["epochs"])),
                "training (s)": f"{float(m['train_seconds']):.0f}" if np.isfinite(m["train_seconds"]) else DASH,
            }
        )
    return Table("Trained models", pd.DataFrame(rows))


def _summary_tables(table: pd.DataFrame, labels: Labels) -> list[Table]:
    out = []
    for norm in _norms(_ok(table)):
        rows = reference_rows(table, norm)
        if rows.empty:
            continue
        attacks = _ok(table)
        attacks = attacks[(attacks["norm"] == norm) & (attacks["attack"] != "ensemble")]
        columns = _epsilons(rows)
        records = []
        for model in _models(rows):
            here = _model_rows(rows, model)
            first = here.iloc[0]
            record = {
                "task": code(model[0]),
                "detector": labels.det(model[1]),
                "defence": labels.dfn(model[2]),
                "n": str(int(first["n"])),
                "clean": interval(first["clean_accuracy"], first["clean_accuracy_low"], first["clean_accuracy_high"]),
            }
            for e in columns:
                at = _at(here, e)
                record[eps(e)] = (
                    interval(
                        at.iloc[0]["robust_accuracy"],
                        at.iloc[0]["robust_accuracy_low"],
                        at.iloc[0]["robust_accuracy_high"],
                    )
                    if len(at)
                    else DASH
                )
            records.append(record)
        ensemble = (rows["attack"] == "ensemble").all()
        count = attacks["attack"].nunique()
        what = (
            f"worst case per patch over {count} {NORMS.get(norm, norm)} attack{'' if count == 1 else 's'}"
            if ensemble
            else "lowest robust accuracy of any single attack (no ensemble rows)"
        )
        out.append(Table(f"{NORMS.get(norm, norm)}: {what}", pd.DataFrame(records)))
    return out


def _attack_tables(table: pd.DataFrame, labels: Labels) -> list[Table]:
    rows = table[(table["quantized"] == "float") & (table["postprocess"] == "none")]
    out = []
    for model in _models(rows):
        here = _model_rows(rows, model)
        columns = _epsilons(here[here["error"] == ""]) or _epsilons(here)
        gradients = set(here["gradient"].astype(str)) - {"exact", "any"}
        black_box = here["threat"].isin(BLACK_BOX).any()
        keys = [
            (norm, attack, gradient)
            for norm in _norms(here)
            for attack, gradient in sorted(
                dict.fromkeys(
                    zip(here.loc[here["norm"] == norm, "attack"], here.loc[here["norm"] == norm, "gradient"])
                ),
                key=lambda k: k[0] == "ensemble",
            )
        ]
        records = []
        for norm, attack, gradient in keys:
            curve = here[(here["norm"] == norm) & (here["attack"] == attack) & (here["gradient"] == gradient)]
            first = curve.iloc[0]
            threat = str(first["threat"]) + (", minimum-norm" if bool(first["minimum_norm"]) else "")
            record = {"norm": NORMS.get(str(first["norm"]), str(first["norm"])), "attack": labels.atk(str(attack))}
            if gradients:
                record["gradient"] = str(gradient)
            record["threat"] = threat
            good = curve[curve["error"] == ""]
            record["clean"] = rate(good["clean_accuracy"].iloc[0]) if len(good) else "failed"
            for e in columns:
                at = _at(curve, e)
                if at.empty:
                    record[eps(e)] = DASH
                elif at.iloc[0]["error"]:
                    record[eps(e)] = "failed"
                else:
                    record[eps(e)] = rate(at.iloc[0]["robust_accuracy"])
            if black_box:
                queries = good["queries"].max() if len(good) else np.nan
                budget = good["query_budget"].max() if len(good) else np.nan
                record["queries/patch"] = (
                    f"{queries:.0f}" + (f" of {budget:.0f}" if np.isfinite(budget) else "")
                    if str(first["threat"]) in BLACK_BOX and np.isfinite(queries)
                    else ""
                )
            records.append(record)
        task, detector, defense = model
        out.append(Table(f"{code(task)}, {labels.model(detector, defense)}", pd.DataFrame(records)))
    return out


def variant_label(quantized: str, postprocess: str) -> str:
    """``float``, ``8-bit``, ``JPEG 95``: how a variant of the adversarial images is named on a page."""
    if postprocess.startswith("jpeg"):
        return f"JPEG {postprocess[4:]}"
    return (
        "8-bit" if quantized == "uint8" and postprocess == "none" else f"{quantized}/{postprocess}".replace("/none", "")
    )


def _variant_order(variant: tuple[str, str]) -> tuple[bool, bool, int, str]:
    quantized, postprocess = variant
    quality = int(postprocess[4:]) if postprocess.startswith("jpeg") and postprocess[4:].isdigit() else 0
    return (quantized != "float", postprocess != "none", -quality, postprocess)


def _postprocess_tables(table: pd.DataFrame, labels: Labels) -> list[Table]:
    ensemble = table[(table["attack"] == "ensemble") & (table["error"] == "")]
    # float, 8-bit, then each JPEG quality from the mildest down (a reference CSV is sorted by
    # name, so the order is set here, not taken from the rows)
    present = sorted(
        set(zip(ensemble["quantized"].astype(str), ensemble["postprocess"].astype(str))), key=_variant_order
    )
    if not any(v != ("float", "none") for v in present):
        return []
    out = []
    for norm in _norms(ensemble):
        rows = ensemble[ensemble["norm"] == norm]
        records = []
        for model in _models(rows):
            here = _model_rows(rows, model)
            for e in _epsilons(here):
                record = {
                    "task": code(model[0]),
                    "detector": labels.det(model[1]),
                    "defence": labels.dfn(model[2]),
                    "ε": eps(e),
                }
                for variant in present:
                    at = _at(_ok(here, variant), e)
                    record[variant_label(*variant)] = rate(at.iloc[0]["robust_accuracy"]) if len(at) else DASH
                records.append(record)
        out.append(Table(f"{NORMS.get(norm, norm)}: worst case over the attacks", pd.DataFrame(records)))
    return out


@dataclass
class DefenseComparison:
    """One training-time defence against the undefended detector at eps*."""

    task: str
    detector: str
    defense: str
    eps_star: float | None  # None: the undefended detector never falls below EPS_STAR_LEVEL
    undefended: float  # its robust accuracy at eps* (at the largest epsilon without one)
    robust: tuple[float, float, float] | None  # the defence's (value, low, high) at eps*
    clean_cost: float  # undefended minus defended clean accuracy (rates)
    largest: float  # the largest epsilon of the undefended curve
    # with several training seeds: how many, and the across-seed range (min, max) of the
    # undefended and the defended robust accuracy at eps* (bench/run/seeds.py)
    seeds: int = 1
    undefended_range: tuple[float, float] | None = None
    robust_range: tuple[float, float] | None = None
    undefended_interval: tuple[float, float] | None = None  # its (low, high): spanning every seed's

    @property
    def across_seeds(self) -> str | None:
        """With several seeds: ``holds`` when the defence's interval (spanning every seed's 95%
        interval) lies wholly above the undefended detector's - every seed of the defence beats
        every seed of the undefended detector beyond the sampling noise of each - ``reversed``
        when wholly below, else ``spread`` (the gain is within what trainings and the test sample
        vary by); None with one seed."""
        if self.seeds < 2 or self.robust is None or self.undefended_interval is None:
            return None
        if self.robust[1] > self.undefended_interval[1]:
            return "holds"
        if self.robust[2] < self.undefended_interval[0]:
            return "reversed"
        return "spread"

    @property
    def gain(self) -> float:
        return self.robust[0] - self.undefended if self.robust is not None else float("nan")

    @property
    def meets_bar(self) -> bool:
        # in points, rounded off float noise: rates are k/n, a gain of exactly the bar meets it
        return bool(round(100 * self.gain, 6) >= BAR_GAIN and round(100 * self.clean_cost, 6) <= BAR_COST)


def defense_comparisons(table: pd.DataFrame) -> list[DefenseComparison]:
    """Every training-time defence against ``none`` on the same (task, detector) at eps*, the
    smallest epsilon at which the undefended detector's worst-case L∞ robust accuracy falls
    below :data:`EPS_STAR_LEVEL` (empty without a ``none`` and another training-time defence)."""
    norm, rows = _reference(table)
    if norm != "linf" or rows.empty or "none" not in set(rows["defense"]):
        return []
    out = []
    for task, detector, defense in _models(rows):
        if defense == "none" or not _is_training_defense(defense, table):
            continue
        base = _model_rows(rows, (task, detector, "none")).sort_values("epsilon_255")
        mine = _model_rows(rows, (task, detector, defense))
        if base.empty:
            continue
        below = base[base["robust_accuracy"] < EPS_STAR_LEVEL]
        star = float(below["epsilon_255"].iloc[0]) if len(below) else None
        at_base = _at(base, star) if star is not None else base.iloc[-1:]
        at = _at(mine, star) if star is not None else mine.iloc[:0]
        seeds = int(at_base["seeds"].iloc[0]) if "seeds" in at_base and len(at_base) else 1
        out.append(
            DefenseComparison(
                task=task,
                detector=detector,
                defense=defense,
                eps_star=star,
                undefended=float(at_base["robust_accuracy"].iloc[0]),
                robust=(
                    (
                        float(at["robust_accuracy"].iloc[0]),
                        float(at["robust_accuracy_low"].iloc[0]),
                        float(at["robust_accuracy_high"].iloc[0]),
                    )
                    if len(at)
                    else None
                ),
                clean_cost=float(base["clean_accuracy"].iloc[0]) - float(mine["clean_accuracy"].iloc[0]),
                largest=float(base["epsilon_255"].iloc[-1]),
                seeds=seeds,
                undefended_range=_seed_range(at_base) if seeds > 1 else None,
                undefended_interval=(
                    (float(at_base["robust_accuracy_low"].iloc[0]), float(at_base["robust_accuracy_high"].iloc[0]))
                    if seeds > 1
                    else None
                ),
                robust_range=_seed_range(at) if seeds > 1 and len(at) else None,
            )
        )
    return out


def _seed_range(row: pd.DataFrame) -> tuple[float, float]:
    """The across-seed (min, max) robust accuracy of a row across training seeds."""
    return float(row["robust_accuracy_seed_min"].iloc[0]), float(row["robust_accuracy_seed_max"].iloc[0])


ACROSS_SEEDS = {
    "holds": "the gain holds on every seed (the intervals spanning the seeds do not overlap)",
    "reversed": "reversed on every seed (the intervals spanning the seeds do not overlap)",
    "spread": "within the spread of the seeds and the test sample (the intervals overlap)",
}


def _ranges(c: DefenseComparison) -> str:
    """``undefended a–b, defended c–d: <verdict>`` for a comparison across seeds."""
    assert c.undefended_range is not None and c.robust_range is not None and c.across_seeds is not None
    (ul, uh), (dl, dh) = c.undefended_range, c.robust_range
    return f"undefended {rate(ul)}{DASH}{rate(uh)}, defended {rate(dl)}{DASH}{rate(dh)}: {ACROSS_SEEDS[c.across_seeds]}"


def _defenses_table(comparisons: list[DefenseComparison], labels: Labels) -> Table | None:
    if not comparisons:
        return None
    seeded = any(c.seeds > 1 for c in comparisons)
    records = [
        {
            "task": code(c.task),
            "detector": labels.det(c.detector),
            "ε*": eps(c.eps_star) if c.eps_star is not None else f"none up to {eps(c.largest)}",
            "undefended at ε*": rate(c.undefended) if c.eps_star is not None else DASH,
            "defence": labels.dfn(c.defense),
            ("robust at ε* [interval over seeds]" if seeded else "robust at ε* [95% CI]"): (
                interval(*c.robust) if c.robust is not None else DASH
            ),
            "gain (points)": points(c.gain, sign=True) if c.robust is not None else DASH,
            "clean cost (points)": points(c.clean_cost, sign=True),
            "meets the bar": ("yes" if c.meets_bar else "no") if c.robust is not None else DASH,
            **({"across training seeds (range at ε*)": _ranges(c) if c.across_seeds else DASH} if seeded else {}),
        }
        for c in comparisons
    ]
    return Table("Training-time defences at ε*", pd.DataFrame(records))


@dataclass
class TransformComparison:
    """An attack on an input transform at one epsilon with the oblivious, exact and adaptive gradients."""

    task: str
    detector: str
    defense: str
    attack: str
    norm: str
    epsilon: float
    oblivious: float
    exact: float
    adaptive: float
    adaptive_gradient: str

    @property
    def holds(self) -> bool:
        return bool(self.adaptive <= self.oblivious)


def _parameters(name: str) -> tuple[str, dict[str, str]]:
    """``art.pgd[steps=10,x=1]`` -> (``art.pgd``, {steps: 10, x: 1}) (a canonical name's parts)."""
    bare, _, rest = name.partition("[")
    pairs = [p.partition("=") for p in rest.rstrip("]").split(",") if p]
    return bare, {k: v for k, _, v in pairs}


def _attack_run(model: pd.DataFrame, attack: str, gradient: str, attacks_run: Mapping[str, Mapping[str, str]]) -> str:
    """The name of the attack the cells of ``attack`` with ``gradient`` ran: from run.json's
    ``attacks_run``; for folders written before it was recorded, the one attack of those rows that
    differs from ``attack`` in its ``steps`` only (BPDA runs more steps), else ``attack`` itself."""
    if attack in attacks_run:
        return attacks_run[attack].get(gradient, attack)
    names = set(model.loc[model["gradient"] == gradient, "attack"].astype(str))
    if attack in names:
        return attack
    bare, params = _parameters(attack)
    params.pop("steps", None)
    similar = [
        n for n in names if _parameters(n)[0] == bare and {**_parameters(n)[1], "steps": ""} == {**params, "steps": ""}
    ]
    return similar[0] if len(similar) == 1 else attack


def transform_comparisons(
    table: pd.DataFrame, attacks_run: Mapping[str, Mapping[str, str]]
) -> list[TransformComparison]:
    """Per input transform (a defence attacked with more gradients than the exact one), attack and
    epsilon: robust accuracy with the oblivious and the exact gradient, and the adaptive evaluation -
    the lowest robust accuracy over every gradient but the oblivious one, named (an adaptive
    attacker takes the better gradient). The attacks are those of the oblivious rows; a BPDA cell
    runs its attack with more steps and names that attack, which ``attacks_run`` (run.json: per
    attack and gradient, the attack run) gives (:func:`_attack_run`)."""
    rows = _ok(table)
    rows = rows[rows["attack"] != "ensemble"]
    defenses = dict.fromkeys(rows.loc[~rows["gradient"].isin(["exact", "any"]), "defense"].astype(str))
    out = []
    for defense in defenses:
        here = rows[rows["defense"] == defense]
        for (task, detector, norm), model in here.groupby(["task", "detector", "norm"], sort=False):
            for attack in dict.fromkeys(model.loc[model["gradient"] == "oblivious", "attack"].astype(str)):
                curves = {
                    str(gradient): model[
                        (model["gradient"] == gradient)
                        & (model["attack"] == _attack_run(model, attack, str(gradient), attacks_run))
                    ]
                    for gradient in dict.fromkeys(model["gradient"])
                }
                for epsilon in _epsilons(curves["oblivious"]):
                    at = {g: _at(c, epsilon)["robust_accuracy"] for g, c in curves.items()}
                    adaptive = {g: float(v.iloc[0]) for g, v in at.items() if g != "oblivious" and len(v)}
                    if not adaptive:
                        continue
                    best = min(adaptive, key=lambda g: adaptive[g])
                    out.append(
                        TransformComparison(
                            str(task),
                            str(detector),
                            defense,
                            attack,
                            str(norm),
                            epsilon,
                            float(at["oblivious"].iloc[0]),
                            adaptive.get("exact", float("nan")),
                            adaptive[best],
                            best,
                        )
                    )
    return out


def _transforms_table(comparisons: list[TransformComparison], labels: Labels) -> Table | None:
    if not comparisons:
        return None
    several = len({c.norm for c in comparisons}) > 1
    records = []
    for c in comparisons:
        record = {
            "task": code(c.task),
            "detector": labels.det(c.detector),
            "transform": labels.dfn(c.defense),
            "attack": labels.atk(c.attack),
        }
        if several:
            record["norm"] = NORMS.get(c.norm, c.norm)
        record |= {
            "ε": eps(c.epsilon),
            "oblivious": rate(c.oblivious),
            "exact": rate(c.exact),
            "adaptive": f"{rate(c.adaptive)} ({c.adaptive_gradient})",
            "adaptive ≤ oblivious": "yes" if c.holds else "no",
        }
        records.append(record)
    held = sum(c.holds for c in comparisons)
    return Table(
        "Input transforms: robust accuracy by the attacker's gradient",
        pd.DataFrame(records),
        f"Adaptive ≤ oblivious in {held} of {len(comparisons)} comparisons.",
    )


def _transfer_tables(results: Results, labels: Labels) -> list[Table]:
    transfer = results.transfer
    if transfer is None or transfer.empty:
        return []
    available = _epsilons(transfer)
    _, reference = _reference(results.headline)
    wanted = pick_epsilon(reference) if not reference.empty else available[-1]
    epsilon = min(available, key=lambda e: abs(e - wanted))
    rows = _at(transfer, epsilon)
    seeds = rows["training_seed"].nunique() if "training_seed" in rows else 1
    over = f" (mean over {seeds} training seeds, each source scored on its own seed's models)" if seeds > 1 else ""
    out = []
    for (task, attack), g in rows.groupby(["task", "attack"], sort=False):
        sources = list(dict.fromkeys(zip(g["source_detector"], g["source_defense"])))
        targets = list(dict.fromkeys(zip(g["target_detector"], g["target_defense"])))
        for value, what in (
            ("target_accuracy", "target accuracy on the source's 8-bit adversarial images"),
            ("transfer_success_rate", "transfer success rate (share of the source's successes that fool the target)"),
        ):
            records = []
            for source in sources:
                record = {"source \\ target": labels.model(*source)}
                for target in targets:
                    hit = g[
                        (g["source_detector"] == source[0])
                        & (g["source_defense"] == source[1])
                        & (g["target_detector"] == target[0])
                        & (g["target_defense"] == target[1])
                    ]
                    text = rate(hit[value].mean()) if len(hit) else DASH  # the mean over training seeds
                    record[labels.model(*target)] = text + (" *" if len(hit) and bool(hit["white_box"].iloc[0]) else "")
                records.append(record)
            out.append(
                Table(
                    f"{code(str(task))}, {labels.atk(str(attack))} at ε = {eps(epsilon)}: {what}{over}",
                    pd.DataFrame(records),
                )
            )
    return out


def _flag_tables(table: pd.DataFrame, labels: Labels) -> tuple[Table | None, Table | None, str]:
    seeded = (table["seeds"] > 1).any() if "seeds" in table else False
    names = [n for n in FLAG_NAMES if seeded or n != "seed_sensitive"]  # one seed cannot raise it
    counts = {name: int(table[f"flag_{name}"].sum()) for name in names}
    if not any(counts.values()):
        return None, None, f"No trust flag fired on any of the {len(table)} rows."
    per_flag = pd.DataFrame(
        [{"flag": f"[{code(name)}](../flags.md#{name})", "rows": str(count)} for name, count in counts.items()]
    )
    records = [
        {
            "flag": code(str(c["flag"])),
            "task": code(str(c["task"])),
            "model": labels.model(str(c["detector"]), str(c["defense"])),
            "attack": labels.atk(str(c["attack"])),
            "gradient": str(c["gradient"]),
            "norm": NORMS.get(str(c["norm"]), str(c["norm"])),
            "ε (/255)": str(c["epsilons_255"]).replace(",", ", "),
            "variants": str(c["variants"]).replace(",", ", "),
            "rows": str(c["rows"]),
        }
        for _, c in flagged_curves(table).iterrows()
    ]
    return (
        Table("Rows per flag", per_flag),
        Table("Flagged attack curves", pd.DataFrame(records)),
        "",
    )


def zoo_frame(models: pd.DataFrame) -> pd.DataFrame:
    """Task x detector: clean test accuracy [95% Wilson interval] and training seconds per cell,
    then a row of parameter counts (the zoo's table, ``zoo.md``)."""
    models = _model_frame(models)
    detectors = list(dict.fromkeys(models["detector"].astype(str)))
    short = short_labels(detectors)
    records = []
    for task in dict.fromkeys(models["task"].astype(str)):
        rows = models[models["task"] == task]
        record = {"task (n test patches)": f"{code(task)} ({int(rows['test_n'].max())})"}
        for d in detectors:
            here = rows[rows["detector"] == d]
            if here.empty:
                record[code(short[d])] = DASH
                continue
            r = _across_seeds(here)
            record[code(short[d])] = (
                "failed"
                if r["error"]
                else interval(r["test_accuracy"], r["test_accuracy_low"], r["test_accuracy_high"])
                + f" {float(r['train_seconds']):.0f} s"
                + (f" ({len(here)} seeds)" if len(here) > 1 else "")
            )
        records.append(record)
    params = models.drop_duplicates("detector").set_index("detector")["parameters"]
    records.append(
        {
            "task (n test patches)": "parameters (first task)",
            **{code(short[d]): f"{int(params[d]):,}" for d in detectors},
        }
    )
    return pd.DataFrame(records)


def _across_seeds(rows: pd.DataFrame) -> pd.Series:
    """One model's row, or its training seeds' rows as one (as the matrix rows across seeds): the
    mean accuracy and training time, an interval spanning every seed's, an error if one failed."""
    first = rows.iloc[0].copy()
    if len(rows) == 1:
        return first
    failed = rows[rows["error"] != ""]
    if len(failed):
        first["error"] = str(failed["error"].iloc[0])
        return first
    for column in ("test_accuracy", "train_seconds"):
        first[column] = float(rows[column].astype(float).mean())
    first["test_accuracy_low"] = float(rows["test_accuracy_low"].min())
    first["test_accuracy_high"] = float(rows["test_accuracy_high"].max())
    return first


def zoo_markdown(models: pd.DataFrame) -> str:
    """Task x detector table (:func:`zoo_frame`) and the canonical names of its detectors and defences."""
    models = _model_frame(models)
    names = (
        "Detectors: "
        + "; ".join(code(d) for d in dict.fromkeys(models["detector"].astype(str)))
        + ". Defence: "
        + ", ".join(code(d) for d in dict.fromkeys(models["defense"].astype(str)))
        + "."
    )
    return markdown_table(zoo_frame(models)) + "\n\n" + names


def _model_frame(models: pd.DataFrame) -> pd.DataFrame:
    models = models.copy()
    models["error"] = models["error"].fillna("").astype(str)
    return models[list(MODEL_COLUMNS)]


@dataclass
class ZooTask:
    """The best detector of one zoo task and the detectors at chance on it."""

    task: str
    best: pd.Series  # its models.csv row
    at_chance: list[str]  # detectors whose clean-accuracy interval contains 1/classes
    classes: int | None


def zoo_tasks(results: Results) -> list[ZooTask]:
    """Per task of a zoo: the detector with the highest clean test accuracy and the ones at chance."""
    if results.models is None or results.models.empty:
        return []
    models = _model_frame(results.models)
    datasets = results.run.get("datasets") or {}
    out = []
    for task in dict.fromkeys(models["task"].astype(str)):
        here = models[models["task"] == task]
        groups = here.groupby(["detector", "defense"], sort=False)  # a model's training seeds as one
        rows = pd.DataFrame([_across_seeds(g) for _, g in groups]) if len(here) else here
        rows = rows[rows["error"] == ""]
        if rows.empty:
            continue
        best = rows.iloc[int(np.argmax(rows["test_accuracy"].to_numpy(dtype=float)))]
        classes = (datasets.get(task) or {}).get("classes")
        k = len(classes) if isinstance(classes, list) and classes else None
        chance = [
            str(r["detector"])
            for _, r in rows.iterrows()
            if k is not None and r["test_accuracy_low"] <= 1 / k <= r["test_accuracy_high"]
        ]
        out.append(ZooTask(task, best, chance, k))
    return out


def _zoo_tables(results: Results, tasks: list[ZooTask], labels: Labels) -> list[Table]:
    if not results.table.empty or results.models is None or results.models.empty:
        return []
    out = [Table("Clean test accuracy [95% CI] and training time, task x detector", zoo_frame(results.models))]
    photos = results.per_photo
    if photos is not None and not photos.empty:
        records = []
        for t in tasks:
            rows = photos[
                (photos["task"].astype(str) == t.task)
                & (photos["detector"].astype(str) == str(t.best["detector"]))
                & (photos["defense"].astype(str) == str(t.best["defense"]))
            ]
            records.append(
                {
                    "task": code(t.task),
                    "best detector": labels.det(str(t.best["detector"])),
                    "clean accuracy": rate(t.best["test_accuracy"]),
                    "per test photograph (patches)": ", ".join(
                        f"{code(str(r['photo']))} {rate(r['accuracy'])} ({int(r['n'])})" for _, r in rows.iterrows()
                    )
                    or DASH,
                }
            )
        out.append(Table("Per-photograph accuracy of each task's best detector", pd.DataFrame(records)))
    return out


def _costs_tables(results: Results, labels: Labels) -> list[Table]:
    out = []
    costs = results.costs
    if costs is not None and not costs.empty:

        def number(value: Any, digits: int) -> str:
            return f"{float(value):.{digits}f}" if pd.notna(value) and np.isfinite(float(value)) else DASH

        records = [
            {
                "detector": labels.det(str(r["detector"])),
                "defence": labels.dfn(str(r["defense"])),
                "measure": str(r["measure"]),
                "attack": labels.atk(str(r["attack"])),
                "ratio": number(r.get("ratio"), 2),
                "max gap": number(r.get("max_gap"), 3),
                "norm scale": number(r.get("norm_scale"), 2),
                "shape gap": number(r.get("shape_gap"), 3),
            }
            for _, r in costs.iterrows()
        ]
        out.append(Table("Attack costs: time ratios measured back to back in one process", pd.DataFrame(records)))
    training = results.training_costs
    if training is not None and not training.empty:
        records = [
            {
                "task": code(str(r["task"])),
                "detector": labels.det(str(r["detector"])),
                "defence": labels.dfn(str(r["defense"])),
                "epochs timed": str(int(r["epochs"])),
                "time per epoch / undefended": f"{float(r['ratio']):.2f}" if pd.notna(r["ratio"]) else DASH,
            }
            for _, r in training.iterrows()
        ]
        out.append(Table("Training costs: time per epoch relative to the undefended detector", pd.DataFrame(records)))
    return out


# --- findings


def _spread(row: pd.Series) -> str:
    """A row's robust accuracy, with its across-seed range where it stands for several seeds."""
    text = rate(row["robust_accuracy"])
    if int(row.get("seeds", 1)) > 1 and _finite(row.get("robust_accuracy_seed_min")):
        low, high = rate(row["robust_accuracy_seed_min"]), rate(row["robust_accuracy_seed_max"])
        text += f", seeds {low}{DASH}{high}"
    return text


def _finding_undefended(table: pd.DataFrame, labels: Labels) -> list[str]:
    norm, rows = _reference(table)
    out = []
    for task, detector, defense in _models(rows):
        if defense != "none":
            continue
        curve = _model_rows(rows, (task, detector, defense)).sort_values("epsilon_255")
        last = curve.iloc[-1]
        below = curve[curve["robust_accuracy"] < BROKEN_LEVEL]
        what = f"Undefended {labels.det(detector)} on {code(task)}: worst-case {NORMS.get(norm, norm)} robust accuracy"
        end = f"{_spread(last)} at the largest ε, {eps(last['epsilon_255'])}"
        if below.empty:
            out.append(f"{what} stays at or above {BROKEN_LEVEL:.3f} at every ε ({end}).")
        elif len(below) == 1 and below.index[0] == curve.index[-1]:
            out.append(
                f"{what} falls below {BROKEN_LEVEL:.3f} only at the largest ε, {eps(last['epsilon_255'])} "
                f"({_spread(last)})."
            )
        else:
            first = below.iloc[0]
            out.append(
                f"{what} falls below {BROKEN_LEVEL:.3f} at ε = {eps(first['epsilon_255'])} "
                f"({_spread(first)}); it is {end}."
            )
    return out


def _finding_fgsm(table: pd.DataFrame, labels: Labels) -> list[str]:
    rows = _ok(table)
    rows = rows[(rows["threat"] == "white-box") & (rows["gradient"] == "exact")]
    names = rows["attack"].map(lambda a: parse_spec(str(a))[0])
    out = []
    for library, label in LIBRARIES.items():
        mine = rows[rows["library"] == library]
        fgsm = mine[names[mine.index] == f"{library}.fgsm"]
        others = mine[names[mine.index] != f"{library}.fgsm"]
        compared, beaten = 0, []
        for model in _models(fgsm):
            single = _model_rows(fgsm, model)
            iterative = _model_rows(others, model)
            iterative = iterative[iterative["norm"].isin(set(single["norm"]))]
            common = sorted(set(_epsilons(single)) & set(_epsilons(iterative)))
            if not common:
                continue
            largest = common[-1]
            s = _at(single, largest).iloc[0]
            at = _at(iterative, largest)
            best = at.iloc[int(np.argmin(at["robust_accuracy"].to_numpy(dtype=float)))]
            compared += 1
            if s["robust_accuracy"] > best["robust_accuracy"]:
                beaten.append((float(s["robust_accuracy"] - best["robust_accuracy"]), model, largest, s, best))
        if not compared:
            continue
        if not beaten:
            out.append(
                f"{label}'s FGSM never leaves more robust accuracy than the best iterative {label} attack of its norm "
                f"at each model's largest ε ({_count(compared, 'model')} compared)."
            )
            continue
        gap, (task, detector, defense), largest, s, best = max(beaten, key=lambda b: b[0])
        out.append(
            f"{label}'s FGSM leaves more robust accuracy than the best iterative {label} attack of its norm at the "
            f"largest ε on {len(beaten)} of {_count(compared, 'model')} (largest gap {gap:.3f}: {labels.model(detector, defense)} "
            f"on {code(task)} at {eps(largest)}, {labels.atk(str(s['attack']))} {rate(s['robust_accuracy'])} vs "
            f"{labels.atk(str(best['attack']))} {rate(best['robust_accuracy'])}): single-step stalling is not robustness."
        )
    return out


def _finding_libraries(table: pd.DataFrame, labels: Labels) -> list[str]:
    """One sentence per attack that both libraries implement with the same name and parameters."""
    rows = _ok(table)
    rows = rows[rows["library"].isin(list(LIBRARIES))]
    if rows.empty:
        return []
    rows = rows.assign(variant=rows["attack"].astype(str).str.split(".", n=1).str[1])
    keys = ["task", "detector", "defense", "gradient", "norm", "epsilon_255", "variant"]
    columns = ["attack", "robust_accuracy", "robust_accuracy_low", "robust_accuracy_high"]
    art = rows[rows["library"] == "art"].set_index(keys)[columns]
    foolbox = rows[rows["library"] == "foolbox"].set_index(keys)[columns]
    joined = art.join(foolbox, how="inner", lsuffix="_art", rsuffix="_fb")
    out = []
    for (name_art, name_fb), pairs in joined.groupby(["attack_art", "attack_fb"], sort=False):
        which = f"ART and Foolbox {labels.atk(str(name_art))} / {labels.atk(str(name_fb))}"
        diff = (pairs["robust_accuracy_art"] - pairs["robust_accuracy_fb"]).abs().to_numpy()
        if float(diff.max()) == 0:
            out.append(f"{which}: the same robust accuracy in all {_count(len(pairs), 'pair')} of rows (float images).")
            continue
        apart = (pairs["robust_accuracy_high_art"] < pairs["robust_accuracy_low_fb"]) | (
            pairs["robust_accuracy_high_fb"] < pairs["robust_accuracy_low_art"]
        )
        top = int(np.argmax(diff))
        task, detector, defense, _, _, epsilon, _ = pairs.index[top]
        overlap = (
            "every pair's 95% intervals overlap"
            if not apart.any()
            else f"the 95% intervals of {int(apart.sum())} of {len(pairs)} pairs do not overlap "
            f"(trust flag {code('libraries_disagree')})"
        )
        out.append(
            f"{which}: robust accuracy differs by at most {float(diff.max()):.3f} over {_count(len(pairs), 'pair')} "
            f"of rows (float images; {labels.model(str(detector), str(defense))} on {code(str(task))} at "
            f"{eps(float(epsilon))}: {rate(pairs['robust_accuracy_art'].iloc[top])} vs "
            f"{rate(pairs['robust_accuracy_fb'].iloc[top])}); {overlap}."
        )
    return out


def _finding_defenses(comparisons: list[DefenseComparison], labels: Labels) -> list[str]:
    if not comparisons:
        return []
    bar = f"gain ≥ {BAR_GAIN:g} points at a clean cost ≤ {BAR_COST:g} points; Zhao et al. 2018"
    measured = [c for c in comparisons if c.eps_star is not None and c.robust is not None]
    out = [
        (
            f"{sum(c.meets_bar for c in measured)} of {len(comparisons)} (training-time defence, detector) pairs meet the "
            f"seed paper's bar ({bar})."
        )
    ]
    seeded = [c for c in measured if c.across_seeds]
    if seeded:
        gains = [c for c in seeded if c.gain > 0]
        held = [c for c in gains if c.across_seeds == "holds"]
        out.append(
            f"Across {seeded[0].seeds} training seeds, {len(held)} of the {len(gains)} robustness gains at ε* hold on "
            "every seed: the defence's interval spanning its seeds' 95% intervals lies above the undefended "
            "detector's; the others are within what trainings of one detector and the test sample vary by."
        )
    for c in comparisons:
        where = f"{labels.dfn(c.defense)} on {labels.det(c.detector)} ({code(c.task)})"
        if c.eps_star is None:
            out.append(
                f"{where}: not compared; the undefended detector's worst-case L∞ robust accuracy stays at or above "
                f"{EPS_STAR_LEVEL:.3f} up to {eps(c.largest)}."
            )
        elif c.robust is None:
            out.append(f"{where}: no worst-case row at ε* = {eps(c.eps_star)}.")
        else:
            seeds = f" (means over {c.seeds} training seeds)" if c.across_seeds else ""
            spread = f" Across the seeds, {_ranges(c)}." if c.across_seeds else ""
            out.append(
                f"{where}: at ε* = {eps(c.eps_star)} (undefended {rate(c.undefended)}) robust accuracy "
                f"{rate(c.robust[0])}, a gain of {points(c.gain, sign=True)} points at a clean cost of "
                f"{points(c.clean_cost, sign=True)} points{seeds}: {'meets' if c.meets_bar else 'below'} the bar."
                + spread
            )
    return out


def _finding_transforms(comparisons: list[TransformComparison], labels: Labels) -> list[str]:
    out = []
    if comparisons:
        held = sum(c.holds for c in comparisons)
        text = (
            f"Input transforms: the adaptive evaluation (the better of the non-oblivious gradients) leaves at most "
            f"the oblivious attack's robust accuracy in {held} of {len(comparisons)} comparisons"
        )
        failed = [
            f"{labels.dfn(c.defense)} on {labels.det(c.detector)}, {labels.atk(c.attack)} at {eps(c.epsilon)}: "
            f"{c.adaptive_gradient} {rate(c.adaptive)} vs oblivious {rate(c.oblivious)}"
            for c in comparisons
            if not c.holds
        ]
        out.append(text + (f"; not in: {_sentence_list(failed)}." if failed else "."))
    return out


def _finding_zoo(tasks: list[ZooTask], labels: Labels) -> list[str]:
    if not tasks:
        return []
    best = "; ".join(
        f"{code(t.task)}: {labels.det(str(t.best['detector']))} "
        f"{interval(t.best['test_accuracy'], t.best['test_accuracy_low'], t.best['test_accuracy_high'])}"
        for t in tasks
    )
    out = [f"Best detector per task (clean test accuracy [95% CI]): {best}."]
    known = [t for t in tasks if t.classes is not None]
    chance = [t for t in known if t.at_chance]
    if known and not chance:
        out.append(f"No detector is at chance (95% interval containing 1/classes) on any of {len(known)} tasks.")
    elif chance:
        out.append(
            "At chance (95% interval of clean accuracy containing 1/classes): "
            + "; ".join(
                f"{code(t.task)} (1/{t.classes}): " + ", ".join(labels.det(d) for d in t.at_chance) for t in chance
            )
            + "."
        )
    return out


def _finding_flags(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return []
    counts = {name: int(table[f"flag_{name}"].sum()) for name in FLAG_NAMES}
    flagged = int((table["flags"] != "").sum())
    if not flagged:
        return [f"No trust flag fired on any of the {len(table)} rows."]
    fired = ", ".join(f"{code(name)} on {count}" for name, count in counts.items() if count)
    return [f"Trust flags fired on {flagged} of {len(table)} rows ({fired}); see the trust flags section."]


# --- the page


def build_page(results: Results) -> Page:
    """Every table and finding of a results page."""
    table = _in_model_order(results.headline)  # across the training seeds where there are several
    labels = _labels(results)
    defenses = defense_comparisons(table)
    transforms = transform_comparisons(table, results.run.get("attacks_run") or {})
    tasks = zoo_tasks(results) if table.empty else []
    flags, flagged, flags_note = _flag_tables(table, labels) if len(table) else (None, None, "")
    config = results.run.get("configuration") or {}
    findings = [
        *_finding_undefended(table, labels),
        *_finding_fgsm(table, labels),
        *_finding_libraries(table, labels),
        *_finding_defenses(defenses, labels),
        *_finding_transforms(transforms, labels),
        *_finding_zoo(tasks, labels),
        *_finding_flags(table),
    ]
    return Page(
        name=reference_name(results),
        profile=results.name,
        description=str(config.get("description", "")) if isinstance(config, dict) else "",
        header=_header(results),
        findings=findings,
        models=_models_table(results, labels) if not table.empty else None,
        summary=_summary_tables(table, labels),
        attacks=_attack_tables(table, labels),
        postprocess=_postprocess_tables(table, labels),
        defenses=_defenses_table(defenses, labels),
        transforms=_transforms_table(transforms, labels),
        transfer=_transfer_tables(results, labels),
        flags=flags,
        flagged=flagged,
        flags_note=flags_note,
        zoo=_zoo_tables(results, tasks, labels),
        costs=_costs_tables(results, labels),
        names=labels.names(),
    )


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.outputs", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["markdown_table"] = markdown_table
    env.filters["cell"] = cell
    env.globals.update(command=COMMAND, bar_gain=BAR_GAIN, bar_cost=BAR_COST, eps_star_level=EPS_STAR_LEVEL)
    return env


def _tidy(text: str) -> str:
    """At most one blank line in a row and one newline at the end."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_page(results: Results) -> str:
    """The Markdown page of a results folder or reference (:func:`build_page` laid out)."""
    return _tidy(_environment().get_template("results.md.j2").render(page=build_page(results)))


def index_entries(references: Mapping[str, Results]) -> list[IndexEntry]:
    """One entry per reference, by name."""
    return [
        IndexEntry(
            name=name,
            profile=r.name,
            description=str((r.run.get("configuration") or {}).get("description", "")),
            finished=str(r.run.get("finished", "")),
            command=_command(r),
        )
        for name, r in sorted(references.items())
    ]


def render_index(references: Mapping[str, Results]) -> str:
    """The index page (docs/results/README.md) of the pages of these references, by name."""
    return _tidy(_environment().get_template("index.md.j2").render(entries=index_entries(references)))


def reference_csvs(reference_dir: Path) -> list[Path]:
    """The reference tables of a folder, by name."""
    return sorted(Path(reference_dir).glob("*.csv")) if Path(reference_dir).is_dir() else []


def read_references(reference_dir: Path) -> dict[str, Results]:
    """Every reference of a folder by name; BenchError when one is unreadable."""
    return {path.stem: read_reference(path) for path in reference_csvs(reference_dir)}


def publish(results_dir: Path | None, *, reference_dir: Path, pages_dir: Path) -> list[Path]:
    """``python -m bench report --markdown``: with a results folder, write its reference, its page
    and the index; without, re-render every page and the index from the references. Everything is
    read and rendered before the first file is written, so bad input writes nothing. Returns the
    files written, in order."""
    files: list[tuple[Path, str]] = []
    if results_dir is not None:
        results = load_results(results_dir, require_matrix=False)
        csv, meta = reference_texts(results)
        csv_path = Path(reference_dir) / f"{reference_name(results)}.csv"
        fresh = parse_reference(csv, meta, csv_path)
        others = [path for path in reference_csvs(reference_dir) if path.stem != csv_path.stem]
        references = {**{path.stem: read_reference(path) for path in others}, csv_path.stem: fresh}
        files += [(csv_path, csv), (csv_path.with_suffix(".json"), meta)]
        pages = {csv_path.stem: fresh}
    else:
        references = read_references(reference_dir)
        if not references:
            raise BenchError(
                f"{reference_dir}: no reference tables; write one with `{COMMAND} RESULTS_DIR` (a results folder)"
            )
        pages = references
    files += [(Path(pages_dir) / f"{name}.md", render_page(r)) for name, r in pages.items()]
    files.append((Path(pages_dir) / "README.md", render_index(references)))
    for path, text in files:
        atomic_write_text(path, text)
    return [path for path, _ in files]
