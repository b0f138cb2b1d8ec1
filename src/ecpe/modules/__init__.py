"""Small reusable layers, each unit-tested."""
from .biaffine import Biaffine
from .cnn import ClauseCNN
from .position import position_weights

__all__ = ["Biaffine", "ClauseCNN", "position_weights"]
