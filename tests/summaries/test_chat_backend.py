"""The chat-completions summary backend (``summary_backend=openai``) against a small OpenAI-compatible
stand-in server on 127.0.0.1 (no model can run here): the request carries the model, the key, the template's
headings and the transcript; the answer becomes a completed draft summary; an endpoint that fails makes the
summary fail after its attempts, never a 500."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from herewith.summaries.templates import TEMPLATES
from tests.summaries.conftest import FIXTURES
from tests.summaries.test_api import store_transcript
from tests.transcriptions.helpers import wait_state


class StandIn:
    """A small OpenAI-compatible chat-completions stand-in on 127.0.0.1: records each request, answers a fixed
    summary (no model can run here)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                answer = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "## Key Points\n- The beta is on the 22nd."},
                     "finish_reason": "stop"}]}).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    s = StandIn()
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path, database_url, stand_in):  # noqa: ANN001, ANN201 - this module's servers use the chat backend
    from herewith.config import Settings

    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    secret_key="test-secret-key-0123456789abcdef", background_tasks=True,
                    transcription_poll_seconds=0.2, summary_backend="openai", summary_openai_url=stand_in.url,
                    summary_openai_model="local-model", summary_openai_api_key="sk-local")


async def test_the_chat_backend_is_asked_with_the_template_and_the_transcript(server, client, org, stand_in):
    tid = store_transcript(server, org.organization_id, "meeting")
    sid = (await client.post("/summaries", json={"transcriptionId": tid, "template": "General Bulleted"})).json()["summaryId"]
    got = await wait_state(client, f"/summaries/{sid}", ("completed", "failed"), timeout=60)
    assert got["state"] == "completed", got
    body = got["summary"]
    assert body["backend"] == "openai" and body["draft"] is True and body["model"] == "local-model"
    assert "- The beta is on the 22nd." in body["summary"] and "Draft for review" in body["summary"]
    [request] = stand_in.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-local"
    sent = request["body"]
    assert sent["model"] == "local-model" and sent["temperature"] == 0
    system, user = sent["messages"]
    assert system["role"] == "system" and all(f"## {t}" in system["content"] for t in TEMPLATES["General Bulleted"])
    assert user["role"] == "user" and "[00:01:44] Ben: Dan will profile the PDF export by Friday." in user["content"]
    utterance_lines = [line for line in (FIXTURES / "meeting.md").read_text().splitlines() if line.startswith("[")]
    assert [line for line in user["content"].splitlines() if line.startswith("[")] == utterance_lines


async def test_a_failing_endpoint_fails_the_summary_after_its_attempts(server, client, org, stand_in):
    stand_in.status = 500
    tid = store_transcript(server, org.organization_id, "consult")
    sid = (await client.post("/summaries", json={"transcriptionId": tid, "template": "SOAP"})).json()["summaryId"]
    got = await wait_state(client, f"/summaries/{sid}", ("completed", "failed"), timeout=60)
    assert got["state"] == "failed" and got["summary"] is None
    assert len(stand_in.requests) == server.settings.transcription_attempts
