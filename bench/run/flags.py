"""Trust flags: attack-failure indicators on every row of the matrix table.

A robustness number can be wrong in ways it cannot show by itself: the attack failed (masked or
saturated gradients, an optimisation that never moved), two implementations of one attack
disagree, or too few samples were attacked to tell. Each indicator below is computed after the
cells, from the tidy table and the cheap per-model probes of bench/run/probes.py, and sets one boolean
column ``flag_<name>``; the ``flags`` column joins the names of those raised on the row with ",".
docs/flags.md explains every flag (what raises it, the likely cause, the cure); the anchors in
:data:`DOC` link there.

Comparisons between attacks are made within one (task, detector, defence, gradient, norm,
quantized, postprocess, epsilon) and count as "A beats B" only when their 95% Wilson intervals
of robust accuracy do not overlap (A's upper end below B's lower end), so sampling noise alone
raises nothing. Ensemble rows and the non-adversarial control take part in no comparison between
attacks; thresholds are the module constants. The two comparisons of attack strength
(single_beats_iterative, blackbox_beats_whitebox) are made only on the rows without JPEG
re-compression: no attack optimised for surviving JPEG, so which attack's images survive it best
says nothing about the attacks' optimisation (FGSM's full-budget sign perturbation can survive JPEG
better than PGD's finer one; docs/design.md, Trust flags). The paired flags (weaker_than_reference,
not_converged) compare two attacks on the same samples instead, from the per-sample table, with
McNemar's exact test (:func:`paired`): pairing sees a difference that overlapping intervals hide.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from bench.core.schema import FLAG_NAMES, PRECISION_FLAGS
from bench.core.stats import mcnemar_p

FLAGS: tuple[str, ...] = FLAG_NAMES  # in the order of the flag columns (names documented in docs/flags.md)
DOC = "docs/flags.md"

MAX_HALF_WIDTH = 0.05  # too_few_samples: half-width of the robust-accuracy interval above 5 points
ZERO_GRADIENT_SHARE = 0.01  # zero_gradients: more than 1% of the clean-correct samples
UNBOUNDED_ROBUST = 0.02  # unbounded_not_zero: more than 2% of the samples survive the unbounded PGD probe
LOSS_NOT_INCREASING_SHARE = 0.05  # loss_not_increasing: more than 5% of the clean-correct samples
ZERO_LOSS_GRADIENT_SHARE = 0.01  # zero_loss_gradients: more than 1% of the clean-correct samples
NOISY_GRADIENT_SHARE = 0.05  # noisy_gradients: more than 5% of the clean-correct samples
PAIRED_ALPHA = 0.005  # weaker_than_reference, not_converged: McNemar's exact test, two-sided, below this
SINGLE_STEP = ("fgsm", "fgm", "fgm-l2")  # attack kinds (the name after the library) that take one step
BLACK_BOX = ("score", "decision")

# the rows a comparison between attacks is made within, and one attack's curve over epsilon
# (a model is a task, detector, defence and training seed: rows of two seeds are never compared)
GROUP = ["task", "detector", "defense", "training_seed", "gradient", "norm", "quantized", "postprocess", "epsilon_255"]
CURVE = ["task", "detector", "defense", "training_seed", "attack", "gradient", "norm", "quantized", "postprocess"]
MODEL_ID = ["task", "detector", "defense", "training_seed"]
MODEL = [*MODEL_ID, "gradient"]


def link(flag: str) -> str:
    """Where a flag is explained."""
    return f"{DOC}#{flag}"


def _valid(table: pd.DataFrame) -> pd.Series:
    return (table["error"] == "") & table["robust_accuracy"].notna()


def _kind(attack: pd.Series) -> pd.Series:
    """The attack's name without its library prefix and parameters: ``art.pgd[steps=10]`` -> ``pgd``."""
    return attack.str.extract(r"^[^.\[]+\.([^\[]+)", expand=False).fillna("")


