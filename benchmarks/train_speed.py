"""A training epoch of E2EECPE against the machine's own matrix-product rate, measured in the same run.

    python benchmarks/train_speed.py --data ../shared/data/ecpe-zh [--fold 1] [--threads 1]
        [--batch-sizes 32,128,256] [--epochs 3] [--precision fp32|bf16] [--json OUT.json]
    python benchmarks/train_speed.py --data ... --threads 1 --losses 100 --losses-out L.json   # bit-identity
    python benchmarks/train_speed.py --data ... --threads 1 --profile                           # where time goes
    python benchmarks/train_speed.py --data ... --transfer RUN/transfer [--transfer-docs 2500]   # a student's epoch
    python benchmarks/train_speed.py --data ... --allocator default     # glibc's own malloc settings (see below)

The model is ``--preset best``'s E2EECPE (paper sizes, open vocabulary, ``biaffine+window`` pair scorer with
``max_distance`` 3) but with word2vec trained on the fold's training documents (``--embeddings train``), so
that no packaged-corpus vectors are needed; the vectors' values do not change the arithmetic of an epoch. It
trains on split10 fold ``--fold``'s training documents without its seeded 10 % dev share, as ``ecpe train``
does, through :class:`ecpe.training.Trainer` (no dev scoring between epochs).

Per batch size, one run measures:

- ``matmul_gflops``: the float32 rate of ``torch.mm`` for the products the model makes (the clause BiLSTM's
  input projection and its gradient, the CNN's window products, the recurrent step), at the same thread
  count, right before and right after the epochs; the ceiling is the best of those shapes (median of the
  before / after figures);
- ``flops_epoch``: floating-point operations of one epoch, counted by ``torch.utils.flop_counter.FlopCounterMode``
  over every batch of an epoch (forward and backward). It counts matrix products (``mm``, ``addmm``,
  ``bmm``) and convolutions; the LSTM's fused oneDNN kernels are added by the formula 2 x steps x batch x
  (in + hidden) x 4 hidden per direction forward and twice that backward. Elementwise operations, gathers,
  the loss and the optimizer are not counted (they are cheap in FLOPs, not in time). ``executed``: what the
  padded batches compute; ``useful``: the same count with each document alone (no padding), the work an
  epoch cannot avoid;
- ``epoch_s``: median seconds of ``--epochs`` epochs after one warm-up epoch;
- ``share_of_ceiling`` = useful FLOPs / epoch_s / ceiling (and the same with executed FLOPs).

``--precision bf16`` trains under ``torch.autocast("cpu", torch.bfloat16)`` (``TrainConfig.precision``): speed
only; the ceiling stays the float32 rate, and the bfloat16 rate of the same products is measured and reported
beside it (``bf16_ceiling_gflops``, ``share_of_bf16_ceiling_useful``).

The process keeps the memory a step frees for the next one, as ``ecpe train`` does
(:func:`ecpe.devices.retain_freed_memory`); ``--allocator default`` times the C library's own settings.

``--transfer DIR`` times a student's epoch instead, as ``ecpe train --transfer DIR`` runs it: the gold
documents in batches of ``--batch-sizes`` and the first ``--transfer-docs`` documents of the seeded subset of
DIR's teacher-labelled transfer documents (``-1``: all) in batches of ``--transfer-batch-size`` (default 128,
``TRANSFER_BATCH_SIZE``), in one shuffled epoch, with the vocabulary of both. FLOPs are counted over both
parts; the ceiling is the best rate of either batch size's shapes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def build(data: Path, fold_k: int, seed: int = 1, transfer: str | None = None, transfer_docs: int | None = None,
          transfer_batch_size: int | None = None):
    """(model, training tensors, the tensors of each part (gold, transfer), config) as ``ecpe train`` builds
    them for the fold; with ``transfer``, a student's (gold + transfer documents, ``MixedTensors``)."""
    import torch

    from ecpe.config import TrainConfig
    from ecpe.data.corpus import load_fold
    from ecpe.models import build_model
    from ecpe.training.setup import build_embeddings, build_vocab, dev_split, fold_seed, word_vectors
    from ecpe.training.student import load_transfer, mix_transfer
    from ecpe.training.trainer import seed_everything

    fold = load_fold(data / "split10", fold_k)
    cfg = TrainConfig(embeddings="train", open_vocab=-1, seed=seed,
                      **({"transfer": transfer, "transfer_docs": transfer_docs,
                         "transfer_batch_size": transfer_batch_size} if transfer else {}))
    torch.set_flush_denormal(True)  # as ecpe train does
    seed_everything(fold_seed(cfg.seed, fold))
    train_docs, dev_docs, _ = dev_split(fold, cfg.dev_share_seed, cfg.dev_fraction)
    extra = load_transfer(cfg, fold, dev_docs) if transfer else None
    model_config = {"pair_scorer": "biaffine+window", "max_distance": 3}
    vectors, info = word_vectors(cfg, train_docs, fold.train, 200)
    vocab = build_vocab([*train_docs, *(extra.docs if extra else ())], cfg, vectors)
    matrix, _ = build_embeddings(vocab, 200, cfg, vectors, info)
    seed_everything(fold_seed(cfg.seed, fold))
    model = build_model("e2eecpe", vocab, model_config, matrix)
    gold = model.tensorize(train_docs)
    if extra is None:
        return model, gold, [gold], cfg
    mixed = mix_transfer(model, gold, extra, cfg)
    return model, mixed, [gold, mixed.transfer], cfg


