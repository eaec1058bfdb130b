"""The vocabularies of the random-weight OFA folders (testing/models.py), in ModelScope's two
formats: English OFA reads a GPT-2/BART byte-level BPE (`vocab.json` + `merges.txt`),
Chinese OFA (language "zh", the damo *_zh models) a BERT-style WordPiece `vocab.txt`
(bert-base-chinese's, 21128 entries, with OFA's `<s>`/`<pad>`/`</s>`/`<unk>`/`<mask>`)."""

from __future__ import annotations

import json
from pathlib import Path

BART_VOCAB = 50265  # BART / GPT-2 byte-level BPE vocabulary size (with the 4 specials and <mask>)
OFA_ADDED = 8192 + 1000  # <code_i> and <bin_i> tokens ModelScope always adds at load time

# Words that get whole-word merges (as " word"), so prompts and queries tokenize into few tokens.
_WORDS = """
the a an of in on at with and is are there this that it to for by what does image describe
photo picture view two three one some no yes maybe man woman person people child boy girl
dog cat bird horse car bus train bike street road tree grass sky water beach sea snow house
room table chair bed food plate pizza red blue green yellow white black orange brown circle
square triangle sitting standing walking riding holding playing small large big next near
front top
"""
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map (the alphabet of byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def bpe_vocab(size: int | None) -> tuple[dict[str, int], list[str]]:
    """A deterministic byte-level BPE (vocab, merges) with BART's special ids.

    ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, then the 256 byte symbols, then
    whole-word merges for ``_WORDS``; with ``size`` set, letter n-gram merges fill the
    vocabulary up to ``size`` entries; ``<mask>`` is always last.
    """
    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    for ch in _bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    merges: list[str] = []
    limit = (size or 10**9) - 1

    def merge(left: str, right: str) -> None:
        if left + right not in vocab and len(vocab) < limit:
            merges.append(f"{left} {right}")
            vocab[left + right] = len(vocab)

    space = _bytes_to_unicode()[ord(" ")]
    for word in _WORDS.split():
        tok = space
        for ch in word:
            merge(tok, ch)
            tok += ch
    if size:
        letters = "etaoinshrdlcumwfgypbvkjxqz"
        grams = [""]
        while len(vocab) < limit:
            grams = [g + c for g in grams for c in letters]
            for gram in grams:
                if len(gram) > 1:
                    merge(gram[:-1], gram[-1])
                merge(space + gram[:-1], gram[-1])
    vocab["<mask>"] = len(vocab)
    return vocab, merges


def _unprintable_ids(vocab: dict[str, int]) -> list[int]:
    """The byte symbols of control and non-ASCII bytes, which would decode to control
    characters or broken UTF-8."""
    printable = {ch for b, ch in _bytes_to_unicode().items() if 32 <= b < 127}
    return [i for tok, i in vocab.items() if len(tok) == 1 and tok not in printable]


CHINESE_VOCAB = 21128  # bert-base-chinese's vocab.txt, which the OFA-CN models keep
# Characters the tiny Chinese vocabulary starts with: the shapes world's words and a photo's.
_CHINESE_CHARS = "红绿蓝粉黄白黑色的圆形正方三角星一张照片图里有个在上和人狗猫车树天空水花草"


def chinese_vocab(size: int | None) -> list[str]:
    """A WordPiece vocabulary in OFA-CN's layout: the four specials, single CJK characters
    (the world's first; with `size`, CJK unified ideographs in code-point order fill it up
    to `size` entries), lower-case letters and digits with their `##` continuations, and
    `<mask>` last."""
    tokens = ["<s>", "<pad>", "</s>", "<unk>"]
    tokens += list(dict.fromkeys(_CHINESE_CHARS))
    ascii_pieces = [*"abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens += ascii_pieces + ["##" + piece for piece in ascii_pieces]
    filler = (chr(code) for code in range(0x4E00, 0x9FA6))
    seen = set(tokens)
    while size and len(tokens) < size - 1:
        character = next(filler)
        if character not in seen:
            tokens.append(character)
    return tokens + ["<mask>"]


def write_vocabulary(out: Path, language: str, full_size: bool) -> tuple[dict[str, int], list[int]]:
    """Write the vocabulary files of an OFA folder for `language` ("en" or "zh") at the
    real models' size or a tiny one; return (token -> id, the ids of tokens a random model
    must never emit, before ModelScope's added tokens)."""
    if language == "zh":
        tokens = chinese_vocab(CHINESE_VOCAB if full_size else None)
        (out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
        vocab = {token: n for n, token in enumerate(tokens)}
        # captions of CJK characters only: letters, digits and pieces stay silent
        return vocab, [n for token, n in vocab.items() if _letters_or_digits(token)]
    if language != "en":
        raise ValueError(f"unknown OFA language {language!r}; expected en or zh")
    vocab, merges = bpe_vocab(BART_VOCAB if full_size else None)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab, _unprintable_ids(vocab)


def _letters_or_digits(token: str) -> bool:
    return token.isascii() and token.removeprefix("##").isalnum()