def non_monotone(table: pd.DataFrame) -> pd.Series:
    """Robust accuracy at an epsilon above (beyond both intervals) that of a smaller epsilon, same attack.

    The row at the larger epsilon is flagged: an example inside the smaller ball lies inside the
    larger one, so its number overstates robustness.
    """
    out = pd.Series(False, index=table.index)
    rows = table[_valid(table)].sort_values([*CURVE, "epsilon_255"])
    if rows.empty:
        return out
    # vectorised (no Python call per curve: the tables are refreshed while thousands of cells run)
    running = rows.groupby(CURVE, sort=False, observed=True)["robust_accuracy_high"].cummin()
    previous_high = running.groupby([rows[c] for c in CURVE], sort=False, observed=True).shift(1)
    out.loc[rows.index] = (rows["robust_accuracy_low"] > previous_high).fillna(False).astype(bool)
    return out


def _optimised(table: pd.DataFrame) -> pd.Series:
    """Rows scoring the images the attacks optimised (float, or rounded to 8 bits), not JPEG re-compressed."""
    return table["postprocess"] == "none"


def _beats(table: pd.DataFrame, strong: pd.Series, weak: pd.Series, reference: str) -> pd.Series:
    """Rows of ``strong`` whose interval lies wholly below the reference ``weak`` row of their group,
    and the ``weak`` rows lying wholly above such a ``strong`` row.

    ``reference``: ``best`` compares with the weak row of lowest robust accuracy (the strongest
    of them), ``any`` with each weak row.
    """
    out = pd.Series(False, index=table.index)
    valid = _valid(table) & _optimised(table)
    s, w = table[valid & strong], table[valid & weak]
    if s.empty or w.empty:
        return out
    strong_high = s.groupby(GROUP, observed=True)["robust_accuracy_high"].min().rename("strong_high")
    if reference == "best":
        best = w.loc[w.groupby(GROUP, observed=True)["robust_accuracy"].idxmin()]
        weak_low = best.set_index(GROUP)["robust_accuracy_low"].rename("weak_low")
    else:
        weak_low = w.groupby(GROUP, observed=True)["robust_accuracy_low"].max().rename("weak_low")
    bounds = pd.concat([strong_high, weak_low], axis=1, join="inner")
    fired = bounds[bounds["strong_high"] < bounds["weak_low"]]
    if fired.empty:
        return out
    s = s.join(fired, on=GROUP, how="inner")
    w = w.join(fired, on=GROUP, how="inner")
    out.loc[s.index[s["robust_accuracy_high"] < s["weak_low"]]] = True
    out.loc[w.index[w["robust_accuracy_low"] > w["strong_high"]]] = True
    return out


def single_beats_iterative(table: pd.DataFrame) -> pd.Series:
    """A single-step attack (FGSM) below an iterative white-box attack (PGD, BIM, ...) of the same norm.

    Both the FGSM row and every iterative row it beats are flagged: the iterative attack should
    find at least what its own first step finds.
    """
    kind = _kind(table["attack"])
    white = (table["threat"] == "white-box") & ~table["minimum_norm"].astype(bool)
    single = white & kind.isin(SINGLE_STEP)
    return _beats(table, single, white & ~single, reference="any")


def blackbox_beats_whitebox(table: pd.DataFrame) -> pd.Series:
    """A score- or decision-based attack below the strongest white-box attack: masked gradients.

    As AutoAttack's check of Square against its white-box attacks: the black-box rows that beat
    the strongest white-box row and every white-box row lying above them are flagged.
    """
    return _beats(table, table["threat"].isin(BLACK_BOX), table["threat"] == "white-box", reference="best")


@functools.lru_cache(maxsize=1024)
def algorithm_key(attack: str) -> str:
    """What two libraries' rows must share to be compared: the algorithm the attack's entry
    implements and the values of its matched parameters (``AttackInfo.algorithm``, ``matched``),
    e.g. ``deepfool[overshoot=0.02,steps=8]``. An entry naming no algorithm, or an attack this
    installation does not know (a plugin's, in a table read back), falls back to its name after
    the library, parameters included: only the same attack with the same parameters is compared."""
    from bench.attacks import ATTACKS
    from bench.core.registry import format_value

    fallback = "=" + attack.split(".", 1)[-1]
    try:
        spec = ATTACKS.resolve(attack)
        info = ATTACKS.entry(spec.name).info
    except Exception:  # noqa: BLE001 - unknown here: compared by name only
        return fallback
    algorithm = getattr(info, "algorithm", "")
    if not algorithm:
        return fallback
    params = dict(spec.params)
    values = ",".join(f"{k}={format_value(params[k])}" for k in getattr(info, "matched", ()) if k in params)
    return f"{algorithm}[{values}]"


