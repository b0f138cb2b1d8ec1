"""Small reusable layers, each unit-tested."""
from .biaffine import Biaffine
from .context import ClauseAttention
from .cnn import ClauseCNN, flat_layout
from .dropout import Dropout
from .pair import WindowScorer
from .position import position_weights
from .rnn import (AttentionClauseEncoder, AttentionPool, BiLSTM, bilstm_padded, PackedClauses, pack_clauses, tf_lstm_init_,
                  uniform_init_)

__all__ = ["Biaffine", "ClauseAttention", "ClauseCNN", "Dropout", "flat_layout", "position_weights", "WindowScorer", "BiLSTM", "bilstm_padded", "AttentionPool",
           "AttentionClauseEncoder", "PackedClauses", "pack_clauses", "tf_lstm_init_", "uniform_init_"]
