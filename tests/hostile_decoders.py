"""Decoders that misbehave on purpose, for the decode pool's tests (run in worker processes)."""

import os
import signal
import time

from indexer.decode_pool import decode_path


def misbehaving(path: str, min_side: int):
    """Hang on *hang*, crash on *crash*, eat memory on *hog*, else decode normally."""
    name = os.path.basename(path)
    if "hang" in name:
        time.sleep(3600)
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hog" in name:
        hoard = bytearray(64 * 1024**3)  # far beyond any budget
        return hoard
    return decode_path(path, min_side)
