"""``trackledger server``: the tracking server, one uvicorn process (httptools + uvloop)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib.abc
import ipaddress
import logging
import resource
import signal
import socket
import sys
from typing import TYPE_CHECKING

from trackledger.api.commands import CommandError
from trackledger.api.settings import Settings

if TYPE_CHECKING:
    from trackledger.api.context import ServerContext


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "server",
        help="run the MLflow-compatible tracking server",
        description="Serve the MLflow REST API, the artifact proxy, the native ledger/SQL API, the web UI.",
    )
    parser.set_defaults(run=run)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, with TCP_NODELAY set so accepted connections inherit it (no Nagle stalls)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {port} on {host} is in use (another server?): choose another with --port "
                "(or TRACKLEDGER_PORT)"
            ) from None
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"cannot listen on {host} port {port}: {reason} (check --host and --port)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _raise_open_files_limit() -> None:
    """Every connection holds a descriptor: take the hard limit (often 1,024 soft), not the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit cannot be the soft one
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _open(ctx: ServerContext, sock: socket.socket) -> None:
    """Open the ledger and the projection before serving, so that a state directory in use is one
    line of error, not a traceback from the application's startup after "serving"."""
    from trackledger.ledger import StateDirInUse

    try:
        ctx.open()
    except StateDirInUse:
        sock.close()
        raise CommandError(
            f"another server (or a rebuild) is using the state directory {ctx.settings.state_path}: "
            "stop it, or give this server its own --state-dir"
        ) from None
    except OSError as exc:  # a state directory it may not write, a full disk, a store out of reach
        sock.close()
        raise CommandError(f"cannot open the store or the state directory: {exc}") from None


class _RefusePandas(importlib.abc.MetaPathFinder):
    """pyarrow imports pandas (~45 MB resident) at its first array whenever pandas is installed,
    only to check whether it was handed pandas objects. The server never hands it any and never
    needs pandas, so its process refuses the import (pyarrow then takes pandas as absent)."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("the trackledger server does not load pandas", name=name)
        return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not (settings.auth or settings.insecure_no_auth or is_loopback(settings.host)):
        raise CommandError(
            f"refusing to listen on {settings.host} without --auth: anyone who reaches it could read, "
            "change and delete everything (pass --auth, or --insecure-no-auth to do it anyway)"
        )
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _RefusePandas())
    import pyarrow
    import uvicorn

    # Arrow's default pool (mimalloc) keeps what it freed; the server's Arrow buffers are
    # short-lived (a batch into DuckDB, a history page), and the system allocator gives them back:
    # 10-20 MB less resident after the benchmark's workloads, at no measurable cost in speed.
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            app.state.ctx.stopping.set()  # open event streams end now, not at the graceful timeout
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            # Ctrl-C / SIGTERM: graceful shutdown (the lifespan rolls the WAL), then exit 0;
            # uvicorn's own version re-raises the signal afterwards, so the exit looks like a kill.
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    from trackledger.api.app import create_app
    from trackledger.api.connections import with_header_timeout

    _raise_open_files_limit()

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,  # its lifespan finds the context open (``_open``) and closes it at the end
        http=with_header_timeout(settings.header_timeout_s),
        loop="uvloop",
        lifespan="on",
        access_log=settings.access_log,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_s,  # clients keep sessions open between bursts of logging
    )
    server = Server(config)
    sock = _listen(settings.host, settings.port)
    _open(config.app.state.ctx, sock)
    logging.getLogger("trackledger").info(
        "trackledger serving %s on http://%s:%d (artifacts: %s, state: %s, auth: %s)",
        settings.store,
        settings.host,
        sock.getsockname()[1],
        settings.artifacts_url,
        settings.state_path,
        f"on, default permission {settings.default_permission}" if settings.auth else "off",
    )
    server.run(sockets=[sock])
    if not server.started:
        return 3  # uvicorn's exit status for a failed start-up (the log says why)
    if server.lifespan.shutdown_failed or server.lifespan.error_occurred:
        # The WAL may not have rolled (e.g. a full disk): it is kept and the next start replays it,
        # but a supervisor must hear that this shutdown did not complete.
        logging.getLogger("trackledger").error("the shutdown did not complete; see the error above")
        return 1
    return 0
