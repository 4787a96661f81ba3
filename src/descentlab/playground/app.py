"""The playground's web app (Starlette) and its server (uvicorn).

Routes: ``/`` the page; ``/static/*`` its script and style, ``/static/plotly.min.js`` the
plotting library from the installed ``plotly`` package (shipped with it: the page works
offline); ``GET /api/meta``; ``POST /api/surface``, ``/api/run``, ``/api/map`` (JSON in, JSON
out, see :mod:`descentlab.playground.compute`).

Security (local binding, allowed hosts, same-origin JSON requests, body limits, the
Content-Security-Policy) and the status codes: docs/playground.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import sys
import threading
import webbrowser
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from descentlab import _native

from . import compute

__all__ = ["CSP", "create_app", "plotly_js", "serve"]

#: Only the app's own scripts run; plotly sets inline styles; data: images are its icons.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)

_STATIC = Path(str(resources.files(__package__) / "static"))
_FILES = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` Python package ships it (its license: MIT, in the
    package's dist-info and at the top of the file)."""
    try:
        import plotly
    except ImportError:
        raise RuntimeError(
            "the playground needs the 'plotly' package for its bundled plotly.js: "
            "pip install 'descentlab[playground]'"
        ) from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"plotly.min.js not found in the plotly package ({path})")
    return path


class _Headers:
    """Security headers on every response, and a hard limit on the body size."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                error = {"error": f"request body larger than {self.max_body} bytes"}
                await JSONResponse(error, status_code=413)(scope, receive, send)
                return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _check_sender(request: Request) -> None:
    """A computation is asked for by the playground's own page only: a request that a page of
    another origin sent (its ``Origin`` header names another site, or ``null``) gets 403,
    and a body that is not declared ``application/json`` 415 -- the forms and ``text/plain``
    posts a browser sends cross-origin without asking first (a CORS "simple request") never
    reach the computation. Requests without ``Origin`` (not from a browser page) pass."""
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        if origin.lower().rstrip("/") != own:
            raise _HTTPError(403, f"requests from {origin} are refused: only the playground's "
                             "own page may ask for a computation")  # fmt: skip
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise _HTTPError(415, f"the body must be JSON sent as application/json, got "
                         f"{kind or 'no content type'}")  # fmt: skip


async def _json_body(request: Request) -> Any:
    _check_sender(request)
    limit = compute.LIMITS["body_bytes"]
    body = b""
    async for chunk in request.stream():  # also bounds bodies sent without Content-Length
        body += chunk
        if len(body) > limit:
            raise _HTTPError(413, f"request body larger than {limit} bytes")
    too_deep = _HTTPError(400, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _HTTPError(400, f"malformed JSON: {exc}") from None
    except RecursionError:  # json's parser recurses once per level
        raise too_deep from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


#: how deep a request's JSON may nest (the deepest request, ``/api/run``'s starts, has 3)
MAX_JSON_DEPTH = 16


def _depth(value: Any) -> int:
    """How many levels of lists and objects ``value`` nests (counted without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            todo.extend((x, level + 1) for x in item)
    return deepest


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _watch_disconnect(request: Request, gone: threading.Event) -> None:
    """Set ``gone`` when the client disconnects (the page aborts a superseded request).

    Called once the body has been read, so the next ASGI message is the disconnect."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class _Stopping:
    """The server is stopping (Ctrl-C): computations not yet begun are dropped and requests
    waiting for a computation are answered (503) at once, so that the server closes without
    waiting for any of them.

    Computations run in daemon threads (one at a time, :func:`compute._machine`): one under
    way when the server stops is abandoned, and holds neither the server nor the process.
    All bookkeeping happens on the event loop's thread; :meth:`stop` may be called from a
    signal handler there or from any other thread.
    """

    def __init__(self) -> None:
        self.flag = threading.Event()
        self._cancels: set[threading.Event] = set()
        self._waiting: set[asyncio.Future] = set()

    def stop(self) -> None:
        self.flag.set()
        for cancel in list(self._cancels):
            cancel.set()
        for fut in list(self._waiting):
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing waits
                fut.get_loop().call_soon_threadsafe(_settle, fut, None, _HTTPError(
                    503, "the playground is stopping"))  # fmt: skip

    async def compute(self, fn: Any, req: Any, cancel: threading.Event | None) -> Any:
        """``fn(req)`` (with ``cancel=``) in a daemon thread; :class:`_HTTPError` 503 when the
        server stops first."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        kwargs = {} if cancel is None else {"cancel": cancel}

        def work() -> None:
            try:
                out, exc = fn(req, **kwargs), None
            except Exception as err:
                out, exc = None, err
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, fut, out, exc)

        if cancel is not None:
            self._cancels.add(cancel)
        self._waiting.add(fut)
        try:
            if self.flag.is_set():
                raise _HTTPError(503, "the playground is stopping")
            threading.Thread(target=work, daemon=True, name="playground-compute").start()
            return await fut
        finally:
            self._waiting.discard(fut)
            if cancel is not None:
                self._cancels.discard(cancel)


