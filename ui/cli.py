"""`indexer ui`: the search page, served by Streamlit. Registered as a command of the `indexer`
CLI through an entry point, like `indexer search`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from indexer.cli import one_line_errors, settings_from
from indexer.options import index_option

APP = Path(__file__).with_name("app.py")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def streamlit_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """The `streamlit run` command line that serves the page on host:port: headless (no
    browser is opened), no usage statistics, no file watching, uploads of at most 50 MB."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", "50",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


@click.command()
@index_option
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to serve the page on.")  # fmt: skip
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on. The page has no login: anything but this machine "
              "(e.g. 0.0.0.0) shows your photos to whoever can reach it.")  # fmt: skip
@click.option("--banner", envvar="INDEXER_BANNER", default="", metavar="TEXT",
              help="A line shown at the top of every page, e.g. what this library is "
              "[$INDEXER_BANNER].")  # fmt: skip
@one_line_errors
def ui(index_dir, port, host, banner):
    """Serve the search page on this machine: a query box, a grid of results with their
    verdicts and scores, search by example, filters and a detail view of a photo.

    The URL carries the search (http://127.0.0.1:8501/?q=red+car&k=24), so a search can be
    bookmarked and shared. Models
    load once, on the first search; the reranker follows $INDEXER_RERANK_MODEL and
    $INDEXER_DEVICE as `indexer search` does. Ctrl+C stops the server.

    \b
    Example:
        indexer ui
        indexer ui --index ~/photo-index --port 8600
    """
    settings = settings_from(index_dir=index_dir)
    if host not in LOCAL_HOSTS:
        click.echo(f"note: listening on {host}: anyone who can reach port {port} there can "
                   "search and see your photos", err=True)  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Search page for {settings.index_dir} on http://{shown}:{port}", err=True)
    environment = dict(os.environ, INDEXER_HOME=str(settings.index_dir), INDEXER_BANNER=banner)
    command = streamlit_command(host, port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, environment)  # Streamlit takes over this process
