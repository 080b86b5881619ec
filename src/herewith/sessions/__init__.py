"""Room sessions and participants: the record of who was in which room when (insights, webhooks)."""
