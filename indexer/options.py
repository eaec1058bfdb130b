"""Command-line options that several `indexer` commands share, declared once.

Each is a click decorator; a command stacks the ones it takes. Help texts name the
environment variable that sets the same thing (flags win over variables, variables over
defaults: indexer/config.py).
"""

from __future__ import annotations

import click

DEVICES = ("auto", "cpu", "cuda")

index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False),
    help="Index folder (default: $INDEXER_HOME, else a per-user data folder).",
)  # fmt: skip
device_option = click.option(
    "--device", type=click.Choice(DEVICES),
    help="Where the models run [$INDEXER_DEVICE; default auto].",
)  # fmt: skip
trust_remote_code_option = click.option(
    "--trust-remote-code", is_flag=True, default=None,
    help="Let a model folder run Python code it ships (off by default: weights load with "
    "safe loaders only) [$INDEXER_TRUST_REMOTE_CODE].",
)  # fmt: skip
rerank_model_option = click.option(
    "--rerank-model",
    help="ModelScope OFA visual-entailment model id or folder [$INDEXER_RERANK_MODEL; "
    "default: distilled on CPU, large on GPU].",
)


def json_option(help: str = "Print one JSON object."):  # noqa: A002  (click's own name)
    """`--json` (as_json), with a help text that says what is printed."""
    return click.option("--json", "as_json", is_flag=True, help=help)
