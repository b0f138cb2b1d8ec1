"""Fetch the NEWS benchmark (Xia & Ding, 2019) from its public source into the user cache.

The files come from the authors' repository, https://github.com/NUSTM/ECPE, folder ``data_combine/``:
``all_data_pair.txt`` and the 10-fold split ``fold1_train.txt`` ... ``fold10_test.txt``. They are laid out as::

    <cache>/ecpe-zh/all_data_pair.txt
    <cache>/ecpe-zh/split10/foldK_train.txt, foldK_test.txt      (K = 1..10)

which is the layout of ``../shared/data/ecpe-zh`` and what ``--data`` expects.
"""
from __future__ import annotations

import http.client
import logging
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ECPEError
from ..cache import cache_dir
from .corpus import DataFormatError, read_documents

__all__ = ["ensure_dataset", "dataset_files", "DownloadError", "DEFAULT_BASE_URL", "DATASET_NAME"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/NUSTM/ECPE/master/data_combine/"
DATASET_NAME = "ecpe-zh"
N_FOLDS = 10


class DownloadError(ECPEError, FileNotFoundError):
    """The dataset is not in the cache and could not be downloaded.

    A :class:`FileNotFoundError` (the data is missing) so that code handling missing data, the ``ecpe`` command
    included, reports it as one line.
    """


def dataset_files() -> list[tuple[str, str]]:
    """``(remote file name, path inside the dataset folder)`` for every file of the dataset."""
    files = [("all_data_pair.txt", "all_data_pair.txt")]
    for k in range(1, N_FOLDS + 1):
        for part in ("train", "test"):
            name = f"fold{k}_{part}.txt"
            files.append((name, f"split10/{name}"))
    return files


def _retryable(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code == 429 or err.code >= 500  # 4xx (404, 403...) will not change on a retry
    return isinstance(err, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                            http.client.HTTPException, OSError))


def _fetch(url: str, dest: Path, progress: bool, timeout: float) -> None:
    """Download ``url`` into ``dest`` through a temporary file in the same folder; check it parses; rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "ecpe-dataset-download"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            got = 0
            with tqdm(total=total, desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                      disable=not progress) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        if total is not None and got != total:
            raise http.client.IncompleteRead(b"", total - got)
        try:
            docs = read_documents(tmp)
        except DataFormatError as e:
            raise DownloadError(f"{url} did not give a dataset file in the NUSTM format ({e})") from None
        if not docs:
            raise DownloadError(f"{url} gave a file without any document")
        os.replace(tmp, dest)  # atomic: dest is either absent or complete and verified
    finally:
        tmp.unlink(missing_ok=True)


def ensure_dataset(cache: str | Path | None = None, base_url: str | None = None, progress: bool = True,
                   retries: int = 3, timeout: float = 60.0) -> Path:
    """Return the folder of the NEWS benchmark, downloading the files it lacks.

    The folder is ``<cache>/ecpe-zh``; ``cache`` defaults to :func:`ecpe.cache.cache_dir` (``$ECPE_CACHE`` or
    ``~/.cache/ecpe``). Missing files are downloaded from ``base_url``, else ``$ECPE_DATA_URL``, else
    :data:`DEFAULT_BASE_URL` (the ``data_combine/`` folder of the NUSTM/ECPE GitHub repository; the URL is the folder,
    file names are appended to it). Each file is written to a temporary file, checked to parse as NUSTM documents,
    and only then renamed into place, so an interrupted or failed download leaves no partial file. Network errors
    and server errors (5xx) are retried ``retries`` times in all, with a short pause; a 4xx answer is not retried.

    Only ``all_data_pair.txt`` and ``split10/`` (the paper's 10-fold protocol, no dev files) are fetched: the
    ``split20`` folder (20 random 8:1:1 splits with valid files) is **not** in the NUSTM/ECPE repository, so for
    ``--split split20`` give a copy that has it with ``--data`` or ``$ECPE_DATA``.

    Raises :class:`DownloadError` (a :class:`FileNotFoundError`) naming the URL when a file cannot be obtained.
    """
    if cache is None:
        cache = cache_dir()
    root = Path(cache) / DATASET_NAME
    base = base_url or os.environ.get("ECPE_DATA_URL") or DEFAULT_BASE_URL
    if not base.endswith("/"):
        base += "/"
    missing = [(name, root / rel) for name, rel in dataset_files() if not (root / rel).is_file()]
    if not missing:
        return root
    log.info("downloading %d dataset file(s) from %s into %s", len(missing), base, root)
    if progress:
        print(f"downloading the NEWS benchmark ({len(missing)} files) from {base} into {root}", file=sys.stderr)
    for name, dest in missing:
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = base + name
        attempts = max(1, retries)
        for attempt in range(1, attempts + 1):
            try:
                _fetch(url, dest, progress, timeout)
                break
            except DownloadError as e:
                raise DownloadError(f"{e}. Pass --data DIR or set $ECPE_DATA to a copy of the dataset "
                                    f"(a folder with all_data_pair.txt and split10/).") from None
            except Exception as e:  # noqa: BLE001 - network errors come in many classes
                if attempt < attempts and _retryable(e):
                    log.warning("download of %s failed (%s); retrying (%d/%d)", url, e, attempt, attempts - 1)
                    time.sleep(min(2.0 * attempt, 10.0))
                    continue
                reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else f"{type(e).__name__}: {e}"
                raise DownloadError(f"could not download the dataset file {url} ({reason}; {attempt} attempt(s)). "
                                    f"Pass --data DIR or set $ECPE_DATA to a copy of the dataset (a folder with "
                                    f"all_data_pair.txt and split10/), or $ECPE_DATA_URL to another source.") from None
    return root