def _settle(fut: asyncio.Future, out: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(out)


def _endpoint(fn: Any, stopping: _Stopping, cancellable: bool = False) -> Any:
    async def handler(request: Request) -> Response:
        try:
            req = await _json_body(request)
            # the computation holds the CPU: run it in a worker thread, not the event loop
            if not cancellable:
                out = await stopping.compute(fn, req, None)
            else:  # a client that has gone (a drag superseded it) stops the work not begun
                gone = threading.Event()
                watch = asyncio.ensure_future(_watch_disconnect(request, gone))
                try:
                    out = await stopping.compute(fn, req, gone)
                finally:
                    watch.cancel()
        except _HTTPError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except compute.RequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except compute.Cancelled as exc:  # 499: nginx's "client closed request"
            return JSONResponse({"error": str(exc)}, status_code=499)
        return JSONResponse(out)

    return handler


async def _meta(request: Request) -> Response:
    return JSONResponse(compute.meta())


async def _index(request: Request) -> Response:
    return FileResponse(_STATIC / "index.html", media_type="text/html")


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "plotly.min.js":
        return FileResponse(plotly_js(), media_type="text/javascript")
    if name not in _FILES:  # a fixed list: no path ever reaches the file system
        return JSONResponse({"error": f"no such file: {name!r}"}, status_code=404)
    return FileResponse(_STATIC / name, media_type=_FILES[name])


def create_app(
    allowed_hosts: list[str] | None = None, stopping: _Stopping | None = None
) -> Starlette:
    """The playground app. ``allowed_hosts``: Host header values accepted (default: the
    loopback names; ``testserver`` is Starlette's test client); ``stopping``: what
    :func:`serve` calls on Ctrl-C (default: a fresh one, never called)."""
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "[::1]", "testserver"]
    stopping = stopping or _Stopping()
    routes = [
        Route("/", _index),
        Route("/static/{name}", _static),
        Route("/api/meta", _meta),
        Route("/api/surface", _endpoint(compute.surface, stopping), methods=["POST"]),
        Route(
            "/api/run", _endpoint(compute.run_paths, stopping, cancellable=True), methods=["POST"]
        ),
        Route("/api/map", _endpoint(compute.lr_map, stopping, cancellable=True), methods=["POST"]),
    ]
    middleware = [
        Middleware(_Headers, max_body=compute.LIMITS["body_bytes"]),
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
    ]
    return Starlette(routes=routes, middleware=middleware)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warm_up(stop: threading.Event | None = None) -> None:
    """Compile the trajectory kernels of the optimizers each view opens with (their served
    defaults: Rosenbrock, the parabola, the quadratic) in the background, so that the first
    picture does not wait for the compiler; ``stop`` ends it, a compilation under way
    abandoned (its compiler killed, its temporaries removed)."""
    stop = threading.Event() if stop is None else stop
    with contextlib.suppress(_native.CompileAbandoned), _native.abandoned_when(stop):
        for land in ("rosenbrock", "parabola", "quadratic"):
            f = compute.opened(land)
            d = compute.defaults(f)
            for name in d["on"]:
                if stop.is_set():
                    return
                compute.run_paths(
                    {"landscape": land, "starts": [list(f.start)], "steps": 2,
                     "optimizers": [{"name": name, **d["optimizers"][name]}]}
                )  # fmt: skip


