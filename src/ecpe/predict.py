"""Kept for code written against earlier versions: the extractor lives in :mod:`ecpe.inference`."""
from .inference.extractor import Extractor, InputError

__all__ = ["Extractor", "InputError"]
