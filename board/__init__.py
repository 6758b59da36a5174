"""The desk's screen: ``wirewatch board``, a live web page of alerts, stories, watches and the
pipeline's health (issue 21).

    settings.py  WIREWATCH_BOARD_* (port, window bounds, the workers' /metrics URLs)
    window.py    the recent window: alert cards with their revisions, story articles; bounded
                 by count and age; every field checked (pure, typed)
    health.py    the health strip: throughput and lag from the workers' /metrics, dead letters
    server.py    the aiohttp app (pages, JSON API, server-sent events, security headers) and
                 its group-less Kafka consumer (partitions assigned, never a group join)
    browser.py   headless Chromium through Selenium, for the tests and bench scripts only
    static/      index.html, board.css, board.js: no build step, no library

The board sits above ``streams`` and ``agents`` (it may import their ground and stage cores,
never the Faust app); only the CLI imports it (tests/unit/test_layers.py).
"""
