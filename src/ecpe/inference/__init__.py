"""Inference: prediction with a model or an ensemble, model loading, and the raw-text :class:`Extractor`.

Never imports :mod:`ecpe.training`; ``ecpe predict``, ``ecpe evaluate``, ``ecpe serve`` and the Python API
(``ecpe.Extractor``) all go through it.
"""
from .core import (PRECISIONS, decode_batches, evaluate, predict, predict_docs, predict_documents, set_precision,
                   to_predictions)
from .ensemble import Ensemble, evaluate_runs, for_inference, load_models, set_clauses
from .extractor import Extractor
from .inputs import LOCAL_LIMITS, MAX_CLAUSES, SERVER_LIMITS, InputError, Limits, check_document

__all__ = ["decode_batches", "evaluate", "predict", "predict_docs", "to_predictions", "Ensemble", "evaluate_runs",
           "for_inference", "load_models", "predict_documents", "Extractor", "InputError", "Limits", "LOCAL_LIMITS",
           "SERVER_LIMITS", "MAX_CLAUSES", "check_document", "PRECISIONS", "set_precision", "set_clauses"]
