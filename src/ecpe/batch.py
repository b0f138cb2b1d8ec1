"""Corpus-scale extraction: ``ecpe predict --input FILE|DIR``, with error isolation, resumable shards and Ray.

Three layers, each usable on its own:

* one **line** -> one output record (:func:`extract_lines`): a line is parsed and checked here (JSON, the types
  :class:`~ecpe.inference.Extractor` takes, the size limits), so a bad line becomes an error record
  ``{"line": N, "id": ..., "error": "..."}`` instead of stopping the job; good lines go to
  ``Extractor.extract_many`` in groups;
* one **shard** (a JSONL file, optionally ``.gz``) -> one output shard of the same name, written to a temporary
  file and renamed when complete (:class:`ShardWriter`), so an output shard that exists is a finished one;
* one **job** (a directory of shards) -> a directory of output shards: finished shards are skipped, so a job
  killed half-way and run again ends with every document exactly once. The shards run in this process
  (:func:`run_local`) or on a Ray cluster with Ray Data (:func:`run_ray`): read -> ``map_batches`` over a pool of
  actors that each load the model once -> the same shard writer, fed in input order.

What a bad line does is the ``on_error`` policy: ``record`` (default; the error record takes the line's place
in the output, so output line k is still input line k), ``skip`` (left out, reported on stderr) or ``fail``
(the job stops at the first bad line; in a directory job, the shard being written is discarded).
Exit status of the command: 0 when every line was extracted, 1 when some lines failed (``record``/``skip``),
2 when the job stopped (``fail``, or a usage error), 3 when it crashed (the output could not be written: a full
disk, a read-only folder; or an unexpected error), with one line on stderr that says how far it got.
"""
from __future__ import annotations

import errno
import gzip
import json
import logging
import math
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
import tempfile
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .inference import LOCAL_LIMITS, MAX_CLAUSES, Extractor, InputError, Limits, check_document

__all__ = ["Limits", "Output", "ShardStats", "JobStats", "BatchFailure", "parse_line", "extract_lines",
           "find_shards", "ShardWriter", "run_local", "run_ray", "add_arguments", "predict_command",
           "EXIT_OK", "EXIT_ERRORS", "EXIT_STOPPED", "EXIT_CRASHED", "SHARD_SUFFIXES", "STATE_DIR"]

log = logging.getLogger("ecpe.batch")

ON_ERROR = ("record", "skip", "fail")
EXIT_OK, EXIT_ERRORS, EXIT_STOPPED, EXIT_CRASHED = 0, 1, 2, 3
SHARD_SUFFIXES = (".jsonl", ".jsonl.gz")
STATE_DIR = ".ecpe"       # inside the output directory: per-shard counts and the job summary
GROUP = 1024              # lines handed to Extractor.extract_many at once (it pipelines them in its own chunks)


class BatchFailure(ValueError):
    """The job stopped: a bad line under ``on_error="fail"``, or a usage error (bad paths, missing extra)."""


class Output(NamedTuple):
    """The result of one input line: its JSON output line, the number of pairs, and the error (or None)."""

    line: int
    json: str
    pairs: int
    error: str | None


# ---- one line ---------------------------------------------------------------------------------------
class Unreadable(NamedTuple):
    """Where a line should be, the reason the shard could not be read further (a truncated or false gzip
    file, an I/O error): it becomes one error record, and the job goes on with the next shard."""

    reason: str


