"""Exceptions the library raises; each carries a one-line message meant for a person."""


class IndexerError(Exception):
    """Base class: the operation could not run at all. The message is one sentence."""


class ModelUnavailable(IndexerError):
    """A model could not be found locally or downloaded."""


class IndexLocked(IndexerError):
    """Another process is writing to the index."""


class IndexMismatch(IndexerError):
    """The index was made with other models than the ones asked for."""


class IndexCorrupt(IndexerError):
    """The index database cannot be read."""


class NoSuchFolder(IndexerError):
    """A folder given to scan does not exist or is not a folder."""
