"""The one error of the speech engine."""

from __future__ import annotations


class SpeechUnavailable(RuntimeError):
    """Speech-to-text cannot run here: the ``speech`` extra is not installed, the model is missing or
    damaged, or its worker processes failed. The message says which and what to do; API callers answer it
    as a clear error (CONTRACT.md "Errors"), never a 500."""
