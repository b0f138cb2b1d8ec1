"""Speed benchmark: training epoch, inference throughput and memory, on this machine.

    python benchmarks/speed.py [--data ../shared/data/ecpe-zh] [--fold 1] [--epochs 2] [--run runs/full10]
                               [--device cpu|cuda] [--hidden 150] [--char-backoff]
                               [--model runs/x/fold1/model.pt] [--profile] [--rounds 3] [--batch-size 64] [--chunk N]
                               [--precision fp32|bf16]

Prints one ``key: value`` line per figure. Training epochs are timed on split10 fold ``--fold`` with the
default E2EECPE configuration (word vectors randomly initialised: building them is not part of an epoch).
The raw-text and pre-segmented throughputs run the model trained by those epochs over the fold's test
documents (raw text rebuilt by joining each clause's words and the clauses with '，'), repeated to at
least ``--min-docs`` documents. ``full_10fold_minutes`` is read from a recorded 10-fold run (``--run``).
Uses the standard library and the package only. With ``--device cuda`` the model runs on the GPU (the
figures are then the GPU's; the project's speed targets are for 2 CPU cores). ``--hidden`` times E2EECPE with
another BiLSTM size than the paper's 300 (Inter-EC keeps its own), ``--char-backoff`` with unknown words composed
of their characters; point ``--run`` at a run of that configuration.

``--model`` times prediction only, with a saved model (no training epochs): run it with the code of two commits
(``PYTHONPATH=<worktree>/src``), alternating, for an A/B on a busy host. ``--profile`` also prints where the time
of ``ecpe predict --input`` goes (JSON lines in and out, pre-segmented and raw): input checks and preparation
(raw text: clause splitting and segmentation), vocabulary lookup, tensor build, model forward, decode, conversion
to dicts, JSON writing, per document and as shares.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_epoch(module, tensors, batch_size: int, lr: float, l2: float, seed: int) -> float:
    """Wall seconds of one training epoch of ``module`` over ``tensors`` (forward, loss, backward, step)."""
    import torch

    from ecpe.devices import model_device
    from ecpe.training import make_optimizer

    opt = make_optimizer(module.param_groups(l2), lr)
    module.train()
    device = model_device(module)
    start = time.perf_counter()
    for batch in tensors.batches(batch_size, shuffle=True, seed=seed):
        batch = batch.to(device)
        opt.zero_grad()
        module.loss(module(batch), batch).backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_e2e_epochs(fold, epochs: int, device: str = "cpu", config: dict | None = None):
    import torch

    from ecpe.config import TrainConfig
    from ecpe.data import Vocab
    from ecpe.models import build_model

    torch.manual_seed(1)
    vocab = Vocab.build(c for d in fold.train for c in d.clauses)
    model = build_model("e2eecpe", vocab, config or {}).to(device)
    cfg = TrainConfig()
    train = model.tensorize(fold.train)
    times = [time_epoch(model, train, cfg.batch_size, cfg.lr, cfg.l2, seed=e) for e in range(epochs)]
    return model, times


def time_inter_ec_epoch(fold, device: str = "cpu") -> float:
    """One stage-1 epoch + one stage-2 epoch of Inter-EC with its default settings. Stage-2 candidates are
    the gold emotions x gold causes of each training document (close to what a trained stage 1 gives)."""
    import torch

    from ecpe.data import Vocab
    from ecpe.metrics import Prediction
    from ecpe.models import build_model
    from ecpe.models.two_stage import CandidateTensors

    torch.manual_seed(1)
    vocab = Vocab.build(c for d in fold.train for c in d.clauses)
    model = build_model("inter-ec", vocab, {}).to(device)
    c = model.config
    train = model.tensorize(fold.train)
    s1 = time_epoch(model.stage1, train, c.stage1_batch_size, c.stage1_lr, c.l2, seed=0)
    cands = CandidateTensors(train, [Prediction(emotions=sorted(d.emotions), causes=sorted(d.causes)) for d in fold.train])
    s2 = time_epoch(model.stage2, cands, c.stage2_batch_size, c.stage2_lr, c.l2, seed=0)
    return s1 + s2


class PhaseTimer:
    """Exclusive wall time per phase of functions wrapped in place (a wrapped call nested in another is
    counted in its own phase only)."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self._stack: list[float] = []
        self._undo: list = []

    def wrap(self, owner, name: str, phase: str) -> None:
        orig = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            self._stack.append(0.0)
            try:
                return orig(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._stack.pop()
                self.times[phase] = self.times.get(phase, 0.0) + elapsed - inner
                if self._stack:
                    self._stack[-1] += elapsed

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, orig))

    def phase(self, phase: str):
        timer = self

        class _Block:
            def __enter__(self):
                self.start = time.perf_counter()
                timer._stack.append(0.0)

            def __exit__(self, *exc):
                elapsed = time.perf_counter() - self.start
                inner = timer._stack.pop()
                timer.times[phase] = timer.times.get(phase, 0.0) + elapsed - inner
                if timer._stack:
                    timer._stack[-1] += elapsed

        return _Block()

    def restore(self) -> None:
        for owner, name, orig in reversed(self._undo):
            setattr(owner, name, orig)
        self._undo.clear()


