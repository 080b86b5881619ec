"""Summaries of transcripts with six templates: extractive and rule-based offline, or an operator's
OpenAI-compatible model server (CONTRACT.md, "Recordings, transcriptions, summaries")."""
