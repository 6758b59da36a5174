"""Webhook delivery of alerts: a target guard and a retrying POST (the agent is agent.py)."""

from agents.webhook.core import Delivery, deliver, refusal_reason

__all__ = ["Delivery", "deliver", "refusal_reason"]
