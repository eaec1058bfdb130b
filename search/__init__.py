"""Answering a text query: retrieve (CLIP + FAISS, captions by words) -> fuse -> rerank -> cut off.

The library the CLI and the page both call: `SearchEngine(index_dir).search("red car")`.
It never prints and never exits.
"""
