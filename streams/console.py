"""What a person reads in the terminal: an alert as a few lines (``wirewatch alerts`` and the
demo print the same thing)."""

from __future__ import annotations

from streams.records import Alert

__all__ = ["format_alert"]


def format_alert(alert: Alert) -> str:
    """One alert as a few human-readable lines."""
    head = (f"[{alert.kind.upper()} r{alert.revision}] {alert.watch_name} | story "
            f"{alert.story_id[:8]} | {alert.title}")
    sources = ", ".join(alert.sources) or "unknown source"
    latency = (f", {1000 * (alert.updated_at - alert.received_at):.0f} ms after publication"
               if alert.received_at > 0 else "")
    lines = [head, f"    alert {alert.alert_id} - sources: {sources}{latency}",
             f"    priority {alert.priority}"
             + (f": {alert.priority_reason}" if alert.priority_reason else "")]
    if alert.signal is not None:
        lines.append(f"    {alert.signal.name}: {alert.signal.detail}")
    for match in alert.matches[:3]:
        lines.append(f"    matched {match.term!r} in {match.field}: {match.snippet}")
    return "\n".join(lines)

