"""The plan of a run: every dataset, model, cell, probe and transfer pair a matrix needs, with their keys.

Pure data, computed without training or attacking anything: a run is the plan carried out by an
executor (bench/run/execute.py). The unit of attack work is a *cell*: one attack swept over the
matrix's epsilons on one trained (task, detector, defence), with one attacker's gradient.

Every key is a content hash of everything that determines the result (bench/core/fingerprint.py):
canonical names, settings, seed, the image bytes, and the code fingerprints of the entries and of
the stage that computes it - :data:`STAGES`, modules that compute numbers and nothing else, so
that orchestration, caching and output code can change without invalidating a result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bench.attacks import ATTACKS, attack_class
from bench.attacks.bench import convergence, reference
from bench.core.fingerprint import digest, fingerprint
from bench.tasks import TASKS
from defenses import DEFENSES, attack_gradients, is_input_transform
from defenses._transform import attack_for
from detectors import DETECTORS
from detectors._networks import is_network, network_digest

if TYPE_CHECKING:
    from bench.core.config import DataConfig, TrainingConfig
    from bench.core.registry import Spec
    from bench.inputs.matrix import Matrix
    from bench.inputs.photos import ImageSource

# The modules that compute each kind of result; their fingerprints (with the project modules they
# import) are part of the keys of what they compute.
STAGES = {
    "dataset": "bench.inputs.data",
    "model": "bench.run.training",
    "network": "bench.run.networks",  # the model stage of a network trained elsewhere
    "cell": "bench.run.cells",
    "probe": "bench.run.probes",
    "transfer": "bench.run.scoring",
}


@dataclass(frozen=True)
class ModelJob:
    """One detector trained under one defence on one task's dataset.

    For an input-transform defence (inference time) the model trained is the undefended one:
    ``trained_as`` is ``none`` and ``key`` is that model's key, shared with it. A network trained
    elsewhere (``pretrained``: a ``torchscript`` / ``state-dict`` entry) is loaded instead of
    trained (bench/run/networks.py); its key holds its file's digest (:func:`network_key`).
    """

    task: Spec
    detector: Spec
    defense: Spec
    dataset_key: str
    key: str
    trained_as: Spec
    # the seed of its training (the matrix's ``seed`` unless it lists ``seeds``); ``seeded``: the
    # matrix trains several seeds, so labels name it
    training_seed: int
    seeded: bool = False
    # a network trained elsewhere: its digest (detectors/_networks.py, ``network_digest``); empty
    # for a detector the suite trains
    network: str = ""

    @property
    def pretrained(self) -> bool:
        """Whether the job loads a network trained elsewhere instead of training one."""
        return bool(self.network)

    @property
    def label(self) -> str:
        seed = f" | seed {self.training_seed}" if self.seeded else ""
        return f"{self.task} | {self.detector} | {self.defense}{seed}"


@dataclass(frozen=True)
class Cell:
    """One attack sweep on one trained detector x defence, with the attacker's gradient.

    ``gradient`` is "exact" except on input transforms, which are attacked obliviously, through
    autograd and adaptively (the defence's registry info lists its gradients). ``runs``: the
    attack the cell runs - the matrix's ``attack``, or for BPDA the same attack with more steps
    (defenses/_transform.py); its rows name it. ``keeps_images``: the cell's 8-bit adversarial
    images are kept for the transfer stage (:func:`images_attack`).
    """

    model: ModelJob
    attack: Spec
    gradient: str
    runs: Spec
    key: str
    keeps_images: bool = False
    # the epsilons (8-bit units) the cell sweeps; empty: the matrix's. The convergence run
    # (:func:`added_attacks`) sweeps only the middle and largest one
    epsilons_255: tuple[float, ...] = ()

    @property
    def model_key(self) -> str:
        return self.model.key

    @property
    def label(self) -> str:
        via = f" ({self.gradient})" if len(attack_gradients(self.model.defense)) > 1 else ""
        return f"{self.model.label} | {self.attack}{via}"


@dataclass(frozen=True)
class ProbeJob:
    """The trust-flag probes of one trained model with one attacker's gradient (bench/run/probes.py)."""

    model: ModelJob
    gradient: str
    key: str


@dataclass(frozen=True)
class Plan:
    """Everything a matrix needs, in the order a serial run does it (models, then each model's cells)."""

    matrix: Matrix
    source: ImageSource
    models: tuple[ModelJob, ...]
    cells: tuple[Cell, ...]
    probes: tuple[ProbeJob, ...]
    threads: int  # torch threads of every cell, probe and transfer pair (part of their keys)
    device: str = "cpu"  # the device kind the models are trained and attacked on (part of their keys)

    @cached_property
    def _cells_by_model(self) -> dict[ModelJob, tuple[Cell, ...]]:
        by: dict[ModelJob, list[Cell]] = {job: [] for job in self.models}
        for cell in self.cells:
            by[cell.model].append(cell)
        return {job: tuple(cells) for job, cells in by.items()}

    def cells_of(self, job: ModelJob) -> tuple[Cell, ...]:
        """A model's cells, in plan order (an index: linear in the plan's size, not quadratic)."""
        return self._cells_by_model.get(job, ())

    @property
    def transfer_sources(self) -> tuple[Cell, ...]:
        """The cells whose kept images are scored on every model of their task."""
        return tuple(c for c in self.cells if c.keeps_images)

    def transfer_targets(self, task: Spec, seed: int) -> tuple[ModelJob, ...]:
        """Every trained model of a task (each detector x training-time defence) of one training
        seed: a source's adversarial images are scored on the models of its own seed."""
        return tuple(
            j for j in self.models if j.task == task and not is_input_transform(j.defense) and j.training_seed == seed
        )

    def disk_bytes(self) -> int:
        """A rough, generous estimate of the bytes the plan writes into the cache and the results
        folder (for the free-space warning before a run): every task's patches, the models, each
        cell's rows and per-sample rows at every epsilon and variant, and the kept images."""
        matrix, data = self.matrix, self.matrix.data
        channels = {t: TASKS.entry(t.name).info.channels for t in matrix.tasks}
        locations = data.max_train_locations + 2 * data.max_eval_locations
        datasets = sum(locations * data.patch**2 * c for c in channels.values())
        models = len(self.models) * 4_000_000  # a few hundred thousand float32 weights, and the metadata
        rows = matrix.n_samples * len(matrix.epsilons_255) * 6 * 200  # 6 variants, ~200 bytes a row
        images = sum(2 * matrix.n_samples * data.patch**2 * channels[c.model.task] for c in self.transfer_sources)
        return int(datasets + models + 2 * (len(self.cells) * rows + images))


def dataset_key(task: Spec, source: ImageSource, config: DataConfig, seed: int) -> str:
    """Content hash of everything that determines a dataset."""
    return digest(
        "dataset",
        str(task),
        TASKS.entry(task.name).fingerprint,
        source.digest,
        dataclasses.asdict(config),
        seed,
        fingerprint(STAGES["dataset"]),
    )


def model_key(
    dataset: str, detector: Spec, defense: Spec, config: TrainingConfig, seed: int, device: str = "cpu"
) -> str:
    """Content hash of everything that determines a trained model.

    ``device``: the device kind it is trained on. A model trained on a GPU is not the CPU model
    (other kernels, other rounding), so a non-CPU kind enters the key; the CPU adds nothing, so
    the keys of CPU runs are those of the runs before devices existed.
    """
    on_device = [] if device == "cpu" else [device]
    return digest(
        "model",
        dataset,
        str(detector),
        DETECTORS.entry(detector.name).fingerprint,
        str(defense),
        DEFENSES.entry(defense.name).fingerprint,
        dataclasses.asdict(config),
        seed,
        fingerprint(STAGES["model"]),
        *on_device,
    )


def network_key(dataset: str, detector: Spec, network: str, seed: int, device: str = "cpu") -> str:
    """Content hash of a network trained elsewhere as a run evaluates it: the dataset (its accuracy
    is measured on the test split), the entry, ``network`` (the file's SHA-256 and a state dict's
    factory code, detectors/_networks.py: an edited file re-keys its model and cells) and the
    loading stage. No training settings: nothing is trained. ``seed``: the job's training seed,
    which changes no number but keeps the jobs of a matrix with ``seeds`` apart; ``device``: as
    for :func:`model_key`."""
    on_device = [] if device == "cpu" else [device]
    return digest(
        "network",
        dataset,
        str(detector),
        DETECTORS.entry(detector.name).fingerprint,
        network,
        seed,
        fingerprint(STAGES["network"]),
        *on_device,
    )


def cell_key(model: str, defense: Spec, attack: Spec, gradient: str, matrix: Matrix, *, threads: int) -> str:
    """Content hash of everything that determines a cell's numbers.

    ``threads``: torch's intra-op thread count the cell runs with. The attacks' gradients are sums
    whose order follows the threads' split of the work; a last-bit difference can move an iterate
    across a decision boundary, and a cell of the default matrix differs between 1 and 2 threads
    (docs/design.md, "Thread count"). So the count is in the key, and in the ``threads`` column.
    """
    return digest(
        "cell",
        model,
        str(defense),  # an input transform shares the undefended model's key: its own name and code count here
        DEFENSES.entry(defense.name).fingerprint,
        gradient,
        str(attack),
        str(attack_for(attack, gradient)),  # the attack the cell runs
        ATTACKS.entry(attack.name).fingerprint,
        list(matrix.epsilons_255),
        matrix.n_samples,
        matrix.seed,
        fingerprint(STAGES["cell"]),
        threads,
    )


def probe_key(model: str, defense: Spec, gradient: str, matrix: Matrix, *, threads: int) -> str:
    """Content hash of everything that determines a model's probe (``threads``: as for a cell)."""
    return digest(
        "probe",
        model,
        str(defense),
        DEFENSES.entry(defense.name).fingerprint,
        gradient,
        matrix.n_samples,
        matrix.seed,
        fingerprint(STAGES["probe"]),
        threads,
    )


def pair_key(source_cell: str, target_model: str) -> str:
    """Content hash of one transfer pair: a target model's scores of a source cell's kept images."""
    return digest("transfer", source_cell, target_model, fingerprint(STAGES["transfer"]))


def images_attack(matrix: Matrix) -> Spec | None:
    """The attack whose 8-bit adversarial images a run keeps (for transferability and the gallery):
    the matrix's first white-box fixed-epsilon Linf attack, a PGD if there is one."""
    candidates = []
    for attack in matrix.attacks:
        cls = attack_class(attack.name)
        if cls.threat == "white-box" and not cls.minimum_norm and cls.norm == "linf":
            candidates.append(attack)
    return next((a for a in candidates if "pgd" in a.name), candidates[0] if candidates else None)


def added_attacks(matrix: Matrix) -> tuple[tuple[Spec, tuple[float, ...]], ...]:
    """The attacks every run adds to its matrix's, with the epsilons they sweep (empty: all).

    For each norm the matrix's adversarial attacks use (not the controls, which measure robustness
    to noise; bench/attacks/bench): the suite's reference attack at
    every epsilon - the ``weaker_than_reference`` flag's yardstick, in every ensemble - and the
    convergence run (5x the steps, 5 restarts) at the middle and the largest epsilon, behind the
    ``not_converged`` flag. An attack the matrix lists already is not added again.
    """
    adversarial = [cls for cls in (attack_class(a.name) for a in matrix.attacks) if cls.threat != "control"]
    norms = [n for n in ("linf", "l2") if any(cls.norm == n for cls in adversarial)]
    ordered = sorted(matrix.epsilons_255)
    checked = tuple(sorted({ordered[(len(ordered) - 1) // 2], ordered[-1]})) if ordered else ()
    out: list[tuple[Spec, tuple[float, ...]]] = []
    for norm in norms:
        for name, eps in ((reference(norm), ()), (convergence(norm), checked)):
            spec = ATTACKS.resolve(name)
            if spec not in matrix.attacks:
                out.append((spec, () if eps == tuple(ordered) else eps))
    return tuple(out)


def sweep(matrix: Matrix, epsilons_255: tuple[float, ...]) -> Matrix:
    """The matrix a cell computes with: the same, sweeping ``epsilons_255`` if any are given."""
    return dataclasses.replace(matrix, epsilons_255=epsilons_255) if epsilons_255 else matrix


def plan_models(matrix: Matrix, source: ImageSource, device: str = "cpu") -> tuple[ModelJob, ...]:
    """Every trained model the matrix needs, with its keys (``device``: the device kind)."""
    none = DEFENSES.resolve("none")
    jobs = []
    for task in matrix.tasks:
        dkey = dataset_key(task, source, matrix.data, matrix.seed)
        for detector in matrix.detectors:
            network = network_digest(detector) if is_network(detector.name) else ""  # read once
            for defense in matrix.defenses:
                trained_as = none if is_input_transform(defense) else defense
                for seed in matrix.training_seeds:  # the matrix's seed alone: the keys of before `seeds`
                    if network:
                        key = network_key(dkey, detector, network, seed, device)
                    else:
                        key = model_key(dkey, detector, trained_as, matrix.training, seed, device)
                    seeded = len(matrix.training_seeds) > 1
                    jobs.append(ModelJob(task, detector, defense, dkey, key, trained_as, seed, seeded, network))
    return tuple(jobs)


def make_plan(matrix: Matrix, source: ImageSource, device: str = "cpu", *, threads: int) -> Plan:
    """The plan of a matrix on an image source for a device kind ("cpu", "cuda") and the torch
    threads of a cell (``threads``): nothing is computed but keys. Cells, probes and transfer pairs
    hang off the model keys, so the device kind reaches every key through them; the thread count
    enters the cells' and probes' keys (a pair's key holds its source cell's). Training always has
    TRAINING_THREADS (bench/run/training.py): model keys hold no thread count."""
    models = plan_models(matrix, source, device)
    keep = images_attack(matrix)
    attacks = [(attack, ()) for attack in matrix.attacks] + list(added_attacks(matrix))
    cells = tuple(
        Cell(
            job,
            attack,
            gradient,
            attack_for(attack, gradient),
            cell_key(job.key, job.defense, attack, gradient, sweep(matrix, eps), threads=threads),
            keeps_images=attack == keep and gradient == "exact" and not is_input_transform(job.defense),
            epsilons_255=eps,
        )
        for job in models
        for attack, eps in attacks
        for gradient in attack_gradients(job.defense)
    )
    probes = tuple(
        ProbeJob(job, gradient, probe_key(job.key, job.defense, gradient, matrix, threads=threads))
        for job in models
        for gradient in attack_gradients(job.defense)
    )
    return Plan(matrix, source, models, cells, probes, threads=threads, device=device)
