"""E2EECPE (Song et al., 2020): the model (:mod:`.model`) and its opt-in variants (:mod:`.variants`)."""
from .model import *  # noqa: F401,F403
from .model import __all__  # noqa: F401
