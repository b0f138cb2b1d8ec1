"""The private interface of the standard library behind ecpe.resources.build_hooked_unpickler (the pure-Python
unpickler and its opcode table), against the public ``pickle.loads``: a Python upgrade that changes it fails
here, loudly, instead of making the joblib reader wrong."""
from __future__ import annotations

import io
import pickle
import pickletools

import pytest

from ecpe.resources import build_hooked_unpickler


class Stateful:
    """Pickled with a state, i.e. a BUILD opcode."""

    def __init__(self, name=None, values=None):
        self.name, self.values = name, values

    def __eq__(self, other):
        return isinstance(other, Stateful) and (self.name, self.values) == (other.name, other.values)


SAMPLES = [
    {"words": ["高兴", "难过", ""], "n": 3, "x": 1.5, "nested": ({"a": [1, 2]}, frozenset({4}), {5, 6}), "b": b"\x00\xff"},
    [Stateful("a", [1, 2, 3]), Stateful("b", {"k": (None, True)}), Stateful()],
    list(range(1000)),
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_hooked_unpickler_with_an_identity_hook_loads_what_pickle_loads(protocol):
    built = []
    unpickler = build_hooked_unpickler(lambda obj, read: built.append(obj) or obj)
    for sample in SAMPLES:
        data = pickle.dumps(sample, protocol=protocol)
        assert unpickler(io.BytesIO(data)).load() == pickle.loads(data) == sample
    assert built == SAMPLES[1]  # each BUILD hands its built object (state set) to the hook, in order


@pytest.mark.parametrize("protocol", [0, 2, 3])
def test_hook_reads_the_raw_bytes_that_follow_a_build(protocol):
    """joblib's layout: raw bytes right after an object's BUILD opcode, read by the hook; the stream goes on."""
    obj = [Stateful("array", 4), "after"]
    data = pickle.dumps(obj, protocol=protocol)
    (end,) = [pos + 1 for op, _, pos in pickletools.genops(data) if op.name == "BUILD"]
    spliced = data[:end] + b"RAW!" + data[end:]

    def hook(built, read):
        return (built, read(built.values))

    loaded = build_hooked_unpickler(hook)(io.BytesIO(spliced)).load()
    assert loaded == [(Stateful("array", 4), b"RAW!"), "after"]
