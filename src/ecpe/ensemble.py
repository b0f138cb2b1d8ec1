"""Kept for code written against earlier versions: ensembles live in :mod:`ecpe.inference`."""
from .inference.ensemble import Ensemble, evaluate_runs, for_inference, load_models, predict_documents

__all__ = ["Ensemble", "predict_documents", "for_inference", "load_models", "evaluate_runs"]
