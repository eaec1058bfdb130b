"""The build pipeline: scan -> plan -> read -> decode -> caption + embed -> store.

`build_index` walks the roots, works out what changed since the last run (new, changed,
moved, copied, deleted), sends only new content through the models in batches, commits each
batch, and removes vanished files only after the whole walk. Models load lazily, so a run
with nothing to do never loads them, and a model that cannot load stops the run before the
index is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .caption import Captioner
from .decode import DecodeError, content_hash, decode_image, perceptual_hash
from .embed import Embedder
from .errors import IndexMismatch
from .plan import BuildPlan, make_plan
from .scan import FoundFile, scan
from .store import ImageRecord, IndexStore, WriterLock
from .vector_index import (
    FAISS_NAME,
    VectorIndex,
    empty_index,
    load_vector_index,
    save_vector_index,
)


@dataclass
class ModelSet:
    """The build's models by name, loaded on first use (tests pass fakes or tiny models)."""

    caption_name: str
    clip_name: str
    load_captioner: Callable[[], Captioner]
    load_embedder: Callable[[], Embedder]
    _captioner: Captioner | None = field(default=None, repr=False)
    _embedder: Embedder | None = field(default=None, repr=False)

    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = self.load_captioner()
        return self._captioner

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.load_embedder()
        return self._embedder


def models_from_settings(settings) -> ModelSet:
    """The real OFA captioner and CLIP embedder named by `settings`, loaded lazily."""
    from .caption import OfaCaptioner
    from .embed import ClipEmbedder

    return ModelSet(
        caption_name=settings.caption_model,
        clip_name=settings.clip_model,
        load_captioner=lambda: OfaCaptioner(
            settings.caption_model, settings.device, settings.batch_size
        ),
        load_embedder=lambda: ClipEmbedder(settings.clip_model, settings.device),
    )


@dataclass
class Progress:
    """Sent to the progress callback after every batch."""

    done: int
    total: int


