"""A model's card: what a checkpoint records, said for a person (``ecpe info``, ``GET /model``)."""
from __future__ import annotations

from typing import Any

from ..config import TrainConfig, to_dict
from ..data.lang import language_name
from ..models import model_class

__all__ = ["model_card", "LANGUAGES"]

# what each segmenter expects of raw text
LANGUAGES = {
    "jieba": "Chinese (raw text split at Chinese and ASCII clause punctuation, words by jieba)",
    "jieba-py": "Chinese (raw text split at Chinese and ASCII clause punctuation, words by the Python jieba)",
    "whitespace": "text whose words are separated by spaces (raw text split at clause punctuation)",
}
_RAW_TEXT = {"jieba": "words by jieba", "jieba-py": "words by the Python jieba",
             "whitespace": "words between spaces and punctuation"}


def _figure(m: dict[str, Any]) -> str:
    return f"pair F1 {m['f1']:.4f} (P {m['p']:.4f}, R {m['r']:.4f})"


def _changed(defaults: dict[str, Any], values: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    out = [f"{k}={values[k]}" for k in values if k not in skip and k in defaults and values[k] != defaults[k]]
    return ", ".join(out) or "none"


def model_card(ckpt: dict[str, Any]) -> dict[str, str]:
    """The card of a checkpoint (as :func:`ecpe.models.load_model` returns it): one line per field."""
    meta, versions = ckpt.get("meta", {}), ckpt.get("versions", {})
    about = meta.get("about") or {}
    name = ckpt.get("model", "?")
    card = {"model": name}
    if about.get("preset") or about.get("command"):
        card["recipe"] = (f"--preset {about['preset']}; " if about.get("preset") else "") + \
            (f"command: {about['command']}" if about.get("command") else "")
    card["model settings (not the paper's)"] = _changed(to_dict(model_class(name).config_class()),
                                                        ckpt.get("config", {}))
    train = meta.get("train_config")
    if train:
        card["training settings (not the paper's)"] = _changed(to_dict(TrainConfig()), train,
                                                               skip=("threads", "device"))
    data = f"{meta.get('split', '?')}" + (f" fold {meta['fold']}" if meta.get("fold") else "")
    if about.get("data"):
        data += f" of {about['data']}"
    if meta.get("n_train"):
        data += f"; {meta['n_train']} training documents"
    card["data"] = data
    card["vocabulary"] = f"{len(ckpt.get('vocab', []))} words"
    test = meta.get("test")
    protocol = meta.get("protocol", "?")
    if test and test.get("pair"):
        card["test"] = f"{_figure(test['pair'])}, emotion F1 {test['emotion']['f1']:.4f}, cause F1 " \
                       f"{test['cause']['f1']:.4f} ({protocol}, {meta.get('split', '?')} fold {meta.get('fold', '?')})" \
            if test.get("emotion") else f"{_figure(test['pair'])} ({protocol})"
    else:
        card["test"] = f"not evaluated ({protocol})"
    cv = about.get("cross_validation")
    if cv and cv.get("mean", {}).get("pair"):
        std = (cv.get("std") or {}).get("pair", {}).get("f1")
        card["cross-validated recipe"] = (f"pair F1 {cv['mean']['pair']['f1']:.4f}" + (f" ± {std:.4f}" if std else "")
                                          + f" ({cv.get('protocol')}, {cv.get('split')}, folds "
                                          f"{','.join(map(str, cv.get('folds') or []))}; run {cv.get('run')})")
    elif not (test and test.get("pair")):
        card["cross-validated recipe"] = "not evaluated (train with --cv-run RUN to quote a run of the same recipe)"
    if meta.get("best_epoch") is not None:
        card["epoch"] = f"{meta['best_epoch']}, chosen on " + ("the test fold" if "test" in protocol.split(";")[0]
                                                               else "a dev set")
    segmenter = ckpt.get("preprocess", {}).get("segmenter", "jieba")
    card["segmenter"] = segmenter
    lang = about.get("language")
    if lang:  # recorded at training: the corpus's language and where it was read
        card["language"] = f"{language_name(lang['code'])} ({lang['source']}); raw text split at clause " \
                           f"punctuation, {_RAW_TEXT.get(segmenter, segmenter)}"
    else:
        card["language"] = LANGUAGES.get(segmenter, "?")
    card["trained"] = f"{meta.get('trained', 'date not recorded')} with ecpe {versions.get('ecpe', '?')}, torch " \
                      f"{versions.get('torch', '?')}, Python {versions.get('python', '?')}"
    return card
