"""The built-in summary backend: extractive and rule-based, offline, nothing invented.

Sentences come from the transcript's utterances (pysbd splits them; it needs no data download), ranked by
LexRank (sumy, with a pysbd/regex tokenizer instead of NLTK's ``punkt``, which would need a download), and
routed into each template's sections by rules:

- decisions: "we decided / agreed", "let's agree / go with / make ...";
- action items: a commitment ("will", "I'll", "needs to", "please", "can you") with its owner (a participant
  named before "will", else the speaker) and its due date ("by Friday", "by the end of next week");
- SOAP: by lexicon, in the order Assessment > Plan > Objective > Subjective (the approach of the research note
  on offline summaries); Subjective takes first-person symptom and history sentences;
- lecture and tutoring: definitions, examples, questions, assignments, difficulties by their wording; the
  lecture's outline is LexRank's pick per five-minute stretch.

Every item's ``text`` is a sentence of the transcript, verbatim, with its ``speaker`` and ``at`` (seconds).

Usage::

    result = summarize(parse_markdown(markdown), "SOAP")   # {"summary": Markdown, "sections": [...], ...}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from herewith.summaries.templates import (
    DRAFT_NOTICE,
    EDUCATIONAL_LECTURE,
    EDUCATIONAL_TUTORING,
    EXTENDED_SOAP,
    GENERAL_BULLETED,
    GENERAL_NARRATIVE,
    SOAP,
    TEMPLATES,
)
from herewith.transcriptions.transcript import Utterance, timestamp


@dataclass(frozen=True)
class Sentence:
    """One sentence of the transcript: ``index`` in transcript order, ``speaker``, ``at`` (seconds), ``text``."""

    index: int
    speaker: str
    at: float
    text: str


_WORD = re.compile(r"[A-Za-z0-9']+")
DECISION = re.compile(r"\b(we(?:'ve| have)? (?:decided|agreed)|let's (?:agree|go with|make|put|move|keep|do)|"
                      r"(?:it's|it is) decided|agreed on|the decision is)\b", re.I)
ACTION = re.compile(r"\b(will|i'll|we'll|you'll|he'll|she'll|needs? to|have to|has to|going to|please|can|"
                    r"i'd like to|action items?|to do)\b", re.I)
COMMITMENT = re.compile(r"\b(i'll|i will|we'll|we will|[A-Z][a-z]+ will|please|needs? to|i'd like to|"
                        r"i can have|i can send|is going to)\b")
NOT_ACTION = re.compile(r"\b(will not|won't|said they will|unless)\b", re.I)
DUE = re.compile(r"\bby ((?:the )?(?:end of )?(?:next |this )?(?:monday|tuesday|wednesday|thursday|friday|saturday|"
                 r"sunday|tomorrow|tonight|week|month|quarter|january|february|march|april|may|june|july|august|"
                 r"september|october|november|december|\d{1,2}(?:st|nd|rd|th)?|\w+(?:st|nd|rd|th))"
                 r"(?: of \w+)?(?: at [\w: ]+?(?:am|pm|in the morning|in the afternoon))?)\b", re.I)
OWNER = re.compile(r"\b([A-Z][a-z]+) (?:will|can|should|needs? to|is going to)\b")
QUESTION = re.compile(r"\?\s*$")
SOAP_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Assessment", re.compile(r"\b(most likely|diagnos\w*|consistent with|impression|i think (?:this|it) is|"
                              r"looks like (?:a|an)|suggests?|probably (?:a|an))\b", re.I)),
    ("Plan", re.compile(r"\b(we'll (?:get|do|start|order|check)|prescrib\w*|x-ray|blood (?:count|test|work)|"
                        r"come back|follow[- ]up|see you (?:again|in)|refer\w*|start (?:you )?on|schedule|"
                        r"dose|increase the|decrease the|stop taking)\b", re.I)),
    ("Objective", re.compile(r"\b(temperature|pulse|heart rate|blood pressure|saturation|oxygen|i hear|crackles|"
                             r"wheez\w*|exam\w*|on examination|tender\w*|swelling|rash on|weight is|bpm)\b", re.I)),
    ("Subjective", re.compile(r"\b(i've had|i have|i had|i feel|i'm feeling|i've been|my \w+ hurts?|pain|cough\w*|"
                              r"fever|short of breath|tired|allergic|i take|since|started|hurts?|ache|dizzy|nause\w*|"
                              r"smok\w*|medication)\b", re.I)),
)
MEDICATION = re.compile(r"\b(i take|taking|medication|allerg\w*|metformin|insulin|penicillin|ibuprofen|"
                        r"aspirin|inhaler|mg)\b", re.I)
FOLLOW_UP = re.compile(r"\b(come back|follow[- ]up|see you (?:again|in)|next (?:visit|appointment)|"
                       r"emergency|call (?:us|me) if|if .* gets? worse)\b", re.I)
DEFINITION = re.compile(r"\b(is called|are called|is defined as|means|is a|are a|refers to|is the|we call)\b", re.I)
EXAMPLE = re.compile(r"\b(for example|for instance|such as|e\.g\.|consider|imagine|like when)\b", re.I)
ASSIGNMENT = re.compile(r"\b(homework|assignment|read (?:chapter|pages?|section)|exercise|problem set|due|"
                        r"for next (?:week|time|class)|quiz|exam|essay)\b", re.I)
DIFFICULTY = re.compile(r"\b(don't understand|do not understand|confus\w*|difficult|hard for me|not sure|"
                        r"struggl\w*|stuck|mistake|wrong|lost)\b", re.I)
NEXT_STEP = re.compile(r"\b(next time|practice|homework|try (?:to|the)|before our next|for next|review|work on|"
                       r"exercise)\b", re.I)


def sentences_of(utterances: list[Utterance]) -> list[Sentence]:
    """Each utterance split into sentences with pysbd (rule-based, no data download)."""
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False)
    out: list[Sentence] = []
    for u in utterances:
        for piece in segmenter.segment(u.text):
            text = piece.strip()
            if len(_WORD.findall(text)) >= 2:
                out.append(Sentence(len(out), u.speaker, float(u.start), text))
    return out


class _Tokenizer:
    """sumy's tokenizer interface backed by pysbd and a regex, so NLTK's ``punkt`` data is never needed
    (sumy's own ``Tokenizer`` would download it)."""

    language = "english"

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:  # pragma: no cover - sumy calls it on plain text
        import pysbd

        return tuple(s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(paragraph) if s.strip())

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(_WORD.findall(sentence))


def rank(sentences: list[Sentence], count: int) -> list[Sentence]:
    """The ``count`` most central sentences by LexRank (sumy), in transcript order."""
    if len(sentences) <= count:
        return list(sentences)
    from sumy.models.dom import ObjectDocumentModel, Paragraph
    from sumy.models.dom import Sentence as SumySentence
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.utils import get_stop_words

    tokenizer = _Tokenizer()
    doc = ObjectDocumentModel([Paragraph([SumySentence(s.text, tokenizer) for s in sentences])])
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    picked = {str(s) for s in summarizer(doc, count)}
    return [s for s in sentences if s.text in picked][:count]


def _item(s: Sentence, **extra: Any) -> dict[str, Any]:
    return {"text": s.text, "speaker": s.speaker, "at": s.at, **extra}


def _action(s: Sentence, speakers: set[str]) -> dict[str, Any] | None:
    if not ACTION.search(s.text) or NOT_ACTION.search(s.text) or QUESTION.search(s.text):
        return None
    due = DUE.search(s.text)
    owner_match = OWNER.search(s.text)
    owner = owner_match.group(1) if owner_match and (owner_match.group(1) in speakers or owner_match.start() < 40) \
        else s.speaker
    if not due and not COMMITMENT.search(s.text):
        return None
    return _item(s, owner=owner, due=due.group(1) if due else None)


def _soap_route(sentences: list[Sentence]) -> dict[str, list[Sentence]]:
    routed: dict[str, list[Sentence]] = {name: [] for name, _ in SOAP_RULES}
    for s in sentences:
        if QUESTION.search(s.text):
            continue  # questions are the clinician asking; the answers carry the facts
        for name, pattern in SOAP_RULES:
            if pattern.search(s.text):
                routed[name].append(s)
                break
    return routed


def _key_count(n: int) -> int:
    return max(3, min(12, n // 6))


def summarize(utterances: list[Utterance], template: str) -> dict[str, Any]:
    """Summarize a transcript's utterances with ``template`` (a key of
    :data:`~herewith.summaries.templates.TEMPLATES`).

    Returns the contract's ``summary`` object: ``summary`` (Markdown: the draft notice, then each section),
    ``sections`` (``[{"title", "items": [{"text", "speaker", "at", ...}]}]``; action items add ``owner`` and
    ``due``), ``draft`` True, ``backend`` ``extractive``, ``template``. Blocking CPU work (LexRank is
    quadratic in sentences: about 0.1 s for an hour's transcript's first 600 sentences); run it in a thread.
    """
    sentences = sentences_of(utterances)
    speakers = list(dict.fromkeys(u.speaker for u in utterances))
    sections: dict[str, list[dict[str, Any]]] = {title: [] for title in TEMPLATES[template]}
    pool = sentences[:2000]  # LexRank's similarity matrix grows with the square; the rest is rules only
    participants = [{"text": name} for name in speakers]

    if template in (SOAP, EXTENDED_SOAP):
        routed = _soap_route(sentences)
        if template == SOAP:
            for title in ("Subjective", "Objective", "Assessment", "Plan"):
                sections[title] = [_item(s) for s in routed[title]]
        else:
            subjective = routed["Subjective"]
            clinical = set(routed["Plan"]) | set(routed["Assessment"]) | set(routed["Objective"])
            meds = [s for s in sentences if MEDICATION.search(s.text) and not QUESTION.search(s.text)
                    and s not in clinical]
            follow = [s for s in routed["Plan"] if FOLLOW_UP.search(s.text)]
            sections["Chief Complaint"] = [_item(s) for s in subjective[:1]]
            sections["History of Present Illness"] = [_item(s) for s in subjective[1:] if s not in meds]
            sections["Medications and Allergies"] = [_item(s) for s in meds]
            sections["Objective"] = [_item(s) for s in routed["Objective"]]
            sections["Assessment"] = [_item(s) for s in routed["Assessment"]]
            sections["Plan"] = [_item(s) for s in routed["Plan"] if s not in follow]
            sections["Follow-up"] = [_item(s) for s in follow]
    elif template == GENERAL_NARRATIVE:
        sections["Participants"] = participants
        sections["Narrative"] = [_item(s) for s in rank(pool, _key_count(len(pool)))]
    elif template == GENERAL_BULLETED:
        speaker_set = set(speakers)
        sections["Participants"] = participants
        sections["Key Points"] = [_item(s) for s in rank(pool, _key_count(len(pool)))]
        sections["Decisions"] = [_item(s) for s in sentences if DECISION.search(s.text)]
        sections["Action Items"] = [a for s in sentences if (a := _action(s, speaker_set)) is not None]
        sections["Open Questions"] = [_item(s) for s in sentences if QUESTION.search(s.text)][-8:]
    elif template == EDUCATIONAL_LECTURE:
        window = 300.0
        chapters: dict[int, list[Sentence]] = {}
        for s in pool:
            chapters.setdefault(int(s.at // window), []).append(s)
        for number in sorted(chapters):
            sections["Outline"] += [_item(s, chapter=f"{timestamp(number * window)}") for s in rank(chapters[number], 3)]
        sections["Key Concepts"] = [_item(s) for s in sentences if DEFINITION.search(s.text)
                                    and not QUESTION.search(s.text)][:15]
        sections["Examples"] = [_item(s) for s in sentences if EXAMPLE.search(s.text)][:10]
        sections["Questions"] = [_item(s) for s in sentences if QUESTION.search(s.text)][:15]
        sections["Assignments"] = [_item(s) for s in sentences if ASSIGNMENT.search(s.text)]
    elif template == EDUCATIONAL_TUTORING:
        words_by: dict[str, int] = {}
        for s in sentences:
            words_by[s.speaker] = words_by.get(s.speaker, 0) + len(_WORD.findall(s.text))
        tutor = max(words_by, key=words_by.get) if words_by else None
        sections["Topics Covered"] = [_item(s) for s in rank(pool, _key_count(len(pool)))]
        sections["Questions Asked"] = [_item(s) for s in sentences if QUESTION.search(s.text)][:15]
        sections["Explanations"] = [_item(s) for s in rank([s for s in pool if s.speaker == tutor
                                                            and not QUESTION.search(s.text)], 6)]
        sections["Difficulties"] = [_item(s) for s in sentences if DIFFICULTY.search(s.text)]
        sections["Next Steps"] = [_item(s) for s in sentences if NEXT_STEP.search(s.text)
                                  and not QUESTION.search(s.text)]
    else:  # pragma: no cover - the service accepts only known templates
        raise ValueError(f"unknown template {template!r}")

    ordered = [{"title": title, "items": sections[title]} for title in TEMPLATES[template]]
    return {"summary": render(template, ordered), "sections": ordered, "draft": True, "notice": DRAFT_NOTICE,
            "backend": "extractive", "template": template}


def render(template: str, sections: list[dict[str, Any]]) -> str:
    """The summary as Markdown: a heading, the draft notice, then each section's items as a list
    (``- [hh:mm:ss] Speaker: sentence``; an action item adds its owner and due date)."""
    lines = [f"# {template} summary (draft)", "", f"_{DRAFT_NOTICE}_", ""]
    for section in sections:
        lines += [f"## {section['title']}", ""]
        if not section["items"]:
            lines.append("- (nothing found in the transcript)")
        for item in section["items"]:
            if "speaker" not in item:
                lines.append(f"- {item['text']}")
                continue
            extra = ""
            if "owner" in item:
                extra = f" (owner: {item['owner']}" + (f"; due: {item['due']}" if item.get("due") else "") + ")"
            lines.append(f"- {timestamp(item['at'])} {item['speaker']}: {item['text']}{extra}")
        lines.append("")
    return "\n".join(lines)
