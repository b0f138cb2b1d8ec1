"""How much one request may hold and how concurrent requests are batched (plain data; no web framework imported).

What one *document* may hold is :class:`ecpe.inference.Limits`, the one input contract of the package (the
server's instance, :data:`~ecpe.inference.SERVER_LIMITS`, is stricter than a local job's; its docstring says why).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import UsageError
from ..inference.inputs import SERVER_LIMITS, Limits

__all__ = ["ServerSettings", "DEFAULTS"]

_DOCUMENT_FIELDS = ("max_clauses", "max_chars")


@dataclass(frozen=True)
class ServerSettings:
    """What one request may hold, and how concurrent requests are batched; checked when made (ValueError
    naming the field as its flag, e.g. ``read-timeout-s``).

    A body over ``max_body_bytes`` gets 413; more than ``max_documents`` documents, or a document over
    ``documents`` (clauses, characters: :class:`~ecpe.inference.Limits`) get 422 naming the field. Requests
    are gathered for up to ``batch_wait_ms`` (or until ``max_batch`` documents) into one model call; with more
    than ``max_pending`` documents waiting, new requests get 503. A request body not received whole within
    ``read_timeout_s`` seconds gets 408.
    """

    documents: Limits = SERVER_LIMITS
    max_body_bytes: int = 1_000_000
    max_documents: int = 64
    max_batch: int = 64
    batch_wait_ms: float = 2.0
    max_pending: int = 4096
    read_timeout_s: float = 10.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "documents" and (v < 0 or (v == 0 and f.name != "batch_wait_ms")):
                raise UsageError(f"{f.name.replace('_', '-')} must be positive, got {v}")
        if self.max_pending < self.max_documents:
            raise UsageError(f"max-pending ({self.max_pending}) must be at least max-documents ({self.max_documents})")

    def replace(self, **changes) -> "ServerSettings":
        """A copy with fields changed; ``max_clauses`` and ``max_chars`` change ``documents``."""
        doc = {k: changes.pop(k) for k in _DOCUMENT_FIELDS if k in changes}
        return replace(self, documents=replace(self.documents, **doc), **changes) if doc else replace(self, **changes)

    def as_dict(self) -> dict:
        """Every setting by its flag's name, the document limits included (``GET /model`` shows them)."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "documents"}
        return {"max_body_bytes": flat.pop("max_body_bytes"), "max_documents": flat.pop("max_documents"),
                **{k: getattr(self.documents, k) for k in _DOCUMENT_FIELDS}, **flat}


DEFAULTS = ServerSettings()
