"""`indexer serve`: the HTTP API on uvicorn. Registered as a command of the `indexer` CLI
through an entry point, like `indexer ui`."""

from __future__ import annotations

import ipaddress

import click

from indexer.cli import one_line_errors, quiet_model_logs, settings_from
from indexer.options import device_option, index_option, rerank_model_option

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
KEEP_ALIVE_S = 30


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (ValueError, one line)."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"listening on {host} needs a token: pass --token or set INDEXER_API_TOKEN "
            "(clients send Authorization: Bearer TOKEN)"
        )


@click.command()
@index_option
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; any but loopback needs a token.")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--token", envvar="INDEXER_API_TOKEN", metavar="TOKEN",
              help="Bearer token that every endpoint but /health requires "
              "[$INDEXER_API_TOKEN].")  # fmt: skip
@click.option("--max-upload-mb", type=click.FloatRange(min=0.01), default=20.0,
              envvar="INDEXER_API_MAX_UPLOAD_MB", show_default=True,
              help="Largest request body [$INDEXER_API_MAX_UPLOAD_MB].")  # fmt: skip
@click.option("--queue", "queue_limit", type=click.IntRange(min=0), default=8,
              envvar="INDEXER_API_QUEUE", show_default=True,
              help="Requests that may wait for the models; more get 503 "
              "[$INDEXER_API_QUEUE].")  # fmt: skip
@click.option("--vqa-model", envvar="INDEXER_VQA_MODEL", metavar="SPEC",
              help="OFA visual question answering model (ModelScope id or folder) for "
              "/photos/{id}/ask [$INDEXER_VQA_MODEL].")  # fmt: skip
@rerank_model_option
@device_option
@one_line_errors
def serve(index_dir, host, port, token, max_upload_mb, queue_limit, vqa_model, rerank_model,
          device):  # fmt: skip
    """Serve the HTTP API for other programs: search, photos, captions, entailment, audit
    and questions about a photo. JSON in and out; the OpenAPI schema is at /openapi.json and
    interactive docs at /docs. Models load once, on first use. Ctrl+C stops the server.

    \b
    Example:
        indexer serve
        curl 'http://127.0.0.1:8000/search?q=a+red+car&k=5'
        curl -F image=@shop/item-17.jpg -F text='a blue mug' http://127.0.0.1:8000/entail
        INDEXER_API_TOKEN=s3cret indexer serve --host 0.0.0.0 --port 8080
    """
    from .state import DEFAULT_VQA_MODEL, ApiOptions

    check_exposure(host, token)
    settings = settings_from(index_dir=index_dir, rerank_model=rerank_model, device=device)
    vqa_model = vqa_model or DEFAULT_VQA_MODEL
    options = ApiOptions(host=host, port=port, token=token, max_upload_mb=max_upload_mb,
                         queue_limit=queue_limit, vqa_model=vqa_model)  # fmt: skip
    quiet_model_logs()
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"API for {settings.index_dir} on http://{shown}:{port} (docs: /docs)", err=True)
    run_server(settings, options)


def run_server(settings, options) -> None:
    """Serve until interrupted (uvicorn, one process: the models load once)."""
    import uvicorn

    from .app import create_app

    app = create_app(settings, options)
    # keep-alive longer than clients' own (httpx, requests: 5 s), so a client never sends a
    # request on a connection the server is closing at that very moment
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning",
                limit_concurrency=1024, timeout_keep_alive=KEEP_ALIVE_S)  # fmt: skip
