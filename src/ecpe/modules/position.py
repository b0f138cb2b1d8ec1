"""Asymmetric position weight matrix, eq. 9 of Song et al. (2020)."""
from __future__ import annotations

import torch


def position_weights(doc_lens: torch.Tensor, size: int | None = None, eps: float = 1.0) -> torch.Tensor:
    """A_pq = (|D| - |p - q - 1| + eps) / (|D| + eps) for each document.

    The largest weight, 1, sits at p - q = 1: the cause clause just before the emotion clause, the most
    frequent case in the NEWS corpus. Weights fall off linearly with the distance from that diagonal.

    Args:
        doc_lens: [B] clauses per document (|D|).
        size: side of the returned matrices (defaults to the longest document).
        eps: smoothing term (1 in the paper).
    Returns:
        [B, size, size]; entries outside a document are 0.
    """
    size = int(doc_lens.max()) if size is None else size
    idx = torch.arange(size, dtype=torch.float32, device=doc_lens.device)
    dist = (idx[:, None] - idx[None, :] - 1).abs()  # |p - q - 1|, [size, size]
    n = doc_lens.to(torch.float32)[:, None, None]
    a = (n - dist[None] + eps) / (n + eps)
    inside = idx[None, :] < n[:, :, 0]  # [B, size]
    return a * (inside[:, :, None] & inside[:, None, :])
