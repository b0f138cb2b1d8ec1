"""Corpus-scale extraction: ``ecpe predict --input FILE|DIR``, with error isolation, resumable shards and Ray.

Three layers, each usable on its own:

* one **line** -> one output record (:func:`extract_lines`, ``lines.py``): a line is parsed and checked here
  (JSON, the types :class:`~ecpe.inference.Extractor` takes, the size limits), so a bad line becomes an error
  record ``{"line": N, "id": ..., "error": "..."}`` instead of stopping the job; good lines go to
  ``Extractor.extract_many`` in groups;
* one **shard** (a JSONL file, optionally ``.gz``) -> one output shard of the same name, written to a temporary
  file and renamed when complete (:class:`ShardWriter`, ``shards.py``), so an output shard that exists is a
  finished one;
* one **job** (a directory of shards, planned by :class:`Job`) -> a directory of output shards: finished shards
  are skipped, so a job killed half-way and run again ends with every document exactly once. The shards run in
  this process (:func:`run_local`, ``local.py``) or on a Ray cluster (:func:`run_ray`, ``ray_engine.py``: one
  task per shard, which writes it); both run each shard with :func:`run_shard`.

Inputs and outputs are local paths or URLs of any file system fsspec opens (``files.py``). ``command.py`` is
``ecpe predict --input``: its options and its exit status.

What a bad line does is the ``on_error`` policy: ``record`` (default; the error record takes the line's place
in the output, so output line k is still input line k), ``skip`` (left out, reported on stderr) or ``fail``
(the job stops at the first bad line; in a directory job, the shard being written is discarded).
Exit status of the command: 0 when every line was extracted, 1 when some lines failed (``record``/``skip``),
2 when the job stopped (``fail``, or a usage error), 3 when it crashed (the output could not be written: a full
disk, a read-only folder; or an unexpected error), with one line on stderr that says how far it got.
"""
from __future__ import annotations

from .command import add_arguments, predict_command
from .lines import (EXIT_CRASHED, EXIT_ERRORS, EXIT_OK, EXIT_STOPPED, BatchFailure, Limits, Output, extract_lines,
                    parse_line)
from .files import Location
from .local import run_local, run_shard, run_stream
from .ray_engine import RayOptions, run_ray
from .shards import SHARD_SUFFIXES, STATE_DIR, Job, JobStats, ShardStats, ShardWriter, find_shards

__all__ = ["Limits", "Output", "ShardStats", "JobStats", "BatchFailure", "Job", "parse_line", "extract_lines",
           "find_shards", "ShardWriter", "Location", "run_shard", "run_local", "run_stream", "run_ray", "RayOptions", "add_arguments",
           "predict_command", "EXIT_OK", "EXIT_ERRORS", "EXIT_STOPPED", "EXIT_CRASHED", "SHARD_SUFFIXES",
           "STATE_DIR"]
