"""Title normalisation for search: case, accents and MovieLens's trailing articles do not matter.

MovieLens writes "Matrix, The (1999)" and "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)";
people type "the matrix" or "amelie". :func:`search_key` maps both sides to the same plain form.
"""

from __future__ import annotations

import re
import unicodedata

ARTICLES = (
    "The", "A", "An", "L'", "Le", "La", "Les", "Il", "Lo", "I", "Gli", "El", "Los", "Las", "Un", "Une",
    "Der", "Die", "Das", "Ein", "Eine", "De", "Het", "Den", "Det", "O", "Os", "As",
)  # fmt: skip
"""Articles that MovieLens moves behind a title ("Matrix, The")."""

_TRAILING_ARTICLE = re.compile(
    r"^(?P<title>.+?), (?P<article>" + "|".join(re.escape(a) for a in ARTICLES) + r")$", re.IGNORECASE
)
YEAR_AT_END = r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$"
"""A title's trailing release year, "(1995)" or a range "(1975-1979)"; group 1 is the first year."""
_YEAR = re.compile(r"\s*" + YEAR_AT_END)
_NOT_WORD = re.compile(r"[\W_]+")


def strip_accents(text: str) -> str:
    """``text`` without combining marks.

    >>> strip_accents("Amélie à Paris")
    'Amelie a Paris'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def display_title(title: str) -> str:
    """The title with its article in front and without the year, as people say it.

    >>> display_title("Matrix, The (1999)")
    'The Matrix'
    >>> display_title("Usual Suspects, The")
    'The Usual Suspects'
    """
    bare = _YEAR.sub("", title).strip()
    match = _TRAILING_ARTICLE.match(bare)
    if match:
        article = match["article"]
        joiner = "" if article.endswith("'") else " "
        return f"{article}{joiner}{match['title']}"
    return bare


def search_key(text: str) -> str:
    """The words of a title or a query, case-folded, without accents, article in front, year dropped.

    >>> search_key("Matrix, The (1999)")
    'the matrix'
    >>> search_key("  the MATRIX ")
    'the matrix'
    >>> search_key("Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)")
    'amelie fabuleux destin d amelie poulain le'
    >>> search_key("50% off_")
    '50 off'
    >>> search_key("東京物語 (Tokyo Story) (1953)")
    '東京物語 tokyo story'
    """
    words = _NOT_WORD.sub(" ", strip_accents(display_title(text)).casefold())
    return " ".join(words.split())


def title_words(title: str) -> list[str]:
    """The words of a title as the model reads them: those of :func:`search_key`, so search and model agree.

    >>> title_words("Matrix, The (1999)")
    ['the', 'matrix']
    """
    return search_key(title).split()
