"""Input hygiene for reports on many texts: dates in the formats people export, a cheap guess of
texts that are not English, and the key under which two texts count as the same.

The text models read English only (their model cards say so): a French review scored as if it were
English gets a confident label from the few tokens the vocabulary knows, so a report counts such
texts and leaves them out of the shares instead.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from emodetect.errors import DataError, InputError

EVERY = ("day", "week", "month")

_SLASHED = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")


def parse_date(value: str, dayfirst: bool | None = None) -> datetime | None:
    """A date or time as people export them, None for an empty cell.

    - ISO 8601: 2026-03-01, 2026-03-01T14:05:00, 2026-03-01 14:05+01:00, 2026-03-01T13:05:00Z;
    - 01/03/2026, 01.03.2026, 01-03-2026 (optionally with a time): which number is the day is
      `dayfirst`; with None, a first number over 12 says day first and a second one over 12 says
      month first, and a date where both are 12 or under (1 March or 3 January?) is a DataError;
    - epoch seconds (9-11 digits) or milliseconds (12-13 digits), counted in UTC;
    - RFC 2822 as in e-mail and RSS feeds (Sun, 01 Mar 2026 14:05:00 +0000).

    A time with an offset is turned into UTC and its day is UTC's day; a time without one is taken
    as written (the writer's local time). Returns a naive datetime either way, so the two compare.
    Raises ValueError (not DataError) for text that is no date at all: the caller counts those.
    """
    value = value.strip()
    if not value:
        return None
    if _EPOCH.match(value):
        seconds = float(value) / (1000 if len(value.split(".")[0]) >= 12 else 1)
        return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
    slashed = _SLASHED.match(value)
    if slashed:
        a, b, year = int(slashed[1]), int(slashed[2]), int(slashed[3])
        first_is_day = dayfirst
        if first_is_day is None:
            if a > 12 >= b:
                first_is_day = True
            elif b > 12 >= a:
                first_is_day = False
            elif a != b:  # 1 March or 3 January: guessing would silently move a month of texts
                raise DataError(f"date {value!r} is ambiguous (day {a} of month {b}, or day {b} of month {a}): "
                                "say which with --dayfirst or --monthfirst (dayfirst= in Python)", reason="invalid")
            else:
                first_is_day = True  # 03/03/2026 reads the same either way
        day, month = (a, b) if first_is_day else (b, a)
        clock = [int(slashed[i] or 0) for i in (4, 5, 6)]
        return datetime(year, month, day, *clock)
    try:
        moment = datetime.fromisoformat(value.replace(" +", "+").replace(" -", "-"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise InputError(f"not a date: {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def period_start(moment: datetime, every: str) -> date:
    """The first day of the day, ISO week (Monday) or month that `moment` falls in."""
    day = moment.date()
    if every == "day":
        return day
    if every == "week":
        return day - timedelta(days=day.weekday())
    if every == "month":
        return day.replace(day=1)
    raise InputError(f"every={every!r}: one of {', '.join(EVERY)}")


def period_name(start: date, every: str) -> str:
    """2026-03-02 (a day, or the Monday of a week) or 2026-03 (a month)."""
    return start.strftime("%Y-%m") if every == "month" else start.isoformat()


# --- Language: a cheap guess, good enough to keep reviews in other languages out of English shares.

# Frequent function words of the languages reviews most often come in besides English. Words that
# are also English words (a, in, die, was, so, me, no, is, ...) are left out of the others' lists:
# an English text must not look foreign because of them.
STOPWORDS = {
    "en": set("the and to of is it this that was for with you my not but have are be they on at very "
              "just its i we he she had would will can there what all so your our me".split()),
    "fr": set("le la les des est et une pas pour que qui dans du sur avec mais très ce cette je il elle nous "
              "vous sont été c'est ne plus au aux".split()),
    "es": set("el la los las es y una que por para con muy pero del se lo este esta está son fue mi su "
              "como más también".split()),
    "de": set("der das und ist nicht ein eine ich sie es mit für auf sehr aber den dem zu auch wir ihr sind "
              "war nach noch".split()),
    "it": set("il la che è e di un una per non con molto ma sono questo questa della del gli anche".split()),
    "pt": set("o os as que é e um uma para com não muito mas do da dos das isso este esta foi são".split()),
    "nl": set("de het een en is niet van ik dat zijn met voor op maar ook zeer erg heel wij".split()),
}
for _lang, _words in STOPWORDS.items():
    if _lang != "en":
        _words -= STOPWORDS["en"] | {"a", "in", "die", "so", "me", "no", "is", "was", "are", "or", "on", "hat",
                                     "also", "war", "he", "to", "den", "come", "con", "per", "pure", "sure", "son"}
del _lang, _words
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def guess_language(text: str) -> str | None:
    """None when the text may be English; else a short reason it is not: "non-Latin script" (most
    letters outside ASCII: Cyrillic, CJK, Arabic ...) or a language code whose frequent words the
    text uses more than English's (fr, es, de, it, pt, nl). Short texts with no function words
    ("Great product!") stay English: there is nothing to tell them apart by."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    if sum(c.isascii() for c in letters) / len(letters) < 0.5:
        return "non-Latin script"
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return None
    hits = {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}
    best = max((lang for lang in hits if lang != "en"), key=hits.get)
    if hits[best] >= 2 and hits[best] > 2 * hits["en"]:
        return best
    return None


def text_key(text: str) -> bytes:
    """8 bytes that two texts share when they are the same but for case and spacing: a duplicate's
    key (8 bytes a row where keeping the texts would cost their whole length)."""
    return hashlib.blake2b(" ".join(text.lower().split()).encode("utf-8"), digest_size=8).digest()
