"""The clean stage: raw bytes (JSON, text or HTML) in, a cleaned ``Article`` out.

``clean`` is the stage; its steps are exported too, so ``bench/clean_bench.py`` can time each.
"""

from agents.clean.core import (
    article_id,
    clean,
    decode_payload,
    detect_language,
    fix_unicode,
    parse_payload,
    strip_boilerplate,
)

__all__ = [
    "article_id",
    "clean",
    "decode_payload",
    "detect_language",
    "fix_unicode",
    "parse_payload",
    "strip_boilerplate",
]
