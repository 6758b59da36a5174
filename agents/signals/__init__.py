"""Signals beyond keyword hits (issue 23): pure, typed cores that the dedup and alert stages
use. ``velocity``: a story's articles and sources per window, on event time.
"""
