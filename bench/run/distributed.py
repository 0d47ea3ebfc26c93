"""The Dask executor: the plan as a task graph on a ``dask.distributed`` cluster.

The graph (bench/run/plan.py): datasets -> trained models -> cells and per-model probes -> the
tables. The client (this process) builds every task's dataset into the store (seconds each, and
the only step that reads the photographs), then submits one task per model that is not yet
stored, one per cell that is not yet stored - each depending on its model's task, so a model's
cells start the moment it is trained, on whichever worker is free - and one per probe. The
workers run the same stage functions as the serial executor (bench/run/execute.py) and write
what they compute into the cache folder, the store they share (on a cluster, a shared file
system): atomically, under content keys, each computation holding its entry's claim, so two
workers (or two runs) computing one key is harmless. A task returns only a status; the client
reads each finished cell from the store, assembles the tables in plan order and hands them to
the sink, as the serial executor does. No number depends on the executor, the number of workers
or the order in which tasks finish: every result is a function of its key's inputs, torch's thread
count of a cell among them (every task sets the run's count; tests/test_distributed.py compares
whole tables with a serial run of the same count; docs/design.md, "Thread count").

Faults: a worker that dies loses only the tasks it held; the scheduler reruns them elsewhere, up
to ``distributed.scheduler.allowed-failures`` times (Dask's bound, 3 by default), and a task that
has killed that many workers is an error row. A cell that raises is an error row and is not
retried (the task catches it). A full disk on a worker stops the run, as it does a serial one.
Ctrl-C cancels what is pending and keeps every finished cell; a cluster the run started is
closed on every exit path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core import interrupt
from bench.core.errors import BenchError
from bench.run.execute import Busy, Runner, describe, obtain_model
from bench.run.plan import pair_key, sweep
from bench.run.probes import probe
from bench.run.scoring import score_images
from bench.run.store import CellOutput, Store
from bench.run.tables import compact_samples, model_row
from bench.run.training import TRAINING_THREADS
from detectors import create_detector

if TYPE_CHECKING:
    import torch
    from distributed import Client, Future

    from bench.inputs.data import Dataset
    from bench.inputs.matrix import Matrix
    from bench.run.plan import Cell, ModelJob, Plan, ProbeJob
    from bench.run.training import TrainedModel

TOPIC = "bench-progress"  # the workers' progress lines (epochs), shown by the client
WARNING = "bench-warning"  # the workers' warnings, shown by the client even with -q
MALLOC_ADVICE = (
    "MALLOC_TRIM_THRESHOLD_ is set in this worker's environment (Dask's default for its workers): glibc then "
    "maps every large allocation anew and torch runs about 2x slower; start the workers with the Dask config "
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null (README, Scale out)"
)

# Among the tasks ready to run, Dask starts the highest priority first: models before cells, so
# that every worker trains while there are models left and no worker waits for one; probes last.
PRIORITY = {"model": 20, "cell": 10, "probe": 0}
POLL_SECONDS = 0.1  # how often the client looks for finished tasks (and a swallowed Ctrl-C)
# Among the cells, the longest first (the longest-processing-time rule): a long cell started last
# leaves the other workers idle until it ends. The cost is not known before a cell runs; the
# attack's kind ranks it: score- and decision-based attacks make hundreds of queries a sample,
# minimum-norm and iterative ones tens of gradient steps, single-step attacks and the noise
# control one. Added to PRIORITY["cell"]; it stays below a model's.
COST_RANK = {"score": 3, "decision": 3, "iterative": 2, "single": 1, "control": 0}


def cell_priority(cell: Cell) -> int:
    """A cell task's Dask priority: PRIORITY["cell"] plus its attack's :data:`COST_RANK`."""
    from bench.attacks import attack_class
    from bench.run.flags import SINGLE_STEP

    threat = attack_class(cell.runs.name).threat
    if threat in COST_RANK:
        return PRIORITY["cell"] + COST_RANK[threat]
    single = cell.runs.name.split(".", 1)[-1] in SINGLE_STEP
    return PRIORITY["cell"] + COST_RANK["single" if single else "iterative"]


@dataclass(frozen=True)
class Cluster:
    """Where the tasks run: an embedded ``LocalCluster`` of ``workers`` processes, or an existing
    cluster by scheduler ``address`` or ``scheduler_file`` (exactly one of the three)."""

    workers: int | None = None
    address: str | None = None
    scheduler_file: str | None = None
    cpus: int | None = None  # an embedded cluster: the CPUs of this machine its workers share

    @property
    def embedded(self) -> bool:
        return self.workers is not None

    def describe(self) -> str:
        if self.workers is not None:
            return f"local cluster of {self.workers} workers"
        return f"cluster at {self.address or self.scheduler_file}"

    @contextlib.contextmanager
    def client(self, threads: int) -> Iterator[Client]:
        """A client of the cluster; an embedded cluster is started here and closed on leaving,
        whatever ends the run (no worker process outlives it)."""
        import logging

        import dask
        from distributed import Client, LocalCluster

        if self.workers is None:
            try:
                client = Client(  # type: ignore[no-untyped-call]
                    self.address, scheduler_file=self.scheduler_file, timeout="30s"
                )
            except (OSError, TimeoutError, ValueError) as err:
                where = f"--scheduler {self.address}" if self.address else f"--scheduler-file {self.scheduler_file}"
                raise BenchError(f"{where}: cannot reach the scheduler ({type(err).__name__}: {err})") from None
            with client:
                yield client
            return
        settings = {
            "distributed.worker.daemon": True,
            "distributed.scheduler.allowed-failures": 3,
            # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default; an explicit trim
            # threshold turns off glibc's dynamic mmap threshold, and torch then pays page faults
            # on every large allocation: the attacks of the smoke matrix ran 2.3x slower (design.md)
            "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
            # Dask's housekeeping wakes every process of the cluster hundreds of times a second: the
            # statistical profiler samples each worker's threads every 10 ms (it feeds only the
            # dashboard, which an embedded cluster has not), the event-loop health check ticks
            # every 20 ms, the nannies check memory every 100 ms. On a machine whose cores the
            # tasks fill, each wake-up takes a core from one of a training's two OpenMP threads
            # and the other spins at the next barrier: trainings ran slower than in a serial run
            # (docs/design.md, Scale-out, has the measurements). Less often here, nothing lost.
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "500ms",
            "distributed.worker.memory.monitor-interval": "1s",
            "distributed.admin.system-monitor.interval": "2s",
        }
        with dask.config.set(settings):
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers,
                threads_per_worker=1,  # one task at a time per worker; torch gets ``threads``
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
                preload=[__name__],  # dask_setup below: Ctrl-C reaches the client, not the workers
                env={
                    "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads),
                    # tasks run in a worker thread, and glibc gives each thread an arena of its own,
                    # built of 64 MiB heaps mapped and unmapped as tensors come and go; the main
                    # arena (one heap, bench/core/malloc.py's thresholds) is what a serial run
                    # uses: the same cells took 1.24x as long without this (docs/design.md)
                    "MALLOC_ARENA_MAX": "1",
                },
            )
        with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client


def dask_setup(worker: Any) -> None:
    """Run by every worker of an embedded cluster at start (Dask's preload hook): a Ctrl-C in the
    terminal reaches the whole process group, and the client, not the workers, handles it (it
    cancels the pending tasks and closes the cluster)."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class Context:
    """What every task needs, sent with it: the matrix, the shared store's folder, the device,
    the torch threads of a cell, probe or pair task (the run's: in their keys) and, on an embedded
    cluster, the machine's CPUs (None elsewhere)."""

    matrix: Matrix
    cache: str
    device: str
    threads: int
    cpus: int | None = None
    run: str = ""  # names the run's CPU semaphore on the scheduler


@contextlib.contextmanager
def _cpus(ctx: Context, count: int) -> Iterator[None]:
    """Hold ``count`` of the machine's CPUs (an embedded cluster only: a Dask semaphore with one
    lease per CPU). A cell holds its ``threads``; a training holds ``TRAINING_THREADS``, and the
    cells wait while it trains. Never more torch threads than CPUs: two trainings of 2 threads
    each on 2 cores took 4x their serial time (OpenMP threads spinning for each other), so
    trainings take turns with the whole machine, as in a serial run. Multi-lease holders take a
    lock while they gather their leases, so two of them cannot deadlock on half the CPUs each."""
    if ctx.cpus is None:
        yield
        return
    from distributed import Lock, Semaphore

    count = max(1, min(count, ctx.cpus))
    leases = Semaphore(max_leases=ctx.cpus, name=f"bench-cpus-{ctx.run}")  # type: ignore[no-untyped-call]
    held = 0
    try:
        gather = Lock(f"bench-cpus-gather-{ctx.run}") if count > 1 else contextlib.nullcontext()  # type: ignore[no-untyped-call]
        with gather:
            for _ in range(count):
                leases.acquire()  # type: ignore[no-untyped-call]
                held += 1
        yield
    finally:
        for _ in range(held):
            leases.release()  # type: ignore[no-untyped-call]


# -- the tasks (run on the workers) ------------------------------------------------------------


@dataclass
class _Loaded:
    """Per worker process: the last dataset and trained model a task used, under (cache folder,
    key) - a worker of a long-lived cluster serves several runs and caches - so that the next cell
    of the same model, the usual case, needs neither read again."""

    dataset: tuple[tuple[str, str], Dataset] | None = None
    model: tuple[tuple[str, str], TrainedModel] | None = None
    warned: set[str] = field(default_factory=set)


_LOADED = _Loaded()

# One task at a time in a worker process. A worker with several threads (plain `dask worker`, or
# dask-jobqueue's processes=1) would run tasks side by side in one process, sharing the global
# random generators the stages seed, torch's thread setting and _LOADED: results would depend on
# timing. Parallelism comes from worker processes (README: --nthreads 1, more processes).
_ONE_TASK = threading.Lock()


def _setup(ctx: Context) -> tuple[Store, torch.device]:
    """A task's store and device, with the worker's torch threads set and deterministic kernels."""
    import torch
    from distributed import get_worker

    from bench.core.devices import deterministic_algorithms, deterministic_cuda
    from bench.core.malloc import tune_malloc

    tune_malloc()  # once per worker process: a fresh process's allocator is slow for torch (speed only)
    if torch.get_num_threads() != ctx.threads:
        torch.set_num_threads(ctx.threads)
    if "MALLOC_TRIM_THRESHOLD_" in os.environ and "malloc" not in _LOADED.warned:
        _LOADED.warned.add("malloc")
        _log(f"warning: worker {os.getpid()}: {MALLOC_ADVICE}", topic=WARNING)
    with contextlib.suppress(ValueError):
        if get_worker().state.nthreads > 1 and "threads" not in _LOADED.warned:
            _LOADED.warned.add("threads")
            _log(
                f"warning: worker {get_worker().name} has {get_worker().state.nthreads} threads; its tasks run one "
                "at a time (they share the process's random generators): start workers with --nthreads 1 and more "
                "processes",
                topic=WARNING,
            )
    deterministic_cuda()
    deterministic_algorithms()
    return Store(ctx.cache, warn=_log), torch.device(_worker_device(ctx.device))


def _worker_device(device: str) -> str:
    """The device of this worker: with ``cuda`` and several GPUs, the workers of an embedded
    cluster (named 0, 1, ...) take one GPU each; ``cuda:N`` is that GPU for every worker."""
    if device != "cuda":
        return device
    import torch
    from distributed import get_worker

    count = torch.cuda.device_count()
    name = get_worker().name
    if count > 1 and isinstance(name, int):
        return f"cuda:{name % count}"
    return f"cuda:{torch.cuda.current_device()}"  # an explicit index: the stages compare devices


def _log(line: str, topic: str = TOPIC) -> None:
    """A line for the client's progress display (a worker event)."""
    from distributed import get_worker

    with contextlib.suppress(ValueError):  # not in a worker (a test calling a task directly)
        get_worker().log_event(topic, line)


def _dataset(ctx: Context, store: Store, key: str) -> Dataset:
    if _LOADED.dataset is not None and _LOADED.dataset[0] == (ctx.cache, key):
        return _LOADED.dataset[1]
    dataset = store.dataset(key)
    if dataset is None:  # the client stored it before submitting anything
        raise FileNotFoundError(
            f"dataset {key[:12]} is not in the cache {ctx.cache}: is the cache folder on a file system "
            "every worker sees, at the same path?"
        )
    _LOADED.model, _LOADED.dataset = None, ((ctx.cache, key), dataset)
    return dataset


def _model(ctx: Context, store: Store, job: ModelJob, device: torch.device) -> tuple[Dataset, TrainedModel]:
    dataset = _dataset(ctx, store, job.dataset_key)
    if _LOADED.model is not None and _LOADED.model[0] == (ctx.cache, job.key):
        return dataset, _LOADED.model[1]
    trained = obtain_model(
        job, dataset, ctx.matrix, store, log=lambda m: _log(f"  {job.label}: {m}"), device=device, wait=True
    )
    _LOADED.model = ((ctx.cache, job.key), trained)
    return dataset, trained


def model_task(ctx: Context, job: ModelJob) -> dict[str, Any]:
    """Train a model (or find it stored); its metadata, or the error that stopped its training."""
    with _ONE_TASK:
        return _model_task(ctx, job)


def _model_task(ctx: Context, job: ModelJob) -> dict[str, Any]:
    store, device = _setup(ctx)
    try:
        if store.model_meta(job.key) is None:  # to be trained: with the CPUs training takes
            with _cpus(ctx, TRAINING_THREADS):
                _, trained = _model(ctx, store, job, device)
        else:
            _, trained = _model(ctx, store, job, device)
    except (OSError, Busy):  # a full disk, a cache the worker cannot see: the run stops
        raise
    except Exception as err:  # noqa: BLE001 - a failed model fails its cells, not the run
        return {"meta": None, "from_cache": False, "error": describe(err)}
    return {"meta": trained.meta, "from_cache": trained.from_cache, "error": ""}


def cell_task(ctx: Context, cell: Cell, model: dict[str, Any]) -> dict[str, Any]:
    """Compute a cell into the store (unless it is there); its status, never its numbers: the
    client reads those from the store."""
    with _ONE_TASK:
        return _cell_task(ctx, cell, model)


def _cell_task(ctx: Context, cell: Cell, model: dict[str, Any]) -> dict[str, Any]:
    from bench.core.malloc import release_free_memory
    from bench.run.cells import compute_cell

    if model["error"]:
        return {"status": "failed", "error": model["error"], "seconds": 0.0}
    store, device = _setup(ctx)
    if store.cell(cell) is not None:  # computed before this task ran (an earlier attempt, another run)
        return {"status": "cached", "error": "", "seconds": 0.0}
    with store.claim("cell", cell.key), _cpus(ctx, ctx.threads):
        if store.cell(cell) is not None:
            return {"status": "cached", "error": "", "seconds": 0.0}
        dataset, trained = _model(ctx, store, cell.model, device)
        start = time.perf_counter()
        try:
            rows, samples, images = compute_cell(
                cell, sweep(ctx.matrix, cell.epsilons_255), dataset, trained, device=device
            )
        except Exception as err:  # noqa: BLE001 - a failed cell is an error row, not retried
            return {"status": "failed", "error": describe(err), "seconds": time.perf_counter() - start}
        store.put_cell(cell, CellOutput(rows, samples, images))
        del rows, samples, images
        release_free_memory()
    return {"status": "computed", "error": "", "seconds": time.perf_counter() - start}


def probe_task(ctx: Context, item: ProbeJob, model: dict[str, Any]) -> dict[str, Any] | None:
    """A model's probe numbers into the store (None when its model failed)."""
    with _ONE_TASK:
        return _probe_task(ctx, item, model)


def _probe_task(ctx: Context, item: ProbeJob, model: dict[str, Any]) -> dict[str, Any] | None:
    if model["error"]:
        return None
    store, device = _setup(ctx)
    with store.claim("probe", item.key), _cpus(ctx, ctx.threads):
        numbers = store.probe(item.key)
        if numbers is None:
            dataset, trained = _model(ctx, store, item.model, device)
            matrix = ctx.matrix
            try:
                numbers = probe(
                    item.model.defense,
                    item.gradient,
                    dataset,
                    trained.model,
                    n_samples=matrix.n_samples,
                    seed=matrix.seed,
                    device=device,
                )
            except OSError:
                raise
            except Exception as err:  # noqa: BLE001 - a failed probe leaves its flags silent
                return {"error": f"{type(err).__name__}: {err}".splitlines()[0]}
            store.put_probe(item.key, numbers)
    return numbers


def pair_task(ctx: Context, source: Cell, target: ModelJob, classes: int | None) -> bool:
    """Score a source cell's kept images on a target model into the store (the transfer stage's
    model evaluations, on the workers' device); whether it computed anything."""
    with _ONE_TASK:
        store, device = _setup(ctx)
        key = pair_key(source.key, target.key)
        with store.claim("pair", key), _cpus(ctx, ctx.threads):
            if store.pair(key) is not None:
                return False
            images = store.cell_images(source.key)
            if images is None:
                return False
            classes = classes or int(images["label"].max()) + 1  # as the serial stage counts them
            detector = create_detector(target.detector, in_channels=int(images["x"].shape[1]), num_classes=classes)
            model = store.load_weights(target.key, detector)
            if model is None:
                return False
            store.put_pair(key, score_images(model, images["x"], images["adv"], images["label"], device=device))
        return True


def worker_facts_task(device: str) -> tuple[str, int]:
    """The device kind a worker resolves ``device`` to (``auto`` on a GPU worker: cuda) and the
    torch threads its process was started with: its OMP_NUM_THREADS (a nanny's worker: 1 unless the
    environment exports another), else torch's default (a ``--no-nanny`` worker: its cores). Not the
    current count, which an earlier run's tasks set."""
    import torch

    from bench.core.devices import device_kind, resolve_device

    configured = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(configured) if configured.isdigit() and int(configured) > 0 else torch.get_num_threads()
    return device_kind(resolve_device(device)), threads


# -- the client ----------------------------------------------------------------------------------


class DaskRunner(Runner):
    """The runner with its models, cells and probes as tasks on a Dask cluster (``cluster``).

    ``threads``: torch threads of every cell, probe and pair task, set in each (they are in the
    keys): ``cores // N`` on an embedded cluster of N workers, so that they never oversubscribe the
    machine; on an existing cluster what a worker process has (:func:`cluster_facts`; Dask starts
    its workers with OMP_NUM_THREADS=1, one thread per task slot). Training
    always runs on TRAINING_THREADS threads (bench/run/training.py), whatever the worker has:
    trained weights depend on it. On an embedded cluster the tasks share the machine's CPUs
    through a semaphore (:func:`_cpus`), so a training has them to itself.
    """

    executor = "dask"

    def __init__(self, matrix: Matrix, *, cluster: Cluster, threads: int, **kwargs: Any) -> None:
        super().__init__(matrix, threads=threads, **kwargs)
        self.cluster = cluster
        self._client: Client | None = None
        self._probe_rows: dict[str, dict[str, Any]] = {}
        self._workers_seen = 0

    def describe_executor(self) -> dict[str, Any]:
        return {
            "kind": "dask",
            "cluster": "local" if self.cluster.embedded else "existing",
            "workers": self.cluster.workers if self.cluster.embedded else self._workers_seen,
            "torch_threads_per_task": self.threads,
        }

    def run(self) -> Any:
        with self._connected():
            return super().run()

    def train(self) -> Any:
        with self._connected():
            return super().train()

    @contextlib.contextmanager
    def _connected(self) -> Iterator[None]:
        with self.cluster.client(self.threads) as client:
            self._client = client
            client.subscribe_topic(TOPIC, lambda event: self.progress(str(event[1])))  # type: ignore[no-untyped-call]
            client.subscribe_topic(WARNING, lambda event: self.warn(str(event[1])))  # type: ignore[no-untyped-call]
            self._workers_seen = len(client.scheduler_info().get("workers", {}))
            self.progress(f"executor: {self.cluster.describe()} ({self._workers_seen} workers connected)")
            try:
                yield
            finally:
                self._client = None

    def _context(self) -> Context:
        from bench.core.fingerprint import digest

        cpus = self.cluster.cpus if self.cluster.embedded else None
        run = digest("run", str(self.store.root), time.time(), os.getpid())[:16]
        return Context(self.matrix, str(Path(self.store.root).resolve()), self.device, self.threads, cpus, run)

    def _models_and_cells(self, plan: Plan, *, with_cells: bool = True) -> None:
        from distributed import as_completed

        client = self._client
        assert client is not None, "run() or train() connects the client"
        self._plan, self._loaded, self._position, self._gather = plan, None, None, {}
        ctx = self._context()
        pending: dict[str, tuple[str, Any]] = {}  # future key -> (kind, model job, cell or probe job)
        futures: list[Future[Any]] = []
        models: dict[str, Future[Any]] = {}  # model key -> its task
        # Everything from the first submission on is inside the try: a Ctrl-C while the client
        # still builds a later task's dataset, or while it reads a finished cell back, must
        # still cancel the tasks and keep the cells the workers stored (tests/test_interrupt.py).
        try:
            for job in plan.models:
                cells = plan.cells_of(job) if with_cells else ()
                stored = {c.key: self.store.cell(c) for c in cells}
                meta = self.store.model_meta(job.key)
                missing = [c for c in cells if stored[c.key] is None]
                self._dataset_info(job)
                if meta is not None and not missing:  # served whole from the store, as in a serial run
                    self.stats["models_cached"] += 1
                    self.models[job.label] = model_row(job, meta, True, "", device=self.device_kind)
                    self.update(self.stats)
                else:
                    self._task_dataset(job)  # built and stored here, before any worker needs it
                    model = models.get(job.key)
                    if model is None:  # one task per model key: input transforms share their model
                        model = client.submit(
                            model_task, ctx, job, key=f"model-{job.key}", pure=False, priority=PRIORITY["model"]
                        )
                        pending[str(model.key)] = ("model", [job])
                        futures.append(model)
                        models[job.key] = model
                    else:
                        pending[str(model.key)][1].append(job)
                    for cell in missing:
                        future = client.submit(
                            cell_task,
                            ctx,
                            cell,
                            model,
                            key=f"cell-{cell.key}",
                            pure=False,
                            priority=cell_priority(cell),
                        )
                        pending[str(future.key)] = ("cell", cell)
                        futures.append(future)
                for cell in cells:
                    if stored[cell.key] is not None:
                        self._serve_or_compute(cell, stored[cell.key], None, None)
                        self.cell_done()
            self._loaded = None  # the client holds no patches while it waits
            if with_cells:
                futures += self._submit_probes(plan, ctx, pending, models)
            self.progress(f"{len(futures)} tasks submitted to the {self.cluster.describe()}")
            done = as_completed(futures)  # type: ignore[no-untyped-call]
            while not done.is_empty():  # type: ignore[no-untyped-call]
                interrupt.check()  # a Ctrl-C a garbage-collector callback swallowed (bench/core/interrupt.py)
                if not done.has_ready():  # type: ignore[no-untyped-call]
                    time.sleep(POLL_SECONDS)
                    continue
                future = next(done)
                kind, item = pending[str(future.key)]
                self._finished(kind, item, future)
                del pending[str(future.key)]  # only once recorded: an interruption inside collects it
        except BaseException:
            with contextlib.suppress(Exception):  # the run is ending: its own error is the one to report
                client.cancel(list(futures))  # type: ignore[no-untyped-call]  # pending tasks; the finished are stored
            with contextlib.suppress(Exception):
                self._collect_stored(pending)
            raise

    def _collect_stored(self, pending: dict[str, tuple[str, Any]]) -> None:
        """On an interruption: the cells a worker stored that the client had not heard of yet go
        into the tables written on the way out (they are in the store either way)."""
        for kind, item in pending.values():
            if kind == "cell" and item.key not in self.rows:
                stored = self.store.cell(item)
                if stored is not None:
                    self.rows[item.key], self.samples[item.key] = stored.rows, compact_samples(stored.samples)
                    self.stats["cells_computed"] += 1

    def _dataset_info(self, job: ModelJob) -> None:
        if str(job.task) not in self.datasets:
            info = self.store.dataset_info(job.dataset_key)
            self.datasets[str(job.task)] = info if info is not None else self._task_dataset(job).info

    def _submit_probes(
        self, plan: Plan, ctx: Context, pending: dict[str, tuple[str, Any]], models: dict[str, Future[Any]]
    ) -> list[Future[Any]]:
        """A task per probe not stored, after its model's task (a stored model gets one: cheap)."""
        client = self._client
        assert client is not None
        futures = []
        for item in plan.probes:
            if self.store.probe(item.key) is not None:
                continue  # served by _probe, as in a serial run
            model = models.get(item.model.key)
            if model is None:  # a stored model: a task that loads it (and finds it stored)
                model = client.submit(
                    model_task, ctx, item.model, key=f"model-{item.model.key}", pure=False, priority=PRIORITY["model"]
                )
                models[item.model.key] = model
                pending[str(model.key)] = ("model", [item.model])
                futures.append(model)
            future = client.submit(
                probe_task, ctx, item, model, key=f"probe-{item.key}", pure=False, priority=PRIORITY["probe"]
            )
            pending[str(future.key)] = ("probe", item)
            futures.append(future)
        return futures

    def _finished(self, kind: str, item: Any, future: Future[Any]) -> None:
        """One task done: record its outcome (errors of the worker's own, as error rows)."""
        error = future.exception()  # type: ignore[no-untyped-call]
        if isinstance(error, OSError):
            raise error  # a full disk or an unreachable cache on a worker: the run stops
        result: dict[str, Any]
        if kind == "model":
            result = future.result() if error is None else {"meta": None, "from_cache": False, "error": describe(error)}
            for i, job in enumerate(item):  # the jobs sharing the model (an input transform's: the next)
                if job.label in self.models:
                    continue  # served from the store already (a probe's model task)
                if result["error"]:
                    self.stats["models_failed"] += 1
                    self.models[job.label] = model_row(job, None, False, result["error"], device=self.device_kind)
                    self.update(self.stats)
                    self.progress(f"model {job.label}: FAILED {result['error']}")
                else:  # as in a serial run: the jobs after the first find the model stored
                    self.model_done(job, result["meta"], result["from_cache"] or i > 0)
        elif kind == "cell":
            cell: Cell = item
            result = future.result() if error is None else {"status": "failed", "error": describe(error)}
            stored = self.store.cell(cell) if result["status"] != "failed" else None
            if stored is None:
                self.cell_failed(cell, result["error"] or "its stored result could not be read back")
            elif result["status"] == "cached":
                self._serve_or_compute(cell, stored, None, None)
            else:
                self.cell_computed(cell, stored.rows, stored.samples, result["seconds"])
            self.cell_done()
        else:
            probe_job: ProbeJob = item
            numbers = future.result() if error is None else {"error": describe(error)}
            if numbers is not None:
                self._probe_rows[probe_job.key] = numbers

    def _transfer_stage(self, plan: Plan) -> None:
        """The transfer pairs scored by tasks on the workers (their device: the client may have no
        GPU), then the serial stage, which finds every pair stored and assembles the tables."""
        client = self._client
        if client is None:
            super()._transfer_stage(plan)
            return
        ctx = self._context()
        futures = []
        for source in plan.transfer_sources:
            info = self.store.dataset_info(source.model.dataset_key) or {}
            classes = len(info.get("classes", [])) or None
            for target in plan.transfer_targets(source.model.task, source.model.training_seed):
                stored = self.store.pair(pair_key(source.key, target.key)) is not None
                if stored or self.store.model_meta(target.key) is None:
                    continue
                futures.append(client.submit(pair_task, ctx, source, target, classes, pure=False))
        computed = 0
        if futures:
            # as distributed.wait(), but a Ctrl-C Python swallowed still ends it
            while not all(f.done() for f in futures):  # type: ignore[no-untyped-call]
                interrupt.check()
                time.sleep(POLL_SECONDS)
            computed = sum(1 for f in futures if f.status == "finished" and f.result())
        super()._transfer_stage(plan)  # a pair a task could not score is scored here, on the client
        if "transfer_pairs_computed" in self.stats:
            self.stats["transfer_pairs_computed"] += computed
            self.stats["transfer_pairs_cached"] -= computed

    def _probe(self, plan: Plan) -> None:
        """The probes table: what the probe tasks computed, the rest from the store."""
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for item in plan.probes:
            job = item.model
            if self.models.get(job.label, {}).get("error"):
                continue
            base = self.probe_base(item)
            numbers = self._probe_rows.get(item.key) or self.store.probe(item.key)
            if numbers is None:
                continue
            if "error" in numbers:
                rows.append({**base, "error": numbers["error"]})
                self.progress(f"probe {job.label} ({item.gradient}): FAILED {numbers['error']}")
                continue
            self.probe_done(item, numbers)
            rows.append({**base, **numbers})
        from bench.run.tables import probe_table

        self.probes = probe_table(rows)
        self.timings["probes"] = time.perf_counter() - start


def cluster_facts(cluster: Cluster, device: str) -> tuple[str, int]:
    """The device kind the workers of an existing cluster resolve ``device`` to and their torch
    threads, asked of one worker (the client may be a login node without the workers' GPUs and
    with other cores). Every task then sets that thread count: a run's cells have one count."""
    with cluster.client(1) as client:
        kind, threads = client.submit(worker_facts_task, device, pure=False).result()
        return str(kind), int(threads)


__all__ = ["Cluster", "Context", "DaskRunner", "cell_task", "cluster_facts", "model_task", "probe_task"]
