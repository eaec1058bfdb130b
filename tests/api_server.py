"""A real `indexer serve` application on a free loopback port, run by uvicorn in a thread of
the test process (so a test can hand it fakes), and stopped by itself."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx

START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(settings, options=None, loaders=None):
    """Serve `create_app(settings, options, loaders)` on 127.0.0.1; yields its base URL."""
    import uvicorn

    from api.app import create_app
    from api.state import ApiOptions

    port = free_port()
    options = options or ApiOptions()
    options = type(options)(**{**options.__dict__, "host": "127.0.0.1", "port": port})
    app = create_app(settings, options, loaders)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on", limit_concurrency=1024))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the API server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(15)


def client(base: str, token: str | None = None, timeout: float = 120.0) -> httpx.Client:
    """An HTTP client for the server, never through a proxy."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=timeout, trust_env=False)
