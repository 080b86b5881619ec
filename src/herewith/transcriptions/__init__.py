"""Transcriptions: transcripts of recordings made offline from each participant's own audio track, and live
transcripts of room sessions (CONTRACT.md, "Recordings, transcriptions, summaries")."""
