"""The local engine: the shards of a job one after the other in this process, and a single stream (a file,
standard input) to another."""
from __future__ import annotations

import time
import zlib
from typing import IO, Callable, Iterator

from tqdm.auto import tqdm

from .lines import GROUP, Limits, Unreadable, _read_fault, extract_lines, grouped, numbered_lines
from .shards import Job, Meter, ShardStats, Sink, _bars, read_shard


def run_shard(extractor, job: Job, shard: str, on_error: str = "record", threshold: float | None = None,
              matrix: bool = False, limits: Limits | None = None, group: int = GROUP,
              progress: Callable[[int], None] | None = None) -> ShardStats:
    """One input shard of ``job`` -> its output shard, written to a temporary name and renamed when complete
    (discarded on any error); returns its counts. Both engines run a shard with this (Ray in its workers)."""
    limits = limits or Limits(max_clauses=extractor.max_clauses)
    start = time.perf_counter()
    writer = job.writer(shard)
    sink = Sink(writer.write, on_error, str(job.input / shard))
    try:
        for lines in grouped(read_shard(job.input / shard), group):
            for out in extract_lines(extractor, lines, limits, threshold, matrix):
                sink.add(out)
            if progress is not None:
                progress(len(lines))
        sink.stats.seconds = time.perf_counter() - start
        writer.commit(sink.stats)
    except BaseException:
        writer.abort()
        raise
    return sink.stats


def run_local(extractor, job: Job, on_error: str = "record", threshold: float | None = None, matrix: bool = False,
              limits: Limits | None = None, quiet: bool = False, group: int = GROUP,
              meter: Meter | None = None) -> ShardStats:
    """Run the unfinished shards of ``job`` in this process, one after the other; returns this run's counts."""
    shard_bar, doc_bar = _bars(job, quiet, meter)
    now = ShardStats()
    try:
        for shard in job.todo:
            now.add(run_shard(extractor, job, shard, on_error, threshold, matrix, limits, group, doc_bar.update))
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
