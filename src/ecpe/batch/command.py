"""``ecpe predict --input``: its options (added to the CLI's parser) and the command, with its exit status."""
from __future__ import annotations

import errno
import io
import json
import logging
import sys
import time
from dataclasses import asdict
from typing import IO

import torch

from ..inference import LOCAL_LIMITS, MAX_CLAUSES, Extractor, InputError
from .lines import EXIT_CRASHED, EXIT_ERRORS, EXIT_OK, EXIT_STOPPED, ON_ERROR, BatchFailure, Limits
from .local import run_local, run_stream
from .ray_engine import RayOptions, _import_ray, run_ray
from .files import Location
from .shards import STATE_DIR, Job, JobStats, Meter, open_binary, write_atomic

log = logging.getLogger("ecpe.batch")


def add_arguments(parser) -> None:
    """The options of ``ecpe predict --input`` for corpus-scale jobs."""
    g = parser.add_argument_group("batch jobs (--input)", "a bad line becomes an error record and the job goes on; "
                                  "--input DIR --output DIR: one output shard per input shard, resumable. "
                                  "Exit status: 0 all lines extracted, 1 some lines failed, 2 job stopped (--on-error fail, a usage error), "
                                  "3 job crashed (e.g. a full disk; finished shards are kept: re-run to resume)")
    g.add_argument("--on-error", choices=ON_ERROR, default="record",
                   help="a bad input line (invalid JSON, wrong types, over a limit): record (default) writes "
                        '{"line": N, "id": ..., "error": "..."} in its place; skip leaves it out (reported on '
                        "stderr); fail stops the job (a directory job discards the shard being written)")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="directory jobs: local (this process, default) or ray (one Ray task per shard on a cluster, "
                        "which reads, extracts and writes it; needs the ecpe[ray] extra)")
    g.add_argument("--address", help="--engine ray: the cluster to join (HEAD:6379, or auto); default: "
                                     "$RAY_ADDRESS, else one started on this machine by `ray start`, else a new "
                                     "local Ray for the job ('local': always a new one)")
    g.add_argument("--workers", "--actors", dest="workers", type=int, metavar="N",
                   help="--engine ray: shards extracted at once, each by one Ray task that reads, extracts and "
                        "writes it (default: as many as the cluster's CPUs / --cpus-per-worker, or its GPUs / "
                        "--gpus-per-worker)")
    g.add_argument("--gpus-per-worker", "--num-gpus-per-actor", dest="gpus_per_worker", type=float, default=0.0,
                   metavar="G", help="--engine ray: GPUs per task (e.g. 1, or 0.5 to share one); 0 (default) = CPU")
    g.add_argument("--cpus-per-worker", "--cpus-per-actor", dest="cpus_per_worker", type=float, default=1.0,
                   metavar="C", help="--engine ray: CPUs per task, also its torch threads (default 1)")
    g.add_argument("--threads", type=int, default=0,
                   help="torch threads of this process (default 0: torch's default, one per core). On a machine "
                        "that other jobs keep busy, 1 can be several times faster (docs/batch.md)")
    g.add_argument("--max-clauses", type=int, default=LOCAL_LIMITS.max_clauses,
                   help=f"clauses per document, else an error record (default {LOCAL_LIMITS.max_clauses}, at most "
                        f"{MAX_CLAUSES}: memory grows with its square)")
    g.add_argument("--max-chars", type=int, default=LOCAL_LIMITS.max_chars,
                   help=f"characters per document, else an error record (default {LOCAL_LIMITS.max_chars})")


class Progress:
    """How far a job got, for the one line a crash prints."""

    def __init__(self, output: str | None):
        self.output = output or "standard output"
        self.job: Job | None = None
        self.lines = 0   # written by a single-file job

    def done(self) -> str:
        if self.job is None:
            return f"{self.lines} lines written; the output is incomplete"
        finished = len(self.job.finished())
        return f"{finished} of {len(self.job.shards)} shards done, re-run to resume"


