"""Throughput of corpus-scale extraction (`ecpe predict --input DIR --output DIR`): the single-process engine
and Ray with 1 and 2 workers, on the same shards; peak memory; Ray's overhead per document; and where the
time of one process goes (segmentation vs the model).

    python benchmarks/batch.py --data ../shared/data/ecpe-zh --docs 50000 --shards 8

The input is the NEWS documents as raw text (each document's clauses joined with '，'), repeated to ``--docs``
documents and cut into ``--shards`` JSONL shards. Each engine runs as a real `ecpe predict` subprocess, as a
user would run it; its peak memory is the largest sum of PSS (resident memory, shared pages split between
the processes sharing them) over the process and all its descendants (for Ray: the driver, the GCS, the raylet
and the workers), and its CPU time the sum over the same processes, both sampled every 0.2 s from /proc.
Documents/s "steady" is the job's own figure (.ecpe/summary.json): the rate after its first lines were written,
i.e. without start-up (model load; for Ray the cluster and the workers). Each engine is also run on a
100-document shard, whose CPU time is subtracted to give CPU ms per document (CPU time depends far less than
wall time on what else the machine runs).

By default the model is an untrained E2EECPE of the paper's size (200/50/300/100) over the NEWS vocabulary:
its speed is that of a trained one (--model PATH to use one). Results (JSON) go to --out.

``--driver-share`` measures something else: how much of one CPU the driver of ``--engine ray`` (the
``ecpe predict`` process itself) uses, run in this process: ``time.process_time()`` of this process (every
thread: Ray's own included) against wall time, for a small job (--docs, default 20,000, in --shards shards, a
tiny model so that the workers are quick) and a 100-document one, whose difference gives the driver's CPU
per document:

    python benchmarks/batch.py --driver-share --data ../shared/data/ecpe-zh
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from ecpe.data.corpus import read_documents
from ecpe.data.text import prepare_text


def news_texts(data: Path) -> list[str]:
    return ["，".join("".join(c) for c in d.clauses) + "。" for d in read_documents(data / "all_data_pair.txt")]


def write_shards(root: Path, texts: list[str], n_docs: int, n_shards: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    per = -(-n_docs // n_shards)
    k = 0
    for s in range(n_shards):
        with open(root / f"part-{s:04d}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(min(per, n_docs - k)):
                f.write(json.dumps({"id": k, "text": texts[k % len(texts)]}, ensure_ascii=False) + "\n")
                k += 1


def paper_size_model(path: Path, data: Path) -> Path:
    from ecpe.data.vocab import Vocab
    from ecpe.models import build_model

    torch.manual_seed(0)
    docs = read_documents(data / "all_data_pair.txt")
    model = build_model("e2eecpe", Vocab.build(c for d in docs for c in d.clauses), {})
    return _as_trained(model, path, data)


def _as_trained(model, path: Path, data: Path) -> Path:
    """Save an untrained model with the threshold that keeps as many pairs as the corpus has (1.11 per
    document; untrained, M-hat is near 0.5 everywhere), so that the output, and the time spent writing it, is
    that of a trained model."""
    from ecpe.inference import Extractor
    from ecpe.models import save_model

    sample = news_texts(data)[:300]
    scores = sorted((v for r in Extractor(model).extract_many(sample, threshold=0.0, matrix=True)
                     for row in r["pair_matrix"] for v in row), reverse=True)
    model.config.threshold = scores[round(1.11 * len(sample))]
    return save_model(model, path, {"segmenter": "jieba"}, {"protocol": "untrained (benchmark)", "split": "none"})


def _tree(root: int) -> list[int]:
    """``root`` and every descendant process."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.append(c)
                frontier.append(c)
    return tree