def libraries_disagree(table: pd.DataFrame) -> pd.Series:
    """ART and Foolbox rows of one algorithm (same matched parameters, :func:`algorithm_key`)
    whose intervals do not overlap; both rows are flagged."""
    out = pd.Series(False, index=table.index)
    rows = table[_valid(table) & table["library"].isin(["art", "foolbox"])]
    if rows.empty:
        return out
    keys = {name: algorithm_key(name) for name in rows["attack"].unique()}
    rows = rows.assign(algorithm=rows["attack"].map(keys))
    cols = [*GROUP, "algorithm"]
    art = (
        rows[rows["library"] == "art"][[*cols, "robust_accuracy_low", "robust_accuracy_high"]]
        .rename_axis("row")
        .reset_index()
    )
    foolbox = rows[rows["library"] == "foolbox"][[*cols, "robust_accuracy_low", "robust_accuracy_high"]]
    foolbox = foolbox.rename_axis("row").reset_index()
    pairs = art.merge(foolbox, on=cols, suffixes=("_art", "_fb"))
    apart = pairs[
        (pairs["robust_accuracy_high_art"] < pairs["robust_accuracy_low_fb"])
        | (pairs["robust_accuracy_high_fb"] < pairs["robust_accuracy_low_art"])
    ]
    out.loc[apart["row_art"].to_numpy()] = True
    out.loc[apart["row_fb"].to_numpy()] = True
    return out


def roles(table: pd.DataFrame) -> pd.Series:
    """Each row's part in the paired checks: ``reference`` (the suite's reference attack of its
    norm), ``convergence`` (the convergence run) or "" (bench/attacks/bench, bench/run/plan.py).
    By the attack the row ran with its gradient: a BPDA cell runs its attack with more steps
    (defenses/_transform.py, ``attack_for``), and its rows name that run."""
    names = _role_names()
    keys = pd.Series(list(zip(table["attack"].astype(str), table["gradient"].astype(str))), index=table.index)
    return keys.map(names).fillna("").astype(str)


@functools.cache
def _role_names() -> dict[tuple[str, str], str]:
    from bench.attacks import ATTACKS
    from bench.attacks.bench import REFERENCE, convergence, reference
    from defenses._transform import GRADIENTS, attack_for

    out: dict[tuple[str, str], str] = {}
    for norm in REFERENCE:
        for name, role in ((reference(norm), "reference"), (convergence(norm), "convergence")):
            for gradient in GRADIENTS:
                out[(str(attack_for(ATTACKS.resolve(name), gradient)), gradient)] = role
    return out


def _judged(table: pd.DataFrame) -> pd.Series:
    """Rows the paired checks judge: white-box attacks that iterate (fixed budget or minimum norm);
    a single step (FGSM) is weak by design, score- and decision-based attacks and the control
    are compared with the white-box attacks by other flags. Minimum-norm attacks only on float
    images: their images lie just past the decision boundary by design, where 8-bit rounding
    undoes them, which says nothing of their convergence."""
    white = table["threat"] == "white-box"
    min_norm_rounded = table["minimum_norm"].astype(bool) & (table["quantized"] != "float")
    return white & ~_kind(table["attack"]).isin(SINGLE_STEP) & ~min_norm_rounded


