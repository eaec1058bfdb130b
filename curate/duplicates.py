"""Duplicates and bursts: which photos in the index are the same picture, and which are
near-identical shots taken moments apart.

Three kinds of group, each with a suggested keeper (largest resolution, then oldest date
taken, then the older file, then path) listed first among its members:

- "exact": files with the same content hash (byte-identical copies);
- "near": the same picture resized, recompressed or lightly edited: CLIP cosine and the DCT
  perceptual hash (`phash`, 64 bits) both say so. Each measure alone is fooled: phash by
  flat pictures that share their coarse layout (two different documents on white), CLIP by
  two different shots of one subject; together they are reliable. Byte-identical copies of
  a near group's pictures are members of that group (one photo, one duplicate group);
- "burst": shots of one scene taken within seconds, CLIP-similar but not duplicates of
  each other. Bursts are kept apart from duplicates: a duplicate group takes part in a burst
  as one shot, represented by its keeper, so a path can be both the keeper of a duplicate
  group and a member of a burst, but a burst never swallows duplicates (or the reverse).

Neighbours come from the index's FAISS vectors (k nearest of each distinct picture), so the
work grows with the number of photos times k, not with every pair. On a large library the
FAISS index is approximate (IVF); near-duplicates, whose vectors all but coincide, land in
the same lists and are still found. Groups are connected components of the pairs found
(union-find), so a long burst chains shot to shot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from indexer.progress import Progress
from indexer.store import IndexStore
from indexer.vector_index import load_vector_index

# Near-duplicates: at most 10 of the 64 phash bits differ. Measured on generated pictures:
# halving the size and recompressing at quality 40-60 flips 0-2 bits, a 5% crop or a 10%
# brightening 2-4; unrelated pictures differ in about 32 (half the bits, as chance has it),
# and different shots of one scene (the camera moved, someone walked in) in 12-30, with
# the occasional small pan at 10: that overlap is why phash alone does not decide.
NEAR_MAX_PHASH_BITS = 10
# ... and CLIP cosine at least 0.93. Typical values for ViT-B/32 (the default model; the
# tests run random weights, so these come from its published behaviour, not from them):
# re-encodings of one picture score 0.97-1.0 and light edits 0.93 or more, while different
# pictures whose phashes collide (flat, low-detail images) score well below. phash does the
# precise work; CLIP vetoes collisions.
NEAR_MIN_CLIP = 0.93
# Bursts: CLIP cosine at least 0.90 (ViT-B/32: different shots of one scene about
# 0.90-0.97; unrelated photos, even of the same kind of subject, mostly 0.6-0.85) ...
BURST_MIN_CLIP = 0.90
# ... and taken at most 60 seconds apart (from shot to shot: a burst chains). Phones and
# cameras shoot bursts within a second or two; a minute also catches "one more try" shots,
# while the CLIP bound keeps photos of different things taken in that minute apart.
BURST_MAX_SECONDS = 60.0
# Nearest neighbours asked of FAISS per distinct picture. Larger groups still come out
# whole: every member brings its own neighbours, and the components join them.
NEIGHBOURS = 16
KINDS = ("exact", "near", "burst")


@dataclass(frozen=True)
class Thresholds:
    """The bounds that decide near-duplicates and bursts (defaults: see the constants)."""

    near_max_phash_bits: int = NEAR_MAX_PHASH_BITS
    near_min_clip: float = NEAR_MIN_CLIP
    burst_min_clip: float = BURST_MIN_CLIP
    burst_max_seconds: float = BURST_MAX_SECONDS
    neighbours: int = NEIGHBOURS


@dataclass(frozen=True)
class Photo:
    """What grouping needs to know about one indexed photo. `date` is the date taken
    (EXIF, else the file's modification time), as the index reports it."""

    id: int
    path: str
    hash: str
    phash: str | None
    width: int
    height: int
    date: str | None
    taken_at: str | None
    mtime_ns: int | None
    caption: str = ""

    @property
    def pixels(self) -> int:
        """Width times height."""
        return (self.width or 0) * (self.height or 0)


@dataclass
class DuplicateGroup:
    """One group: its kind ("exact", "near" or "burst"), the suggested keeper, and all
    members with the keeper first."""

    kind: str
    keep: Photo
    members: list[Photo]

    def as_dict(self) -> dict:
        """`{"kind", "keep": path, "members": [paths]}` (the keeper is the first member)."""
        return {"kind": self.kind, "keep": self.keep.path,
                "members": [photo.path for photo in self.members]}  # fmt: skip


@dataclass
class DuplicatesReport:
    """All groups, exact first, then near, then bursts; `photos` counts the photos examined."""

    groups: list[DuplicateGroup]
    photos: int
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """`{"groups": [...]}` as `indexer duplicates --json` prints it."""
        return {"groups": [group.as_dict() for group in self.groups]}

    def counts(self) -> dict[str, int]:
        """Number of groups of each kind."""
        return {kind: sum(group.kind == kind for group in self.groups) for kind in KINDS}


def keeper_key(photo: Photo) -> tuple:
    """Sort key putting the photo to keep first: most pixels, then oldest date taken, then
    the oldest file (copies share their EXIF date, and the original is usually the older
    file), then path."""
    mtime = photo.mtime_ns if photo.mtime_ns is not None else float("inf")
    return (-photo.pixels, photo.date or "9999", mtime, photo.path)


def phash_distance(a: str | None, b: str | None) -> int | None:
    """Number of differing bits between two hex perceptual hashes; None when one is missing."""
    if not a or not b:
        return None
    return (int(a, 16) ^ int(b, 16)).bit_count()


def seconds_apart(a: Photo, b: Photo) -> float | None:
    """How far apart two photos were taken: EXIF dates when both have one (they are in the
    camera's local time, which mtimes are not), else file modification times."""
    if a.taken_at and b.taken_at:
        try:
            delta = datetime.fromisoformat(a.taken_at) - datetime.fromisoformat(b.taken_at)
            return abs(delta.total_seconds())
        except ValueError:
            return None
    if a.mtime_ns is None or b.mtime_ns is None:
        return None
    return abs(a.mtime_ns - b.mtime_ns) / 1e9


def load_photos(store: IndexStore) -> list[Photo]:
    """Every indexed photo's grouping facts."""
    return [
        Photo(row["id"], row["path"], row["hash"], row["phash"], row["width"] or 0,
              row["height"] or 0, row["date"], row["taken_at"], row["mtime_ns"],
              row["caption"] or "")
        for row in store.grouping_rows()
    ]  # fmt: skip


def find_duplicates(
    store: IndexStore,
    thresholds: Thresholds | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> DuplicatesReport:
    """Group the index's photos into exact duplicates, near-duplicates and bursts.

    Reads the store and its FAISS vectors; writes nothing. `on_progress` gets a
    `Progress(done, total)` counting the distinct pictures whose neighbours were searched.
    """
    limits = thresholds or Thresholds()
    photos = load_photos(store)
    by_hash: dict[str, list[Photo]] = {}
    for photo in photos:
        by_hash.setdefault(photo.hash, []).append(photo)
    # one representative per content: copies share their vector, so one query serves all
    reps = {min(copies, key=keeper_key).id: h for h, copies in by_hash.items()}
    by_id = {photo.id: photo for photo in photos}
    notices: list[str] = []
    pairs = [
        (by_id[a], by_id[b], score)
        for a, b, score in _similar_pairs(store, reps, limits, notices, on_progress)
    ]

    units = _UnionFind(by_hash)  # a unit: the contents of one duplicate group, or one alone
    for a, b, score in pairs:
        if _near(a, b, score, limits):
            units.union(a.hash, b.hash)
    members = {root: [p for h in hashes for p in by_hash[h]]
               for root, hashes in units.components().items()}  # fmt: skip
    groups = [_group("exact" if len(set(p.hash for p in m)) == 1 else "near", m)
              for m in members.values() if len(m) > 1]  # fmt: skip
    groups += _bursts(pairs, units, members, limits)
    order = {kind: n for n, kind in enumerate(KINDS)}
    groups.sort(key=lambda group: (order[group.kind], keeper_key(group.keep)))
    return DuplicatesReport(groups, len(photos), notices)


def _bursts(pairs, units: _UnionFind, members: dict, limits: Thresholds) -> list:
    """Burst groups over units: each duplicate group takes part as one shot, its keeper."""
    keepers = {root: min(photos, key=keeper_key) for root, photos in members.items()}
    shots = _UnionFind(keepers)
    for a, b, score in pairs:
        unit_a, unit_b = units.find(a.hash), units.find(b.hash)
        if unit_a != unit_b and _burst(a, b, score, limits):
            shots.union(unit_a, unit_b)
    return [_group("burst", [keepers[unit] for unit in burst])
            for burst in shots.components().values() if len(burst) > 1]  # fmt: skip


def _near(a: Photo, b: Photo, score: float, limits: Thresholds) -> bool:
    distance = phash_distance(a.phash, b.phash)
    return (distance is not None and distance <= limits.near_max_phash_bits
            and score >= limits.near_min_clip)  # fmt: skip


def _burst(a: Photo, b: Photo, score: float, limits: Thresholds) -> bool:
    # without both phashes a burst cannot be told from a duplicate: leave the pair alone
    if score < limits.burst_min_clip or phash_distance(a.phash, b.phash) is None:
        return False
    apart = seconds_apart(a, b)
    return apart is not None and apart <= limits.burst_max_seconds


def _group(kind: str, members: Iterable[Photo]) -> DuplicateGroup:
    ordered = sorted(members, key=keeper_key)
    return DuplicateGroup(kind, ordered[0], ordered)


def _similar_pairs(
    store: IndexStore,
    reps: dict[int, str],
    limits: Thresholds,
    notices: list[str],
    on_progress: Callable[[Progress], None] | None,
) -> Iterator[tuple[int, int, float]]:
    """(id a, id b, cosine) with a < b for representative pairs above the lower CLIP bound,
    each pair once."""
    report = on_progress or (lambda progress: None)
    vectors = load_vector_index(store)
    if vectors is None or len(reps) < 2:
        return
    if vectors.notice:
        notices.append(vectors.notice)
    allowed = np.fromiter(reps, dtype=np.int64, count=len(reps))
    floor = min(limits.near_min_clip, limits.burst_min_clip)
    seen: set[tuple[int, int]] = set()
    done = 0
    report(Progress(0, len(reps)))
    for ids, batch in store.iter_vectors(batch=1024):
        keep = np.isin(ids, allowed)
        if not keep.any():
            continue
        ids, batch = ids[keep], batch[keep]
        scores, found = vectors.search(batch, limits.neighbours + 1, allowed)
        for query, row_scores, row_ids in zip(ids, scores, found, strict=True):
            for score, other in zip(row_scores, row_ids, strict=True):
                pair = (int(min(query, other)), int(max(query, other)))
                if other < 0 or other == query or score < floor or pair in seen:
                    continue
                seen.add(pair)
                yield pair[0], pair[1], float(score)
        done += len(ids)
        report(Progress(done, len(reps)))


class _UnionFind:
    """Disjoint sets over hashable items, with path halving."""

    def __init__(self, items: Iterable) -> None:
        self.parent = {item: item for item in items}

    def find(self, item):
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a, b) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def components(self) -> dict:
        """Every set as {root: [items in insertion order]}."""
        sets: dict = {}
        for item in self.parent:
            sets.setdefault(self.find(item), []).append(item)
        return sets
