"""Whether a judge can read a text: the language of queries and audit descriptions.

OFA visual entailment reads English. Asked about a Chinese sentence it answers anyway, and
its answer is noise that can hide every hit as "nothing matches". So a text the judge
cannot read is not judged: search keeps retrieval's order with a notice, the audit reports
the row as not judged.

The language comes from py3langid (langid.py's model, shipped in its wheel), restricted to
LANGUAGES so it is fast (well under a millisecond a query once loaded) and does not guess
among a hundred languages for a two-word query. A text is taken as unreadable when:
- it holds letters of a script the judge's languages do not use (CJK, Cyrillic, Arabic...):
  a mixed query such as "a photo of 长城" is not judged, since the judge would see only
  "a photo of" and an unknown word;
- or the identifier is sure (P >= CONFIDENT) that it is another language written in Latin
  letters ("un chien sur la plage"). Short Latin queries ("dog", "Budapest") are too short
  to tell and are judged, as before.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence

LANGUAGES = ("en", "zh", "ja", "ko", "de", "fr", "es", "it", "pt", "ru", "nl", "ar")
CONFIDENT = 0.9
NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "de": "German",
         "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
         "ru": "Russian", "nl": "Dutch", "ar": "Arabic"}  # fmt: skip
_SCRIPT_OF = {"zh": "CJK", "ja": "CJK", "ko": "HANGUL", "ru": "CYRILLIC", "ar": "ARABIC"}
_lock = threading.Lock()
_identifier = None


def _identify(text: str) -> tuple[str, float]:
    """(language code among LANGUAGES, probability)."""
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(LANGUAGES))
            _identifier = identifier
        code, probability = _identifier.classify(text)
    return code, float(probability)


def _scripts(text: str) -> set[str]:
    """The scripts of the text's letters: LATIN, CJK, HANGUL, CYRILLIC, ARABIC, ..."""
    found = set()
    for character in text:
        if not character.isalpha():
            continue
        name = unicodedata.name(character, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
            found.add("CJK")
        elif name:
            found.add(name.split()[0])
    return found


def text_language(text: str) -> str:
    """The text's most likely language code (see LANGUAGES)."""
    scripts = _scripts(text)
    if "CJK" in scripts:  # kana means Japanese; the identifier tells Chinese from Japanese
        code, _ = _identify(text)
        return code if code in ("zh", "ja") else "zh"
    return _identify(text)[0]


def unreadable(text: str, languages: Sequence[str] = ("en",)) -> str | None:
    """Why a judge reading `languages` cannot judge `text` (one line), or None when it can."""
    readable_scripts = {"LATIN", *(_SCRIPT_OF.get(code, "LATIN") for code in languages)}
    if _scripts(text) - readable_scripts:
        code = text_language(text)
    else:
        code, probability = _identify(text)
        if code in languages or probability < CONFIDENT:
            return None
    return f"the text is in {NAMES.get(code, code)} and the judge reads {_names(languages)}"


def _names(languages: Sequence[str]) -> str:
    return ", ".join(NAMES.get(code, code) for code in languages)