def predict_command(args) -> int:
    """``ecpe predict --input ...`` (the CLI hands over here); returns the exit status. A crash (an output
    that cannot be written, an unexpected error) exits :data:`EXIT_CRASHED` with one line, no traceback
    (with -v the traceback is logged)."""
    progress = Progress(args.output)
    try:
        return _predict_command(args, progress)
    except BatchFailure as e:
        print(f"ecpe predict: error: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except OSError as e:
        where = e.filename or progress.output
        if e.errno == errno.ENOSPC:
            why = f"no space left on {where}"
        elif e.errno == errno.EROFS:
            why = f"{where} is on a read-only file system"
        elif e.errno in (errno.EACCES, errno.EPERM):
            why = f"permission denied: {where}"
        else:
            why = f"cannot write {where}: {e.strerror or e}"
        log.debug("crash", exc_info=True)
        print(f"ecpe predict: {why}: {progress.done()}", file=sys.stderr)
        return EXIT_CRASHED
    except (KeyboardInterrupt, InputError, FileNotFoundError):
        raise
    except Exception as e:
        log.debug("crash", exc_info=True)
        print(f"ecpe predict: crashed ({e.__class__.__name__}: {str(e)[:200]}; -v logs the traceback): "
              f"{progress.done()}", file=sys.stderr)
        return EXIT_CRASHED


def _predict_command(args, progress: Progress) -> int:
    try:  # over a limit, a line is an error record (the model never sees it)
        limits = Limits(max_clauses=args.max_clauses, max_chars=args.max_chars)
    except ValueError as e:
        raise BatchFailure(f"--{e}") from None
    is_dir = args.input != "-" and Location.of(args.input, "--input").is_dir()
    if args.engine == "ray" and not is_dir:
        raise BatchFailure("--engine ray reads a directory of shards: --input DIR --output DIR")
    if args.threads < 0:
        raise BatchFailure("--threads must be 0 (torch's default) or more")
    if args.threads and args.engine == "local":
        torch.set_num_threads(args.threads)
    if not is_dir:
        return _predict_file(args, limits, progress)
    if not args.output:
        raise BatchFailure("--input DIR needs --output DIR")
    if args.engine == "ray":
        _import_ray()
        if args.workers is not None and args.workers < 1:
            raise BatchFailure("--workers must be 1 or more")
        if args.gpus_per_worker < 0 or args.cpus_per_worker <= 0:
            raise BatchFailure("--gpus-per-worker must be 0 or more, --cpus-per-worker more than 0")
    job = Job.plan(args.input, args.output)
    progress.job = job
    stats = JobStats(shards=len(job.shards), skipped=len(job.shards) - len(job.todo), engine=args.engine)
    meter = Meter()
    if args.engine == "ray":
        options = RayOptions(model=args.model, on_error=args.on_error, threshold=args.threshold, matrix=args.matrix,
                             limits=limits, device=args.device, segmenter=args.segmenter,
                             precision=getattr(args, "precision", "fp32"), batch_size=getattr(args, "batch_size", 64),
                             address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                             cpus_per_worker=args.cpus_per_worker, quiet=args.quiet)
        stats.now = run_ray(job, options, meter=meter)
    else:
        stats.now = run_local(_local_extractor(args, limits), job, args.on_error, args.threshold, args.matrix,
                              limits, quiet=args.quiet, meter=meter)
    stats.seconds = time.perf_counter() - meter.start
    stats.startup_seconds = None if meter.first is None else round(meter.first, 3)
    steady = meter.steady()
    stats.steady_lines_per_s = None if steady is None else round(steady, 1)
    stats.total = job.finished_stats()
    write_atomic(job.output / STATE_DIR / "summary.json",
                 json.dumps({**asdict(stats), "input": str(job.input), "on_error": args.on_error}, indent=1))
    print(f"ecpe predict: {stats.summary()}", file=sys.stderr)
    return EXIT_ERRORS if stats.total.errors else EXIT_OK


def _local_extractor(args, limits: Limits) -> Extractor:
    """The extractor of the local engine, from ``ecpe predict``'s options."""
    return Extractor.load(args.model, device=args.device, segmenter=args.segmenter, max_clauses=limits.max_clauses,
                          batch_size=getattr(args, "batch_size", 64), precision=getattr(args, "precision", "fp32"))


class _Counted:
    """An output stream that counts the lines that reached it (at each flush)."""

    def __init__(self, out: IO[str], progress: Progress):
        self.out, self.progress, self.pending = out, progress, 0

    def write(self, text: str) -> None:
        self.out.write(text)
        self.pending += 1

    def flush(self) -> None:
        self.out.flush()
        self.progress.lines += self.pending
        self.pending = 0


def _open_text(where: str) -> IO[str]:
    """The output of a single-file job: a local path or a URL (written as it goes, not atomically)."""
    loc = Location.of(where, "--output")
    if loc.local:
        return open(where, "w", encoding="utf-8")
    return io.TextIOWrapper(loc.open("wb"), encoding="utf-8")


def _predict_file(args, limits: Limits, progress: Progress) -> int:
    ex = _local_extractor(args, limits)
    src = sys.stdin.buffer if args.input == "-" else open_binary(args.input)
    out = _open_text(args.output) if args.output else sys.stdout
    try:
        stats = run_stream(ex, src, _Counted(out, progress), args.input, args.on_error, args.threshold, args.matrix,
                           limits, quiet=args.quiet or args.output is None)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if out is not sys.stdout:
            out.close()
    if args.output or stats.errors:
        print(f"ecpe predict: {stats.documents} documents, {stats.pairs} pairs, {stats.errors} errors "
              f"in {stats.seconds:.1f} s", file=sys.stderr)
    return EXIT_ERRORS if stats.errors else EXIT_OK
