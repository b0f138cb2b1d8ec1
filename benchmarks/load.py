"""Load check of ``ecpe serve``: N concurrent clients send a fixed number of requests over loopback.

    python benchmarks/load.py --model runs/demo/fold1/model.pt --clients 8 --requests 400

Starts ``ecpe serve`` as a child process on 127.0.0.1 (a free port), waits for ``/health``, runs the clients
(threads with keep-alive connections, bounded by ``--requests`` and ``--time-limit``), stops the server and
prints ``key: value`` lines: requests/s, p50/p99 latency, error count, model calls and the server's RSS.
Exits 1 if any request failed. ``--tiny`` uses a tiny untrained model instead of ``--model``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"  # loopback only
TEXTS = [
    "昨天上午，警察把丢失的钱交给了老人，并告诉他小偷已经被抓住了。老人非常高兴，把钱存进了银行。",
    "听到儿子考上大学的消息，母亲激动得流下了眼泪。",
    "由于连日暴雨，村里的道路被冲毁，村民们非常着急，纷纷出来帮忙抢修。",
    "他在比赛中获得了冠军，全家人都为他感到骄傲，邻居们也纷纷前来祝贺。",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of a process (Linux /proc), now and at its peak, in MiB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def get_json(port: int, path: str, timeout: float = 5.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def start_server(model: str, port: int, args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ecpe.cli", "serve", "--model", model, "--host", HOST, "--port", str(port),
           "--no-access-log", "--log-level", "warning", "--max-batch", str(args.max_batch),
           "--batch-wait-ms", str(args.batch_wait_ms)]
    cmd += ["--threads", str(args.threads)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{proc.stderr.read()[-2000:]}")
        try:
            status, body = get_json(port, "/health", timeout=2)
            if status == 200 and body.get("status") == "ok":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not ready within {timeout:.0f}s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_clients(port: int, clients: int, requests: int, time_limit: float, docs_per_request: int):
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + time_limit

    def body_for(i: int) -> bytes:
        if docs_per_request == 1:
            return json.dumps({"text": TEXTS[i % len(TEXTS)]}).encode()
        docs = [TEXTS[(i + k) % len(TEXTS)] for k in range(docs_per_request)]
        return json.dumps({"documents": docs}).encode()

    def client():
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = state["next"]
                    if i >= requests:
                        return
                    state["next"] = i + 1
                body = body_for(i)
                t = time.perf_counter()
                try:
                    conn.request("POST", "/extract", body=body, headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    ok = r.status == 200 and b'"pairs"' in data
                    err = None if ok else f"HTTP {r.status}: {data[:200]!r}"
                except (OSError, http.client.HTTPException) as e:
                    err = f"{e.__class__.__name__}: {e}"
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=60)
                dt = time.perf_counter() - t
                with lock:
                    if err:
                        errors.append(err)
                    else:
                        latencies.append(dt)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, name=f"client{k}") for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, errors, state["next"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Load check of ecpe serve over loopback (bounded in count and time).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a model.pt written by ecpe train")
    src.add_argument("--tiny", action="store_true", help="a tiny untrained model (figures then say little)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--requests", type=int, default=400, help="requests in all (default 400)")
    p.add_argument("--docs-per-request", type=int, default=1, help="documents per request (default 1: {text})")
    p.add_argument("--time-limit", type=float, default=120.0, help="stop sending after this many seconds (default 120)")
    p.add_argument("--max-batch", type=int, default=64, help="server --max-batch (default 64; 1 = no batching)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0, help="server --batch-wait-ms (default 2)")
    p.add_argument("--threads", type=int, default=1, help="server torch threads (default 1, as ecpe serve; 0 = torch's choice)")
    p.add_argument("--warmup", type=int, default=10, help="untimed requests first (default 10)")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 256 and 1 <= args.requests <= 1_000_000 and 0 < args.time_limit <= 3600):
        p.error("--clients 1..256, --requests 1..1000000, --time-limit up to 3600 s")

    tmp = tempfile.TemporaryDirectory(prefix="ecpe-load-")
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test helpers
        from tiny_model import make_tiny_model

        model = str(make_tiny_model(Path(tmp.name) / "tiny.pt", rig=False))
    else:
        model = args.model
        if not os.path.exists(model):
            print(f"load.py: model not found: {model}", file=sys.stderr)
            return 2
    port = free_port()
    proc = start_server(model, port, args)
    try:
        wait_ready(proc, port, timeout=180)
        if args.warmup:
            run_clients(port, min(args.clients, args.warmup), args.warmup, 60, 1)
        _, before = get_json(port, "/health")
        seconds, lat, errors, sent = run_clients(port, args.clients, args.requests, args.time_limit,
                                                 args.docs_per_request)
        _, after = get_json(port, "/health")
        mem = rss_mib(proc.pid)
    except (RuntimeError, TimeoutError) as e:
        print(f"load.py: {e}", file=sys.stderr)
        return 1
    finally:
        stop_server(proc)
        tmp.cleanup()
    calls = after["model_calls"] - before["model_calls"]
    docs = after["documents"] - before["documents"]
    done = len(lat)
    lines = {
        "model": model + (" (tiny untrained model)" if args.tiny else ""),
        "clients": args.clients,
        "requests": args.requests,
        "sent": sent,
        "completed": done,
        "errors": len(errors),
        "docs_per_request": args.docs_per_request,
        "seconds": f"{seconds:.2f}",
        "requests_per_s": f"{done / seconds:.1f}" if seconds > 0 else "nan",
        "latency_p50_ms": f"{percentile(lat, 50) * 1000:.1f}",
        "latency_p99_ms": f"{percentile(lat, 99) * 1000:.1f}",
        "latency_max_ms": f"{max(lat) * 1000:.1f}" if lat else "nan",
        "model_calls": calls,
        "documents_per_model_call": f"{docs / calls:.2f}" if calls else "nan",
        "server_rss_mib": f"{mem.get('VmRSS', float('nan')):.0f}",
        "server_peak_rss_mib": f"{mem.get('VmHWM', float('nan')):.0f}",
        "server_torch_threads": args.threads or "torch's choice",
        "cpus": os.cpu_count(),
        "load_average_1min": f"{os.getloadavg()[0]:.2f}",
    }
    for k, v in lines.items():
        print(f"{k}: {v}")
    for e in errors[:5]:
        print(f"error: {e}", file=sys.stderr)
    if sent < args.requests:
        print(f"load.py: time limit reached after {sent} of {args.requests} requests", file=sys.stderr)
    return 1 if errors or sent < args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
