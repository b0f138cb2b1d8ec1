"""The Ray engine: the shards of a job as a Ray Data pipeline on a cluster."""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..inference import Extractor
from .lines import GROUP, BatchFailure, Limits, Output, Unreadable, extract_lines, grouped
from .shards import Job, Meter, ShardStats, ShardWriter, Sink, _bars, read_shard

log = logging.getLogger("ecpe.batch")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise BatchFailure(f"--engine ray needs Ray Data, which is not installed ({e}); install the extra: "
                           "pip install 'ecpe[ray]'") from None
    return ray


def _read_shard_rows(batch: dict, group: int) -> Iterator[dict]:
    """Ray Data read step: rows ``{shard, path}`` -> batches of numbered lines ``{shard, line, raw}``."""

    for index, path in zip(batch["shard"], batch["path"]):
        for lines in grouped(read_shard(str(path)), group):
            yield {"shard": np.full(len(lines), int(index), dtype=np.int64),
                   "line": np.array([n for n, _ in lines], dtype=np.int64),
                   "raw": np.array([b"" if isinstance(raw, Unreadable) else raw for _, raw in lines], dtype=object),
                   "unreadable": np.array([raw.reason if isinstance(raw, Unreadable) else "" for _, raw in lines],
                                          dtype=object)}


class RayExtractActor:
    """A Ray Data actor: loads the model once (from the checkpoint bytes it is given, so the model file need
    not be on every node), then turns batches of numbered lines into output records."""

    def __init__(self, checkpoints: list, device: str, segmenter: str | None, max_clauses: int,
                 max_chars: int, threshold: float | None, matrix: bool, threads: int, precision: str = "fp32",
                 batch_size: int = 64):

        import ray


        torch.set_num_threads(max(1, threads))
        with tempfile.TemporaryDirectory(prefix="ecpe-actor-") as tmp:
            paths = []
            for i, data in enumerate(ray.get(checkpoints) if checkpoints and not isinstance(checkpoints[0], bytes)
                                      else checkpoints):
                p = Path(tmp) / f"model{i}.pt"
                p.write_bytes(data)
                paths.append(p)
            self.extractor = Extractor.load(paths if len(paths) > 1 else paths[0], device=device,
                                            segmenter=segmenter, max_clauses=max_clauses, precision=precision,
                                            batch_size=batch_size)
        self.limits = Limits(max_clauses=max_clauses, max_chars=max_chars)
        self.threshold, self.matrix = threshold, matrix

    def __call__(self, batch: dict) -> dict:

        lines = [(int(n), Unreadable(str(fault)) if fault else bytes(raw))
                 for n, raw, fault in zip(batch["line"], batch["raw"], batch["unreadable"])]
        outs = extract_lines(self.extractor, lines, self.limits, self.threshold, self.matrix)
        return {"shard": np.asarray(batch["shard"], dtype=np.int64),
                "line": np.array([o.line for o in outs], dtype=np.int64),
                "json": np.array([o.json for o in outs], dtype=object),
                "pairs": np.array([o.pairs for o in outs], dtype=np.int64),
                "error": np.array([o.error or "" for o in outs], dtype=object)}


@dataclass(frozen=True)
class RayOptions:
    """How :func:`run_ray` extracts (the model, the ``on_error`` policy, threshold, limits, ...) and on what
    cluster resources (``address``, ``actors``, GPUs and CPUs per actor)."""

    model: tuple[str, ...]                  # checkpoint paths (several: an ensemble)
    on_error: str = "record"
    threshold: float | None = None
    matrix: bool = False
    limits: Limits = Limits()
    device: str = "cpu"
    segmenter: str | None = None
    precision: str = "fp32"
    batch_size: int = 64                    # documents per forward pass
    group: int = GROUP                      # lines per Extractor.extract_many call
    address: str | None = None              # the cluster to join (as ray.init's address)
    actors: int | None = None               # None: as many as the cluster holds
    num_gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    quiet: bool = False

    def __post_init__(self):
        object.__setattr__(self, "model", tuple(str(m) for m in ([self.model] if isinstance(self.model, (str, Path))
                                                                 else self.model)))