def _pss_and_cpu(pid: int) -> tuple[int, float]:
    """Proportional set size (shared pages, e.g. Ray's object store, split between the processes that map
    them) in bytes, and CPU seconds used so far, of one process."""
    pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return pss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], env: dict) -> dict:
    """Run a command: wall time, peak memory (PSS summed over its process tree) and CPU seconds of the tree
    (sampled every 0.2 s; a process's last 0.2 s may be missed). CPU seconds do not depend on what else
    the machine runs; wall time does."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, cpu = [0], {}

    def sample():
        while proc.poll() is None:
            total = 0
            for pid in _tree(proc.pid):
                try:
                    pss, cpu[pid] = _pss_and_cpu(pid)
                except (OSError, IndexError, ValueError):
                    continue
                total += pss
            peak[0] = max(peak[0], total)
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    t.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": round(seconds, 2), "cpu_seconds": round(sum(cpu.values()), 2),
            "peak_pss_mb": round(peak[0] / 2 ** 20), "summary": err.strip().splitlines()[-1]}


def where_the_time_goes(model: Path, texts: list[str], n: int) -> dict:
    """One process, one thread: seconds per document of segmentation alone and of the whole extraction."""
    from ecpe.inference import Extractor

    torch.set_num_threads(1)
    ex = Extractor.load(model)
    sample = [texts[i % len(texts)] for i in range(n)]
    ex.extract_many(sample[:200])  # warm up
    t = time.perf_counter()
    for text in sample:
        prepare_text(text, ex.segmenter)
    seg = time.perf_counter() - t
    t = time.perf_counter()
    ex.extract_many(sample)
    total = time.perf_counter() - t
    return {"documents": n, "segmentation_ms_per_doc": round(1000 * seg / n, 3),
            "total_ms_per_doc": round(1000 * total / n, 3), "segmentation_share": round(seg / total, 3)}


def tiny_model(path: Path, data: Path) -> Path:
    """An untrained E2EECPE of tiny sizes over the NEWS vocabulary: fast workers, the same output records."""
    from ecpe.data.vocab import Vocab
    from ecpe.models import build_model

    torch.manual_seed(0)
    docs = read_documents(data / "all_data_pair.txt")
    model = build_model("e2eecpe", Vocab.build(c for d in docs for c in d.clauses),
                        {"embed_dim": 16, "filters": 4, "hidden": 8, "vertex_dim": 8})
    return _as_trained(model, path, data)


def driver_share(args, texts: list[str], work: Path) -> dict:
    """CPU seconds of this process (the driver of `ecpe predict --engine ray --workers N`) against wall seconds,
    for --docs documents and for 100 (the fixed cost: Ray's start-up, the plan)."""
    import logging

    from ecpe.cli import main as ecpe_main

    logging.disable(logging.WARNING)  # Ray's start-up lines
    model = Path(args.model) if args.model else tiny_model(work / "tiny.pt", Path(args.data))
    res = {"date": dt.datetime.now().isoformat(timespec="minutes"), "cpus": os.cpu_count(),
           "load_average_at_start": os.getloadavg(), "workers": args.workers, "documents": args.docs,
           "shards": args.shards, "model": str(args.model or "untrained tiny E2EECPE (16/4/8/8)")}
    # the first run pays this process's one-time costs (imports of Ray's modules): a warm-up, not recorded
    for name, n, shards in (("warm-up", 100, 1), ("small", 100, 1), ("full", args.docs, args.shards)):
        inp, out = work / f"share-in-{name}", work / f"share-out-{name}"
        write_shards(inp, texts, n, shards)
        wall, cpu = time.perf_counter(), time.process_time()
        # --actors: the name that the Ray Data engine (commit 64de577) and the current one both read
        rc = ecpe_main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q",
                        "--engine", "ray", "--actors", str(args.workers), "--address", "local"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if rc not in (0, 1):
            raise RuntimeError(f"ecpe predict exited {rc}")
        if name == "warm-up":
            continue
        res[name] = {"documents": n, "wall_s": round(wall, 2), "driver_cpu_s": round(cpu, 2),
                     "driver_cpu_share": round(cpu / wall, 3)}
        print(name, json.dumps(res[name]), file=sys.stderr)
    extra = args.docs - 100
    res["driver_cpu_us_per_doc"] = round(1e6 * (res["full"]["driver_cpu_s"] - res["small"]["driver_cpu_s"]) / extra, 1)
    res["load_average_at_end"] = os.getloadavg()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/ecpe-zh")
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--model", help="a model.pt (default: an untrained paper-size E2EECPE)")
    ap.add_argument("--engines", default="local,local-1thread,ray-1,ray-2",
                    help="comma-separated: local (torch's default threads), local-1thread, ray-N (N workers)")
    ap.add_argument("--out", default="docs/results/batch")
    ap.add_argument("--driver-share", action="store_true",
                    help="measure the CPU share of the Ray driver only (in this process; --docs default 20,000)")
    ap.add_argument("--workers", type=int, default=2, help="--driver-share: Ray workers (default 2)")
    args = ap.parse_args()

    texts = news_texts(Path(args.data))
    work = Path(tempfile.mkdtemp(prefix="ecpe-bench-batch-"))
    if args.driver_share:
        if args.docs == ap.get_default("docs"):
            args.docs = 20_000
        res = driver_share(args, texts, work)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"driver_share_{dt.datetime.now().strftime('%Y-%m-%dT%H%M')}.json"
        path.write_text(json.dumps(res, indent=1))
        print(json.dumps(res, indent=1))
        print(f"written: {path}", file=sys.stderr)
        return
    model = Path(args.model) if args.model else paper_size_model(work / "model.pt", Path(args.data))
    big, small = work / "in", work / "in-small"
    write_shards(big, texts, args.docs, args.shards)
    write_shards(small, texts, 100, 1)
    results = {"date": dt.datetime.now().isoformat(timespec="minutes"), "machine": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "documents": args.docs,
               "shards": args.shards, "model": str(args.model or "untrained paper-size E2EECPE"),
               "torch_threads_default": torch.get_num_threads(), "engines": {}}
    try:
        with open("/proc/cpuinfo") as f:
            results["machine"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results["profile_one_thread"] = where_the_time_goes(model, texts, 3000)
    print(json.dumps(results["profile_one_thread"]), file=sys.stderr)
    for engine in args.engines.split(","):
        env = {**os.environ}
        extra: list[str] = []
        if engine == "local-1thread":
            extra = ["--threads", "1"]
        elif engine.startswith("ray-"):
            extra = ["--engine", "ray", "--workers", engine.split("-")[1]]
        elif engine != "local":
            raise SystemExit(f"unknown engine {engine}")
        res = {}
        for name, inp, n in (("fixed", small, 100), ("full", big, args.docs)):
            out = work / f"out-{engine}-{name}"
            cmd = [sys.executable, "-m", "ecpe.cli", "predict", "--model", str(model), "--input", str(inp),
                   "--output", str(out), "-q", *extra]
            res[name] = run(cmd, env)
            summary = json.loads((out / ".ecpe" / "summary.json").read_text())
            res[name]["startup_s"] = summary["startup_seconds"]  # the job's own clock: to its first lines out
            res[name]["steady_docs_per_s"] = summary["steady_lines_per_s"]  # after them
            print(engine, name, json.dumps(res[name]), file=sys.stderr)
        res["docs_per_s"] = round(args.docs / res["full"]["seconds"], 1)  # end to end, process start included
        res["docs_per_s_steady"] = res["full"]["steady_docs_per_s"]
        res["cpu_ms_per_doc_steady"] = round(1000 * (res["full"]["cpu_seconds"] - res["fixed"]["cpu_seconds"])
                                             / (args.docs - 100), 3)
        results["engines"][engine] = res
    base = results["engines"].get("local-1thread")
    for engine, res in results["engines"].items():
        if engine.startswith("ray-1") and base:  # Ray with one 1-thread worker against one 1-thread process
            res["ray_overhead_ms_per_doc"] = round(1000 * (1 / res["docs_per_s_steady"] - 1 / base["docs_per_s_steady"]), 3)
            res["ray_overhead_cpu_ms_per_doc"] = round(res["cpu_ms_per_doc_steady"] - base["cpu_ms_per_doc_steady"], 3)
            res["ray_fixed_overhead_s"] = round(res["fixed"]["seconds"] - base["fixed"]["seconds"], 2)
            res["ray_startup_overhead_s"] = round(res["full"]["startup_s"] - base["full"]["startup_s"], 2)
    results["load_average_at_end"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M")
    (out / f"batch_{stamp}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    print(f"written: {out / f'batch_{stamp}.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
