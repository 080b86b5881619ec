"""``/v1/webhooks``: thin endpoints (auth, parse, one service call).

| call | success |
| --- | --- |
| POST /webhooks ``{url, events?, description?}`` | 201 Webhook with ``secret`` (shown once) |
| GET /webhooks | 200 ``{results: Webhook[], cursor}`` |
| GET /webhooks/{webhookId} | 200 Webhook |
| PATCH /webhooks/{webhookId} ``{url?, events?, description?, enabled?}`` | 200 Webhook |
| DELETE /webhooks/{webhookId} | 204, idempotent |
| POST /webhooks/{webhookId}/rotate-secret | 200 ``{webhookId, secret}`` |
| GET /webhooks/{webhookId}/deliveries | 200 ``{results: Delivery[], cursor}``, newest first |
| POST /webhooks/{webhookId}/events/{eventId}/redeliver | 202 ``{eventId, webhookId, state}`` |
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from herewith.auth.dependencies import OrganizationDep, SessionDep
from herewith.kit.pagination import parse_limit
from herewith.webhooks import service
from herewith.webhooks.schemas import (
    CreateWebhookRequest,
    DeliveryList,
    RedeliveryOut,
    UpdateWebhookRequest,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookSecret,
)
from herewith.webhooks.targets import TargetPolicy

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(body: CreateWebhookRequest, request: Request, session: SessionDep, org: OrganizationDep) -> WebhookCreated:
    """Create an endpoint; the signing secret is in this response only."""
    endpoint = await service.create_endpoint(session, org.id, body, request.state.clock.now(),
                                             TargetPolicy.from_settings(request.state.settings))
    return WebhookCreated(**service.to_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=WebhookList)
async def list_webhooks(request: Request, session: SessionDep, org: OrganizationDep) -> WebhookList:
    q = request.query_params
    rows, cursor = await service.list_endpoints(session, org.id, q.get("cursor"), parse_limit(q.get("limit")))
    return WebhookList(results=[service.to_out(e) for e in rows], cursor=cursor)


@router.get("/{webhookId}", response_model=WebhookOut)
async def get_webhook(webhookId: str, session: SessionDep, org: OrganizationDep) -> WebhookOut:
    return service.to_out(await service.get_endpoint(session, org.id, webhookId))


@router.patch("/{webhookId}", response_model=WebhookOut)
async def update_webhook(webhookId: str, body: UpdateWebhookRequest, request: Request, session: SessionDep,
                         org: OrganizationDep) -> WebhookOut:
    policy = TargetPolicy.from_settings(request.state.settings)
    return service.to_out(await service.update_endpoint(session, org.id, webhookId, body, policy))


@router.delete("/{webhookId}", status_code=204)
async def delete_webhook(webhookId: str, session: SessionDep, org: OrganizationDep) -> Response:
    await service.delete_endpoint(session, org.id, webhookId)
    return Response(status_code=204)


@router.post("/{webhookId}/rotate-secret", response_model=WebhookSecret)
async def rotate_secret(webhookId: str, session: SessionDep, org: OrganizationDep) -> WebhookSecret:
    endpoint = await service.rotate_secret(session, org.id, webhookId)
    return WebhookSecret(webhookId=endpoint.id, secret=endpoint.secret)


@router.get("/{webhookId}/deliveries", response_model=DeliveryList)
async def list_deliveries(webhookId: str, request: Request, session: SessionDep, org: OrganizationDep) -> DeliveryList:
    q = request.query_params
    rows, cursor = await service.list_deliveries(session, org.id, webhookId, q.get("cursor"), parse_limit(q.get("limit")))
    return DeliveryList(results=[service.delivery_out(d) for d in rows], cursor=cursor)


@router.post("/{webhookId}/events/{eventId}/redeliver", status_code=202, response_model=RedeliveryOut)
async def redeliver(webhookId: str, eventId: str, request: Request, session: SessionDep, org: OrganizationDep) -> RedeliveryOut:
    """Send the event to this endpoint again (same id and body), as soon as the worker runs."""
    settings = request.state.settings
    event = await service.redeliver(session, org.id, webhookId, eventId, request.state.clock.now(),
                                    timedelta(seconds=settings.webhook_retry_window_seconds))
    await session.commit()
    request.state.webhook_wakeup.set()
    return RedeliveryOut(eventId=event.event_id, webhookId=webhookId, state=event.state)
