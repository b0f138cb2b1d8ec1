"""Training: one Trainer for every model, the schedules that drive it, and the fold / run loops.

| module | what |
|---|---|
| :mod:`.trainer` | the :class:`Trainer` (epochs, selection on a dev set, EMA), :class:`History`, protocol labels |
| :mod:`.schedules` | ``single`` and ``two-stage`` schedules (:data:`SCHEDULES`) |
| :mod:`.setup` | a fold's dev share, word vectors, vocabulary and initial embeddings (training documents only) |
| :mod:`.distill` | the teachers' soft targets (``--teacher``) |
| :mod:`.student` | a student on gold + teacher-labelled transfer documents (``--transfer``), pseudo-labels |
| :mod:`.recipe` | what a fold was trained with, and when a finished fold may be reused |
| :mod:`.choose` | per fold, the candidate run of highest dev pair F1 (``ecpe choose``) |
| :mod:`.runs` | one fold, a run of folds (resumable, parallel), one model on every document (``--final``) |
"""
from __future__ import annotations

from ..inference import evaluate, predict
from .choose import CHOICE_RULE, check_choice_folder, choose_per_fold, weight_folder
from .distill import set_teacher_targets
from .recipe import (DEFAULT_PREPROCESS, RECIPE_IGNORED, RecipeMismatch, check_run, fold_recipe, recipe_differences,
                     train_recipe)
from .runs import (ENGINES, RunSpec, environment, final_fold, load_done, summarize, train_final, train_fold, train_run,
                   train_runs)
from .schedules import SCHEDULES, train_single_stage, train_two_stage
from .student import TRANSFER_BATCH_SIZE, MixedTensors, load_transfer, pseudo_labels, transfer_active, transfer_files
from .setup import build_embeddings, build_vocab, carve_dev, dev_split, fold_seed, word_vectors
from .trainer import (NO_TEST, PROTOCOL_DEV, PROTOCOL_PAPER, SINGLE_STAGE, History, StageHistory, Trainer,
                      make_optimizer, protocol_label, seed_everything)

__all__ = ["Trainer", "History", "StageHistory", "train_single_stage", "train_two_stage", "SCHEDULES", "protocol_label",
           "carve_dev", "dev_split", "fold_seed", "train_fold", "train_run", "PROTOCOL_DEV", "PROTOCOL_PAPER",
           "SINGLE_STAGE", "predict", "evaluate", "RecipeMismatch", "fold_recipe", "check_run", "final_fold",
           "train_final", "NO_TEST", "DEFAULT_PREPROCESS", "RECIPE_IGNORED", "recipe_differences", "train_recipe",
           "environment", "load_done", "summarize", "set_teacher_targets", "build_embeddings", "build_vocab",
           "word_vectors", "make_optimizer", "seed_everything", "RunSpec", "train_runs", "ENGINES", "TRANSFER_BATCH_SIZE",
           "MixedTensors", "load_transfer", "pseudo_labels", "transfer_active", "transfer_files", "CHOICE_RULE",
           "check_choice_folder", "choose_per_fold", "weight_folder"]
