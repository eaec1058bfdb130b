"""What the server holds for its lifetime: settings, the index's engine and the models (each
loaded on first use, once), the model queue, and the worker process that decodes uploads."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from indexer.config import Settings
from indexer.decode import DecodedImage
from indexer.errors import IndexerError
from search.ask import DEFAULT_VQA_MODEL

from .gate import ModelGate

MB = 1024 * 1024


class Rejected(IndexerError):
    """A request (an upload, a parameter) the server will not use; `status` is the HTTP
    status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApiOptions:
    """How the server runs. `token`: the bearer token every endpoint but /health asks for
    (required to listen beyond loopback). `max_upload_mb`: the largest request body.
    `queue_limit`: requests that may wait for the models before 503s."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_mb: float = 20.0
    queue_limit: int = 8
    vqa_model: str = DEFAULT_VQA_MODEL
    decode_timeout_s: float = 20.0
    decode_memory_mb: int = 1024

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)


@dataclass
class Loaders:
    """How each model is made (tests pass tiny models or fakes); None: the real ones."""

    embedder: Callable[[str], object] | None = None  # CLIP spec -> Embedder
    captioner: Callable[[], object] | None = None
    judge: Callable[[], object] | None = None
    answerer: Callable[[], object] | None = None


@dataclass
class ApiState:
    """The server's shared state. `index_lock` serialises the index's database connection
    and the engine; `gate` the model calls."""

    settings: Settings
    options: ApiOptions
    loaders: Loaders = field(default_factory=Loaders)
    index_lock: threading.RLock = field(default_factory=threading.RLock)
    gate: ModelGate | None = None
    _models: dict = field(default_factory=dict)
    _load_lock: threading.RLock = field(default_factory=threading.RLock)
    _decode_lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: object | None = None

    def __post_init__(self) -> None:
        if self.gate is None:
            self.gate = ModelGate(self.options.queue_limit)

    # --- models, each loaded once --------------------------------------------------------

    def _model(self, name: str, make: Callable[[], object]):
        loaded = self._models.get(name)
        if loaded is not None:  # no lock once loaded: a model loading never stalls the others
            return loaded
        with self._load_lock:
            if name not in self._models:
                self._models[name] = make()
            return self._models[name]

    def engine(self):
        """The SearchEngine over the index (IndexerError while the index is empty)."""
        return self._model("engine", self._make_engine)

    def judging_engine(self):
        """A second engine for reranked searches, with its own database connection and the
        first one's CLIP model: a search that waits for the judge holds neither the index
        lock nor the plain searches behind it. Used under the model gate only."""
        return self._model("judging_engine", lambda: self._make_engine(self.shared_embedder))

    def shared_embedder(self, spec: str):
        """The first engine's CLIP model (loaded by it, under the index lock)."""
        with self.index_lock:
            return self.engine().embedder

    def _make_engine(self, load_embedder=None):
        from search.engine import SearchEngine

        load_embedder = load_embedder or self.loaders.embedder
        return SearchEngine(self.settings.index_dir, load_embedder=load_embedder,
                            load_reranker=self.judge, device=self.settings.device)  # fmt: skip

    def captioner(self):
        """The OFA captioner the settings name."""

        def make():
            from indexer.caption import OfaCaptioner

            return OfaCaptioner(self.settings.caption_model, self.settings.device,
                                trust_remote_code=self.settings.trust_remote_code)  # fmt: skip

        return self._model("captioner", self.loaders.captioner or make)

    def judge(self):
        """The visual-entailment reranker, shared by /entail, /audit and reranked searches."""

        def make():
            from search.engine import make_reranker

            return make_reranker(self.settings)

        return self._model("judge", self.loaders.judge or make)

    def answerer(self):
        """The visual question answering model (ask this photo)."""

        def make():
            from search.ask import OfaQuestionAnswerer

            trust = self.settings.trust_remote_code
            return OfaQuestionAnswerer(self.options.vqa_model, self.settings.device, trust)

        return self._model("answerer", self.loaders.answerer or make)

    def loaded(self) -> dict[str, bool]:
        """Which models are loaded now."""
        engine = self._models.get("engine")
        return {"clip": bool(engine is not None and engine.embedder_loaded),
                "captioner": "captioner" in self._models, "judge": "judge" in self._models,
                "answerer": "answerer" in self._models}  # fmt: skip

    # --- uploads ---------------------------------------------------------------------------

    def decode(self, data: bytes) -> DecodedImage:
        """An uploaded picture decoded the way the build decodes files: in a worker process
        with a pixel limit, a time budget and a memory cap. Rejected when it is not a
        picture this server can read."""
        if not data:
            raise Rejected(400, "the upload is empty")
        with self._decode_lock, tempfile.TemporaryDirectory(prefix="indexer-upload-") as room:
            path = os.path.join(room, "upload")
            with open(path, "wb") as file:
                file.write(data)
            from indexer.decode_pool import DecodeJob

            _, value = next(iter(self._decode_pool().decode([DecodeJob(0, path)])))
        if isinstance(value, str):
            raise Rejected(422, f"not a picture this server can read: {value}")
        return value

    def _decode_pool(self):
        if self._pool is None:
            from indexer.decode_pool import DecodePool

            pool = DecodePool(1, self.options.decode_timeout_s, self.options.decode_memory_mb)
            self._pool = pool.__enter__()
        return self._pool

    def close(self) -> None:
        """Stop the decode worker and close the index."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        for name in ("engine", "judging_engine"):
            engine = self._models.pop(name, None)
            if engine is not None:
                engine.close()
