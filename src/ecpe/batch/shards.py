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

from .files import Location, parse_temporary, temporary_name, this_host
from .lines import BatchFailure, Output, Unreadable, _read_fault, numbered_lines

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz")
STATE_DIR = ".ecpe"       # inside the output directory: per-shard counts and the job summary


class _GzipReader(gzip.GzipFile):
    """Gzip over a file this object owns: closing it closes the file too."""

    def __init__(self, raw: IO[bytes]):
        super().__init__(filename="", mode="rb", fileobj=raw)
        self._owned = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


def open_binary(where: str | Path | Location) -> IO[bytes]:
    """A shard (a local path, a URL or a :class:`Location`) for reading, decompressed when its name ends in .gz."""
    loc = Location.of(where)
    if loc.local:
        return gzip.open(loc.path, "rb") if loc.name.endswith(".gz") else open(loc.path, "rb")
    raw = loc.open("rb")
    return _GzipReader(raw) if loc.name.endswith(".gz") else raw


def read_shard(where: str | Path | Location) -> Iterator[tuple[int, bytes | Unreadable]]:
    """The numbered lines of a shard; when it cannot be opened or read to its end, one last
    ``(next line number, Unreadable(reason))``, so that the lines before the fault are kept."""
    last = 0
    try:
        with open_binary(where) as f:
            for last, raw in numbered_lines(f):
                yield last, raw
    except (OSError, EOFError, zlib.error) as e:
        yield last + 1, Unreadable(_read_fault(e, last))


def find_shards(root: str | Path | Location) -> list[str]:
    """The input shards under ``root`` (recursively; ``*.jsonl`` and ``*.jsonl.gz``, hidden names left out),
    as sorted paths relative to it; each output shard has the same relative path under the output folder."""
    return sorted(rel for rel in Location.of(root).files()
                  if rel.endswith(SHARD_SUFFIXES) and not any(part.startswith(".") for part in rel.split("/")))


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
    """Output lines to ``final``, atomically: written to a hidden temporary file beside it (its name says which
    process on which host writes it), flushed to disk, and renamed to ``final`` by :meth:`commit` (with the
    shard's counts saved under ``.ecpe/`` first). Gzip output (``.gz`` names) is written with a zero timestamp,
    so the same input gives the same bytes. ``final`` is a local path, a URL or a :class:`Location`."""

    def __init__(self, final: str | Path | Location, state: str | Path | Location | None = None):
        self.final = Location.of(final, "--output")
        self.state = None if state is None else Location.of(state, "--output")
        self.final.parent.mkdir()
        self.tmp = self.final.parent / temporary_name(self.final.name)
        self._raw = self.tmp.open("wb")
        self._out: IO[bytes] = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0) \
            if self.final.name.endswith(".gz") else self._raw

    def write(self, line: str) -> None:
        self._out.write(line.encode("utf-8") + b"\n")

    def commit(self, stats: ShardStats) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.flush()
        if self.final.local:
            os.fsync(self._raw.fileno())
        self._raw.close()
        if self.state is not None:  # counts first: a shard whose rename is lost is simply redone
            write_atomic(self.state, json.dumps(asdict(stats)))
        self.tmp.replace(self.final)

    def abort(self) -> None:
        try:
            self._out.close()
            self._raw.close()
        finally:
            self.tmp.unlink()


def write_atomic(where: Location, text: str) -> None:
    """A small file written whole or not at all (a temporary beside it, then renamed)."""
    where.parent.mkdir()
    tmp = where.parent / temporary_name(where.name)
    with tmp.open("wb") as f:
        f.write(text.encode("utf-8"))
    tmp.replace(where)


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
    """When the first lines came out (start-up: model load; for Ray the cluster, the workers and their first shards) and the rate
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
    """A directory job: what to read, where to write, what is left to do. ``input`` and ``output`` are
    :class:`Location` s: local folders or any file system fsspec opens."""

    input: Location
    output: Location
    shards: list[str]
    todo: list[str]

    @classmethod
    def plan(cls, input: str | Path | Location, output: str | Path | Location) -> "Job":
        src, dst = Location.of(input, "--input"), Location.of(output, "--output")
        if not src.is_dir():
            raise BatchFailure(f"--input {input} is not a directory")
        if dst.inside(src):
            raise BatchFailure("--output must not be the input directory or inside it (its shards would be read "
                               "as input on the next run)")
        if dst.exists() and not dst.is_dir():
            raise BatchFailure(f"--output {output} must be a directory when --input is one")
        shards = find_shards(src)
        if not shards:
            raise BatchFailure(f"no input shards (*.jsonl, *.jsonl.gz) under {input}")
        dst.mkdir()
        remove_stale_temporaries(dst)
        done = set(dst.files())
        return cls(src, dst, shards, [s for s in shards if s not in done])

    def writer(self, shard: str) -> ShardWriter:
        return ShardWriter(self.output / shard, self.state_file(shard))

    def state_file(self, shard: str) -> Location:
        return self.output / STATE_DIR / "shards" / f"{shard}.json"

    def finished(self) -> list[str]:
        """The shards whose output exists."""
        done = set(self.output.files())
        return [s for s in self.shards if s in done]

    def finished_stats(self) -> ShardStats:
        """The counts of every finished shard, as saved when each was committed."""
        total = ShardStats()
        done = set(self.output.files())
        for s in self.shards:
            state = f"{STATE_DIR}/shards/{s}.json"
            if s in done and state in done:
                total.add(ShardStats(**json.loads(self.state_file(s).read_text())))
        return total


def remove_stale_temporaries(root: Location) -> None:
    """Temporary files left under ``root`` by killed writers: those of a process of this host that no longer
    runs, and those written on other hosts (Ray workers of an earlier run: one job at a time writes to an
    output folder, and this is called before its workers start and after they have all ended)."""
    here = this_host()
    for rel in list(root.files()):
        tmp = parse_temporary(rel.rsplit("/", 1)[-1])
        if tmp is None:
            continue
        host, pid = tmp
        if host in ("", here):
            try:
                os.kill(pid, 0)
                if pid != os.getpid():
                    continue  # a running process's
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # another user's running process
        (root / rel).unlink()


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
