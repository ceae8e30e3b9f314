"""Rule-based action items: who committed to what, and by when.

The rules cover how commitments are phrased in meetings:
  "Alice will send the agenda by Friday"              a person commits
  "Bob, please review the budget before next Monday"  someone is asked by name
  "Can you update the roadmap, Dave?"                 ... or with the name last
  "Action item: Carol to book the room tomorrow"      a note-taker's marker
  "We need to ship the release by March 3rd"          the group commits (no owner)
  "I'll draft the proposal" (said by Erin)            first person: the speaker owns it
Names are capitalized words that are not ordinary English, so lower-case ASR output yields
items without owners rather than wrong owners.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from llm_service.engines.extractive.dates import find_due
from llm_service.engines.extractive.stopwords import STOPWORDS
from llm_service.engines.extractive.text import Sentence, stem

_NAME = r"[A-Z][a-z'\u2019]+(?:-[A-Z][a-z'\u2019]+)?(?:[ ][A-Z][a-z'\u2019]+)?"
_OWNERS = rf"(?P<owner>{_NAME}(?:(?:,[ ]|[ ]and[ ]|[ ]&[ ]){_NAME})*)"

_MARKER = re.compile(
    r"^(?i:action[ ]items?|a\.?i\.?|to-?do|to[ ]do|next[ ]steps?|follow[- ]?ups?|task)"
    r"\s*[:\-\u2013\u2014]\s*"
)
_LEADING_FILLER = re.compile(
    r"^(?i:so|okay|ok|alright|all[ ]right|right|and|also|then|well|great|yeah|yes|um|uh|"
    r"fine|perfect|good|cool|oh|now|anyway)\b[,.]?\s+"
)
_COMMIT_VERB = (
    r"(?i:will|'ll|\u2019ll|is[ ]going[ ]to|are[ ]going[ ]to|is[ ]gonna|are[ ]gonna|shall|"
    r"has[ ]to|have[ ]to|needs[ ]to|need[ ]to|should|must|agreed[ ]to|agrees[ ]to|"
    r"(?:has[ ]|have[ ])?volunteered[ ]to|offered[ ]to|promised[ ]to|"
    r"(?:is|are)[ ](?P<owns>responsible[ ]for|in[ ]charge[ ]of|on[ ]the[ ]hook[ ]for)|"
    r"(?:is|are)[ ](?=taking[ ]care[ ]of)|takes|owns)"
)
_REQUEST = (
    r"(?i:(?:can|could|would|will)[ ]you(?:[ ]please)?|please|"
    r"you(?:'ll|\u2019ll|[ ]will|[ ]need[ ]to|[ ]should|[ ]have[ ]to)|"
    r"(?:i|we)(?:'d|\u2019d|[ ]would)[ ]like[ ]you[ ]to|"
    r"make[ ]sure[ ](?:you[ ])?|don't[ ]forget[ ]to|don\u2019t[ ]forget[ ]to)"
)

# Ordered: the first rule that matches a sentence decides its owner.
_NAMED_REQUEST = re.compile(rf"(?:^|[,;]\s*|\s)(?:{_OWNERS}),\s+{_REQUEST}\s+(?P<task>.+)")
_TRAILING_NAME_REQUEST = re.compile(
    rf"^(?i:(?:can|could|would|will)[ ]you(?:[ ]please)?|please)\s+(?P<task>.+?),\s*{_OWNERS}"
    r"\s*[?.!]*$"
)
_MARKED_OWNER = re.compile(
    rf"^{_OWNERS}(?::\s*|\s+(?i:to|will|should|needs[ ]to|is[ ]going[ ]to)\s+)(?P<task>.+)"
)
_COMMITMENT = re.compile(rf"(?:^|\s){_OWNERS}\s+{_COMMIT_VERB}\s+(?P<task>.+)")
_FIRST_PERSON = re.compile(
    r"(?:^|\s)(?i:i[ ]will|i'll|i\u2019ll|i[ ]am[ ]going[ ]to|i'm[ ]going[ ]to|"
    r"i\u2019m[ ]going[ ]to|"
    r"i[ ]can(?=[ ](?:take[ ]care[ ]of|handle|own|cover|do[ ]it))|let[ ]me|i[ ]volunteer[ ]to|"
    r"i[ ]promise[ ]to|i[ ]need[ ]to|i[ ]have[ ]to)\s+(?P<task>.+)"
)
_COLLECTIVE = re.compile(
    r"(?:^|\s)(?i:we[ ]need[ ]to|we[ ]have[ ]to|we[ ]must|we[ ]should|we've[ ]got[ ]to|"
    r"we\u2019ve[ ]got[ ]to|we[ ]gotta|we[ ]still[ ]need[ ]to|we'll[ ]need[ ]to|"
    r"we\u2019ll[ ]need[ ]to|"
    r"someone[ ](?:needs[ ]to|has[ ]to|should|must)|somebody[ ](?:needs[ ]to|has[ ]to|should)|"
    r"let's|let\u2019s|the[ ]team[ ](?:needs[ ]to|will|should|has[ ]to))\s+(?P<task>.+)"
)
_PLEASE = re.compile(r"^(?i:please)\s+(?P<task>.+)")

# Verbs after "will"/"let's" that describe rather than commit: "Alice will be out".
_NON_TASK_START = re.compile(
    r"^(?i:be(?![ ]\w+ing\b|[ ]responsible|[ ]in[ ]charge)|not|never|probably[ ]not|"
    r"move[ ]on|start|get[ ]started|begin|wrap[ ]up|talk|discuss|go[ ](?:on|ahead|over|through)|"
    r"see|hear|know|think|like|love|remember|recap|continue|keep[ ](?:going|it)|"
    r"also[ ]be|have[ ]been|stop[ ]here|leave[ ]it|jump|dive|circle[ ]back[ ]to[ ]that[ ]later)\b"
)
_SOFTENERS = re.compile(
    r"^(?i:also|then|just|probably|definitely|quickly|actually|please|really|still|"
    r"try[ ]to|go[ ]ahead[ ]and|first|finally)\s+"
)
_TRAILING_TAG = re.compile(
    r"(?:(?:,\s*|\s+)(?i:right|okay|ok|please|thanks|thank[ ]you|yeah|alright|as[ ]well|too|"
    r"if[ ]possible|if[ ]you[ ]can|for[ ]us|for[ ]me)\b)*\s*[?.!,;:]*\s*$"
)
_TAG_QUESTION = re.compile(r",\s*(?i:right|okay|ok|yeah|correct|yes|alright|agreed)\s*\?\s*$")
# Where the task ends and the reasoning around it begins: "..., so the campaign has it".
_CLAUSE_BREAK = re.compile(
    r";|\s+[-\u2013\u2014]\s+|"
    r",?\s+(?i:because|since|but|although|otherwise|so[ ]that|unless|when|once|as[ ]soon[ ]as)\s+|"
    r",\s*(?i:so|which|and[ ]then)\s+"
)
MIN_TASK_WORDS = 3
DUPLICATE_OVERLAP = 0.5


@dataclass(frozen=True)
class FoundAction:
    text: str
    owner: str | None
    due: str | None
    due_date: dt.date | None
    sentence_index: int


def _is_name(candidate: str) -> bool:
    return all(
        word.lower().replace("\u2019", "'") not in STOPWORDS
        for word in re.split(r",\s*|\s+and\s+|\s*&\s*|\s+|-", candidate)
        if word
    )


def _clean_task(task: str, due_span: tuple[int, int] | None) -> str:
    if due_span:
        task = (task[: due_span[0]] + task[due_span[1] :]).strip()
    head = _CLAUSE_BREAK.split(task, maxsplit=1)[0]
    if len(head.split()) >= MIN_TASK_WORDS:  # "Decide when to launch" keeps its "when"
        task = head
    task = _TRAILING_TAG.sub("", task).strip(" ,;:-")
    while True:
        softened = _SOFTENERS.sub("", task)
        if softened == task:
            break
        task = softened
    task = re.sub(r"^be\s+(?:responsible\s+for|in\s+charge\s+of)\s+", "", task, flags=re.I)
    task = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s{2,}", " ", task))
    return task[:1].upper() + task[1:]


def _match_rules(body: str, speaker: str | None, marked: bool) -> tuple[str | None, str] | None:
    """(owner, raw task) for the first rule that fits, or None when nothing is committed."""
    # "..., right?" only seeks a nod; it is still a statement.
    question = body.rstrip().endswith("?") and not _TAG_QUESTION.search(body)
    for pattern in (_NAMED_REQUEST, _TRAILING_NAME_REQUEST):
        match = pattern.search(body)
        if match and _is_name(match.group("owner")):
            return match.group("owner"), match.group("task")
    if marked:
        match = _MARKED_OWNER.match(body)
        if match and _is_name(match.group("owner")):
            return match.group("owner"), match.group("task")
    # A question proposes, it does not commit: "Should we ship it Friday?"
    if question and not marked:
        return None
    match = _COMMITMENT.search(body)
    if match and _is_name(match.group("owner")):
        # "Priya is responsible for the integration" -> "Own the integration"
        prefix = "own " if match.group("owns") else ""
        return match.group("owner"), prefix + match.group("task")
    match = _FIRST_PERSON.search(body)
    if match:
        return speaker, match.group("task")
    for pattern in (_COLLECTIVE, _PLEASE):
        match = pattern.search(body)
        if match:
            return None, match.group("task")
    if marked:
        return None, body
    return None


def _strip_fillers(body: str) -> str:
    while True:
        stripped = _LEADING_FILLER.sub("", body, count=1)
        if stripped == body:
            return body
        body = stripped


def action_from_sentence(
    sentence: Sentence, reference: dt.date | None = None
) -> FoundAction | None:
    body = _strip_fillers(sentence.text.strip())
    marker = _MARKER.match(body)
    if marker:
        body = _strip_fillers(body[marker.end() :])
    found = _match_rules(body, sentence.speaker, marked=bool(marker))
    if found is None:
        return None
    owner, task = found
    task = task.strip()
    if _NON_TASK_START.match(_SOFTENERS.sub("", task)):
        return None
    due = find_due(sentence.text, reference)
    due_span = None
    if due:
        # Cut "by Friday" out of the task text when it sits inside it.
        task_start = sentence.text.find(task)
        if task_start >= 0 and task_start <= due.clause_start:
            due_span = (due.clause_start - task_start, due.end - task_start)
    text = _clean_task(task, due_span)
    if len(text.split()) < 2 or not _content(text):
        return None  # "Do that" names no task
    return FoundAction(
        text=text,
        owner=owner,
        due=due.phrase if due else None,
        due_date=due.date if due else None,
        sentence_index=sentence.index,
    )


def _content(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[A-Za-z][A-Za-z'-]*", text) if w.lower() not in STOPWORDS}


def _same_task(a: FoundAction, b: FoundAction) -> bool:
    """Restated items ("I will ask the vendor for the quote") should appear once."""
    if a.owner and b.owner and a.owner.lower() != b.owner.lower():
        return False
    words_a, words_b = _content(a.text), _content(b.text)
    return len(words_a & words_b) / len(words_a | words_b) >= DUPLICATE_OVERLAP


def _merge(first: FoundAction, again: FoundAction) -> FoundAction:
    if first.due is None and again.due is not None:
        first = replace(first, due=again.due, due_date=again.due_date)
    if first.owner is None and again.owner is not None:
        first = replace(first, owner=again.owner)
    return first


def find_actions(
    sentences: Sequence[Sentence], reference: dt.date | None = None
) -> list[FoundAction]:
    """Action items in transcript order; a restated item is kept once, completed by the
    owner or due date the restatement adds."""
    found: list[FoundAction] = []
    for sentence in sentences:
        action = action_from_sentence(sentence, reference)
        if action is None:
            continue
        for i, earlier in enumerate(found):
            if _same_task(earlier, action):
                found[i] = _merge(earlier, action)
                break
        else:
            found.append(action)
    return found


def owners(actions: Iterable[FoundAction]) -> set[str]:
    return {a.owner for a in actions if a.owner}