PHASES = ("input checks/preparation", "vocabulary lookup", "tensor build", "model forward", "decode",
          "conversion to dicts", "JSON writing", "other")


def profile_phases(extractor, lines: list[str], rounds: int = 1) -> tuple[dict[str, float], int]:
    """Phase times of ``ecpe predict --input`` (JSON lines in, JSON lines out) over ``lines``
    (``extract_lines(as_json=True)``, which writes the text from arrays). Returns (seconds per phase, documents)."""
    import ecpe.data.batching as batching
    import ecpe.inference.extractor as extractor_mod
    from ecpe.inference import Extractor
    from ecpe.models import E2EECPE

    t = PhaseTimer()
    t.wrap(Extractor, "_prepare", "input checks/preparation")
    t.wrap(batching, "lookup_ids", "vocabulary lookup")              # once per chunk
    t.wrap(batching.ChunkTensors, "__init__", "tensor build")
    t.wrap(batching.ChunkTensors, "_batch", "tensor build")
    t.wrap(E2EECPE, "forward", "model forward")
    t.wrap(E2EECPE, "decode", "decode")
    # gather, one transfer, sort, rounding on arrays (names bound in the extractor)
    t.wrap(extractor_mod, "predict_chunk", "conversion to dicts")
    t.wrap(extractor_mod, "result_json", "JSON writing")
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            for _ in extractor.extract_lines(lines, as_json=True):
                pass
        total = time.perf_counter() - start
    finally:
        t.restore()
    times = {p: t.times.get(p, 0.0) for p in PHASES[:-1]}
    times["other"] = total - sum(times.values())
    return times, rounds * len(lines)


def print_profile(label: str, times: dict[str, float], docs: int) -> None:
    total = sum(times.values())
    print(f"profile_{label}: {docs / total:.0f} docs/s over {docs} documents, {total:.2f} s; outside the model "
          f"(all but model forward): {100 * (1 - times['model forward'] / total):.0f} %")
    for p in PHASES:
        print(f"  {p:<26} {1e6 * times[p] / docs:8.1f} us/doc {100 * times[p] / total:5.1f} %")


