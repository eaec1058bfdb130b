"""Load on `indexer serve`: many concurrent searches against a 1,000-photo index (loopback).

Builds (or reuses, with --index DIR) an index of generated photos with the tiny random-weight
models, starts `indexer serve` on a free loopback port as a subprocess, then:
- phase 1: --requests GET /search without rerank, --concurrency at a time, in waves, with
  the server's resident memory (VmRSS) after each wave;
- phase 2: --rerank-concurrency GET /search with rerank at once. A 503 with Retry-After is
  the model queue refusing on purpose; any other answer but 200 is an error.
Prints a markdown summary (and writes --json PATH); the server is stopped whatever happens.

python -m bench.api_load                        # 1,000 photos, 2,000 + 20 requests
python -m bench.api_load --index /tmp/api-load  # keep the models and index between runs
python -m bench.api_load --tiny --json /tmp/a.json   # 40 photos, 100 + 20 requests: a check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from .measure import percentiles

COLOURS = ["red", "green", "blue", "yellow", "white", "dark"]
THINGS = ["circle", "square", "car", "dog", "house", "boat", "flower", "mug"]
PLACES = ["on grass", "at night", "in the snow", "near the sea", "indoors"]
QUERIES = [" ".join(words) for words in itertools.product(COLOURS, THINGS, PLACES)]
START_TIMEOUT_S, REQUEST_TIMEOUT_S = 120, 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--index", type=Path, help="work folder kept between runs (models, "
                        "photos, index); default a temporary one")  # fmt: skip
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000, help="searches without rerank")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rerank-concurrency", type=int, default=20)
    parser.add_argument("--captions", choices=["never", "now"], default="never",
                        help="caption the photos (slow: 0.3 to 1.4 s a photo)")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="40 photos, 100 requests, 20 at once")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.photos, args.requests, args.concurrency = 40, 100, 20
    return args


def make_models(root: Path) -> dict[str, str]:
    """Specs of the tiny random-weight CLIP, OFA caption and OFA entailment (made once)."""
    from testing.models import make_clip_folder, make_ofa_folder

    saved = root / "models.json"
    if saved.exists():
        return json.loads(saved.read_text())
    specs = {"clip": make_clip_folder(root / "clip", size="tiny")}
    for name, task in (("caption", "caption"), ("rerank", "entailment")):
        specs[name] = make_ofa_folder(root / task, task=task, size="tiny")
    saved.write_text(json.dumps(specs))
    return specs


def make_index(root: Path, photos: int, captions: str, specs: dict) -> dict:
    """An index of `photos` generated photos under `root` (reused when complete)."""
    from indexer.build import build_index
    from indexer.config import load_settings
    from indexer.models import models_from_settings
    from indexer.status import index_status
    from testing.photos import write_photos

    folder, index = root / f"photos-{photos}", root / f"index-{photos}"
    status = index_status(index)
    pending = status["passes"]["captions"]["pending"]
    if status["indexed"] == photos and (captions == "never" or not pending):
        return {"index": str(index), "build_s": None}
    if len(list(folder.glob("*.jpg"))) != photos:
        write_photos(folder, photos)
    settings = load_settings({"index_dir": index, "clip_model": specs["clip"], "ocr": False,
                              "caption_model": specs["caption"], "device": "cpu"},
                             environ={})  # fmt: skip
    start = time.perf_counter()
    build_index([folder], index, models_from_settings(settings), captions=captions,
                read_text=None)  # fmt: skip
    return {"index": str(index), "build_s": round(time.perf_counter() - start, 1)}


def start_server(index: str, specs: dict, log) -> tuple[subprocess.Popen, str]:
    """`indexer serve` on a free loopback port, answering /health: (process, base URL).
    RuntimeError with the end of its log if it does not."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    env.update(INDEXER_CLIP_MODEL=specs["clip"], INDEXER_CAPTION_MODEL=specs["caption"],
               INDEXER_RERANK_MODEL=specs["rerank"], INDEXER_DEVICE="cpu", INDEXER_OFFLINE="1",
               HF_HUB_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE",
               TOKENIZERS_PARALLELISM="false")  # fmt: skip
    command = [sys.executable, "-m", "indexer.cli", "serve", "--index", index,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    stop_server(server)
    log.flush()
    tail = Path(log.name).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not answer /health (exit {server.returncode}): {tail}")


def stop_server(server: subprocess.Popen) -> None:
    """Terminate, then kill after 15 s."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` now (VmRSS), in MB."""
    found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return round(int(found[1]) / 1024, 1) if found else 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_search(client: httpx.AsyncClient, params: dict) -> tuple[str, float]:
    """(outcome, seconds) of one GET /search: "200", "503" (with Retry-After) or an error."""
    start = time.perf_counter()
    try:
        answer = await client.get("/search", params=params)
        outcome = str(answer.status_code)
        if answer.status_code == 503 and "retry-after" not in answer.headers:
            outcome = "503 without Retry-After"
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - start


async def run_phase(client, pid: int, total: int, concurrency: int, rerank: bool) -> dict:
    """`total` searches in waves of `concurrency`; the server's RSS after each wave."""
    extra = {"rerank": "true", "top": 10} if rerank else {"rerank": "false"}
    outcomes, rss, sent = [], [], 0
    start, cpu = time.perf_counter(), (cpu_s(pid), time.process_time())
    while sent < total:
        size = min(concurrency, total - sent)
        params = [{"q": QUERIES[(sent + n) % len(QUERIES)], "k": 10, **extra} for n in range(size)]
        outcomes += await asyncio.gather(*(one_search(client, p) for p in params))
        rss.append(rss_mb(pid))
        sent += size
    phase = summarise(outcomes, time.perf_counter() - start, rss, concurrency)
    phase["cpu_s"] = {"server": round(cpu_s(pid) - cpu[0], 1),
                      "client": round(time.process_time() - cpu[1], 1)}  # fmt: skip
    return phase


def summarise(outcomes: list, seconds: float, rss: list[float], concurrency: int) -> dict:
    """Counts by outcome, latency percentiles of the 200s (ms), throughput and memory."""
    counts = dict(Counter(outcome for outcome, _ in outcomes))
    ok_ms = [1000 * s for outcome, s in outcomes if outcome == "200"]
    error_ms = [round(1000 * s, 1) for outcome, s in outcomes if outcome not in ("200", "503")]
    shown = {k: round(v, 1) for k, v in percentiles(ok_ms).items()} if ok_ms else {}
    return {"requests": len(outcomes), "concurrency": concurrency, "statuses": counts,
            "errors": len(error_ms), "error_ms": error_ms[:50],
            "latency_ms": {**shown, "max": round(max(ok_ms), 1) if ok_ms else None},
            "seconds": round(seconds, 2), "per_s": round(len(outcomes) / seconds, 1),
            "rss_mb": {"first": rss[0], "last": rss[-1], "max": max(rss), "waves": rss},
            }  # fmt: skip


async def drive(base: str, pid: int, args) -> dict:
    """Warm-ups (each model loads on first use), then the two phases."""
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base, limits=limits, trust_env=False,
                                 timeout=REQUEST_TIMEOUT_S) as client:  # fmt: skip
        warm = {}
        for name, params in (("search", {"rerank": "false"}), ("rerank", {"rerank": "true"})):
            outcome, seconds = await one_search(client, {"q": "warm up", **params})
            warm[name] = {"outcome": outcome, "seconds": round(seconds, 2)}
        rss_start = rss_mb(pid)
        plain = await run_phase(client, pid, args.requests, args.concurrency, rerank=False)
        n = args.rerank_concurrency
        reranked = await run_phase(client, pid, n, n, rerank=True)
    status = httpx.get(f"{base}/status", trust_env=False).json()  # a fresh connection
    return {"warm_up": warm, "rss_after_warm_up_mb": rss_start, "search": plain,
            "rerank": reranked, "server_status": status}  # fmt: skip


