"""`rewards serve`: run the bot server."""

from __future__ import annotations

import logging

import click
from aiohttp import web

from bots.commands.common import settings
from bots.server import create_app


@click.command()
@click.option("--host", default=None, help="Interface to bind (default: HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: PORT or 3978).")
def serve(host: str | None, port: int | None) -> None:
    """Start the server: health check, bot endpoints, REST API and scheduler."""
    config = settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bind_host = host or config.host
    bind_port = config.port if port is None else port
    logging.getLogger("rewards.server").info(
        "database %s; listening on http://%s:%d",
        config.redacted_database_url(),
        bind_host,
        bind_port,
    )
    web.run_app(create_app(config), host=bind_host, port=bind_port, print=None)