def throughput(extractor, items, min_docs: int) -> float:
    reps = max(1, -(-min_docs // len(items)))
    data = items * reps
    start = time.perf_counter()
    extractor.extract_many(data)  # the bulk API: in chunks (Extractor.chunk), pipelined only with a spare core
    return len(data) / (time.perf_counter() - start)


def ecpe_file() -> str:
    import ecpe

    return ecpe.__file__


def time_prediction(ex, test, args) -> None:
    """Raw-text and pre-segmented throughput of ``ex`` over the fold's test documents ``test`` (and, with
    ``--profile``, where the time goes)."""
    from ecpe.inference import Extractor

    raw = ["，".join("".join(c) for c in d.clauses) + "。" for d in test]
    seg = [{"clauses": d.clauses} for d in test]
    if not args.skip_raw:
        from ecpe.data.text import jieba_backend

        ex.extract_many(raw[:8])  # load jieba's dictionary before timing
        for r in range(args.rounds):
            print(f"raw_docs_per_s: {throughput(ex, raw, args.min_docs):.0f} (segmenter jieba, implementation "
                  f"{jieba_backend()}{f'; round {r + 1}' if args.rounds > 1 else ''})")
        if jieba_backend() != "jieba" and not args.model:
            py = Extractor(ex.model, {"preprocess": {"segmenter": "jieba-py"}}, batch_size=args.batch_size)
            py.extract_many(raw[:8])
            print(f"raw_docs_per_s_python_jieba: {throughput(py, raw, args.min_docs):.0f}")
    ex.extract_many(seg[:64])  # warm-up (on a GPU: kernels, allocator)
    for r in range(args.rounds):
        print(f"segmented_docs_per_s: {throughput(ex, seg, args.min_docs):.0f}"
              f"{f' (round {r + 1})' if args.rounds > 1 else ''}")
    if args.profile:
        pipeline, ex.pipeline = ex.pipeline, False  # one thread: the phases add up to the wall time
        reps = max(1, -(-args.min_docs // len(seg)))
        lines = [json.dumps(item, ensure_ascii=False) for item in seg] * reps  # one stream: chunks as in throughput
        print_profile("segmented", *profile_phases(ex, lines))
        if not args.skip_raw:
            print_profile("raw", *profile_phases(ex, raw * reps))
        ex.pipeline = pipeline


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"))
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2, help="timed E2EECPE epochs (the mean is printed)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--min-docs", type=int, default=2000)
    ap.add_argument("--run", default="runs/full10", help="a recorded 10-fold run folder (results.json)")
    ap.add_argument("--skip-baseline", action="store_true", help="do not time Inter-EC")
    ap.add_argument("--skip-raw", action="store_true", help="do not time raw text (needs jieba)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--hidden", type=int, help="E2EECPE BiLSTM units per direction (default: the paper's 300)")
    ap.add_argument("--char-backoff", action="store_true", help="E2EECPE with unknown words composed of their characters")
    ap.add_argument("--model", help="time prediction with this saved model.pt only (no training epochs)")
    ap.add_argument("--batch-size", type=int, default=64, help="documents per forward pass at prediction (default 64)")
    ap.add_argument("--chunk", type=int, help="documents per Extractor chunk (default: the Extractor's)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="inference precision: fp32 (default) or bf16 (autocast)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the throughput figures (each round printed)")
    ap.add_argument("--profile", action="store_true",
                    help="print where prediction time goes (phases of ecpe predict on JSON lines), pre-segmented and raw")
    args = ap.parse_args(argv)

    import torch

    from ecpe.data import load_fold
    from ecpe.devices import device_info, resolve_device
    from ecpe.inference import Extractor

    device = resolve_device(args.device)

    if args.threads:
        torch.set_num_threads(args.threads)
    split = Path(args.data) / "split10"
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (host speed drifts between days: compare with a "
          f"baseline timed the same hour, alternating)")
    if device.type != "cpu":
        print(f"device: {device_info(device)}")

    if args.model:
        # the test documents only: a process that holds the training documents too (tens of thousands of lists)
        # pays more for Python's garbage collector than a prediction process does
        from ecpe.data import read_documents

        test = read_documents(split / f"fold{args.fold}_test.txt")
        ex = Extractor.load(args.model, device=device, batch_size=args.batch_size, precision=args.precision,
                            **({"chunk": args.chunk} if args.chunk else {}))
        print(f"model: {args.model} (prediction only; batch size {args.batch_size}, chunk {ex.chunk}, precision "
              f"{args.precision}; ecpe from {Path(ecpe_file()).parent})")
        time_prediction(ex, test, args)
        print(f"peak_rss_mb: {peak_rss_mb():.0f}")
        return 0

    fold = load_fold(split, args.fold)

    config = {}
    if args.hidden is not None:
        config["hidden"] = args.hidden
        print(f"e2eecpe_hidden: {args.hidden} (the paper: 300)")
    if args.char_backoff:
        config["char_backoff"] = True
        print("e2eecpe_char_backoff: on")
    model, times = time_e2e_epochs(fold, args.epochs, device, config)
    e2e = sum(times) / len(times)
    print(f"e2eecpe_epoch_s: {e2e:.2f}")
    if not args.skip_baseline:
        inter = time_inter_ec_epoch(fold, device)
        print(f"inter_ec_epoch_s: {inter:.2f}")
        print(f"epoch_ratio_inter_ec_over_e2eecpe: {inter / e2e:.2f}")

    ex = Extractor(model, {"preprocess": {"segmenter": "jieba"}}, batch_size=args.batch_size, precision=args.precision,
                   **({"chunk": args.chunk} if args.chunk else {}))
    if args.precision != "fp32":
        print(f"precision: {args.precision}")
    test = fold.test
    del fold, model, times  # prediction is timed without the training documents alive (see --model)
    time_prediction(ex, test, args)
    print(f"peak_rss_mb: {peak_rss_mb():.0f}")

    results = Path(args.run) / "results.json"
    if results.exists():
        r = json.loads(results.read_text())
        walls = [f.get("wall_seconds") for f in r.get("per_fold", [])]
        last = r.get("last_invocation", {})
        if len(last.get("folds_trained", [])) == len(walls) and walls:
            print(f"full_10fold_minutes: {last['elapsed_seconds'] / 60:.1f} (elapsed, {len(walls)} folds trained by one "
                  f"invocation with --jobs {last.get('jobs')}, recorded in {results})")
        elif walls and all(w is not None for w in walls):
            print(f"full_10fold_minutes: {sum(walls) / 60:.1f} (sum of the {len(walls)} folds' wall times in {results}; "
                  f"folds run in parallel take less elapsed time)")
        else:
            print(f"full_10fold_minutes: unavailable ({results} has no wall times)")
    else:
        print(f"full_10fold_minutes: unavailable (no recorded run at {results})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
