"""Where shards live: a local path, or any URL that fsspec opens (``file://``, ``memory://``, ``s3://``,
``gs://``, ``abfs://``, ``hdfs://``, ...; each store's own package, e.g. s3fs, provides its protocol).

:class:`Location` is the few path operations that a job needs (join, exists, list, open, atomic replace),
on one file system. Local paths take the operating system's own calls (``open``, ``os.replace`` after
``fsync``), so a local job behaves as it always has; other file systems go through fsspec. On a store without
an atomic rename (S3, GCS, Azure), :meth:`Location.replace` is fsspec's ``mv``: a server-side copy of the
finished temporary object to its final key, then the temporary's deletion. A reader never sees a partial final
object there either (an object is written whole or not at all), so "an output shard that exists is a finished
one" holds on every file system; a job killed between the copy and the deletion leaves only the temporary
object, which the next run removes.
"""
from __future__ import annotations

import os
import posixpath
import re
import socket
from pathlib import Path
from typing import IO, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .lines import BatchFailure

__all__ = ["Location", "temporary_name", "parse_temporary", "this_host"]

_LOCAL = LocalFileSystem()


class Location:
    """A file or folder on one file system: ``fs`` (an fsspec file system) and ``path`` (its own form: for a
    local one, an absolute path). Picklable, so a Ray worker receives it as the driver planned it."""

    __slots__ = ("fs", "path")

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str):
        self.fs, self.path = fs, path

    @classmethod
    def of(cls, where: "str | Path | Location", flag: str = "--input") -> "Location":
        """A local path (made absolute, links resolved) or a URL; ``flag`` names the option in errors (a
        protocol that is not known, or whose package is not installed, is a usage error)."""
        if isinstance(where, Location):
            return where
        text = str(where)
        if isinstance(where, Path) or "://" not in text and "::" not in text:
            return cls(_LOCAL, str(Path(text).resolve()))
        try:
            fs, path = fsspec.core.url_to_fs(text)
        except ImportError as e:  # fsspec's message names the package to install, e.g. "Install s3fs to access S3"
            raise BatchFailure(f"{flag} {text}: this file system needs a package that is not installed ({e})") \
                from None
        except ValueError as e:
            raise BatchFailure(f"{flag} {text}: {e}") from None
        if isinstance(fs, LocalFileSystem):
            return cls(_LOCAL, str(Path(path).resolve()))
        return cls(fs, path.rstrip("/") or path)

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def parent(self) -> "Location":
        return Location(self.fs, posixpath.dirname(self.path.rstrip("/")))

    def __truediv__(self, rel: str) -> "Location":
        return Location(self.fs, posixpath.join(self.path, str(rel)))

    def __str__(self) -> str:
        return self.path if self.local else self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Location) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def inside(self, other: "Location") -> bool:
        """Whether this is ``other`` or below it (on the same file system)."""
        if type(self.fs) is not type(other.fs):
            return False
        mine, theirs = self.path.rstrip("/"), other.path.rstrip("/")
        return mine == theirs or mine.startswith(theirs + "/")

    def exists(self) -> bool:
        return os.path.exists(self.path) if self.local else self.fs.exists(self.path)

    def is_dir(self) -> bool:
        return os.path.isdir(self.path) if self.local else self.fs.isdir(self.path)

    def mkdir(self) -> None:
        """This folder and its parents (nothing to do on object stores, which have no folders)."""
        if self.local:
            os.makedirs(self.path, exist_ok=True)
        else:
            self.fs.makedirs(self.path, exist_ok=True)

    def files(self) -> Iterator[str]:
        """Every file below this folder, as a relative posix path (hidden ones included)."""
        if self.local:
            for dirpath, _, names in os.walk(self.path):
                for n in names:
                    full = os.path.join(dirpath, n)
                    if os.path.isfile(full):
                        yield os.path.relpath(full, self.path).replace(os.sep, "/")
            return
        root = self.path.rstrip("/") + "/"
        for p in self.fs.find(self.path):
            if p.startswith(root):
                yield p[len(root):]
            elif p.startswith(root.lstrip("/")):  # file systems that drop the leading slash
                yield p[len(root.lstrip("/")):]

    def open(self, mode: str = "rb") -> IO:
        if self.local:
            return open(self.path, mode)
        return self.fs.open(self.path, mode)

    def unlink(self) -> None:
        """Remove this file; nothing when it is not there."""
        try:
            if self.local:
                os.unlink(self.path)
            else:
                self.fs.rm_file(self.path)
        except FileNotFoundError:
            pass

    def replace(self, target: "Location") -> None:
        """Rename this file to ``target``, replacing it: ``os.replace`` (atomic) locally, fsspec's ``mv`` (a
        copy, then a delete, on object stores) elsewhere."""
        if self.local:
            os.replace(self.path, target.path)
        else:
            self.fs.mv(self.path, target.path)

    def read_text(self) -> str:
        with self.open("rb") as f:
            return f.read().decode("utf-8")


def this_host() -> str:
    """The host name as it goes into a temporary name (letters and digits only)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


def temporary_name(final: str) -> str:
    """The hidden temporary name of a file being written, ``.NAME.HOST-PID.tmp``: unique to the writing
    process, and telling which process wrote it, so that a later run knows whether it is left over."""
    return f".{final}.{this_host()}-{os.getpid()}.tmp"


def parse_temporary(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a temporary name (host ``""`` for the older ``.NAME.PID.tmp``), None for any other
    name."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    token = name[:-len(".tmp")].rsplit(".", 1)[-1]
    host, _, pid = token.rpartition("-")
    return (host, int(pid)) if pid.isdigit() else None
