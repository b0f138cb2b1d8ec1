"""``ecpe serve``: an HTTP API and a web page over a saved model.

    ecpe serve --model runs/demo/fold1/model.pt [--host 127.0.0.1] [--port 8000]

then open http://127.0.0.1:8000/ (the page), /docs (OpenAPI), or ``POST /extract``.

This module is imported by every ``ecpe`` command (to register the subcommand), so it imports neither
FastAPI nor uvicorn at module level (nor :mod:`ecpe.serve.app`, which needs FastAPI); they come with the
``serve`` extra (``pip install 'ecpe[serve]'``).
"""
from __future__ import annotations

import logging
import sys

import torch

from ..cache import find_model
from ..inference import MAX_CLAUSES, Extractor
from ..options import CLIError, add_device_argument, add_model_argument, add_precision_argument
from .limits import DEFAULTS, ServerSettings

__all__ = ["add_subcommand", "create_app", "ServerSettings"]

log = logging.getLogger("ecpe.serve")


def __getattr__(name: str):  # lazy: ``from ecpe.serve import create_app`` pulls in FastAPI only then
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as e:
        raise CLIError(f"ecpe serve needs FastAPI and uvicorn ({e.name} is missing): "
                       "pip install 'ecpe[serve]'") from None
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0..65535, got {args.port}")
    try:
        settings = DEFAULTS.replace(max_body_bytes=args.max_body_bytes, max_documents=args.max_documents,
                                    max_clauses=args.max_clauses, max_chars=args.max_chars, max_batch=args.max_batch,
                                    batch_wait_ms=args.batch_wait_ms, read_timeout_s=args.read_timeout)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.threads < 0:
        raise CLIError(f"--threads must be 0 (torch's choice) or more, got {args.threads}")
    args.model = args.model or [str(find_model())]
    if args.max_connections < 1:
        raise CLIError(f"--max-connections must be 1 or more, got {args.max_connections}")
    extractor = Extractor.load(args.model, device=args.device, precision=args.precision)  # FileNotFoundError / ValueError: one-line errors
    if args.threads:
        torch.set_num_threads(args.threads)
    app = create_app(extractor, settings)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ecpe serve: listening on {args.host}, not only on this machine; the API has no authentication",
              file=sys.stderr)
    info = extractor.info
    print(f"ecpe serve: model {info.get('model')} from {', '.join(args.model)}; page http://{_url_host(args.host)}:{args.port}/ "
          f"API docs /docs", file=sys.stderr)
    level = "debug" if args.verbose else args.log_level
    uvicorn.run(app, host=args.host, port=args.port, log_level=level, access_log=args.access_log,
                timeout_keep_alive=5, limit_concurrency=args.max_connections)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def add_subcommand(sub) -> None:
    """Register ``ecpe serve`` on the ``ecpe`` parser's subparsers (called by :func:`ecpe.cli.build_parser`)."""
    d = DEFAULTS
    s = sub.add_parser("serve", help="HTTP API and a web page over a saved model",
                       description="Serve a model: POST /extract (JSON), GET /health, GET /model, OpenAPI docs at "
                                   "/docs, and a web page at / that draws emotion -> cause links. Concurrent "
                                   "requests are batched into one model call.")
    add_model_argument(s, "serve E2EECPE models averaged as one")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                   help=f"largest request body, else 413 (default {d.max_body_bytes})")
    s.add_argument("--max-documents", type=int, default=d.max_documents,
                   help=f"documents per request, else 422 (default {d.max_documents})")
    s.add_argument("--max-clauses", type=int, default=d.documents.max_clauses,
                   help=f"clauses per document, else 422 (default {d.documents.max_clauses}, at most {MAX_CLAUSES})")
    s.add_argument("--max-chars", type=int, default=d.documents.max_chars,
                   help=f"characters per document, else 422 (default {d.documents.max_chars})")
    s.add_argument("--max-batch", type=int, default=d.max_batch,
                   help=f"documents gathered from concurrent requests into one model call (default {d.max_batch})")
    s.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                   help=f"how long to wait for more requests before a model call (default {d.batch_wait_ms})")
    s.add_argument("--read-timeout", type=float, default=d.read_timeout_s, metavar="S",
                   help=f"seconds a request body may take to arrive, else 408 (default {d.read_timeout_s:g})")
    s.add_argument("--max-connections", type=int, default=1000,
                   help="concurrent connections and requests, beyond which uvicorn answers 503 (default 1000)")
    s.add_argument("--threads", type=int, default=1,
                   help="torch threads for the model (default 1: the event loop and the segmenter need a core, and "
                        "on a busy machine spinning torch threads slow every request; 0 = torch's choice)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="server log level (default info)")
    s.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log each request")
    add_device_argument(s)
    add_precision_argument(s)
    s.set_defaults(func=cmd_serve)
