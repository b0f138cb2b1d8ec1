"""Documents, the NUSTM format, splits, raw text preparation, vocabulary and batching."""
from .batching import DocBatch, DocTensors
from .corpus import DataFormatError, Document, Fold, find_folds, load_fold, parse_documents, read_documents, write_documents
from .text import prepare_text, segment, split_clauses
from .vocab import Vocab

__all__ = ["DocBatch", "DocTensors", "DataFormatError", "Document", "Fold", "find_folds", "load_fold",
           "parse_documents", "read_documents", "write_documents", "prepare_text", "segment", "split_clauses", "Vocab"]