@dataclass
class BuildReport:
    """What a build did. `failures` lists (path, reason) of files that failed in this run."""

    new: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    model_calls: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report as plain JSON-ready data."""
        data = {k: getattr(self, k) for k in ("new", "updated", "moved", "removed", "unchanged")}
        data.update(failed=self.failed, model_calls=self.model_calls, notices=self.notices)
        data["failures"] = [{"path": p, "reason": r} for p, r in self.failures]
        return data


@dataclass
class _Read:
    """A file read for processing: its bytes and content hash, or why it could not be read."""

    found: FoundFile
    data: bytes = b""
    hash: str = ""
    error: str | None = None


def read_file(found: FoundFile) -> _Read:
    """Read a file whole and hash it; unreadable files come back with `error` set."""
    try:
        with open(found.path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return _Read(found, error=f"cannot read: {error.strerror or type(error).__name__}")
    if not data:
        return _Read(found, error="empty file (0 bytes)")
    return _Read(found, data=data, hash=content_hash(data))


def build_index(
    roots: Sequence[str | os.PathLike],
    index_dir: str | os.PathLike,
    models: ModelSet,
    *,
    batch_size: int = 8,
    rebuild: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> BuildReport:
    """Bring the index in `index_dir` up to date with the image files under `roots`.

    Raises NoSuchFolder, IndexLocked, IndexMismatch, IndexCorrupt or ModelUnavailable (all
    IndexerError) when it cannot run; unreadable or undecodable files never stop it.
    """
    walk = scan(roots)  # raises NoSuchFolder before anything is created
    with WriterLock(index_dir).held():
        store = IndexStore.open(index_dir, create=True)
        try:
            return _Builder(store, models, batch_size, on_progress).run(walk, rebuild)
        finally:
            store.close()


class _Builder:
    def __init__(self, store, models, batch_size, on_progress) -> None:
        self.store: IndexStore = store
        self.models: ModelSet = models
        self.batch_size = max(1, batch_size)
        self.on_progress = on_progress or (lambda progress: None)
        self.report = BuildReport()
        self.vectors: VectorIndex | None = None

    def run(self, walk, rebuild: bool) -> BuildReport:
        self._check_models(rebuild)
        self.vectors = load_vector_index(self.store)
        if self.vectors and self.vectors.notice:
            self.report.notices.append(self.vectors.notice)
        plan = make_plan(walk, self.store)
        self.report.unchanged = plan.unchanged
        if plan.work:  # a model that cannot load stops the run before anything is written
            self._embedder_checked()
            self.models.captioner()
        self._record_failures([(p.path, -1, -1, p.reason) for p in plan.problems], plan)
        total, done = len(plan.work), 0
        self.on_progress(Progress(0, total))
        for batch in _chunks(plan.work, self.batch_size):
            self._process([read_file(found) for found in batch], plan)
            done += len(batch)
            self.on_progress(Progress(done, total))
        self._remove_vanished(plan)
        if self.vectors is not None:
            save_vector_index(self.store, self.vectors)
        return self.report

    def _check_models(self, rebuild: bool) -> None:
        recorded = self.store.models()
        if recorded["clip_model"] is None or recorded["clip_model"] == self.models.clip_name:
            return
        if not rebuild:
            raise IndexMismatch(
                f"index {self.store.index_dir} was built with CLIP model "
                f"{recorded['clip_model']!r}, not {self.models.clip_name!r}; use that model, "
                "or pass --rebuild to re-index every photo with the new one"
            )
        self.models.embedder()  # fail here, before the old index is dropped
        self.models.captioner()
        self.store.drop_all_images()
        (self.store.index_dir / FAISS_NAME).unlink(missing_ok=True)

    def _embedder_checked(self) -> Embedder:
        embedder = self.models.embedder()
        recorded = self.store.models()["vector_dim"]
        if recorded and recorded != embedder.dim:
            raise IndexMismatch(
                f"index {self.store.index_dir} holds vectors of size {recorded} but "
                f"{self.models.clip_name!r} makes size {embedder.dim}; pass --rebuild"
            )
        return embedder

    def _vector_index(self, dim: int) -> VectorIndex:
        if self.vectors is None:
            self.vectors = empty_index(dim)
        return self.vectors

    def _process(self, reads: list[_Read], plan: BuildPlan) -> None:
        failures, fresh = [], []
        for item in reads:
            if item.error:
                failures.append((item.found, item.error))
            elif not self._reuse(item, plan):
                fresh.append(item)
        decoded = []
        for item in fresh:
            try:
                decoded.append((item, decode_image(item.data)))
            except DecodeError as error:
                failures.append((item.found, str(error)))
        self._record_failures([(f.path, f.size, f.mtime_ns, r) for f, r in failures], plan)
        if decoded:
            self._embed_and_save(decoded, plan)

    def _embed_and_save(self, decoded, plan: BuildPlan) -> None:
        embedder = self._embedder_checked()
        images = [picture.image for _, picture in decoded]
        captions = self.models.captioner().caption(images)
        vectors = embedder.embed_images(images)
        self.report.model_calls += len(images)
        records = [
            ImageRecord(item.found.path, item.found.size, item.found.mtime_ns, item.hash,
                        picture.width, picture.height, caption, vector, picture.taken_at,
                        perceptual_hash(picture.image))
            for (item, picture), caption, vector in zip(decoded, captions, vectors, strict=True)
        ]  # fmt: skip
        self._save(records)
        for item, _ in decoded:
            self._count_done(item.found.path, plan)

    def _save(self, records: list[ImageRecord]) -> None:
        recorded = self.store.models()
        if (recorded["vector_dim"], recorded["caption_model"]) != (  # the newest models name it
            len(records[0].vector), self.models.caption_name
        ):
            dim = len(records[0].vector)
            self.store.record_models(self.models.caption_name, self.models.clip_name, dim)
        ids = self.store.save_images(records, self.models.caption_name, self.models.clip_name)
        vectors = np.stack([record.vector for record in records])
        self._vector_index(vectors.shape[1]).upsert(np.asarray(ids), vectors)

    def _count_done(self, path: str, plan: BuildPlan) -> None:
        if path in plan.known:
            self.report.updated += 1
        else:
            self.report.new += 1

    def _reuse(self, item: _Read, plan: BuildPlan) -> bool:
        """Handle a file whose content the index already has; False if it needs the models."""
        found, known = item.found, plan.known.get(item.found.path)
        if known and known.hash == item.hash:
            self.store.touch_image(known.id, found.size, found.mtime_ns)
            self.report.unchanged += 1
            return True
        moved = plan.take_vanished(item.hash)
        if moved is not None:
            if known:  # the moved file replaced another one at this path
                self._drop([known.id])
                plan.known.pop(found.path)
            self.store.move_image(moved.id, found.path, found.size, found.mtime_ns)
            self.report.moved += 1
            return True
        twin = self.store.image_with_hash(item.hash)
        if twin is None:
            return False
        vector = np.frombuffer(twin["vector"], dtype=np.float32)
        record = ImageRecord(found.path, found.size, found.mtime_ns, item.hash,
                             twin["width"], twin["height"], twin["caption"], vector,
                             twin["taken_at"], twin["phash"])  # fmt: skip
        self._save([record])
        self._count_done(found.path, plan)
        return True

    def _drop(self, ids: list[int]) -> None:
        self.store.remove_images(ids)
        if self.vectors is not None:
            self.vectors.remove(np.asarray(ids, dtype=np.int64))

    def _record_failures(self, failures: list[tuple[str, int, int, str]], plan: BuildPlan) -> None:
        if not failures:
            return
        self.store.record_failures(failures)
        for path, size, mtime_ns, reason in failures:
            if path in plan.known:  # a file that was indexed and is now broken leaves the index
                self._drop([plan.known.pop(path).id])
            if plan.is_new_failure(path, size, mtime_ns):
                self.report.failed += 1
                self.report.failures.append((path, reason))
            else:  # a broken link or unreadable folder seen again, as it was
                self.report.unchanged += 1

    def _remove_vanished(self, plan: BuildPlan) -> None:
        gone = plan.unclaimed_vanished()
        if gone:
            self._drop([known.id for known in gone])
            self.report.removed += len(gone)
        if plan.vanished_failures:
            self.store.remove_failures(plan.vanished_failures)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
