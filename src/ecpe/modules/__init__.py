"""Small reusable layers, each unit-tested."""
from .biaffine import Biaffine
from .cnn import ClauseCNN, flat_layout
from .position import position_weights
from .rnn import (AttentionClauseEncoder, AttentionPool, BiLSTM, PackedClauses, pack_clauses, tf_lstm_init_,
                  uniform_init_)

__all__ = ["Biaffine", "ClauseCNN", "flat_layout", "position_weights", "BiLSTM", "AttentionPool",
           "AttentionClauseEncoder", "PackedClauses", "pack_clauses", "tf_lstm_init_", "uniform_init_"]
