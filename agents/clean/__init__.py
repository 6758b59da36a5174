"""The clean stage: raw bytes (JSON, text or HTML) in, a cleaned ``Article`` out."""

from agents.clean.core import clean

__all__ = ["clean"]
