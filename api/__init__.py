"""The HTTP API (`indexer serve`): the library's search, photos, captions, entailment,
audit and questions about a photo, for other programs. A thin layer: every answer comes
from indexer/, search/ and curate/."""
