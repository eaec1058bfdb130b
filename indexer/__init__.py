"""Photo indexer: caption photos with OFA, embed them with CLIP, keep a FAISS + SQLite index.

The pipeline reads top to bottom in the module names:
scan -> decode -> caption / embed -> store, joined by build; cli is a thin layer on top.
"""

__version__ = "0.1.0"