def paired(table: pd.DataFrame, samples: pd.DataFrame | None, judged: pd.Series, yardstick: pd.Series) -> pd.DataFrame:
    """Each ``judged`` row against the ``yardstick`` row of its :data:`GROUP` (same model,
    gradient, norm, variant and epsilon; images as optimised, float or 8-bit, not JPEG
    re-compressed), sample by sample: ``b`` the samples robust under the
    row that the yardstick fooled, ``c`` the reverse, ``p`` McNemar's exact test on them, and
    ``yardstick`` its robust accuracy. Indexed by the judged rows that have one."""
    columns = ["b", "c", "p", "yardstick"]
    valid = _valid(table) & _optimised(table)  # which images survive JPEG best says nothing of convergence
    rows, yard = table[valid & judged], table[valid & yardstick]
    if rows.empty or yard.empty or samples is None or samples.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    yard = yard.drop_duplicates(GROUP)[[*GROUP, "cell", "robust_accuracy"]]
    pairs = (
        rows[[*GROUP, "cell"]]
        .rename_axis("row")
        .reset_index()
        .merge(yard.rename(columns={"cell": "ycell", "robust_accuracy": "yardstick"}), on=GROUP)
    )
    pairs = pairs[pairs["cell"] != pairs["ycell"]]
    if pairs.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    variant = ["quantized", "postprocess", "epsilon_255"]
    wanted = set(pairs["cell"]) | set(pairs["ycell"])
    outcome = samples.loc[samples["cell"].isin(wanted), ["cell", *variant, "sample", "adv_correct"]]
    outcome = outcome.astype({"quantized": str, "postprocess": str})
    pairs = pairs.astype({"quantized": str, "postprocess": str})
    joined = pairs[["row", "cell", "ycell", *variant]].merge(outcome, on=["cell", *variant])
    joined = joined.merge(
        outcome.rename(columns={"cell": "ycell", "adv_correct": "yadv"}), on=["ycell", *variant, "sample"]
    )
    robust, yard_robust = joined["adv_correct"].astype(bool), joined["yadv"].astype(bool)
    counts = joined.assign(b=robust & ~yard_robust, c=~robust & yard_robust).groupby("row")[["b", "c"]].sum()
    counts["p"] = mcnemar_p(counts["b"].to_numpy(), counts["c"].to_numpy())
    counts["yardstick"] = pairs.set_index("row")["yardstick"]
    return counts[columns]


