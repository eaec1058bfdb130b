"""Candidates from the text read in photos (OCR): the third ranking of the fusion.

A query's words are looked for inside the photos' text, spaces and case aside (the store's
trigram table, indexer.store.photo_text): "hours" finds "OPEN24HOURS", "咖啡" finds
"欢迎光临咖啡店", and the whole query with its spaces taken out finds the words run
together ("open 24 hours" finds "OPEN24HOURS" and "OPEN 24 HOURS" alike). A photo ranks by
how much of the query its text holds: the characters of the words found, the whole query
counting as one more word; ties newest first.

Short words say little and match everywhere, so a word counts from three characters (two
for Chinese, Japanese and Korean, written without spaces, where two characters are often a
whole word), and the caption search's stopwords are left out.
"""

from __future__ import annotations

import re

from indexer.store import IndexStore

from .filters import Filters
from .results import Hit
from .retrieve import STOPWORDS

MIN_WORD = 3
MIN_CJK_WORD = 2
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def text_terms(query: str) -> list[str]:
    """What to look for in the photos' text: the query's meaningful words, lower-case and
    each once, then the whole query without spaces when it has more than one word."""
    words = re.findall(r"\w+", query.casefold())
    terms = [w for w in words if w not in STOPWORDS and len(w) >= _shortest(w)]
    if len(words) > 1:
        terms.append("".join(words))
    return list(dict.fromkeys(terms))


def _shortest(word: str) -> int:
    return MIN_CJK_WORD if _CJK.search(word) else MIN_WORD


def text_candidates(
    store: IndexStore, query: str, limit: int, filters: Filters | None = None
) -> list[tuple[int, float, list[str]]]:
    """[(image id, score, terms found)] of photos whose text holds the query's words
    (see the module docstring), best first, at most `limit`."""
    return _ranked_by_terms(store, text_terms(query), limit, filters, in_captions=False)


def cjk_caption_candidates(
    store: IndexStore, query: str, limit: int, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """[(image id, score)] of photos whose Chinese, Japanese or Korean caption holds the
    query's CJK words (written without spaces, the word index cannot split such captions),
    ranked like text_candidates."""
    terms = [term for term in text_terms(query) if _CJK.search(term)]
    ranked = _ranked_by_terms(store, terms, limit, filters, in_captions=True)
    return [(image_id, score) for image_id, score, _ in ranked]


def _ranked_by_terms(store, terms, limit, filters, in_captions):
    """Photos holding any of `terms`, scored by the characters of the terms they hold,
    ties newest first: [(image id, score, terms found)]."""
    found: dict[int, list[str]] = {}
    for term in terms:
        for image_id in store.text_matches(term, limit, filters, in_captions=in_captions):
            found.setdefault(image_id, []).append(term)
    scored = [(image_id, float(sum(len(t) for t in held)), held)
              for image_id, held in found.items()]  # fmt: skip
    scored.sort(key=lambda item: (-item[1], -item[0]))
    return scored[:limit]


def attach_text(hits: list[Hit], store: IndexStore, matched: dict[int, list[str]]) -> None:
    """Give each hit its photo's text, and, where the text matched the query (`matched`:
    image id -> terms found), the terms and the lines that hold them."""
    texts = store.texts_of([hit.id for hit in hits])
    for hit in hits:
        hit.text = texts.get(hit.id, ("", ""))[0] or ""
        hit.text_terms = list(matched.get(hit.id, []))
        hit.text_lines = matching_lines(hit.text, hit.text_terms)


def matching_lines(text: str, terms: list[str]) -> list[str]:
    """The lines of `text` that hold one of `terms` (spaces and case aside); the whole text
    as one line when the terms only match across lines."""
    if not terms:
        return []
    lines = [line for line in text.split("\n") if line.strip()]
    held = [line for line in lines if any(t in _squashed(line) for t in terms)]
    return held or [" ".join(lines)]


def _squashed(text: str) -> str:
    return "".join(text.split()).casefold()
