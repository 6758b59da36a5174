"""Ingest: RSS, Atom, JSON Feed and sitemaps to news.raw, politely and without repeats.

    sources.py  the sources file (and the news.sources record format)
    feeds.py    a fetched document to items (feedparser, orjson, defusedxml)
    fetch.py    the polite HTTP client: robots.txt, per-host limits, conditional GET, retries,
                redirects, size caps, the SSRF guard (agents/webhook's)
    state.py    what is remembered per source: seen ids (bounded), validators, health
    poll.py     one round over one source: fetch, parse, publish what is new, remember it
    runner.py   which sources this process polls (its partitions of news.sources), and when
    store.py    the news.sources and news.ingest-state topics from outside a worker
    once.py     ``wirewatch ingest --once`` / ``--status``
    config.py   the WIREWATCH_INGEST_* settings as the configs above
    observe.py  the metrics
    agent.py    the Faust side (a worker's share of the sources, /ingest/)
"""
