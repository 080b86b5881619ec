"""Insights: the four ``/v1/insights`` calls (CONTRACT.md, "Insights")."""