def fresh_state(model):
    import copy
    return copy.deepcopy(model.state_dict())


# ---- the machine's matrix-product rate --------------------------------------------------------------
def matmul_shapes(model, batch_size: int, mean_clauses: float, mean_windows: float) -> dict[str, tuple[int, int, int]]:
    """(m, k, n) of the products one training batch makes, named."""
    c = model.config
    rows = int(round(batch_size * mean_clauses))
    clause_dim = len(c.kernel_sizes) * c.filters
    return {
        "lstm_input_projection": (rows, clause_dim, 4 * c.hidden),
        "lstm_input_grad": (rows, 4 * c.hidden, clause_dim),
        "lstm_weight_grad": (4 * c.hidden, rows, clause_dim),
        "lstm_recurrent_step": (batch_size, c.hidden, 4 * c.hidden),
        "cnn_windows_k3": (int(round(batch_size * mean_windows)), 3 * c.embed_dim, c.filters),
        "vertex_layers": (rows, 2 * c.hidden, 4 * c.vertex_dim),
    }


def matmul_rate(shapes: dict[str, tuple[int, int, int]], seconds: float = 0.25, dtype=None) -> dict[str, float]:
    """GFLOP/s of ``torch.mm`` (float32 unless ``dtype``) for each (m, k, n), the best of three timed loops."""
    import torch

    out = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            torch.mm(a, b)
        reps = max(1, int(seconds / max(_time_mm(a, b, 3) / 3, 1e-7)))
        best = min(_time_mm(a, b, reps) for _ in range(3)) / reps
        out[name] = 2.0 * m * k * n / best / 1e9
    return out


def _time_mm(a, b, reps: int) -> float:
    import torch

    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return time.perf_counter() - start


