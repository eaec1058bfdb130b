"""`indexer search`: registered as a command of the `indexer` CLI through an entry point."""

from __future__ import annotations

import json

import click

from indexer.cli import one_line_errors, quiet_model_logs, settings_from
from indexer.options import (
    device_option,
    index_option,
    json_option,
    rerank_model_option,
    trust_remote_code_option,
)


def _day(text: str | None) -> str | None:
    """A YYYY-MM-DD day, checked; None stays None."""
    if text is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a day written as YYYY-MM-DD") from None


@click.command()
@click.argument("query")
@index_option
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of results.")  # fmt: skip
@click.option("--rerank/--no-rerank", default=True, show_default=True,
              help="Judge the top hits with OFA visual entailment.")  # fmt: skip
@click.option("--rerank-top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many of the top hits to rerank.")  # fmt: skip
@rerank_model_option
@device_option
@click.option("--show-rejected", is_flag=True, help="Also list hits the reranker rejected.")
@click.option("--folder", type=click.Path(file_okay=False), help="Only photos under this folder.")
@click.option("--from", "taken_from", metavar="YYYY-MM-DD", help="Taken on or after this day.")
@click.option("--to", "taken_to", metavar="YYYY-MM-DD", help="Taken on or before this day.")
@click.option("--orientation", type=click.Choice(["landscape", "portrait", "square"]))
@click.option("--tag", "tags", multiple=True, help="Only photos with this tag (repeatable).")
@click.option("--has-text", is_flag=True, help="Only photos with text in them (signs, "
              "receipts, slides, screenshots), as `indexer build` read it.")  # fmt: skip
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance",
              show_default=True, help="Order of the relevant hits.")  # fmt: skip
@trust_remote_code_option
@json_option()
@one_line_errors
def search(query, index_dir, k, rerank, rerank_top, rerank_model, device, show_rejected,
           folder, taken_from, taken_to, orientation, tags, has_text, sort, trust_remote_code,
           as_json):  # fmt: skip
    """Find photos matching QUERY, in plain language.

    Hits come from CLIP vectors, caption words and the text in photos, fused by rank; the top
    ones are reranked by whether the picture entails the query, and clear "no"s are hidden
    (never a photo whose text holds the query's words), so a query can honestly find nothing.

    \b
    Example:
        indexer search "a dog running on the beach"
        indexer search "two people at a table" -k 20 --json
        indexer search "red car" --no-rerank
        indexer search "birthday cake" --folder ~/Pictures/2023 --sort date
        indexer search "open 24 hours" --has-text
    """
    from .engine import make_engine
    from .filters import Filters

    settings = settings_from(index_dir=index_dir, rerank_model=rerank_model, device=device,
                             trust_remote_code=trust_remote_code)  # fmt: skip
    quiet_model_logs()
    engine = make_engine(settings, rerank)
    try:
        filters = Filters(folder, _day(taken_from), _day(taken_to), orientation, tuple(tags),
                          has_text)  # fmt: skip
        result = engine.search(query, k=k, rerank=rerank, rerank_top=rerank_top,
                               show_rejected=show_rejected, filters=filters, sort=sort)  # fmt: skip
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    for notice in result.notices:
        click.echo(f"note: {notice}", err=True)
    if not result.hits:
        hidden = f" ({result.rejected} candidates rejected; --show-rejected lists them)"
        click.echo("nothing matches" + (hidden if result.rejected else ""))
        return
    for rank, hit in enumerate(result.hits, start=1):
        verdict = f"  [{hit.verdict} {hit.p_yes:.2f}]" if hit.verdict else ""
        click.echo(f"{rank:>3}. {hit.path}{verdict}  score {hit.score:.3f}")
        click.echo(f"     {hit.why}")
    if result.rejected and not show_rejected:
        click.echo(f"({result.rejected} rejected by the reranker; --show-rejected lists them)")
