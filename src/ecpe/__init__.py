"""ecpe: emotion-cause pair extraction.

>>> from ecpe import Extractor
>>> Extractor.load("runs/f1/fold1/model.pt").extract("……")
"""
from .inference import Extractor
from .version import __version__

__all__ = ["Extractor", "__version__"]