class _NotJSON(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSON(f"number {text[:20]} is out of range")
    return value


def _strict_loads(line: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number beyond float range; raises ValueError with the
    reason. (A lone surrogate, ``\\ud800``, is valid JSON syntax but no Unicode text: the strings that are read
    are checked by :func:`check_document`, the id by :func:`parse_line`.)"""
    try:
        obj = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at column {e.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except _NotJSON as e:
        raise ValueError(str(e)) from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ValueError(str(e).split(";")[0]) from None
    return obj


def parse_line(raw: bytes | str | Unreadable, limits: Limits = LOCAL_LIMITS) -> tuple[Any, Any, str | None]:
    """One input line -> ``(item for Extractor, id or None, error or None)``.

    A line starting with ``{`` is a JSON object (``{"text": ...}``, ``{"clauses": [...]}``, with an optional
    ``"id"`` copied to the output); any other line is a raw text, as in ``ecpe predict --input``."""

    if isinstance(raw, Unreadable):
        return None, None, raw.reason
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return None, _id_of(raw.decode("utf-8", "replace")), f"invalid UTF-8 (byte {e.start})"
    else:
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as e:
            return None, None, f"invalid Unicode (a lone surrogate at character {e.start})"
    line = raw.strip()
    if not line.startswith("{"):
        item, doc_id = line, None
    else:
        try:
            item = _strict_loads(line)
        except ValueError as e:
            return None, None, f"invalid JSON ({e})"
        doc_id = item.get("id") if isinstance(item, dict) else None
        if doc_id is not None and "\\ud" in line.lower() and not _writable(doc_id):
            return None, None, "the id is not valid Unicode (a lone surrogate)"
    try:
        check_document(item, limits.max_clauses, limits.max_chars)
    except InputError as e:
        return None, doc_id, str(e)
    return item, doc_id, None


def _writable(value: Any) -> bool:
    try:
        _dumps(value).encode("utf-8")
    except (ValueError, RecursionError):
        return False
    return True


def _id_of(line: str) -> Any:
    """The id of a line that is JSON but not valid input, when there is one to report."""
    try:
        obj = _strict_loads(line)
    except ValueError:
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def _dumps(rec: dict) -> str:
    """Strict JSON text of an output record (ValueError or RecursionError when there is none)."""
    return json.dumps(rec, ensure_ascii=False, allow_nan=False)


def _error_json(line: int, doc_id: Any, error: str) -> str:
    rec = {"line": line, **({"id": doc_id} if doc_id is not None else {}), "error": error}
    try:
        return _dumps(rec)
    except (ValueError, RecursionError):  # an id that cannot be written back: the record goes without it
        return _dumps({"line": line, "error": error})


def extract_lines(extractor, lines: Sequence[tuple[int, bytes | str]], limits: Limits | None = None,
                  threshold: float | None = None, matrix: bool = False) -> list[Output]:
    """Numbered input lines -> one :class:`Output` per line, in order; a bad line gives an error record.

    Both engines call this on their groups of lines, so they give the same records. Good lines go to
    ``Extractor.extract_many`` together; should it still refuse one (an input this module's checks let
    through), the group is run again one document at a time so that only that line fails."""

    limits = limits or Limits(max_clauses=extractor.max_clauses)
    parsed = [parse_line(raw, limits) for _, raw in lines]
    good = [i for i, (_, _, err) in enumerate(parsed) if err is None]
    results: dict[int, str] = {}   # the JSON text of each good line's result
    errors = {i: err for i, (_, _, err) in enumerate(parsed) if err is not None}
    try:
        items = [parsed[i][0] for i in good]
        results.update(zip(good, extractor.extract_many(items, threshold=threshold, matrix=matrix, as_json=True)))
    except InputError:
        for i in good:
            try:
                results[i] = extractor.extract_many([parsed[i][0]], threshold=threshold, matrix=matrix, as_json=True)[0]
            except InputError as e:
                errors[i] = str(e)
    out = []
    for i, ((lineno, _), (_, doc_id, _)) in enumerate(zip(lines, parsed)):
        if i in results:
            try:
                text = _result_line(results[i], doc_id)
                # a pair is the only place where {"emotion":  stands outside a string (inside one, " is \")
                out.append(Output(lineno, text, text.count('{"emotion": '), None))
                continue
            except (ValueError, RecursionError) as e:
                errors[i] = f"the result cannot be written as JSON ({e.__class__.__name__}: {str(e)[:100]})"
        out.append(Output(lineno, _error_json(lineno, doc_id, errors[i]), 0, errors[i]))
    return out


def _result_line(text: str, doc_id: Any) -> str:
    """The output line of a result's JSON text (``Extractor.extract_many(..., as_json=True)``): the line's id
    first when it has one, as ``json.dumps({"id": doc_id, **result})`` writes it; ValueError for a result that
    is not strict JSON (NaN or Infinity, as ``allow_nan=False`` refuses them)."""
    if "NaN" in text or "Infinity" in text:  # rare (a clause may hold the word): checked the slow way
        text = _dumps(json.loads(text))
    return text if doc_id is None else '{"id": ' + _dumps(doc_id) + ", " + text[1:]


# ---- reading ----------------------------------------------------------------------------------------
def open_binary(path: str | Path) -> IO[bytes]:
    """A shard for reading, decompressed when its name ends in .gz."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the non-blank lines, numbered from 1 as in the file."""
    for lineno, raw in enumerate(stream, 1):
        if raw.strip():
            yield lineno, raw


def read_shard(path: str | Path) -> Iterator[tuple[int, bytes | Unreadable]]:
    """The numbered lines of a shard; when it cannot be opened or read to its end, one last
    ``(next line number, Unreadable(reason))``, so that the lines before the fault are kept."""
    last = 0
    try:
        with open_binary(path) as f:
            for last, raw in numbered_lines(f):
                yield last, raw
    except (OSError, EOFError, zlib.error) as e:
        yield last + 1, Unreadable(_read_fault(e, last))


def _read_fault(e: BaseException, last: int) -> str:
    where = f"after line {last}" if last else "from its start"
    if isinstance(e, gzip.BadGzipFile):
        why = f"not a gzip file ({e})"
    elif isinstance(e, EOFError):
        why = "truncated gzip file (it ends before its end-of-stream marker)"
    elif isinstance(e, zlib.error):
        why = f"corrupt gzip data ({e})"
    else:
        why = f"{e.strerror or e}" if isinstance(e, OSError) else str(e)
    return f"unreadable shard {where}: {why}"


def grouped(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    for it in items:
        group.append(it)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def find_shards(root: str | Path) -> list[str]:
    """The input shards under ``root`` (recursively; ``*.jsonl`` and ``*.jsonl.gz``, hidden names left out),
    as sorted paths relative to it; each output shard has the same relative path under the output folder."""
    root = Path(root)
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and p.name.endswith(SHARD_SUFFIXES) and not any(part.startswith(".") for part in rel.parts):
            found.append(rel.as_posix())
    return sorted(found)


# ---- writing ----------------------------------------------------------------------------------------
@dataclass
class ShardStats:
    """Counts of one shard (or of a single-file job)."""

    lines: int = 0       # non-blank input lines
    documents: int = 0   # extracted
    pairs: int = 0
    errors: int = 0      # bad lines (recorded or skipped)
    seconds: float = 0.0

    def add(self, other: "ShardStats") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


class ShardWriter:
    """Output lines to ``final``, atomically: written to a hidden temporary file beside it, flushed to disk,
    and renamed to ``final`` by :meth:`commit` (with the shard's counts saved under ``.ecpe/``).
    Gzip output (``.gz`` names) is written with a zero timestamp, so the same input gives the same bytes."""

    def __init__(self, final: Path, state: Path | None = None):
        self.final, self.state = final, state
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
        self._raw = open(self.tmp, "wb")
        self._out: IO[bytes] = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0) \
            if final.name.endswith(".gz") else self._raw

    def write(self, line: str) -> None:
        self._out.write(line.encode("utf-8") + b"\n")

    def commit(self, stats: ShardStats) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        if self.state is not None:  # counts first: a shard whose rename is lost is simply redone
            self.state.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state.parent / f".{self.state.name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(asdict(stats)), encoding="utf-8")
            os.replace(tmp, self.state)
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        try:
            self._out.close()
            self._raw.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class Sink:
    """Applies the ``on_error`` policy to the outputs of one shard and counts them."""

    def __init__(self, write: Callable[[str], None], on_error: str, source: str):
        self.write, self.on_error, self.source = write, on_error, source
        self.stats = ShardStats()

    def add(self, out: Output) -> None:
        self.stats.lines += 1
        if out.error is None:
            self.stats.documents += 1
            self.stats.pairs += out.pairs
            self.write(out.json)
            return
        self.stats.errors += 1
        where = f"{self.source}:{out.line}"
        if self.on_error == "fail":
            raise BatchFailure(f"{where}: {out.error}")
        if self.on_error == "record":
            self.write(out.json)
        else:
            _note(f"skipped {where}: {out.error}")


def _note(msg: str) -> None:

    tqdm.write(f"ecpe predict: {msg}", file=sys.stderr)


# ---- a job ------------------------------------------------------------------------------------------
class Meter:
    """When the first lines came out (start-up: model load, for Ray the cluster and the actors) and the rate
    after them, so that a job's summary tells its fixed cost from its throughput."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: float | None = None   # seconds from the start to the first lines written
        self.first_lines = 0
        self.lines = 0
        self.last = self.start

    def update(self, n: int) -> None:
        self.lines += n
        self.last = time.perf_counter()
        if self.first is None:
            self.first, self.first_lines = self.last - self.start, n

    def steady(self) -> float | None:
        """Lines per second after the first output."""
        if self.first is None or self.lines <= self.first_lines:
            return None
        return (self.lines - self.first_lines) / max(self.last - self.start - self.first, 1e-9)


@dataclass
class JobStats:
    shards: int = 0
    skipped: int = 0          # already finished by an earlier run
    total: ShardStats = field(default_factory=ShardStats)   # every shard, this run's and earlier ones
    now: ShardStats = field(default_factory=ShardStats)     # the shards done by this run
    seconds: float = 0.0
    startup_seconds: float | None = None   # to the first lines written (model load, Ray start-up)
    steady_lines_per_s: float | None = None   # after them
    engine: str = "local"

    def summary(self) -> str:
        t = self.total
        rate = ""
        if self.startup_seconds is not None and self.steady_lines_per_s:
            rate = f": first lines after {self.startup_seconds:.1f} s, then {self.steady_lines_per_s:.0f} lines/s"
        return (f"{t.documents} documents, {t.pairs} pairs, {t.errors} errors in {self.shards} shard(s) "
                f"({self.shards - self.skipped} run now in {self.seconds:.1f} s{rate}; "
                f"{self.skipped} already finished)")


@dataclass
class Job:
    """A directory job: what to read, where to write, what is left to do."""

    input: Path
    output: Path
    shards: list[str]
    todo: list[str]

    @classmethod
    def plan(cls, input: str | Path, output: str | Path) -> "Job":
        src, dst = Path(input).resolve(), Path(output).resolve()
        if not src.is_dir():
            raise BatchFailure(f"--input {input} is not a directory")
        if dst == src or src in dst.parents:
            raise BatchFailure("--output must not be the input directory or inside it (its shards would be read "
                               "as input on the next run)")
        if dst.exists() and not dst.is_dir():
            raise BatchFailure(f"--output {output} must be a directory when --input is one")
        shards = find_shards(src)
        if not shards:
            raise BatchFailure(f"no input shards (*.jsonl, *.jsonl.gz) under {input}")
        dst.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(dst)
        todo = [s for s in shards if not (dst / s).exists()]
        return cls(src, dst, shards, todo)

    def writer(self, shard: str) -> ShardWriter:
        return ShardWriter(self.output / shard, self.state_file(shard))

    def state_file(self, shard: str) -> Path:
        return self.output / STATE_DIR / "shards" / f"{shard}.json"

    def finished_stats(self) -> ShardStats:
        """The counts of every finished shard, as saved when each was committed."""
        total = ShardStats()
        for s in self.shards:
            f = self.state_file(s)
            if (self.output / s).exists() and f.exists():
                total.add(ShardStats(**json.loads(f.read_text(encoding="utf-8"))))
        return total


def _remove_stale_temporaries(root: Path) -> None:
    """Temporary shards left by a killed job (``.NAME.PID.tmp`` of a process that no longer runs)."""
    for tmp in root.rglob(".*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
            if pid == os.getpid():
                raise ProcessLookupError
        except (ValueError, IndexError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's running process


def _bars(job: Job, quiet: bool, meter: Meter | None):

    class Lines(tqdm):
        def update(self, n=1):
            if meter is not None:
                meter.update(n)
            return super().update(n)

    shards = tqdm(total=len(job.shards), initial=len(job.shards) - len(job.todo), desc="shards", unit="shard",
                  disable=quiet, position=0)
    lines = Lines(desc="lines", unit="line", disable=quiet, position=1)
    return shards, lines


def run_local(extractor, job: Job, on_error: str = "record", threshold: float | None = None, matrix: bool = False,
              limits: Limits | None = None, quiet: bool = False, group: int = GROUP,
              meter: Meter | None = None) -> ShardStats:
    """Run the unfinished shards of ``job`` in this process, one after the other; returns this run's counts."""
    limits = limits or Limits(max_clauses=extractor.max_clauses)
    shard_bar, doc_bar = _bars(job, quiet, meter)
    now = ShardStats()
    try:
        for shard in job.todo:
            start = time.perf_counter()
            writer = job.writer(shard)
            sink = Sink(writer.write, on_error, str(job.input / shard))
            try:
                for lines in grouped(read_shard(job.input / shard), group):
                    for out in extract_lines(extractor, lines, limits, threshold, matrix):
                        sink.add(out)
                    doc_bar.update(len(lines))
                sink.stats.seconds = time.perf_counter() - start
                writer.commit(sink.stats)
            except BaseException:
                writer.abort()
                raise
            now.add(sink.stats)
            shard_bar.update(1)
    finally:
        shard_bar.close()
        doc_bar.close()
    return now


def _stream_lines(src: IO[bytes]) -> Iterator[tuple[int, bytes | Unreadable]]:
    """The numbered lines of a stream, ended by an :class:`Unreadable` when it cannot be read to its end."""
    last = 0
    try:
        for last, raw in numbered_lines(src):
            yield last, raw
    except (OSError, EOFError, zlib.error) as e:
        yield last + 1, Unreadable(_read_fault(e, last).replace("shard", "input", 1))


def run_stream(extractor, src: IO[bytes], out: IO[str], source: str, on_error: str = "record",
               threshold: float | None = None, matrix: bool = False, limits: Limits | None = None,
               quiet: bool = False, group: int = GROUP) -> ShardStats:
    """One JSONL stream (a file, or standard input) to another, written as it goes (not atomic, not
    resumable: use directories for that)."""

    limits = limits or Limits(max_clauses=extractor.max_clauses)
    sink = Sink(lambda s: out.write(s + "\n"), on_error, source)
    start = time.perf_counter()
    with tqdm(desc="documents", unit="doc", disable=quiet) as bar:
        for lines in grouped(_stream_lines(src), group):
            outs = extract_lines(extractor, lines, limits, threshold, matrix)
            try:
                for o in outs:
                    sink.add(o)
            finally:
                out.flush()  # under 'fail', the lines before the bad one are kept
            bar.update(len(lines))
    sink.stats.seconds = time.perf_counter() - start
    return sink.stats


# ---- Ray ------------------------------------------------------------------------------------------------
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


def run_ray(model: Sequence[str | Path], job: Job, on_error: str = "record", threshold: float | None = None,
            matrix: bool = False, limits: Limits = LOCAL_LIMITS, device: str = "cpu", segmenter: str | None = None,
            address: str | None = None, actors: int | None = None, num_gpus_per_actor: float = 0.0,
            cpus_per_actor: float = 1.0, quiet: bool = False, group: int = GROUP,
            meter: Meter | None = None, precision: str = "fp32", batch_size: int = 64) -> ShardStats:
    """Run the unfinished shards of ``job`` with Ray Data: read (tasks) -> ``map_batches`` over a pool of
    ``actors`` model actors (CPU, or ``num_gpus_per_actor`` GPUs each) -> this process writes each output shard,
    in input order, with the same :class:`ShardWriter` as :func:`run_local`. Joins the cluster at ``address``
    (default as ``ray.init``: ``$RAY_ADDRESS``, as under ``ray job submit``, else a cluster started on this
    machine by ``ray start``, else a new local one), or uses the Ray the caller has initialised. Input shards
    must be readable on every node (a shared file system); the output is written where this process runs.
    Returns this run's counts."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True, log_to_driver=True)
        started = True
    try:
        return _run_ray(ray, model, job, on_error, threshold, matrix, limits, device, segmenter, actors,
                        num_gpus_per_actor, cpus_per_actor, quiet, group, meter, precision, batch_size)
    finally:
        if started:
            ray.shutdown()


def _run_ray(ray, model, job, on_error, threshold, matrix, limits, device, segmenter, actors, num_gpus_per_actor,
             cpus_per_actor, quiet, group, meter, precision, batch_size) -> ShardStats:
    import ray.data

    if not job.todo:
        return ShardStats()
    resources = ray.cluster_resources()
    if actors is None:  # as many as the cluster holds
        actors = int(resources.get("GPU", 0) // num_gpus_per_actor) if num_gpus_per_actor > 0 \
            else int(resources.get("CPU", 1) // cpus_per_actor)
        actors = max(1, actors)
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no execution plans on stderr unless -v
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # output shards are written in input order
    ctx.enable_progress_bars = False               # ours count shards and documents
    if num_gpus_per_actor > 0 and device == "cpu":
        device = "cuda"                            # Ray sets CUDA_VISIBLE_DEVICES for each actor
    # the checkpoints go to the object store once; a list of refs is passed as is, and each actor fetches them
    checkpoints = [ray.put(Path(p).read_bytes()) for p in model]
    shards = ray.data.from_items([{"shard": i, "path": str(job.input / s)} for i, s in enumerate(job.todo)],
                                 override_num_blocks=len(job.todo))
    # reading is light: num_cpus=0 keeps it from waiting for a CPU that the actors hold, and a few reader tasks
    # at a time are enough (unbounded, Ray starts a worker process per shard, each importing torch with ecpe)
    readers = max(1, min(len(job.todo), actors // 8 + 1))
    lines = shards.map_batches(_read_shard_rows, fn_kwargs={"group": group}, batch_size=1, num_cpus=0,
                               concurrency=readers)
    outputs = lines.map_batches(
        RayExtractActor, batch_size=group, compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs=dict(checkpoints=checkpoints, device=device, segmenter=segmenter,
                                   max_clauses=limits.max_clauses, max_chars=limits.max_chars, threshold=threshold,
                                   matrix=matrix, threads=max(1, int(cpus_per_actor)), precision=precision,
                                   batch_size=batch_size),
        num_cpus=cpus_per_actor, num_gpus=num_gpus_per_actor or None)

    shard_bar, doc_bar = _bars(job, quiet, meter)
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
                    current = (index, writer, Sink(writer.write, on_error, str(job.input / job.todo[index])),
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


# ---- the command ------------------------------------------------------------------------------------
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
                   help="directory jobs: local (this process, default) or ray (Ray Data on a cluster; "
                        "needs the ecpe[ray] extra)")
    g.add_argument("--address", help="--engine ray: the cluster to join (HEAD:6379, or auto); default: "
                                     "$RAY_ADDRESS, else one started on this machine by `ray start`, else a new "
                                     "local Ray for the job ('local': always a new one)")
    g.add_argument("--actors", type=int, help="--engine ray: model actors (default: as many as the cluster's "
                                              "CPUs, or GPUs / --num-gpus-per-actor)")
    g.add_argument("--num-gpus-per-actor", type=float, default=0.0, metavar="G",
                   help="--engine ray: GPUs per actor (e.g. 1, or 0.5 to share one); 0 (default) = CPU actors")
    g.add_argument("--cpus-per-actor", type=float, default=1.0,
                   help="--engine ray: CPUs per actor, also its torch threads (default 1)")
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
        finished = sum((self.job.output / s).exists() for s in self.job.shards)
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
    is_dir = args.input != "-" and Path(args.input).is_dir()
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
        if args.actors is not None and args.actors < 1:
            raise BatchFailure("--actors must be 1 or more")
        if args.num_gpus_per_actor < 0 or args.cpus_per_actor <= 0:
            raise BatchFailure("--num-gpus-per-actor must be 0 or more, --cpus-per-actor more than 0")
    job = Job.plan(args.input, args.output)
    progress.job = job
    stats = JobStats(shards=len(job.shards), skipped=len(job.shards) - len(job.todo), engine=args.engine)
    meter = Meter()
    if args.engine == "ray":
        stats.now = run_ray(args.model, job, args.on_error, args.threshold, args.matrix, limits, args.device,
                            args.segmenter, args.address, args.actors, args.num_gpus_per_actor,
                            args.cpus_per_actor, quiet=args.quiet, meter=meter,
                            precision=getattr(args, "precision", "fp32"), batch_size=getattr(args, "batch_size", 64))
    else:
        stats.now = run_local(_local_extractor(args, limits), job, args.on_error, args.threshold, args.matrix,
                              limits, quiet=args.quiet, meter=meter)
    stats.seconds = time.perf_counter() - meter.start
    stats.startup_seconds = None if meter.first is None else round(meter.first, 3)
    steady = meter.steady()
    stats.steady_lines_per_s = None if steady is None else round(steady, 1)
    stats.total = job.finished_stats()
    (job.output / STATE_DIR).mkdir(exist_ok=True)
    (job.output / STATE_DIR / "summary.json").write_text(
        json.dumps({**asdict(stats), "input": str(job.input), "on_error": args.on_error}, indent=1), encoding="utf-8")
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


def _predict_file(args, limits: Limits, progress: Progress) -> int:
    ex = _local_extractor(args, limits)
    src = sys.stdin.buffer if args.input == "-" else open_binary(args.input)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
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
