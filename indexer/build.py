"""The build pipeline: scan -> plan -> read -> decode -> caption + embed -> store.

`build_index` walks the roots, works out what changed since the last run (new, changed,
moved, copied, deleted), sends only new content through the models in batches, commits each
batch, and removes vanished files only after the whole walk. Models load lazily, so a run
with nothing to do never loads them, and a model that cannot load stops the run before the
index is touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from .build_report import BuildReport
from .caption_pass import captions_pass
from .config import CAPTION_MODES
from .decode import DecodeError, decode_image, perceptual_hash
from .decode_pool import DecodePool
from .lock import WriterLock
from .model_checks import check_models, checked_embedder
from .model_inputs import remove_inputs, save_input, square_input
from .models import ModelSet
from .ocr import DEFAULT_TEXT_READER
from .ocr_pass import text_pass
from .plan import BuildPlan, make_plan
from .progress import Progress
from .scan import scan
from .stages import Prepared, prefetched, prepare_batches
from .store import ImageRecord, IndexStore
from .vector_index import (
    VectorIndex,
    empty_index,
    load_vector_index,
    rebuild_from_store,
    save_vector_index,
)


def build_index(
    roots: Sequence[str | os.PathLike],
    index_dir: str | os.PathLike,
    models: ModelSet,
    *,
    batch_size: int = 8,
    rebuild: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    decode_pool: DecodePool | None = None,
    allow_empty: bool = False,
    captions: str = "later",
    read_text: str | None = DEFAULT_TEXT_READER,
) -> BuildReport:
    """Bring the index in `index_dir` up to date with the image files under `roots`.

    Each batch is committed as it finishes, so an interrupted build keeps its work and the
    next one goes on from there. `decode_pool` decodes files in worker processes with a
    time and memory budget (a default pool when None). A root found empty keeps its indexed
    photos (an unmounted drive looks empty) unless `allow_empty`.
    `captions` (see indexer.config.CAPTION_MODES): "now" captions each photo as it is
    embedded; "later" (default) makes every photo searchable by CLIP first, then captions
    them (indexer.caption_pass); "never" leaves them without captions. "now" and "later" also
    caption the photos an earlier build left without one. `read_text` names the reader of
    the text in photos (indexer.ocr) for the text pass (indexer.ocr_pass); None skips it.
    Raises NoSuchFolder, IndexLocked, IndexMismatch, IndexCorrupt or ModelUnavailable (all
    IndexerError) when it cannot run; unreadable or undecodable files never stop it.
    """
    if captions not in CAPTION_MODES:
        raise ValueError(f"captions must be one of {', '.join(CAPTION_MODES)}")
    walk = scan(roots)  # raises NoSuchFolder before anything is created
    with WriterLock(index_dir).held():
        store = IndexStore.open(index_dir, create=True)
        try:
            builder = _Builder(store, models, batch_size, on_progress, captions)
            builder.read_text = read_text
            with decode_pool or DecodePool() as pool:
                return builder.run(walk, rebuild, pool, allow_empty)
        finally:
            store.close()


class _Builder:
    def __init__(self, store, models, batch_size, on_progress, captions) -> None:
        self.store: IndexStore = store
        self.captions_now = captions == "now"
        self.captions_pass = captions != "never"
        self.maybe_unused: set[str] = set()  # contents whose prepared inputs may have to go
        self.models: ModelSet = models
        self.batch_size = max(1, batch_size)
        self.on_progress = on_progress or (lambda progress: None)
        self.report = BuildReport()
        self.read_text: str | None = None  # the text reader's spec (indexer.ocr)
        self.vectors: VectorIndex | None = None
        self._last_save, self._save_cost = time.monotonic(), 0.0

    def run(self, walk, rebuild: bool, pool: DecodePool, allow_empty: bool) -> BuildReport:
        check_models(self.store, self.models, rebuild)
        self.vectors = load_vector_index(self.store)
        if self.vectors and self.vectors.notice:
            self.report.notices.append(self.vectors.notice)
        plan = make_plan(walk, self.store, allow_empty)
        self.report.unchanged = plan.unchanged
        self.report.notices += plan.notices
        if plan.work:  # a model that cannot load stops the run before anything is written
            checked_embedder(self.store, self.models)
            self._check_captioner()
        self._record_failures([(p.path, -1, -1, p.reason) for p in plan.problems], plan)
        total, done = len(plan.work), 0
        self.on_progress(Progress(0, total))
        clip_size = getattr(self.models.embedder(), "crop_size", None) if plan.work else None
        batches = prepare_batches(plan.work, self.batch_size, plan.known_hashes().__contains__,
                                  pool, clip_size=clip_size,
                                  input_size=self.models.input_size)  # fmt: skip
        for batch in prefetched(batches):
            self._process(batch, plan)
            done += len(batch)
            self.on_progress(Progress(done, total))
            self._save_vectors_now_and_then()
        self._remove_vanished(plan)
        if self.vectors is not None:
            if not self.vectors.suits(self.vectors.count):  # the library outgrew its index type
                self.vectors = rebuild_from_store(self.store, self.vectors.dim)
                self.vectors._dirty = True
            save_vector_index(self.store, self.vectors)
        remove_inputs(self.store.index_dir, self.store.unused_hashes(self.maybe_unused))
        if self.read_text:
            self.report.text_read = text_pass(self.store, pool, self.batch_size, self.on_progress,
                                              self.report.notices, self.read_text)  # fmt: skip
        if self.captions_pass:
            self.report.captioned += captions_pass(self.store, self.models, pool,
                                                   self.batch_size, self.on_progress,
                                                   self.report.notices)  # fmt: skip
        self.report.captions_pending = self.store.count_pending_captions()
        return self.report

    def _check_captioner(self) -> None:
        """Load the captioner now when photos are captioned as they go; otherwise only make
        sure it can be had, so a bad caption model stops the run before anything is written
        (it loads when the captions pass starts)."""
        if self.captions_now:
            notice = getattr(self.models.captioner(), "notice", None)
            if notice:
                self.report.notices.append(notice)
        elif self.captions_pass:
            self.models.check_captioner()
            self.models.preload_captioner()  # overlaps the CLIP pass

    def _save_vectors_now_and_then(self) -> None:
        """Write the FAISS file during long builds too, so readers need not rebuild it; at
        most a tenth of the time goes to it, however large the index."""
        now = time.monotonic()
        if self.vectors is None or now - self._last_save < max(60.0, 10 * self._save_cost):
            return
        save_vector_index(self.store, self.vectors)
        self._save_cost, self._last_save = time.monotonic() - now, time.monotonic()

    def _vector_index(self, dim: int) -> VectorIndex:
        if self.vectors is None:
            self.vectors = empty_index(dim)
        return self.vectors

    def _process(self, batch: list[Prepared], plan: BuildPlan) -> None:
        failures, decoded = [], []
        for item in batch:
            if item.reusable and not self._reuse(item, plan):
                self._decode_here(item)  # its twin went away during this run
            if item.error:
                failures.append((item.found, item.error))
            elif item.picture is not None:
                decoded.append((item, item.picture))
        self._record_failures([(f.path, f.size, f.mtime_ns, r) for f, r in failures], plan)
        if decoded:
            self._embed_and_save(decoded, plan)

    @staticmethod
    def _decode_here(item: Prepared) -> None:
        """Decode in this process: only for content already decoded safely once before."""
        try:
            item.picture = decode_image(item.found.path)
        except (DecodeError, OSError) as error:
            item.error = str(error)

    def _embed_and_save(self, decoded, plan: BuildPlan) -> None:
        embedder = checked_embedder(self.store, self.models)
        images = [picture.image for _, picture in decoded]
        captions = self.models.captioner().caption(images) if self.captions_now else None
        vectors = embedder.embed_images([p.clip_image or p.image for _, p in decoded])
        self.report.model_calls += len(images)
        if captions is None:
            captions = [None] * len(images)
        else:
            self.report.captioned += len(images)
        for item, picture in decoded:
            self._keep_model_input(item, picture, plan)
        records = [
            ImageRecord(item.found.path, item.found.size, item.found.mtime_ns, item.hash,
                        picture.width, picture.height, caption, vector, picture.taken_at,
                        perceptual_hash(picture.image))
            for (item, picture), caption, vector in zip(decoded, captions, vectors, strict=True)
        ]  # fmt: skip
        self._save(records)
        for item, _ in decoded:
            self._count_done(item.found.path, plan)

    def _keep_model_input(self, item: Prepared, picture, plan: BuildPlan) -> None:
        """Write the reranker's prepared input of a new content (indexer.model_inputs)."""
        data = picture.model_input or square_input(picture.image, self.models.input_size)
        save_input(self.store.index_dir, item.hash, data)
        replaced = plan.known.get(item.found.path)
        if replaced is not None and replaced.hash != item.hash:
            self.maybe_unused.add(replaced.hash)

    def _save(self, records: list[ImageRecord]) -> None:
        recorded = self.store.models()
        if (recorded["vector_dim"], recorded["caption_model"]) != (  # the newest models name it
            len(records[0].vector),
            self.models.caption_name,
        ):
            dim = len(records[0].vector)
            self.store.record_models(self.models.caption_name, self.models.clip_name, dim)
        ids = self.store.save_images(records, self.models.caption_name, self.models.clip_name)
        vectors = np.stack([record.vector for record in records])
        self._vector_index(vectors.shape[1]).upsert(np.asarray(ids), vectors)

    def _count_done(self, path: str, plan: BuildPlan) -> None:
        self.report.updated += path in plan.known
        self.report.new += path not in plan.known

    def _reuse(self, item: Prepared, plan: BuildPlan) -> bool:
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
        self.maybe_unused |= self.store.hashes_of(ids)
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
