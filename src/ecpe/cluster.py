"""Functions run as Ray tasks, gathered as they finish: the one place that starts or joins a Ray cluster for the
commands with ``--engine ray`` that train (``ecpe train``, ``sweep``, ``reproduce``) or build (``ecpe vectors
build``). (``ecpe predict --engine ray`` keeps its workers' models loaded between shards: :mod:`ecpe.batch`.)"""
from __future__ import annotations

import logging
from typing import Any, Callable, Hashable, Sequence

from tqdm.auto import tqdm

from .errors import MissingExtra

__all__ = ["Task", "run_on_ray"]

MAX_RETRIES = 3  # a task whose worker or node dies is run again, from its start, up to this many times

Task = tuple[Hashable, tuple, dict[str, Any]]  # (key, positional arguments, Ray resources: num_cpus, num_gpus)


def run_on_ray(fn: Callable, tasks: Sequence[Task], finished: Callable[[Hashable, Any], None],
               failed: Callable[[Hashable, BaseException], None], address: str | None = None,
               progress: bool = True, desc: str = "tasks") -> None:
    """Run ``fn(*args)`` for every task as a Ray task declaring its resources; call ``finished(key, result)`` or,
    when the function raised, ``failed(key, error)`` as each ends. Joins the cluster at ``address`` (as
    ``ray.init`` takes it: $RAY_ADDRESS, a cluster started here by ``ray start``, else a new local one), or uses
    the Ray the caller has initialised."""
    try:
        import ray
    except ImportError as e:
        raise MissingExtra(f"--engine ray needs Ray, which is not installed ({e}): pip install 'ecpe[ray]'") from None
    own = not ray.is_initialized()
    if own:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        remote = ray.remote(fn)
        refs = {remote.options(max_retries=MAX_RETRIES, **resources).remote(*args): key
                for key, args, resources in tasks}
        pending = list(refs)
        with tqdm(total=len(pending), desc=desc, disable=not progress) as bar:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    result = ray.get(ready[0])
                except Exception as e:  # the function raised (RayTaskError wraps it): reported, the others go on
                    failed(refs[ready[0]], getattr(e, "cause", None) or e)
                else:
                    finished(refs[ready[0]], result)
                bar.update(1)
    finally:
        if own:
            ray.shutdown()
