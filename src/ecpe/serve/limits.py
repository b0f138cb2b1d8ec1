"""Request limits and batching settings of the service (plain data; no web framework imported)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..inference.inputs import MAX_CLAUSES

__all__ = ["Limits", "DEFAULTS"]


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and how concurrent requests are batched.

    A body over ``max_body_bytes`` gets 413; more than ``max_documents`` documents, a document of more than
    ``max_clauses`` clauses or ``max_chars`` characters get 422 naming the field. Requests are gathered for up
    to ``batch_wait_ms`` (or until ``max_batch`` documents) into one model call; with more than ``max_pending``
    documents waiting, new requests get 503. A request body not received whole within ``read_timeout_s``
    seconds gets 408.
    """

    max_body_bytes: int = 1_000_000
    max_documents: int = 64
    max_clauses: int = 200
    max_chars: int = 20_000
    max_batch: int = 64
    batch_wait_ms: float = 2.0
    max_pending: int = 4096
    read_timeout_s: float = 10.0

    def check(self) -> "Limits":
        for k, v in asdict(self).items():
            if v < 0 or (v == 0 and k != "batch_wait_ms"):
                raise ValueError(f"{k.replace('_', '-')} must be positive, got {v}")
        if self.max_clauses > MAX_CLAUSES:
            raise ValueError(f"max-clauses must be 1..{MAX_CLAUSES} (a document's pair matrix grows with the square "
                             f"of its clauses), got {self.max_clauses}")
        if self.max_pending < self.max_documents:
            raise ValueError(f"max-pending ({self.max_pending}) must be at least max-documents ({self.max_documents})")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULTS = Limits()
