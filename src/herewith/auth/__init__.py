"""Organizations, API keys, the Bearer dependency and room keys (roles)."""
