"""What a build did, as the library returns it and `indexer build --json` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    captioned: int = 0  # photos given a caption by this run
    captions_pending: int = 0  # photos still without one after it (searchable by CLIP)
    text_read: int = 0  # photos whose text this run read (with or without text found)
    failures: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report as plain JSON-ready data."""
        data = {k: getattr(self, k) for k in ("new", "updated", "moved", "removed", "unchanged")}
        data.update(failed=self.failed, model_calls=self.model_calls, captioned=self.captioned,
                    captions_pending=self.captions_pending, text_read=self.text_read,
                    notices=self.notices)  # fmt: skip
        data["failures"] = [{"path": p, "reason": r} for p, r in self.failures]
        return data
