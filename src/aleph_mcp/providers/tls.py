"""The trusted certificates, loaded in a thread while the server starts.

httpx2 loads the system's CA certificates (~20 ms) when a client is made. `warm_up()` (called by
`serve --http` first thing) loads the same default context in a thread while the imports and the server
build run; `context()` hands it to the client, waiting for it if it is not ready yet. Without a warm-up,
`context()` is None: httpx2's default. (Over stdio the client is made at its first request instead,
`server/first_use.py`, so start-up loads no certificates at all.)
"""

from __future__ import annotations

import ssl
import threading
from concurrent.futures import Future

_loading: Future[ssl.SSLContext] | None = None


def _load(into: Future[ssl.SSLContext]) -> None:
    try:
        import httpcore2  # in this thread too: httpx2's own default context, made exactly as it makes it

        into.set_result(httpcore2.default_ssl_context())
    except BaseException as exc:  # handed to whoever asks for the context
        into.set_exception(exc)


def warm_up() -> None:
    global _loading
    if _loading is None:
        _loading = Future()
        threading.Thread(target=_load, args=(_loading,), name="tls-warm-up", daemon=True).start()


def context() -> ssl.SSLContext | None:
    return _loading.result() if _loading is not None else None
