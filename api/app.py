"""The FastAPI application: routes (api/routes_*.py), the token rule, the request size
limit, and one-line JSON errors (`{"error": "..."}`) for everything that goes wrong."""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.config import Settings
from indexer.decode import DecodeError
from indexer.errors import IndexerError, ModelUnavailable

from .gate import Busy
from .state import ApiOptions, ApiState, Loaders, Rejected

OPEN_PATHS = ("/health",)  # answered without the token
log = logging.getLogger(__name__)


def create_app(settings: Settings, options: ApiOptions | None = None,
               loaders: Loaders | None = None) -> FastAPI:  # fmt: skip
    """The API over the index and models of `settings`. Models load on first use."""
    from .routes_models import router as models_router
    from .routes_search import router as search_router

    options = options or ApiOptions()
    state = ApiState(settings, options, loaders or Loaders())
    summary = "Search, caption, entailment, audit and questions over your photos."
    app = FastAPI(title="photo-indexer", version="1", summary=summary)
    app.state.api = state
    app.include_router(search_router)
    app.include_router(models_router)
    app.add_middleware(BodyLimit, max_bytes=options.max_upload_bytes)
    app.add_middleware(TokenCheck, token=options.token)
    _add_error_handlers(app)

    @app.on_event("shutdown")
    def _close() -> None:
        state.close()

    return app


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The one shape of every error answer: {"error": one line}."""
    line = " ".join(str(message).split())[:500]
    return JSONResponse({"error": line}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(map(str, e.get('loc', ())[1:])) or 'request'}: {e.get('msg')}"
                    for e in exc.errors()]  # fmt: skip
        return error(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected):
        return error(exc.status, str(exc))

    @app.exception_handler(DecodeError)
    async def undecodable(request: Request, exc: DecodeError):
        return error(422, f"not a picture this server can read: {exc}")

    @app.exception_handler(ModelUnavailable)
    async def no_model(request: Request, exc: ModelUnavailable):
        return error(503, str(exc))

    @app.exception_handler(IndexerError)
    async def indexer_error(request: Request, exc: IndexerError):
        return error(_status_of(exc), str(exc))

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError):
        return error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the server log has details")


def _status_of(exc: IndexerError) -> int:
    from indexer.thumbnails import ThumbnailError

    message = str(exc)
    if message.startswith("no photo with id") or isinstance(exc, ThumbnailError):
        return 404
    if "is empty" in message or "is running" in message:
        return 503  # no index yet: try again after a build
    return 400


class TokenCheck:
    """Every path but OPEN_PATHS needs `Authorization: Bearer <token>` when a token is set."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.token or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token):
            return await self.app(scope, receive, send)
        response = error(401, "missing or wrong token: send Authorization: Bearer <token>",
                         {"WWW-Authenticate": "Bearer"})  # fmt: skip
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Requests whose body is over `max_bytes` get 413, counted as the body arrives (a
    Content-Length that says so is refused before reading anything)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        megabytes = self.max_bytes / (1024 * 1024)
        response = error(413, f"the request is larger than the limit of {megabytes:g} MB")
        await response(scope, receive, send)