def run_ray(job: Job, options: RayOptions, meter: Meter | None = None) -> ShardStats:
    """Run the unfinished shards of ``job`` with Ray Data: read (tasks) -> ``map_batches`` over a pool of
    ``options.actors`` model actors (CPU, or ``num_gpus_per_actor`` GPUs each) -> this process writes each output
    shard, in input order, with the same :class:`ShardWriter` as :func:`run_local`. Joins the cluster at
    ``options.address`` (default as ``ray.init``: ``$RAY_ADDRESS``, as under ``ray job submit``, else a cluster
    started on this machine by ``ray start``, else a new local one), or uses the Ray the caller has initialised.
    Input shards must be readable on every node (a shared file system); the output is written where this process
    runs. Returns this run's counts."""
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
    import ray.data

    if not job.todo:
        return ShardStats()
    resources = ray.cluster_resources()
    actors = o.actors
    if actors is None:  # as many as the cluster holds
        actors = int(resources.get("GPU", 0) // o.num_gpus_per_actor) if o.num_gpus_per_actor > 0 \
            else int(resources.get("CPU", 1) // o.cpus_per_actor)
        actors = max(1, actors)
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no execution plans on stderr unless -v
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # output shards are written in input order
    ctx.enable_progress_bars = False               # ours count shards and documents
    device = o.device
    if o.num_gpus_per_actor > 0 and device == "cpu":
        device = "cuda"                            # Ray sets CUDA_VISIBLE_DEVICES for each actor
    # the checkpoints go to the object store once; a list of refs is passed as is, and each actor fetches them
    checkpoints = [ray.put(Path(p).read_bytes()) for p in o.model]
    shards = ray.data.from_items([{"shard": i, "path": str(job.input / s)} for i, s in enumerate(job.todo)],
                                 override_num_blocks=len(job.todo))
    # reading is light: num_cpus=0 keeps it from waiting for a CPU that the actors hold, and a few reader tasks
    # at a time are enough (unbounded, Ray starts a worker process per shard, each importing torch with ecpe)
    readers = max(1, min(len(job.todo), actors // 8 + 1))
    lines = shards.map_batches(_read_shard_rows, fn_kwargs={"group": o.group}, batch_size=1, num_cpus=0,
                               concurrency=readers)
    outputs = lines.map_batches(
        RayExtractActor, batch_size=o.group, compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs=dict(checkpoints=checkpoints, device=device, segmenter=o.segmenter,
                                   max_clauses=o.limits.max_clauses, max_chars=o.limits.max_chars,
                                   threshold=o.threshold, matrix=o.matrix, threads=max(1, int(o.cpus_per_actor)),
                                   precision=o.precision, batch_size=o.batch_size),
        num_cpus=o.cpus_per_actor, num_gpus=o.num_gpus_per_actor or None)

    shard_bar, doc_bar = _bars(job, o.quiet, meter)
    now = ShardStats()
    current: tuple[int, ShardWriter, Sink, float] | None = None
    pending = 0  # the first shard of job.todo not committed yet

    def finish(upto: int) -> None:
        """Commit the shard being written, then (empty) the shards before ``upto`` that gave no lines."""
        nonlocal current, pending
        if current is not None:
            index, writer, sink, start = current
            sink.stats.seconds = time.perf_counter() - start
            writer.commit(sink.stats)
            now.add(sink.stats)
            shard_bar.update(1)
            current, pending = None, index + 1
        for index in range(pending, upto):
            job.writer(job.todo[index]).commit(ShardStats())
            shard_bar.update(1)
        pending = max(pending, upto)

    try:
        for batch in outputs.iter_batches(batch_size=None, batch_format="numpy"):
            for index, line, text, pairs, error in zip(batch["shard"], batch["line"], batch["json"], batch["pairs"],
                                                       batch["error"]):
                index = int(index)
                if current is None or current[0] != index:
                    finish(index)
                    writer = job.writer(job.todo[index])
                    current = (index, writer, Sink(writer.write, o.on_error, str(job.input / job.todo[index])),
                               time.perf_counter())
                current[2].add(Output(int(line), str(text), int(pairs), str(error) or None))
            doc_bar.update(len(batch["line"]))
        finish(len(job.todo))
    except BaseException:
        if current is not None:
            current[1].abort()
        raise
    finally:
        shard_bar.close()
        doc_bar.close()
    return now
