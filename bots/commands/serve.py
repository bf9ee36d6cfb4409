"""`rewards serve`: run the bot server.

The listening sockets are bound before anything else happens (no migration, no platform start):
a port already in use, or an address this machine does not have, is one line on stderr and exit
status 2, not a traceback after the schema was migrated. The bound sockets are then handed to
aiohttp, so nothing can take the port between the check and the start.

Log lines go to standard error in `LOG_FORMAT` at `LOG_LEVEL` (`rewards.observability.logs`).
"listening on http://HOST:PORT" is logged once the server answers requests, not when the port is
bound: the start-up (migrations, catalogue, platforms) comes in between.

The event loop is uvloop's where it is installed (a dependency on Linux and macOS), as uvicorn
and gunicorn's aiohttp workers use it: the same asyncio, its scheduling and socket calls in C.
`EVENT_LOOP=asyncio` keeps Python's own.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket

import click
from aiohttp import web

from bots.commands.common import settings
from bots.server import create_app
from rewards.observability.logs import configure_logging
from rewards.settings import Settings

BIND_FAILED = 2  # exit status: the server could not listen where it was told to


class BindError(Exception):
    """The server cannot listen on the host and port it was given; the message says why."""


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` resolves to (as aiohttp's TCP site would bind).

    Raises `BindError` with one sentence when the port is taken or the address is not ours."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise BindError(f"cannot listen on {host}: {error.strerror}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, found in infos:
            if (family, found) in seen:
                continue
            seen.add((family, found))
            address = found
            if port == 0 and sockets:  # one system-chosen port for every address
                address = (found[0], sockets[0].getsockname()[1], *found[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise BindError(_bind_failure(error, host, port)) from None
            sock.listen(128)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_failure(error: OSError, host: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed to listen on port {port} on {host} (a port below 1024 needs root)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: this machine has no such address"
    return f"cannot listen on port {port} on {host}: {error.strerror or error}"


@click.command()
@click.option("--host", default=None, help="Interface to bind (default: HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: PORT or 3978).")
def serve(host: str | None, port: int | None) -> None:
    """Start the server: health check, bot endpoints, REST API and scheduler."""
    config = settings()
    bind_host = host or config.host
    bind_port = config.port if port is None else port
    try:
        sockets = bind(bind_host, bind_port)
    except BindError as error:
        click.echo(f"rewards serve: {error}", err=True)
        raise SystemExit(BIND_FAILED) from None
    configure_logging(config)
    url = f"http://{_url_host(bind_host)}:{sockets[0].getsockname()[1]}"  # --port 0: the real one
    log = logging.getLogger("rewards.server")
    log.info("database %s", config.redacted_database_url())

    def listening(_banner: str) -> None:
        # aiohttp calls `print` once every site has started (after the start-up steps: the
        # schema, the catalogue, the platforms), so this line means requests are being served.
        log.info("listening on %s", url)
        freeze_heap()

    loop = fast_event_loop(config, log)
    web.run_app(create_app(config), sock=sockets, print=listening, loop=loop)


def fast_event_loop(config: Settings, log: logging.Logger) -> asyncio.AbstractEventLoop | None:
    """A uvloop event loop for `web.run_app` (`EVENT_LOOP=uvloop`, the default, and uvloop
    installed); None lets aiohttp make asyncio's own. One server's Slack kudos with it:
    405-420 -> 464-488 a second, 2.1-2.2 -> 1.8-1.9 ms of CPU each (bench/e2e.py, README)."""
    if config.event_loop != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # a platform without it (Windows): asyncio's loop, said once
        log.info("event loop: asyncio (uvloop is not installed)")
        return None
    log.info("event loop: uvloop %s", uvloop.__version__)
    return uvloop.new_event_loop()


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach (`gc.freeze`):
    the modules, the SDKs and the catalogue loaded at start-up live as long as the process.

    A full collection walks every tracked object: about 170,000 in a started server, 40-50 ms
    with the event loop stopped and every reply in flight delayed by as much. Python runs one
    whenever the long-lived objects grew by a quarter (the people kept across kudos, the
    statement caches), so under load it came every few seconds. Frozen, a full collection
    walks what came after, a fraction of that. The Teams SDK, imported a moment later in the
    background, is frozen with it (`bots.teams.LazyTeams.warm_up`). No collection first: it
    would cost the start-up those 50 ms for the little cyclic garbage an import leaves."""
    gc.freeze()


def _url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address in brackets; all interfaces as given."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