def _weaker(
    table: pd.DataFrame, samples: pd.DataFrame | None, judged: pd.Series, yardstick: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """The flag (significantly more samples robust under the row than under the ``yardstick`` row
    of its group) and the column of the yardstick's robust accuracy beside every judged row."""
    flag = pd.Series(False, index=table.index)
    number = pd.Series(np.nan, index=table.index, dtype=float)
    found = paired(table, samples, judged, yardstick)
    if not found.empty:
        number.loc[found.index] = found["yardstick"].to_numpy(dtype=float)
        fired = found.index[(found["b"] > found["c"]) & (found["p"] < PAIRED_ALPHA)]
        flag.loc[fired] = True
    return flag, number


def weaker_than_reference(table: pd.DataFrame, samples: pd.DataFrame | None) -> tuple[pd.Series, pd.Series]:
    """Iterative and minimum-norm white-box rows whose robust accuracy is significantly above the
    reference attack's (the suite's margin-loss PGD, scale invariant) on the same samples: the
    row's attack missed what a plain PGD on the margin finds - masked or saturated gradients of
    its loss, or too weak an attack. Also returns the reference's number beside each such row."""
    role = roles(table)
    return _weaker(table, samples, _judged(table) & (role == ""), role == "reference")


def not_converged(table: pd.DataFrame, samples: pd.DataFrame | None) -> tuple[pd.Series, pd.Series]:
    """Iterative and minimum-norm white-box rows (the reference's included) whose robust accuracy
    is significantly above the convergence run's (5x the steps, 5 restarts; at the middle and
    largest epsilon) on the same samples; also returns that run's number beside each such row."""
    role = roles(table)
    return _weaker(table, samples, _judged(table) & (role != "convergence"), role == "convergence")


def too_few_samples(table: pd.DataFrame) -> pd.Series:
    """The robust-accuracy interval is wider than +-:data:`MAX_HALF_WIDTH`."""
    half = (table["robust_accuracy_high"] - table["robust_accuracy_low"]) / 2
    return (_valid(table) & (half > MAX_HALF_WIDTH)).astype(bool)


# each probe flag and the probes-table share it compares with its threshold
PROBE_FLAGS: dict[str, tuple[str, float]] = {
    "zero_gradients": ("zero_gradient_share", ZERO_GRADIENT_SHARE),
    "zero_loss_gradients": ("zero_loss_gradient_share", ZERO_LOSS_GRADIENT_SHARE),
    "noisy_gradients": ("noisy_gradient_share", NOISY_GRADIENT_SHARE),
    "unbounded_not_zero": ("unbounded_robust_accuracy", UNBOUNDED_ROBUST),
    "loss_not_increasing": ("loss_not_increasing_share", LOSS_NOT_INCREASING_SHARE),
}


def probe_indicators(probes: pd.DataFrame | None) -> pd.DataFrame:
    """Per probed model and gradient (:data:`MODEL` columns): the probe flags (a share a probes
    table written before its probe existed lacks raises nothing)."""
    columns = [*MODEL, *PROBE_FLAGS]
    if probes is None or probes.empty:
        return pd.DataFrame(columns=columns)
    ok = probes[probes["error"] == ""]
    nan = pd.Series(np.nan, index=ok.index)
    fired = {name: ok.get(share, nan) > limit for name, (share, limit) in PROBE_FLAGS.items()}
    return ok.assign(**fired)[columns].reset_index(drop=True)


def probe_flags(table: pd.DataFrame, probes: pd.DataFrame | None) -> dict[str, pd.Series]:
    """The probe flags of each row: white-box rows of the probed model and gradient (their numbers
    rest on its gradient), and ensemble rows where the flag holds for every gradient of the model.
    Score-, decision-based and control rows do not use the gradient and carry none."""
    names = list(PROBE_FLAGS)
    out = {name: pd.Series(False, index=table.index) for name in names}
    indicators = probe_indicators(probes)
    if indicators.empty:
        return out
    valid = _valid(table)
    white = table[valid & (table["threat"] == "white-box")]
    joined = white[MODEL].join(indicators.set_index(MODEL), on=MODEL, how="left")
    every = indicators.groupby(MODEL_ID)[names].all()
    ensemble = table[valid & (table["attack"] == "ensemble")]
    ens = ensemble[MODEL_ID].join(every, on=MODEL_ID, how="left")
    for name in names:
        out[name].loc[white.index] = joined[name].fillna(False).astype(bool).to_numpy()
        out[name].loc[ensemble.index] = ens[name].fillna(False).astype(bool).to_numpy()
    return out


def compute_flags(
    table: pd.DataFrame, probes: pd.DataFrame | None = None, samples: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One boolean column per flag (``flag_<name>``, :data:`FLAGS` order) for the rows of ``table``,
    then the numbers the paired flags compared with (``reference_robust_accuracy``,
    ``converged_robust_accuracy``). ``samples``: the per-sample table (the paired flags need it;
    without it they raise nothing)."""
    weaker, reference_number = weaker_than_reference(table, samples)
    unconverged, converged_number = not_converged(table, samples)
    found = {
        "non_monotone": non_monotone(table),
        "single_beats_iterative": single_beats_iterative(table),
        "blackbox_beats_whitebox": blackbox_beats_whitebox(table),
        "libraries_disagree": libraries_disagree(table),
        "too_few_samples": too_few_samples(table),
        "seed_sensitive": pd.Series(False, index=table.index),  # raised across seeds (bench/run/seeds.py)
        "weaker_than_reference": weaker,
        "not_converged": unconverged,
        **probe_flags(table, probes),
    }
    out = pd.DataFrame({f"flag_{name}": found[name].astype(bool) for name in FLAGS}, index=table.index)
    return out.assign(reference_robust_accuracy=reference_number, converged_robust_accuracy=converged_number)


def add_flags(
    table: pd.DataFrame, probes: pd.DataFrame | None = None, samples: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``table`` with its ``flag_<name>`` columns, the ``flags`` column (fired names joined by ",")
    and the paired flags' numbers (:func:`compute_flags`)."""
    flags = compute_flags(table, probes, samples)
    names = np.array(FLAGS, dtype=object)
    marks = flags[[f"flag_{name}" for name in FLAGS]].to_numpy(dtype=bool)
    joined = [",".join(names[row]) for row in marks]
    column = pd.Series(joined, index=table.index, dtype="string")
    return table.assign(**{c: flags[c] for c in flags.columns}, flags=column)


def severity(flag: str) -> str:
    """``failure`` or ``precision`` (docs/flags.md, "Severity")."""
    return "precision" if flag in PRECISION_FLAGS else "failure"


def flag_counts(table: pd.DataFrame) -> dict[str, int]:
    """Rows raising each flag (every flag listed, 0 included)."""
    return {name: int(table[f"flag_{name}"].sum()) if f"flag_{name}" in table else 0 for name in FLAGS}
