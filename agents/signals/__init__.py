"""Signals beyond keyword hits (issue 23): pure, typed cores, and the signals stage's agent.

``velocity``: a story's articles and sources per window, on event time (dedup keeps it);
``surge`` and ``priority``: what the alert stage adds to every alert; ``spike`` and
``digest``: per-watch signals the signals stage (``agent``) builds from news.alerts.
"""
