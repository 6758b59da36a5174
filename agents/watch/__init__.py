"""Watched topics: a watch is a named query; every article is matched against every watch.

    definitions.py  what a watch is made of and what is refused (validate_watch, make_watch)
    query.py        the query language: lexer, parser, syntax tree (Term And Or Not Near), limits
    keys.py         how a term is found: folded tokens, singulars, its keys and their frequency
    plan.py         per query: its required keys, and its program over OPCODES for the kernel
    kernel.pyx      the compiled per-article loop: scan the keys, wake queries, run programs
    article.py      one article as the Python reference reads it: places, evidence, snippets
    match.py        WatchMatcher: the kernel or the Python reference behind one match(); Evidence
    registry.py     the current watches and their matcher, rebuilt off the event loop
    feed.py         follows the compacted news.watches topic into this worker's registry
    api.py          /watches/ HTTP pages: list, add, remove (written to news.watches)

A watch flows definition -> query -> plan -> kernel/match -> registry -> feed/api: validated,
its query parsed into a tree and planned (keys, program), its articles matched by the kernel
(Python for what it leaves, or for everything without it), the matcher held by the registry,
which the feed keeps current and the API lists and changes.
"""
