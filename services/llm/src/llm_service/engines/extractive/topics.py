"""Topics: the noun-ish words and phrases a meeting keeps returning to (RAKE-like).

Candidate phrases are runs of content words between stopwords and punctuation, as in RAKE
(Rose et al., 2010). Words are ranked by how often they recur; each is then shown as the
phrase it usually appears in ("campaign" as "marketing campaign") when there is one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from llm_service.engines.extractive.stopwords import STOPWORDS, word_set
from llm_service.engines.extractive.text import Sentence, stem

MAX_TOPICS = 5
MAX_PHRASE_WORDS = 3
# A frequent word is shown as the phrase it sits in when that phrase carries this share of
# its mentions; a longer phrase gets a bonus per extra word for being more specific.
MIN_PHRASE_SHARE = 0.4
PHRASE_BONUS = 0.25

# Verbs that fill action items ("send", "review") name no topic on their own, though they
# may inside a phrase ("code review").
_ACTION_VERBS = word_set(
    """
    add agree ask book bring build call check cover create cut decide draft feel find finish
    fix follow handle help hold keep move plan prepare push reach read review run schedule
    send set share ship show spend update write confirm sync join attend assign own mentioned
    sent reviewed shipped booked updated scheduled shared checked fixed finished planned moved
    pushed handled covered decided ping email circulate loop figure double follow-up
    """
)
_FRAGMENT_BREAK = re.compile(r"[,.;:!?()\[\]\"\u201c\u201d]|\s[-\u2013\u2014]\s")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z0-9]|[A-Za-z]\d+|\d+[A-Za-z]+\d*")


def _is_candidate(token: str, excluded: set[str]) -> bool:
    lower = token.lower().replace("\u2019", "'")
    if lower in STOPWORDS or lower in excluded or lower.endswith("'s"):
        return False
    if stem(lower) in STOPWORDS:  # "asking", "talked": inflected filler is filler too
        return False
    if token.isupper() and len(token) >= 2:  # acronyms: API, CRM, Q3
        return True
    return len(lower) >= 3 and not lower.endswith("ly")


def _runs(sentence: str, excluded: set[str]) -> Iterable[list[tuple[str, bool]]]:
    """Runs of candidate tokens, each with whether it was capitalized mid-sentence."""
    position = 0
    for fragment in _FRAGMENT_BREAK.split(sentence):
        run: list[tuple[str, bool]] = []
        for token in _TOKEN.findall(fragment):
            mid_sentence_capital = position > 0 and token[0].isupper()
            position += 1
            if _is_candidate(token, excluded):
                run.append((token, mid_sentence_capital))
            elif run:
                yield run
                run = []
        if run:
            yield run


def _display(forms: Counter[str], capitalized_mid: int, seen: int) -> str:
    form = forms.most_common(1)[0][0]
    words = form.split()
    # Keep the case of acronyms and of proper nouns (capitalized wherever they occur).
    if all(w.isupper() for w in words) or capitalized_mid * 2 > seen:
        return form
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)


def _widen(
    word: str, count: int, phrase_count: Counter[tuple[str, ...]], used: set[str]
) -> tuple[str, ...]:
    """The phrase a frequent word usually appears in ("campaign" -> "marketing campaign")."""
    best: tuple[str, ...] = (word,)
    best_score = 0.0
    for key, phrase_seen in phrase_count.items():
        if len(key) < 2 or word not in key or used & set(key):
            continue
        if phrase_seen < max(2, MIN_PHRASE_SHARE * count):
            continue
        score = phrase_seen * (1 + PHRASE_BONUS * (len(key) - 1))
        if score > best_score or (score == best_score and key < best):
            best, best_score = key, score
    return best


def extract_topics(
    sentences: Sequence[Sentence], exclude: Iterable[str] = (), limit: int = MAX_TOPICS
) -> list[str]:
    """A few topics, most prominent first; names in `exclude` (people) are never topics."""
    excluded = {part.lower() for name in exclude for part in re.split(r"\W+", name) if part}
    word_count: Counter[str] = Counter()
    phrase_count: Counter[tuple[str, ...]] = Counter()
    forms: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    capitalized: Counter[tuple[str, ...]] = Counter()
    for sentence in sentences:
        for run in _runs(sentence.text, excluded):
            stems = [stem(token) for token, _ in run]
            for size in range(1, MAX_PHRASE_WORDS + 1):
                for i in range(len(run) - size + 1):
                    key = tuple(stems[i : i + size])
                    phrase_count[key] += 1
                    forms[key][" ".join(token for token, _ in run[i : i + size])] += 1
                    if all(mid for _, mid in run[i : i + size]):
                        capitalized[key] += 1
            word_count.update(stems)

    # Short transcripts may mention each topic once; long ones must repeat it to count.
    min_count = 2 if sum(word_count.values()) > 60 else 1
    words = sorted(
        (key[0] for key, count in phrase_count.items() if len(key) == 1 and count >= min_count),
        key=lambda w: (-word_count[w], w),
    )
    topics: list[str] = []
    used: set[str] = set()
    for word in words:
        if len(topics) == limit:
            break
        if word in used or word in _ACTION_VERBS or word.isdigit():
            continue
        key = _widen(word, word_count[word], phrase_count, used)
        used.update(key)
        seen = sum(forms[key].values())
        topics.append(_display(forms[key], capitalized[key], seen))
    return topics
