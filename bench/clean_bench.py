"""Time ``agents.clean.clean`` per article on the BBC corpus, whole and by component.

    .venv/bin/python bench/clean_bench.py [--limit N] [--data PATH] [--html]

Each BBC row is sent as the JSON payload a publisher would send; with ``--html`` it is
instead wrapped in a typical news page (head metadata, navigation, scripts, share and
related blocks, footer) to time the HTML path. The data is read from ``../shared/data``
beside the repository, never copied into it.
"""

from __future__ import annotations

import argparse
import gzip
import html
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere, without installing

from agents import clean as c  # noqa: E402

T = TypeVar("T")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"


_NAV = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(40))
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title} - BBC News</title><meta property="og:title" content="{title}">
<meta property="og:site_name" content="BBC News"><link rel="canonical" href="https://www.bbc.co.uk/news/{id}">
<meta property="article:published_time" content="2005-02-01T10:00:00Z">
<script>window.dataLayer = [{{"page": "{id}", "x": 1}}]; function f() {{ return 1; }}</script>
<style>.a {{ color: red }} .b {{ margin: 0 }}</style></head>
<body><header><nav><ul>{nav}</ul></nav></header>
<div class="cookie-consent">We use cookies.</div>
<main><article><h1>{title}</h1><div class="byline">By A Reporter</div>
{paragraphs}
<div class="share-tools"><a>Facebook</a><a>Twitter</a></div>
<aside class="related-content"><ul>{nav}</ul></aside></article></main>
<footer><ul>{nav}</ul><p>Copyright 2005 BBC. All rights reserved.</p></footer>
<script src="/app.js"></script></body></html>"""


def _as_page(row: dict[str, str]) -> bytes:
    paragraphs = "\n".join(
        f"<p>{html.escape(p)}</p>" for p in (row.get("text") or "").split("\n") if p.strip()
    )
    title = html.escape(row.get("title") or "")
    return _PAGE.format(title=title, id=row["id"], nav=_NAV, paragraphs=paragraphs).encode()


def _payloads(path: Path, limit: int | None, as_html: bool) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        rows = [orjson.loads(line) for line in fh if line.strip()]
    return [_as_page(row) if as_html else orjson.dumps(row) for row in rows[:limit]]


def _stats(label: str, micros: list[float]) -> str:
    ordered = sorted(micros)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{label:<22} median {statistics.median(ordered):8.1f} µs   p99 {p99:8.1f} µs   "
        f"mean {statistics.fmean(ordered):8.1f} µs"
    )


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1e6


def bench_components(payloads: list[bytes]) -> dict[str, list[float]]:
    """Re-run the steps of clean() one by one so each can be timed on its own."""
    names = ("decode", "parse", "unicode", "boilerplate", "language", "id")
    times: dict[str, list[float]] = {name: [] for name in names}
    for raw in payloads:
        text, t_decode = _timed(c.decode_payload, raw, 1_048_576)
        parsed, t_parse = _timed(c.parse_payload, text)
        fixed, t_unicode = _timed(c.fix_unicode, parsed.body)
        lines = [line for line in (" ".join(x.split()) for x in fixed.splitlines()) if line]
        _, t_boiler = _timed(c.strip_boilerplate, lines)
        title = parsed.title or ""
        _, t_lang = _timed(c.detect_language, title, fixed)
        _, t_id = _timed(c.article_id, None, None, None, parsed.source, title, fixed)
        for name, t in zip(names, (t_decode, t_parse, t_unicode, t_boiler, t_lang, t_id), strict=True):
            times[name].append(t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--html", action="store_true", help="wrap each row in a news page")
    args = parser.parse_args()

    payloads = _payloads(args.data, args.limit, args.html)
    for raw in payloads[:50]:  # warm-up: lazy detector, regex caches
        c.clean(raw)
    whole = []
    for raw in payloads:
        _, t = _timed(c.clean, raw)
        whole.append(t)
    kind = "HTML pages" if args.html else "JSON payloads"
    size = statistics.median(len(raw) for raw in payloads)
    print(f"{len(payloads)} {kind} from {args.data.name}, median {size:,.0f} bytes")
    print(_stats("clean() total", whole))
    for name, micros in bench_components(payloads).items():
        print(_stats(f"  {name}", micros))


if __name__ == "__main__":
    main()
