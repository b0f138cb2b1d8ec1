"""ecpe: emotion-cause pair extraction.

>>> from ecpe import Extractor
>>> Extractor.load("runs/f1/fold1/model.pt").extract("……")
"""
__version__ = "0.1.0"

from .predict import Extractor  # noqa: E402

__all__ = ["Extractor", "__version__"]
