"""Finding when something is due ("by Friday", "before next Monday") and, given the meeting
date, which calendar day that is.

The phrase is kept exactly as said; the resolved date is a convenience on top, left empty for
vague phrases ("next week") rather than guessed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_abbr) if name
}
_MONTHS["sept"] = 9
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a couple of": 2,
    "a few": 3,
}

_WEEKDAY = "|".join(WEEKDAYS)
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_PERIOD = r"(?:day|week|month|quarter|year|sprint)"
_PART_OF_DAY = r"(?:[ ](?:morning|afternoon|evening|night|noon|eod))?"
_COUNT = r"(?:\d+|a couple of|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten)"

# Words that introduce a deadline; they are not part of the phrase kept as said.
_PREPOSITION = re.compile(
    r"(?:\b(?:no later than|at the latest by|by|before|on|until|till|due|for|ahead of)\s+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Due:
    phrase: str
    start: int
    end: int
    # Where the phrase begins including its preposition ("by Friday"), to cut it from a task.
    clause_start: int
    date: dt.date | None


Resolver = Callable[[re.Match[str], dt.date], dt.date | None]


def _weekday_after(ref: dt.date, weekday: int) -> dt.date:
    """The first such weekday strictly after the reference day."""
    return ref + dt.timedelta(days=(weekday - ref.weekday() - 1) % 7 + 1)


def _weekday(match: re.Match[str], ref: dt.date) -> dt.date:
    qualifier = (match.group("qual") or "").lower()
    day = _weekday_after(ref, WEEKDAYS.index(match.group("weekday").lower()))
    # "next Friday" said on a Wednesday means the Friday of next week, not in two days.
    same_week = day.isocalendar()[:2] == ref.isocalendar()[:2]
    if qualifier == "next" and same_week:
        day += dt.timedelta(days=7)
    return day


def _end_of(match: re.Match[str], ref: dt.date) -> dt.date | None:
    qualifier = (match.group("qual") or "").strip().lower()
    period = match.group("period").lower()
    if period == "day":
        return ref + dt.timedelta(days=1) if qualifier == "next" else ref
    if period == "week":
        friday = ref + dt.timedelta(days=(4 - ref.weekday()) % 7)
        return friday + dt.timedelta(days=7) if qualifier == "next" else friday
    if period == "month":
        year, month = ref.year, ref.month
        if qualifier == "next":
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return dt.date(year, month, calendar.monthrange(year, month)[1])
    if period == "quarter":
        quarter = (ref.month - 1) // 3 + (1 if qualifier == "next" else 0)
        year = ref.year + quarter // 4
        last_month = (quarter % 4) * 3 + 3
        return dt.date(year, last_month, calendar.monthrange(year, last_month)[1])
    if period == "year":
        return dt.date(ref.year + (1 if qualifier == "next" else 0), 12, 31)
    return None  # a sprint's length is not known here


def _calendar_date(month: int, day: int, year: str | None, ref: dt.date) -> dt.date | None:
    try:
        if year:
            return dt.date(int(year), month, day)
        # Without a year, the next such day on or after the meeting.
        candidate = dt.date(ref.year, month, day)
        return candidate if candidate >= ref else dt.date(ref.year + 1, month, day)
    except ValueError:  # "February 30th": keep the phrase, resolve nothing
        return None


def _day_number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _month_day(match: re.Match[str], ref: dt.date) -> dt.date | None:
    month = _MONTHS[match.group("month").lower().rstrip(".")]
    return _calendar_date(month, _day_number(match.group("day")), match.group("year"), ref)


def _in_count(match: re.Match[str], ref: dt.date) -> dt.date | None:
    raw = match.group("count").lower()
    count = int(raw) if raw.isdigit() else _NUMBERS[raw]
    unit = match.group("unit").lower().rstrip("s")
    if unit == "day":
        return ref + dt.timedelta(days=count)
    if unit == "week":
        return ref + dt.timedelta(weeks=count)
    return None  # months have no fixed length; leave it to the reader


def _ordinal_day(match: re.Match[str], ref: dt.date) -> dt.date | None:
    day = _day_number(match.group("day"))
    year, month = ref.year, ref.month
    if day < ref.day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _calendar_date(month, day, str(year), ref)


def _fixed(days: int) -> Resolver:
    return lambda _match, ref: ref + dt.timedelta(days=days)


def _unresolved(_match: re.Match[str], _ref: dt.date) -> None:
    return None


_PATTERNS: list[tuple[re.Pattern[str], Resolver]] = [
    (
        re.compile(
            rf"(?i)\b(?:the )?end of (?:the )?(?P<qual>this |next )?(?P<period>{_PERIOD})\b"
        ),
        _end_of,
    ),
    (re.compile(r"(?i)\b(?:eod|cob|close of business)\b"), _fixed(0)),
    (re.compile(r"(?i)\beow\b"), lambda m, ref: ref + dt.timedelta(days=(4 - ref.weekday()) % 7)),
    (re.compile(rf"(?i)\b(?:the )?day after tomorrow{_PART_OF_DAY}\b"), _fixed(2)),
    (re.compile(rf"(?i)\btomorrow{_PART_OF_DAY}\b"), _fixed(1)),
    (re.compile(r"(?i)\b(?:today|tonight|this (?:morning|afternoon|evening))\b"), _fixed(0)),
    (
        re.compile(
            rf"(?i)\b(?:(?P<qual>next|this|this coming|coming) )?(?P<weekday>{_WEEKDAY})"
            rf"{_PART_OF_DAY}\b"
        ),
        _weekday,
    ),
    (
        re.compile(
            rf"(?i)\b(?P<month>{_MONTH})\.? (?P<day>{_DAY})(?:,? (?P<year>\d{{4}}))?(?![\d:])\b"
        ),
        _month_day,
    ),
    (
        re.compile(
            rf"(?i)\b(?:the )?(?P<day>{_DAY}) (?:of )?(?P<month>{_MONTH})\b"
            r"(?:,? (?P<year>\d{4}))?"
        ),
        _month_day,
    ),
    (
        re.compile(r"(?i)\b(?P<year>\d{4})-(?P<month_n>\d{2})-(?P<day>\d{2})\b"),
        lambda m, ref: _calendar_date(
            int(m.group("month_n")), int(m.group("day")), m.group("year"), ref
        ),
    ),
    (
        re.compile(rf"(?i)\b(?:in|within) (?P<count>{_COUNT}) (?P<unit>days?|weeks?|months?)\b"),
        _in_count,
    ),
    (re.compile(rf"(?i)\b(?:next|this) {_PERIOD}\b"), _unresolved),
]
# "the 15th" only counts as a date right after a deadline word ("by the 15th").
_ORDINAL_AFTER_PREPOSITION = re.compile(
    r"(?i)\b(?:by|before|on|until|due) "
    r"(?P<phrase>the (?P<day>(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)))\b"
)


_RECURRING = re.compile(r"(?i)\b(?:every|each)(?:[ ]other)?[ ]$")


def _plausible(match: re.Match[str], sentence: str) -> bool:
    # "every other Thursday" is a schedule, not a deadline.
    if _RECURRING.search(sentence[: match.start()]):
        return False
    # "we may 3x it" is not a date: month names must be capitalized, unless nothing is.
    if "month" not in match.re.groupindex or match.group("month") is None:
        return True
    return match.group("month")[0].isupper() or sentence == sentence.lower()


def find_due(sentence: str, reference: dt.date | None = None) -> Due | None:
    """The deadline said in a sentence, preferring one introduced by 'by'/'before'/'on'."""
    found: list[tuple[re.Match[str], Resolver]] = [
        (match, resolver)
        for pattern, resolver in _PATTERNS
        for match in pattern.finditer(sentence)
        if _plausible(match, sentence)
    ]
    ordinal = _ORDINAL_AFTER_PREPOSITION.search(sentence)
    if not found and ordinal:
        found.append((ordinal, _ordinal_day))
    if not found:
        return None

    def preference(item: tuple[re.Match[str], Resolver]) -> tuple[int, int, int]:
        match = item[0]
        start = match.start("phrase") if "phrase" in match.re.groupindex else match.start()
        has_preposition = bool(_PREPOSITION.search(sentence[:start]))
        return (0 if has_preposition else 1, start, -(match.end() - start))

    match, resolver = min(found, key=preference)
    start = match.start("phrase") if "phrase" in match.re.groupindex else match.start()
    end = match.end()
    prep = _PREPOSITION.search(sentence[:start])
    clause_start = prep.start() if prep else start
    phrase = sentence[start:end]
    if phrase.lower().startswith("the end of"):
        phrase = phrase[4:]  # "by the end of the week" is kept as "end of the week"
    return Due(
        phrase=phrase,
        start=start,
        end=end,
        clause_start=clause_start,
        date=resolver(match, reference) if reference else None,
    )
