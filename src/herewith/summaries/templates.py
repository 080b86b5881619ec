"""The six summary templates and their sections (CONTRACT.md "Recordings, transcriptions, summaries").

Each template is an ordered list of sections; the extractive backend fills each with sentences copied from
the transcript (:mod:`herewith.summaries.extractive`), the chat-completions backend is asked for the same
headings (:mod:`herewith.summaries.chat`).
"""

from __future__ import annotations

SOAP = "SOAP"
EXTENDED_SOAP = "Extended SOAP"
GENERAL_NARRATIVE = "General Narrative"
GENERAL_BULLETED = "General Bulleted"
EDUCATIONAL_LECTURE = "Educational Lecture"
EDUCATIONAL_TUTORING = "Educational Tutoring"

#: Template -> its section titles, in order.
TEMPLATES: dict[str, tuple[str, ...]] = {
    SOAP: ("Subjective", "Objective", "Assessment", "Plan"),
    EXTENDED_SOAP: ("Chief Complaint", "History of Present Illness", "Medications and Allergies", "Objective",
                    "Assessment", "Plan", "Follow-up"),
    GENERAL_NARRATIVE: ("Participants", "Narrative"),
    GENERAL_BULLETED: ("Participants", "Key Points", "Decisions", "Action Items", "Open Questions"),
    EDUCATIONAL_LECTURE: ("Outline", "Key Concepts", "Examples", "Questions", "Assignments"),
    EDUCATIONAL_TUTORING: ("Topics Covered", "Questions Asked", "Explanations", "Difficulties", "Next Steps"),
}

#: The template used when a POST names none (the vendor's default is a general summary).
DEFAULT_TEMPLATE = GENERAL_BULLETED

DRAFT_NOTICE = ("Draft for review: every line below is copied word for word from the transcript, picked "
                "automatically; check it against the transcript before relying on it.")
