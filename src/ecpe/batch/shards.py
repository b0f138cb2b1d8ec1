"""Shards: reading one (plain or gzip), finding those of a directory, writing one atomically (a temporary name,
then a rename), the ``on_error`` policy and counts of one, and a job's plan (what is left to do, for resuming)."""
from __future__ import annotations

import gzip
import json
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

from tqdm.auto import tqdm

from .lines import BatchFailure, Output, Unreadable, _read_fault, numbered_lines

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz")
STATE_DIR = ".ecpe"       # inside the output directory: per-shard counts and the job summary


def open_binary(path: str | Path) -> IO[bytes]:
    """A shard for reading, decompressed when its name ends in .gz."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


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
