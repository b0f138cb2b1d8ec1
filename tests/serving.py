"""Run the service on a background thread (tests, screenshots): ``with serve_in_thread(app) as url: ...``."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0,
                    log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``host`` (loopback by default) and yield its base URL.

    ``port=0`` takes a free port: the socket is bound here and handed to uvicorn, so there is no race.
    The server is stopped (and its lifespan shut down) on leaving the block.
    """
    import uvicorn  # the 'serve' extra; tests that use this skip without it

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on"))
    errors: list[BaseException] = []

    def run():
        try:
            server.run(sockets=[sock])
        except BaseException as e:  # noqa: BLE001 - reported to the caller below
            errors.append(e)

    thread = threading.Thread(target=run, name="ecpe-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if errors or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"server did not start: {errors[0] if errors else 'thread ended'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise TimeoutError(f"server did not start within {timeout:.0f}s")
        time.sleep(0.05)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
