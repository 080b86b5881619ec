"""Webhooks: endpoints managed through ``/v1/webhooks`` and the CLI, an outbox of events written in the same
transaction as the state change, and a delivery worker (CONTRACT.md, "Webhooks")."""