def serve(
    host: str = "127.0.0.1", port: int = 0, *, open_browser: bool = True, warm: bool = True
) -> None:
    """Run the playground until Ctrl-C. ``port=0`` takes a free port; the URL is printed once
    the server accepts connections on it.

    Args:
        host: the address to serve on; the loopback address by default. Any other address is
            served with a warning on stderr (anyone who can reach the machine can use it).
        port: the port (0: a free one, printed).
        open_browser: open the page in the default browser once the server accepts
            connections.
        warm: compile the trajectory kernels of the optimizers each view opens with in the
            background, so that the first picture does not wait for the compiler.

    Returns:
        None, once the server has stopped (Ctrl-C or SIGTERM; it prints
        ``descentlab playground: stopped``).

    Writes:
        Nothing but the trajectory kernels it compiles (the kernels' cache, as
        :func:`descentlab.problems.trajectories.run`); the views are computed per request and
        kept in memory.

    Raises:
        ValueError: a port outside 0..65535, or an empty host (it would bind every interface).
        OSError: the address cannot be bound (a busy port, a name that does not resolve); one
            line naming the host and port.

    Example:
        ``serve()`` blocks until Ctrl-C (``descentlab playground --port 8765`` calls it), so
        the example the build runs is its refusal of bad input, before anything is bound:

        >>> from descentlab.playground.app import serve
        >>> serve(port=70000)
        Traceback (most recent call last):
        ValueError: port must be in 0..65535, got 70000
        >>> serve(host=" ")
        Traceback (most recent call last):
        ValueError: host must be an address to bind (e.g. 127.0.0.1), got ' '
    """
    import uvicorn

    sock, hosts = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    stop = threading.Event()
    warming = threading.Thread(target=warm_up, args=(stop,), daemon=True, name="playground-warm-up")
    if warm:
        warming.start()
    stopping = _Stopping()
    # no lifespan task: nothing to start or stop, and no traceback from it on Ctrl-C
    config = uvicorn.Config(
        create_app(hosts, stopping), log_level="warning", access_log=False, lifespan="off"
    )
    server = _server_class(uvicorn.Server, url, open_browser, stopping)(config)
    try:
        from descentlab._usercode import signals_handed_over

        # (a second Ctrl-C during shutdown; the server's own handlers stop it)
        with contextlib.suppress(KeyboardInterrupt), signals_handed_over():
            server.run(sockets=[sock])
    finally:
        stopping.stop()  # the server has closed (also when it failed): drop work not begun
        sock.close()
        stop.set()
        if warming.is_alive():  # its compilation under way abandoned, cleaned up after
            warming.join(timeout=30)
    print("descentlab playground: stopped", flush=True)


def _bind(host: str, port: int) -> tuple[socket.socket, list[str]]:
    """The socket bound to ``(host, port)`` and the hosts the app answers (bad input refused
    before anything is bound; a non-loopback address served with a warning)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be an address to bind (e.g. 127.0.0.1), got {host!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # a busy port, a name that does not resolve, a foreign address
        sock.close()
        raise OSError(
            exc.errno, f"cannot serve on host {host!r}, port {port}: {exc.strerror or exc}"
        ) from None
    if is_loopback(host):  # (once bound: an address that cannot be served is refused)
        return sock, ["127.0.0.1", "localhost", "[::1]"]
    print(
        f"descentlab playground: WARNING: serving on {host}, not on the loopback address: "
        "anyone who can reach this machine can use the playground (and its CPU time)",
        file=sys.stderr,
    )
    return sock, ["*"]


def _server_class(base: type, url: str, open_browser: bool, stopping: _Stopping) -> type:
    """uvicorn's server that prints the URL once it accepts connections and drops work not
    begun on Ctrl-C or SIGTERM."""

    class Server(base):  # type: ignore[misc, valid-type]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:  # it could not start (uvicorn said why)
                return
            # the URL only once the server accepts connections on it (printed at the bind,
            # before the socket listened, a browser or script opening it at once was refused)
            print(f"descentlab playground: {url}  (Ctrl-C stops it)", flush=True)
            if open_browser:
                threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

        def handle_exit(self, sig: int, frame: Any) -> None:  # Ctrl-C, SIGTERM
            stopping.stop()  # before uvicorn waits for the open requests: none is left open
            super().handle_exit(sig, frame)

    return Server
