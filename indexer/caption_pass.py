"""The captions pass: caption the photos that CLIP already made searchable.

Captioning is most of a build's time on a CPU, while CLIP alone already makes a library
searchable. So by default (`indexer build --captions later`) the build first indexes every
photo with CLIP and no caption, then runs this pass over the photos still without one. Each
batch is committed as it is done: a pass that is stopped goes on from there at the next
build, which runs it even when no file changed. Each content is captioned once, however many
copies of it there are, and a file changed since its CLIP pass is left for the next build to
index anew (its caption would describe other content).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .caption import Captioner
from .decode import DecodedImage
from .decode_pool import DecodePool
from .pending import decode_rows, next_batch
from .progress import Progress
from .store import IndexStore

PHASE = "captions"


@dataclass
class CaptionPassReport:
    """What a captions pass did: photos captioned, and photos skipped (unreadable, or
    changed since their CLIP pass; they stay without a caption)."""

    captioned: int = 0
    skipped: int = 0


def caption_pending(
    store: IndexStore,
    captioner: Captioner,
    caption_model: str,
    pool: DecodePool,
    batch_size: int = 8,
    on_progress: Callable[[Progress], None] | None = None,
) -> CaptionPassReport:
    """Caption every photo of `store` that has no caption yet, `batch_size` contents at a
    time; the next batch is read and decoded while the model works on this one."""
    on_progress = on_progress or (lambda progress: None)
    report, total = CaptionPassReport(), store.count_pending_captions()
    if total == 0:
        return report
    on_progress(Progress(0, total, phase=PHASE))
    seen: set[str] = set()  # contents taken by this pass (copies share one caption)
    fetch = store.pending_captions
    rows, after = next_batch(fetch, 0, batch_size, seen)
    with ThreadPoolExecutor(1, thread_name_prefix="caption-read") as reader:
        pending = reader.submit(_decode, rows, pool) if rows else None
        while pending is not None:
            decoded = pending.result()
            rows, after = next_batch(fetch, after, batch_size, seen)
            pending = reader.submit(_decode, rows, pool) if rows else None
            report.skipped += sum(1 for _, picture in decoded if picture is None)
            ready = [(row, picture) for row, picture in decoded if picture is not None]
            if ready:
                captions = captioner.caption([picture.image for _, picture in ready])
                hashes = [row["hash"] for row, _ in ready]
                pairs = list(zip(hashes, captions, strict=True))
                report.captioned += store.set_captions(pairs, caption_model)
            on_progress(Progress(report.captioned + report.skipped, total, phase=PHASE))
    return report


def captions_pass(store, models, pool, batch_size, on_progress, notices: list[str]) -> int:
    """The build's captions pass over whatever waits for one (loading the captioner only
    then); adds the captioner's notice to `notices`; returns how many photos got one."""
    if store.count_pending_captions() == 0:
        return 0
    captioner = models.captioner()
    notice = getattr(captioner, "notice", None)
    if notice and notice not in notices:
        notices.append(notice)
    done = caption_pending(store, captioner, models.caption_name, pool, batch_size, on_progress)
    return done.captioned


def _decode(rows: list[dict], pool: DecodePool) -> list[tuple[dict, DecodedImage | None]]:
    """Each row's picture, or None when it cannot be had now (see pending.decode_rows)."""
    return [(row, out if isinstance(out, DecodedImage) else None)
            for row, out in decode_rows(rows, pool)]  # fmt: skip
