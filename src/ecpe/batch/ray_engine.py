"""The Ray engine: the shards of a job on a Ray cluster, each written by the task that extracts it.

The driver (the ``ecpe predict`` process) plans the job (:class:`~ecpe.batch.shards.Job`: the shards left to
do), runs one Ray task per shard, a few at a time per CPU (or GPU) of the cluster, and adds up the counts they
return. A task reads its input shard, extracts it and writes its output shard with the same code as the local
engine (:func:`~ecpe.batch.local.run_shard`: a temporary name, then a rename), so no output line passes through
the driver. Each Ray worker process loads the model once (:func:`_extractor`) and keeps it for the next shards
it is given. A task whose worker dies (its process killed, its node lost) is run again by Ray from the start of
its shard, on any node: the dead worker's temporary file is left behind (removed at the job's end, or by the
next run), and the shard's output is written once.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..inference import LOCAL_LIMITS, Extractor
from .lines import GROUP, BatchFailure, Limits
from .local import run_shard
from .shards import Job, Meter, ShardStats, _bars, remove_stale_temporaries

log = logging.getLogger("ecpe.batch")

RETRIES = 3   # runs again of a shard whose worker died


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise BatchFailure(f"--engine ray needs Ray, which is not installed ({e}); install the extra: "
                           "pip install 'ecpe[ray]'") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """How :func:`run_ray` extracts (the model, the ``on_error`` policy, threshold, limits, ...) and on what
    cluster resources (``address``, ``workers``, GPUs and CPUs per worker)."""

    model: tuple[str, ...]                  # checkpoint paths (several: an ensemble)
    on_error: str = "record"
    threshold: float | None = None
    matrix: bool = False
    limits: Limits = LOCAL_LIMITS
    device: str = "cpu"
    segmenter: str | None = None
    precision: str = "fp32"
    batch_size: int = 64                    # documents per forward pass
    group: int = GROUP                      # lines per Extractor.extract_many call
    address: str | None = None              # the cluster to join (as ray.init's address)
    workers: int | None = None              # shards at once; None: as many as the cluster holds
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    quiet: bool = False

    def __post_init__(self):
        object.__setattr__(self, "model", tuple(str(m) for m in ([self.model] if isinstance(self.model, (str, Path))
                                                                 else self.model)))


_EXTRACTORS: dict[tuple, Extractor] = {}   # in a Ray worker process: the model of the job it serves


def _extractor(checkpoints: list, options: RayOptions, device: str) -> Extractor:
    """The extractor of this worker process, loaded once from the checkpoint bytes in Ray's object store (so
    the model file need not be on every node)."""
    import ray

    key = (tuple(c.hex() for c in checkpoints), device, options.segmenter, options.limits.max_clauses,
           options.precision, options.batch_size)
    if key not in _EXTRACTORS:
        _EXTRACTORS.clear()                        # a worker serves one job at a time: drop an earlier job's model
        with tempfile.TemporaryDirectory(prefix="ecpe-worker-") as tmp:
            paths = []
            for i, data in enumerate(ray.get(checkpoints)):
                p = Path(tmp) / f"model{i}.pt"
                p.write_bytes(data)
                paths.append(p)
            _EXTRACTORS[key] = Extractor.load(paths if len(paths) > 1 else paths[0], device=device,
                                              segmenter=options.segmenter, max_clauses=options.limits.max_clauses,
                                              precision=options.precision, batch_size=options.batch_size)
    return _EXTRACTORS[key]


def extract_shard(checkpoints: list, options: RayOptions, device: str, job: Job, shard: str) -> ShardStats:
    """A Ray task: one shard of ``job`` read, extracted and written (a temporary name, then a rename); returns
    its counts only."""
    torch.set_num_threads(max(1, int(options.cpus_per_worker)))
    o = options
    return run_shard(_extractor(checkpoints, o, device), job, shard, o.on_error, o.threshold, o.matrix, o.limits,
                     o.group)


def run_ray(job: Job, options: RayOptions, meter: Meter | None = None) -> ShardStats:
    """Run the unfinished shards of ``job`` on Ray: one task per shard, ``options.workers`` at a time (CPU, or
    ``gpus_per_worker`` GPUs each), each of which reads, extracts and writes its whole shard; this process only
    hands out shards and adds up their counts. Joins the cluster at ``options.address`` (default as
    ``ray.init``: ``$RAY_ADDRESS``, as under ``ray job submit``, else a cluster started on this machine by
    ``ray start``, else a new local one), or uses the Ray the caller has initialised. Input and output must be
    reachable from every node at the same path or URL (a shared file system, an object store). Returns this
    run's counts."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=options.address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True, log_to_driver=True)
        started = True
    try:
        return _run_ray(ray, job, options, meter)
    finally:
        if started:
            ray.shutdown()


def _run_ray(ray, job: Job, o: RayOptions, meter: Meter | None) -> ShardStats:
    if not job.todo:
        return ShardStats()
    slots = o.workers
    if slots is None:  # as many as the cluster holds
        resources = ray.cluster_resources()
        slots = int(resources.get("GPU", 0) // o.gpus_per_worker) if o.gpus_per_worker > 0 \
            else int(resources.get("CPU", 1) // o.cpus_per_worker)
    slots = max(1, slots)
    device = o.device
    if o.gpus_per_worker > 0 and device == "cpu":
        device = "cuda"                            # Ray sets CUDA_VISIBLE_DEVICES for each task
    # the checkpoints go to the object store once; a list of refs is passed as is, and each worker fetches them
    checkpoints = [ray.put(Path(p).read_bytes()) for p in o.model]
    task = ray.remote(num_cpus=o.cpus_per_worker, num_gpus=o.gpus_per_worker or None, max_retries=RETRIES,
                      max_calls=0)(extract_shard)    # max_calls=0: GPU workers too keep their model
    plan = Job(job.input, job.output, [], [])      # what a task needs of the job: where to read and write
    shard_bar, doc_bar = _bars(job, o.quiet, meter)
    now = ShardStats()
    todo = iter(job.todo)
    running: list = []
    failure: BaseException | None = None

    def hand_out() -> None:
        while failure is None and len(running) < slots:
            shard = next(todo, None)
            if shard is None:
                return
            running.append(task.remote(checkpoints, o, device, plan, shard))

    try:
        hand_out()
        while running:
            done, _ = ray.wait(running, num_returns=1)
            running.remove(done[0])
            try:
                stats = ray.get(done[0])
            except Exception as e:  # its shard was discarded; the shards being run finish, no new one starts
                failure = failure or e
                continue
            now.add(stats)
            shard_bar.update(1)
            doc_bar.update(stats.lines)
            hand_out()
    finally:
        shard_bar.close()
        doc_bar.close()
    remove_stale_temporaries(job.output)            # those of workers that died
    if failure is not None:
        cause = getattr(failure, "cause", None)    # the task's own exception (RayTaskError.cause)
        raise cause if isinstance(cause, Exception) else failure
    return now
