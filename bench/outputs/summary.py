"""Summaries of a results table for figures, tables and pages: the reference rows, labels, families.

Pure functions of the tables read by bench/outputs/formats.py; nothing here reads a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.core.schema import FLAG_NAMES

_SPEC_RE = re.compile(r"^([^\[\]]+)(?:\[(.*)\])?$")
# the parameter a defence family is swept along, in order of preference
STRENGTH_KEYS = ("lambda", "eps", "beta", "quality", "bits", "sigma", "size")


def reference_rows(table: pd.DataFrame, norm: str | None = None) -> pd.DataFrame:
    """The rows that summarise each model's robustness: float images, no post-processing, no
    error, and the ``ensemble`` rows (worst case per patch over every attack and gradient) of one
    norm (``linf`` when present). Folders without ensemble rows fall back to each epsilon's
    lowest robust accuracy over the attacks of that norm."""
    ok = table[(table["error"] == "") & (table["quantized"] == "float") & (table["postprocess"] == "none")]
    if ok.empty:
        return ok
    norms = list(dict.fromkeys(ok["norm"]))
    norm = norm or ("linf" if "linf" in norms else norms[0])
    ok = ok[ok["norm"] == norm]
    ensemble = ok[ok["attack"] == "ensemble"]
    if not ensemble.empty:
        return ensemble.reset_index(drop=True)
    ok = ok[ok["threat"] != "control"].sort_values("robust_accuracy", kind="stable")
    return ok.drop_duplicates(["task", "detector", "defense", "epsilon_255"]).sort_index().reset_index(drop=True)


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """``name[k=v,...]`` -> (name, {k: v}) as text (no registry lookup: labels only)."""
    match = _SPEC_RE.match(str(text))
    if match is None or not match.group(2):
        return str(text), {}
    params = dict(part.split("=", 1) for part in match.group(2).split(",") if "=" in part)
    return match.group(1), params


def short_labels(names: list[str]) -> dict[str, str]:
    """Figure labels: each canonical name without the parameters it shares with every other name
    of the same entry in ``names`` (the bare name when it is the only one), so labels stay
    canonical ``name[k=v]`` strings yet only show what tells them apart."""
    parsed = {n: parse_spec(n) for n in dict.fromkeys(names)}
    out = {}
    for text, (name, params) in parsed.items():
        same = [p for t, (m, p) in parsed.items() if m == name]
        varying = sorted(k for k in params if len({p.get(k) for p in same}) > 1)
        out[text] = f"{name}[{','.join(f'{k}={params[k]}' for k in varying)}]" if varying else name
    return out


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def defense_families(defenses: list[str]) -> dict[str, tuple[str, float | None]]:
    """Each defence's family and its strength within the family's sweep.

    A family is one entry name with the same non-numeric parameters (``adv-train[attack=fgsm]``
    and ``adv-train[attack=pgd]`` are two); its sweep runs along the one numeric parameter that
    varies (the first of :data:`STRENGTH_KEYS` if several do). Strength is None outside a sweep."""
    parsed = {d: parse_spec(d) for d in dict.fromkeys(defenses)}
    families: dict[str, list[str]] = {}
    for text, (name, params) in parsed.items():
        same = [p for m, p in parsed.values() if m == name]
        fixed = sorted(k for k in params if len({p.get(k) for p in same}) > 1 and _number(params[k]) is None)
        family = f"{name}[{','.join(f'{k}={params[k]}' for k in fixed)}]" if fixed else name
        families.setdefault(family, []).append(text)
    out: dict[str, tuple[str, float | None]] = {}
    for family, members in families.items():
        values = [parsed[m][1] for m in members]
        varying = [
            k
            for k in values[0]
            if len({v.get(k) for v in values}) > 1 and all(_number(v.get(k)) is not None for v in values)
        ]
        key = next((k for k in STRENGTH_KEYS if k in varying), varying[0] if varying else None)
        for member, v in zip(members, values):
            out[member] = (family, _number(v.get(key)) if key and len(members) > 1 else None)
    return out


def pick_epsilon(reference: pd.DataFrame, epsilon: float | None = None) -> float:
    """The epsilon of the single-epsilon figures and tables: ``epsilon`` if the table has it
    (BenchError otherwise), else the one where the models differ most (largest standard deviation
    of their robust accuracy; the smaller epsilon on ties)."""
    eps = sorted(set(reference["epsilon_255"].astype(float)))
    if not eps:
        raise BenchError("the results hold no successful rows; nothing to plot")
    if epsilon is not None:
        if not any(np.isclose(epsilon, e) for e in eps):
            raise BenchError(
                f"--epsilon {epsilon:g}: not an epsilon of these results; allowed: {', '.join(f'{e:g}' for e in eps)}"
            )
        return next(e for e in eps if np.isclose(epsilon, e))
    spread = reference.groupby("epsilon_255")["robust_accuracy"].std(ddof=0).reindex(eps).fillna(0.0)
    return float(eps[int(np.argmax(spread.to_numpy()))])


def flagged_curves(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trust flag raised on an attack's curve: which flag, where, at which epsilons and
    variants, on how many rows, and the lowest robust accuracy among those rows.

    Columns: flag, task, detector, defense, attack, gradient, norm, epsilons_255 (sorted, joined by
    ","), variants (``quantized/postprocess`` in the table's order, joined by ","), rows,
    robust_accuracy. Empty (with these columns) when no flag fired or the table has no flags.
    """
    columns = ["flag", "task", "detector", "defense", "attack", "gradient", "norm", "epsilons_255", "variants"]
    columns += ["rows", "robust_accuracy"]
    parts = []
    for name, rows in _each_flag(table):
        rows = rows.assign(variant=rows["quantized"].astype(str) + "/" + rows["postprocess"].astype(str))
        keys = ["task", "detector", "defense", "attack", "gradient", "norm"]
        grouped = rows.groupby(keys, sort=False, observed=True).agg(
            epsilons_255=("epsilon_255", lambda e: ",".join(f"{v:g}" for v in sorted(set(e)))),
            variants=("variant", lambda v: ",".join(dict.fromkeys(v))),
            rows=("epsilon_255", "size"),
            robust_accuracy=("robust_accuracy", "min"),
        )
        parts.append(grouped.reset_index().assign(flag=name))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _each_flag(table: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each flag raised in a table (``FLAG_NAMES`` order) with the rows that raise it."""
    for name in FLAG_NAMES:
        column = f"flag_{name}"
        if column in table and table[column].any():
            yield name, table[table[column].astype(bool)]


# the yardstick column written beside the rows of each paired flag (docs/flags.md)
YARDSTICKS = {"weaker_than_reference": "reference_robust_accuracy", "not_converged": "converged_robust_accuracy"}


def flag_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per flag raised on a matrix row, with that row's own numbers: flag, task, detector,
    defense, attack, gradient, norm, quantized, postprocess, epsilon_255, n, robust_accuracy (+
    ``_low``, ``_high``) and ``yardstick``, the robust accuracy of the attack a paired flag compares
    the row with (NaN for the other flags). In the table's order, flag by flag; empty (with these
    columns) when no flag fired or the table has no flags."""
    keys = ["task", "detector", "defense", "attack", "gradient", "norm", "quantized", "postprocess", "epsilon_255"]
    numbers = ["n", "robust_accuracy", "robust_accuracy_low", "robust_accuracy_high"]
    columns = ["flag", *keys, *numbers, "yardstick"]
    parts = []
    for name, rows in _each_flag(table):
        yardstick = rows[YARDSTICKS[name]] if YARDSTICKS.get(name) in rows else np.nan
        parts.append(rows[keys + numbers].assign(flag=name, yardstick=yardstick))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]
