"""Curation: looking after a library once it is indexed. Duplicates and bursts, zero-shot
tags, the image-text audit, and export of a selection; their commands live in `curate.cli`.
Depends on `search` (queries, the reranker) and `indexer` (the store, the models)."""
