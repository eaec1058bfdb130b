"""What the build's later passes (captions, text in photos) share: taking the photos that
wait for a pass a batch at a time, one per content, and decoding those whose files still
hold the content the index has for them."""

from __future__ import annotations

from collections.abc import Callable

from .decode import DecodedImage
from .decode_pool import DecodeJob, DecodePool
from .scan import FoundFile
from .stages import hash_file

# fetch(after_id, limit) -> up to `limit` waiting rows {"id", "path", "hash"} by id
Fetch = Callable[[int, int], list[dict]]


def next_batch(fetch: Fetch, after: int, size: int, seen: set[str]) -> tuple[list[dict], int]:
    """Up to `size` waiting photos of contents not in `seen` yet (added to it), and the id
    to go on after. Copies of a content share what a pass makes of it."""
    batch: list[dict] = []
    while len(batch) < size:
        rows = fetch(after, size)
        if not rows:
            break
        after = rows[-1]["id"]
        for row in rows:
            if row["hash"] not in seen and len(batch) < size:
                seen.add(row["hash"])
                batch.append(row)
            elif len(batch) >= size:
                return batch, row["id"] - 1  # this row comes first next time
    return batch, after


def decode_rows(
    rows: list[dict], pool: DecodePool, job: Callable[[int, str], DecodeJob] | None = None
) -> list[tuple[dict, DecodedImage | str | None]]:
    """Each row with its picture, the reason the pool could not make it (a decoder or a
    reader that failed or ran out of time), or None when the file is gone, unreadable or no
    longer the content the index holds for it (the next build indexes it anew).
    `job(key, path)` makes the decode job (default: decode only)."""
    job = job or (lambda key, path: DecodeJob(key, path))
    unchanged = [i for i, row in enumerate(rows) if still_holds(row)]
    outcomes: dict[int, DecodedImage | str | None] = dict.fromkeys(range(len(rows)))
    for i, outcome in pool.decode([job(i, rows[i]["path"]) for i in unchanged]):
        outcomes[i] = outcome
    return [(row, outcomes[i]) for i, row in enumerate(rows)]


def still_holds(row: dict) -> bool:
    """Whether the file at the row's path still has the content the row was indexed from."""
    read = hash_file(FoundFile(row["path"], -1, -1))
    return not read.error and read.hash == row["hash"]
