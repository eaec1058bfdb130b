"""The parts of `python -m bench` that show issue 12's goals, and their tables: rerank
before/after, whole-command builds with their peak memory, a search command's memory, and
how soon a first build makes a library searchable."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .measure import table
from .memory import run_measured

PARTS = ("rerank", "commands", "early")


def run_speed_parts(options, specs: dict, workdir: Path, skip: set[str]) -> dict:
    """Every part of PARTS not in `skip`."""
    from . import commands, rerank
    from .report import QUERIES

    out: dict = {}
    if "rerank" not in skip:
        photos = commands.make_case(workdir / "rerank-photos", 10, large=4)
        originals = sorted(photos.glob("*.jpg"))
        out["rerank"] = {"random": rerank.compare(specs["rerank"], originals, QUERIES[:4]),
                         "world": rerank.world_agreement(Path(options.world_cache))}  # fmt: skip
    if "commands" not in skip:
        parts = command_parts(options)
        out["commands"] = commands.whole_commands(specs, workdir, options.command_photos,
                                                  parts=parts)  # fmt: skip
        if "search" in parts:
            out["commands"]["search_peak_mb"] = search_memory(specs, workdir)
    if "early" not in skip:
        out["early"] = commands.searchable_early(specs, workdir, options.early_photos)
    return out


def command_parts(options) -> set[str]:
    """The whole-command parts `--command-parts` names (all when not given)."""
    from .commands import COMMAND_PARTS

    known = {*COMMAND_PARTS, "search"}
    chosen = set(filter(None, (getattr(options, "command_parts", "") or "").split(",")))
    if chosen - known:
        raise SystemExit(f"unknown command parts: {', '.join(sorted(chosen - known))} "
                         f"(known: {', '.join(sorted(known))})")  # fmt: skip
    return chosen or known


def search_memory(specs: dict, workdir: Path) -> float:
    """Peak MB of `indexer search` with rerank (CLIP and the reranker loaded, one query)."""
    from .commands import _environment, make_case

    photos, index = make_case(workdir / "memory-photos", 6, large=2), workdir / "memory-index"
    env = dict(_environment(specs, index), INDEXER_RERANK_MODEL=specs["rerank"])
    run_measured([sys.executable, "-m", "indexer.cli", "build", str(photos)], env)
    _, peak = run_measured([sys.executable, "-m", "indexer.cli", "search", "a red car"], env)
    shutil.rmtree(index, ignore_errors=True)
    return round(peak)


def speed_tables(results: dict) -> list[str]:
    """The tables of the parts that ran."""
    parts = []
    if "rerank" in results:
        rows = [("model", "before p50/p90 ms", "after p50/p90 ms", "max |dP(yes)|", "verdicts")]
        for name, r in results["rerank"].items():
            rows.append((name, f"{r['before']['p50_ms']} / {r['before']['p90_ms']}",
                         f"{r['after']['p50_ms']} / {r['after']['p90_ms']}",
                         r["max_p_yes_diff"], r["same_verdicts"]))  # fmt: skip
        title = (
            "Rerank the top 10 (before: decode originals, ModelScope's arithmetic; "
            "after: prepared squares, one decoder pass)"
        )
        parts.append(table(title, rows))
    if "commands" in results:
        parts.append(_commands_table(results["commands"]))
    if "early" in results:
        e = results["early"]
        parts.append(f"First build of {e['photos']} photos (default: --captions later): every "
                     f"photo searchable after {e['searchable_s']} s, text read after "
                     f"{e['text_read_s']} s, complete after {e['complete_s']} s")  # fmt: skip
    return parts


def _commands_table(c: dict) -> str:
    """The whole-command builds, and what reading text costs the default one. Load: the
    machine's 5-minute load average when each build ended (other work slows them)."""
    rows = [("command", "seconds", "images/min", "x loop", "text pass s", "peak MB (tree)",
             "load")]  # fmt: skip
    if "loop_s" in c:
        rows.append(("straightforward loop", c["loop_s"], c["loop_images_min"], "1.00", "-", "-",
                     "-"))  # fmt: skip
    for name in c["builds"]:
        label = "default, --no-ocr" if name == "no_ocr" else name
        rows.append((f"indexer build ({label})", c[f"build_{name}_s"],
                     c[f"build_{name}_images_min"], c[f"build_{name}_speedup"] or "-",
                     c[f"build_{name}_text_s"] or "-", c[f"build_{name}_peak_mb"],
                     c[f"build_{name}_load"]))  # fmt: skip
    extras = []
    if "start_up_s" in c:
        extras.append(f"build start-up {c['start_up_s']} s")
    if "search_peak_mb" in c:
        extras.append(f"`indexer search` with rerank peaks at {c['search_peak_mb']} MB")
    title = f"Whole commands on {c['photos']} photos ({c['large_photos']} of them 12 MP)"
    text = table("; ".join([title, *extras]), rows)
    if "ocr" in c:
        o = c["ocr"]
        text += (f"\nText in photos: the default build takes {o['ratio']}x the --no-ocr build "
                 f"({o['with_s']} s / {o['without_s']} s; goal at most {o['goal_ratio']}x: "
                 f"{'met' if o['goal_met'] else 'NOT met'}); its text pass "
                 f"{o['text_pass_s']} s, {o['text_pass_share']:.0%} of the build "
                 f"({o['text_pass_photos_min']} photos/min)")  # fmt: skip
    return text
