"""``client.webhooks``: Herewith's ``/v1/webhooks`` (the vendor keeps endpoints in a dashboard): endpoints,
their signing secrets, delivery logs and redelivery. To check a delivery you receive, see
:func:`herewith_client.verify_webhook`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from herewith_client.resources._common import body, segment
from herewith_client.types import Delivery, Redelivery, Webhook, WebhookSecret, WebhookWithSecret

if TYPE_CHECKING:
    from herewith_client._client import AsyncHerewith, Herewith
    from herewith_client.pagination import AsyncPaginator, SyncPage


def _update_body(url: str | None, events: Sequence[str] | None, description: str | None,
                 enabled: bool | None) -> dict[str, Any]:
    return body(url=url, events=list(events) if events is not None else None, description=description,
                enabled=enabled)


class Webhooks:
    """Webhook endpoints of the client's organization."""

    def __init__(self, client: Herewith) -> None:
        self._client = client

    def create(self, *, url: str, events: Sequence[str] | None = None, description: str | None = None) -> WebhookWithSecret:
        """Create an endpoint (201); the result's ``secret`` is shown this once: keep it for
        :func:`~herewith_client.verify_webhook`. ``events``: the types to send (default: all). BadRequestError
        names ``url`` when the server's target policy refuses it (e.g. a private address)."""
        return self._client._request("POST", "/webhooks", cast=WebhookWithSecret,
                                     json=body(url=url, events=list(events) if events is not None else None,
                                               description=description))

    def list(self, *, limit: int | None = None) -> SyncPage[Webhook]:
        """The organization's endpoints (never their secrets)."""
        return self._client._list("/webhooks", Webhook, {"limit": limit})

    def get(self, webhook_id: str) -> Webhook:
        return self._client._request("GET", f"/webhooks/{segment(webhook_id)}", cast=Webhook)

    def update(self, webhook_id: str, *, url: str | None = None, events: Sequence[str] | None = None,
               description: str | None = None, enabled: bool | None = None) -> Webhook:
        """Change any of ``url``, ``events``, ``description``, ``enabled`` (PATCH)."""
        return self._client._request("PATCH", f"/webhooks/{segment(webhook_id)}", cast=Webhook,
                                     json=_update_body(url, events, description, enabled))

    def delete(self, webhook_id: str) -> None:
        """Delete an endpoint with its queue and delivery log (204)."""
        self._client._request("DELETE", f"/webhooks/{segment(webhook_id)}")

    def rotate_secret(self, webhook_id: str) -> WebhookSecret:
        """Replace the signing secret at once; events not yet delivered are signed with the new one."""
        return self._client._request("POST", f"/webhooks/{segment(webhook_id)}/rotate-secret", cast=WebhookSecret)

    def deliveries(self, webhook_id: str, *, limit: int | None = None) -> SyncPage[Delivery]:
        """The endpoint's delivery attempts, newest first."""
        return self._client._list(f"/webhooks/{segment(webhook_id)}/deliveries", Delivery, {"limit": limit})

    def redeliver(self, webhook_id: str, event_id: str) -> Redelivery:
        """Send an event to the endpoint again (same id and body), as soon as the server's worker runs (202)."""
        return self._client._request("POST", f"/webhooks/{segment(webhook_id)}/events/{segment(event_id)}/redeliver",
                                     cast=Redelivery)


class AsyncWebhooks:
    """Webhook endpoints; as :class:`Webhooks`, awaited."""

    def __init__(self, client: AsyncHerewith) -> None:
        self._client = client

    async def create(self, *, url: str, events: Sequence[str] | None = None,
                     description: str | None = None) -> WebhookWithSecret:
        """See :meth:`Webhooks.create`."""
        return await self._client._request("POST", "/webhooks", cast=WebhookWithSecret,
                                           json=body(url=url, events=list(events) if events is not None else None,
                                                     description=description))

    def list(self, *, limit: int | None = None) -> AsyncPaginator[Webhook]:
        """See :meth:`Webhooks.list`."""
        return self._client._list("/webhooks", Webhook, {"limit": limit})

    async def get(self, webhook_id: str) -> Webhook:
        return await self._client._request("GET", f"/webhooks/{segment(webhook_id)}", cast=Webhook)

    async def update(self, webhook_id: str, *, url: str | None = None, events: Sequence[str] | None = None,
                     description: str | None = None, enabled: bool | None = None) -> Webhook:
        """See :meth:`Webhooks.update`."""
        return await self._client._request("PATCH", f"/webhooks/{segment(webhook_id)}", cast=Webhook,
                                           json=_update_body(url, events, description, enabled))

    async def delete(self, webhook_id: str) -> None:
        await self._client._request("DELETE", f"/webhooks/{segment(webhook_id)}")

    async def rotate_secret(self, webhook_id: str) -> WebhookSecret:
        """See :meth:`Webhooks.rotate_secret`."""
        return await self._client._request("POST", f"/webhooks/{segment(webhook_id)}/rotate-secret",
                                           cast=WebhookSecret)

    def deliveries(self, webhook_id: str, *, limit: int | None = None) -> AsyncPaginator[Delivery]:
        """See :meth:`Webhooks.deliveries`."""
        return self._client._list(f"/webhooks/{segment(webhook_id)}/deliveries", Delivery, {"limit": limit})

    async def redeliver(self, webhook_id: str, event_id: str) -> Redelivery:
        """See :meth:`Webhooks.redeliver`."""
        return await self._client._request(
            "POST", f"/webhooks/{segment(webhook_id)}/events/{segment(event_id)}/redeliver", cast=Redelivery)