def finish(report: dict) -> dict:
    """Adds the verdicts: captions done, the queue's own count, whether memory stayed flat
    (last wave within 5%, at least 16 MB, of the first), and the odd outcomes: any but 200
    or a deliberate 503, and any 503 to a search without rerank (it never waits for a model)."""
    status, rss = report.pop("server_status"), report["search"]["rss_mb"]
    first, last = rss["first"], rss["last"]
    report.update(captioned=status["passes"]["captions"]["done"], queue=status["queue"],
                  memory_flat=last - first <= max(16.0, 0.05 * first))  # fmt: skip
    report["odd"] = {f"{name}: {k}": n for name in ("search", "rerank")
                     for k, n in report[name]["statuses"].items()
                     if k not in ("200", "503") or (k, name) == ("503", "search")}  # fmt: skip
    return report


def markdown(report: dict) -> str:
    """The summary table and a few lines around it."""
    lines = [f"## indexer serve under load ({report['photos']} photos, "
             f"{report['captioned']} captioned)", "",
             "| phase | requests | at once | 200 | 503 (busy) | errors | p50 ms | p99 ms | "
             "max ms | req/s | CPU s server / client | server RSS MB first / last / max |",
             "|" + "---|" * 12]  # fmt: skip
    for name in ("search", "rerank"):
        p, lat, rss = report[name], report[name]["latency_ms"], report[name]["rss_mb"]
        lines.append(f"| {name} | {p['requests']} | {p['concurrency']} | "
                     f"{p['statuses'].get('200', 0)} | {p['statuses'].get('503', 0)} | "
                     f"{p['errors']} | {lat.get('p50')} | {lat.get('p99')} | {lat['max']} | "
                     f"{p['per_s']} | {p['cpu_s']['server']} / {p['cpu_s']['client']} | "
                     f"{rss['first']} / {rss['last']} / {rss['max']} |")  # fmt: skip
    warm = ", ".join(f"{k} {v['seconds']} s ({v['outcome']})" for k, v in report["warm_up"].items())
    build = f"{report['build_s']} s" if report["build_s"] is not None else "reused"
    lines += ["", f"- warm-up (models load on first use): {warm}; RSS after it "
              f"{report['rss_after_warm_up_mb']} MB",
              f"- memory flat over the searches: {'yes' if report['memory_flat'] else 'NO'} "
              f"(RSS per wave: {report['search']['rss_mb']['waves']})",
              f"- odd outcomes: {report['odd'] or 'none'}; 503s counted by the server's queue: "
              f"{report['queue']['refused']}; index build {build}; whole run {report['wall_s']} s",
              ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Build or reuse the index, serve it, load it, print (and save) the figures."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)  # the model libraries' INFO lines stay out
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="api-load-") as scratch:
        root = args.index or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        specs = make_models(root)
        built = make_index(root, args.photos, args.captions, specs)
        with open(root / "server.log", "wb") as log:
            server, base = start_server(built["index"], specs, log)
            try:
                report = asyncio.run(drive(base, server.pid, args))
            finally:
                stop_server(server)
        report.update(photos=args.photos, build_s=built["build_s"],
                      wall_s=round(time.perf_counter() - started, 1))  # fmt: skip
        report = finish(report)
        if report["odd"]:
            report["server_log_tail"] = (root / "server.log").read_text()[-4000:]
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