# ---- FLOPs ----------------------------------------------------------------------------------------
def _rnn_forward_flops(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    # mkldnn_rnn_layer(input [T, B, in] (or batch-first), w_ih [4h, in], w_hh [4h, h], ...): per step and
    # sequence, the gates' two products
    steps_x_batch = input_shape[0] * input_shape[1]
    four_h, in_dim = w_ih
    return 2 * steps_x_batch * (in_dim + w_hh[1]) * four_h


def _rnn_backward_flops(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    return 2 * _rnn_forward_flops(input_shape, w_ih, w_hh)


def count_flops(model, batches) -> int:
    """Forward + backward FLOPs of ``batches`` (see the module docstring for what is counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten.mkldnn_rnn_layer: _rnn_forward_flops, aten.mkldnn_rnn_layer_backward: _rnn_backward_flops}
    model.train()
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            model.loss(model(batch), batch).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


# ---- epochs ---------------------------------------------------------------------------------------
def time_epochs(model, train, cfg, batch_size: int, epochs: int, autocast: bool) -> list[float]:
    """Seconds of 1 + ``epochs`` epochs through the Trainer (the first is the warm-up)."""
    import dataclasses

    from ecpe.training.trainer import Trainer

    tcfg = dataclasses.replace(cfg, epochs=epochs + 1, patience=epochs + 1, batch_size=batch_size,
                               **({"precision": "bf16"} if autocast else {}))
    history = Trainer(tcfg, progress=False).fit(model, train, None)
    return history.epoch_seconds


def record_losses(model, train, cfg, n: int, autocast: bool) -> list[str]:
    """The first ``n`` training losses of the Trainer (batch size 32, ``cfg.seed``), as exact hex floats."""
    import dataclasses

    from ecpe.training.trainer import Trainer

    losses: list[str] = []
    loss_fn = model.loss

    def recording(scores, batch):
        value = loss_fn(scores, batch)
        losses.append(float(value.detach()).hex())
        return value

    model.loss = recording
    n_batches = -(-len(train) // cfg.batch_size)
    epochs = -(-n // n_batches)
    tcfg = dataclasses.replace(cfg, epochs=epochs, patience=epochs, **({"precision": "bf16"} if autocast else {}))
    try:
        Trainer(tcfg, progress=False).fit(model, train, None)
    finally:
        del model.loss
    return losses[:n]


def profile_epoch(model, train, cfg, batch_size: int, top: int, autocast: bool = False) -> dict:
    """One epoch (after a warm-up epoch) under ``torch.profiler``, with the loop's phases marked (the
    Trainer's loop, written out)."""
    import contextlib

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from ecpe.training.trainer import _float32, make_optimizer

    time_epochs(model, train, cfg, batch_size, 0, autocast)  # warm-up
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    optimizer = make_optimizer(model.param_groups(cfg.l2), cfg.lr)
    model.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        it = iter(train.batches(batch_size, shuffle=True, seed=7))
        while True:
            with record_function("phase: data/batching"):
                batch = next(it, None)
            if batch is None:
                break
            optimizer.zero_grad(set_to_none=True)
            with record_function("phase: forward"), precision:
                scores = model(batch)
            with record_function("phase: loss"):
                loss = model.loss(_float32(scores), batch)
            with record_function("phase: backward"):
                loss.backward()
            with record_function("phase: optimizer step"):
                optimizer.step()
            loss.item()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    phases = {e.key: e.cpu_time_total / 1e6 for e in events if e.key.startswith("phase: ")}
    ops = sorted((e for e in events if not e.key.startswith("phase: ")), key=lambda e: -e.self_cpu_time_total)
    print(events.table(sort_by="self_cpu_time_total", row_limit=top))
    return {"phases_s": phases, "total_self_s": total / 1e6,
            "top_ops": [{"op": e.key, "self_s": e.self_cpu_time_total / 1e6, "calls": e.count,
                         "share": e.self_cpu_time_total / total} for e in ops[:top]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"),
                   help="the corpus folder (holding split10/)")
    p.add_argument("--fold", type=int, default=1, help="split10 fold (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch-sizes", default="32", help="comma-separated batch sizes (default 32, the paper's)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch (default 3)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: train under CPU autocast to bfloat16 (changes numerics; opt-in)")
    p.add_argument("--losses", type=int, default=0, help="record the first N training losses (batch 32) instead")
    p.add_argument("--losses-out", help="where --losses writes them (JSON)")
    p.add_argument("--profile", action="store_true", help="profile one epoch instead (first batch size)")
    p.add_argument("--top", type=int, default=25, help="operators listed by --profile (default 25)")
    p.add_argument("--transfer", help="time a student's epoch: gold + the transfer documents of this folder "
                                      "(ecpe transfer build --out, or a --transfer auto run's OUT/transfer)")
    p.add_argument("--transfer-docs", type=int, default=2500,
                   help="transfer documents in the student's epoch (default 2500; -1: all, as --preset student)")
    p.add_argument("--transfer-batch-size", type=int, default=None,
                   help="documents per transfer batch (default 128, as ecpe train)")
    p.add_argument("--allocator", choices=("retain", "default"), default="retain",
                   help="retain: freed memory kept for the next step, as ecpe train sets it "
                        "(ecpe.devices.retain_freed_memory); default: the C library's own settings")
    p.add_argument("--json", help="write the figures as JSON here too")
    p.add_argument("--label", help="what code this is, recorded in the JSON (e.g. the commit of a worktree on "
                                   "PYTHONPATH; default: this checkout's commit)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    allocator = "default"
    if args.allocator == "retain":
        from ecpe.devices import retain_freed_memory

        allocator = "retain" if retain_freed_memory() else "default (retain not taken: not glibc)"
    data = Path(args.data)
    if not (data / "split10").is_dir():
        print(f"train_speed.py: --data {data} has no split10/ folder", file=sys.stderr)
        return 2
    model, train, parts, cfg = build(data, args.fold, transfer=args.transfer,
                                     transfer_docs=None if args.transfer_docs < 0 else args.transfer_docs,
                                     transfer_batch_size=args.transfer_batch_size)
    autocast = args.precision == "bf16"
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": args.label or git_commit(),
                    "ecpe": str(Path(__import__("ecpe").__file__).parent),
                    "cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "threads": args.threads, "precision": args.precision, "fold": args.fold,
                    "allocator": allocator,
                    "train_documents": len(parts[0]),
                    **({"transfer": args.transfer, "transfer_documents": len(parts[1]),
                        "transfer_batch_size": train.transfer_batch_size} if args.transfer else {}),
                    "model": "E2EECPE, --preset best's settings with --embeddings train (word2vec on the fold's "
                             "training documents)",
                    "load_before": os.getloadavg()[0]}
    if args.losses:
        losses = record_losses(model, train, cfg, args.losses, autocast)
        result["losses"] = losses
        print(json.dumps(result, indent=1))
        if args.losses_out:
            Path(args.losses_out).write_text(json.dumps(result, indent=1) + "\n")
        return 0
    if args.profile:
        result["profile"] = profile_epoch(model, train, cfg, int(args.batch_sizes.split(",")[0]), args.top,
                                          autocast)
        print(json.dumps(result["profile"], indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        return 0

    state = fresh_state(model)
    doc_lens = [int(n) for t in parts for n in t.doc_lens]
    n_clauses = sum(doc_lens) / len(doc_lens)
    lens = torch.cat([t.clause_lens for t in parts]).clamp(min=1).float()
    mean_windows = float(sum((lens - k + 1).clamp(min=1).sum() for k in model.config.kernel_sizes) / 4 / len(lens))
    # documents of the same number of clauses batched together: no padding anywhere (the CNN reads each
    # clause's own words whatever the batch), so this is the count of each document alone
    useful = 0
    for t in parts:
        by_len: dict[int, list[int]] = {}
        for i, n in enumerate(t.doc_lens.tolist()):
            by_len.setdefault(n, []).append(i)
        useful += count_flops(model, (t.batch(ix[s:s + 64]) for ix in by_len.values() for s in range(0, len(ix), 64)))
    result["flops_epoch_useful"] = useful
    result["runs"] = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        model.load_state_dict(state)
        executed = count_flops(model, train.batches(bs, shuffle=True, seed=1))
        shapes = matmul_shapes(model, bs, n_clauses, mean_windows * n_clauses)
        if args.transfer:
            shapes.update({f"transfer_{k}": v for k, v in matmul_shapes(model, train.transfer_batch_size, n_clauses,
                                                                           mean_windows * n_clauses).items()})
        before = matmul_rate(shapes)
        seconds = time_epochs(model, train, cfg, bs, args.epochs, autocast)
        after = matmul_rate(shapes)
        low = matmul_rate(shapes, dtype=torch.bfloat16) if autocast else None
        rates = {k: statistics.median([before[k], after[k]]) for k in shapes}
        ceiling = max(rates.values())
        epoch_s = statistics.median(seconds[1:])
        run = {"batch_size": bs, "epoch_seconds": seconds, "epoch_s": epoch_s,
               "matmul_gflops_before": before, "matmul_gflops_after": after, "ceiling_gflops": ceiling,
               "ceiling_shape": max(rates, key=rates.get), "shapes_mkn": shapes,
               "flops_epoch_executed": executed,
               "achieved_gflops_useful": useful / epoch_s / 1e9,
               "share_of_ceiling_useful": useful / epoch_s / 1e9 / ceiling,
               "share_of_ceiling_executed": executed / epoch_s / 1e9 / ceiling,
               "ceiling_epoch_s": useful / ceiling / 1e9}
        if low:
            run.update(matmul_gflops_bf16=low, bf16_ceiling_gflops=max(low.values()),
                       share_of_bf16_ceiling_useful=useful / epoch_s / 1e9 / max(low.values()))
        result["runs"].append(run)
        print(f"threads {args.threads} batch {bs} {args.precision}: epoch {epoch_s:.2f} s "
              f"(epochs {', '.join(f'{s:.2f}' for s in seconds)}), ceiling {ceiling:.0f} GFLOP/s "
              f"({run['ceiling_shape']}; before {before[run['ceiling_shape']]:.0f}, after "
              f"{after[run['ceiling_shape']]:.0f}), useful {useful / 1e9:.1f} GFLOP -> {run['ceiling_epoch_s']:.2f} s "
              f"at the ceiling, share {run['share_of_ceiling_useful']:.1%} (executed {executed / 1e9:.1f} GFLOP, "
              f"{run['share_of_ceiling_executed']:.1%})"
              + (f"; bf16 product rate {run['bf16_ceiling_gflops']:.0f} GFLOP/s, share of it "
                 f"{run['share_of_bf16_ceiling_useful']:.1%}" if low else ""), flush=True)
    result["load_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
