"""Text readers that misbehave on purpose, for the text pass's tests (run in the decode
workers, as "tests.hostile_readers:Misbehaving"). Which photo gets which misbehaviour is
told by the original picture's width, the one thing a reader is given besides the pixels."""

import os
import signal
import time

from indexer.ocr import TextLine

HANG, RAISE, CRASH, HOG = 333, 334, 335, 336  # original widths
GOOD_LINE = TextLine("NICE SIGN 42", 0.99, ((0, 0), (10, 0), (10, 5), (0, 5)))


class Misbehaving:
    """Hangs on pictures HANG pixels wide, raises on RAISE, crashes its process on CRASH,
    eats memory on HOG; reads GOOD_LINE in any other."""

    @staticmethod
    def model_name() -> str:
        return "misbehaving-reader-1"

    def __init__(self) -> None:
        self.name = self.model_name()

    def read(self, image, original_size):
        width = original_size[0]
        if width == HANG:
            time.sleep(3600)
        if width == RAISE:
            raise RuntimeError("the reader gave up")
        if width == CRASH:
            os.kill(os.getpid(), signal.SIGSEGV)
        if width == HOG:
            hoard = bytearray(64 * 1024**3)  # far beyond any budget
            return [hoard]
        return [GOOD_LINE]


class HangsAlways:
    """A reader that never answers."""

    @staticmethod
    def model_name() -> str:
        return "hanging-reader-1"

    def __init__(self) -> None:
        self.name = self.model_name()

    def read(self, image, original_size):
        time.sleep(3600)


class Unloadable:
    """A reader whose model cannot be made (its constructor raises in the worker)."""

    @staticmethod
    def model_name() -> str:
        return "unloadable-reader-1"

    def __init__(self) -> None:
        raise RuntimeError("model file is damaged")
