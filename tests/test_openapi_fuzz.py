"""Schemathesis against the server's own OpenAPI document (``/v1/openapi.json``), on SQLite and PostgreSQL.

Every ``/v1`` operation gets ``HEREWITH_FUZZ_EXAMPLES`` (default 25) generated requests that fit its schema
and as many that do not (Schemathesis's positive and negative modes), sent with a valid Bearer key of an
organization whose rate-limit budget cannot run out; each answer must be:

- no server error (5xx);
- a status the operation documents (:func:`herewith.errors.document_errors`);
- a body that matches the documented schema for that status, with the documented content type.

Hypothesis runs derandomized (the same requests on every run) without shrinking, and each operation and mode
reports its first failure with the ``curl`` that reproduces it. With 25 examples the test takes about 16 s on
SQLite and 20 s on PostgreSQL on an idle two-core machine (50 s and 65 s while other tests load it).
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from herewith.config import Settings  # noqa: E402
from herewith.db.engine import create_engine, create_sessionmaker  # noqa: E402
from herewith.ratelimit import service as ratelimit_service  # noqa: E402
from tests.support.servers import OrgKey, ThreadServer, create_org_key, run_sync  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("HEREWITH_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


async def _unthrottled_org(settings: Settings) -> OrgKey:
    """An organization with one key and a budget of a million points a minute (``herewith orgs set-limit``)."""
    org = await create_org_key(settings, "Fuzz")
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await ratelimit_service.set_limit(session, org.organization_id, points=1_000_000)
            await session.commit()
    finally:
        await engine.dispose()
    return org


def _fuzz(operation, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> str | None:  # noqa: ANN001
    """Run one operation in one mode; the first failure's report, or None."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case) -> None:  # noqa: ANN001
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing in this operation can be made invalid (e.g. a lone string path parameter)
    except (AssertionError, BaseExceptionGroup) as exc:
        return f"{operation.label} ({mode.value}):\n{exc}"
    return None


def test_every_operation_answers_as_its_openapi_document_says(server: ThreadServer) -> None:
    org = run_sync(_unthrottled_org(server.settings))
    schema = schemathesis.openapi.from_url(server.base_url + "/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    failures = [report for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if (report := _fuzz(op, mode, server.base_url, org.headers))]
    assert not failures, "\n\n".join(failures)


def test_the_fuzzer_sees_a_server_error(server: ThreadServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself: an endpoint that fails is reported (so a green run means something)."""
    from herewith.meetings import service

    async def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "list_meetings", failing)
    org = run_sync(_unthrottled_org(server.settings))
    schema = schemathesis.openapi.from_url(server.base_url + "/v1/openapi.json")
    operation = schema["/v1/meetings"]["GET"]
    report = _fuzz(operation, GenerationMode.POSITIVE, server.base_url, org.headers)
    assert report is not None and "Server error" in report, report
