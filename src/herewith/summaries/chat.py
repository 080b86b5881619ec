"""The second summary backend: an OpenAI-compatible chat-completions endpoint an operator runs (for example a
local model server), used when ``summary_backend`` is ``openai``.

``POST {summary_openai_url}/chat/completions`` with ``{"model", "messages": [system, user], "temperature": 0}``
(the OpenAI chat-completions request, which local servers such as llama.cpp's and vLLM's accept), Bearer
``summary_openai_api_key`` when set; the answer's ``choices[0].message.content`` is the summary. httpx, with
the timeout ``summary_openai_timeout_seconds``; the operator chose that endpoint, so the webhook target
policy does not apply to it.

Usage::

    result = await summarize_with_chat(settings, markdown, "SOAP")
"""

from __future__ import annotations

from typing import Any

import httpx

from herewith.config import Settings
from herewith.summaries.templates import DRAFT_NOTICE, TEMPLATES


class ChatBackendError(Exception):
    """The endpoint was unreachable, answered an error status, or answered no summary text."""


def prompt(template: str) -> str:
    """The system message: the template's section headings, and the rule to report only what was said."""
    sections = "\n".join(f"## {title}" for title in TEMPLATES[template])
    return (f"You write a '{template}' summary of a meeting transcript. Each transcript line is "
            "'[hh:mm:ss] Speaker: words'. Answer in Markdown with exactly these section headings, in this order:\n"
            f"{sections}\n"
            "Under each heading, list what the transcript says for it. Use only facts stated in the transcript; "
            "never add names, numbers, diagnoses or dates that it does not contain. Write 'Nothing stated.' "
            "under a heading the transcript says nothing about.")


async def summarize_with_chat(settings: Settings, markdown: str, template: str,
                              client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """Ask the endpoint for a ``template`` summary of the transcript ``markdown``.

    Returns the contract's ``summary`` object: ``summary`` (Markdown), ``draft`` True, ``notice``, ``backend``
    ``openai``, ``model``, ``template``. Raises :class:`ChatBackendError`.
    """
    if not settings.summary_openai_url:
        raise ChatBackendError("summary_backend is openai but summary_openai_url is not set")
    url = settings.summary_openai_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {settings.summary_openai_api_key}"} if settings.summary_openai_api_key else {}
    body = {"model": settings.summary_openai_model, "temperature": 0,
            "messages": [{"role": "system", "content": prompt(template)}, {"role": "user", "content": markdown}]}
    own = client is None
    client = client or httpx.AsyncClient(timeout=settings.summary_openai_timeout_seconds)
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ChatBackendError(f"chat-completions endpoint unreachable: {type(exc).__name__}") from None
    finally:
        if own:
            await client.aclose()
    if response.status_code != 200:
        raise ChatBackendError(f"chat-completions endpoint answered {response.status_code}")
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ChatBackendError("chat-completions endpoint answered no choices[0].message.content") from None
    if not isinstance(content, str) or not content.strip():
        raise ChatBackendError("chat-completions endpoint answered an empty summary")
    text = f"# {template} summary (draft)\n\n_{DRAFT_NOTICE.split(':')[0]}: written by a language model; check it " \
           f"against the transcript before relying on it._\n\n{content.strip()}\n"
    return {"summary": text, "sections": None, "draft": True, "notice": "Draft for review, written by a language model.",
            "backend": "openai", "model": settings.summary_openai_model, "template": template}
