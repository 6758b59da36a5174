"""The compiled kernel's own edges (``agents/watch/kernel.pyx``): its folding, its buffers
growing past their first size, the outcomes it remembers (bounded, and kept by a rebuild),
and queries whose hits Python names. Every check holds it to ``WatchMatcher.match_exhaustive``."""

from __future__ import annotations

import importlib
import random
from types import SimpleNamespace

import pytest

import agents.watch.match as match_module
import agents.watch.plan as plan_module
import agents.watch.query as query_module
import agents.watch.registry as registry_module
from agents.watch.definitions import make_watch
from agents.watch.match import WatchMatcher
from streams.records import Article, Entity, Watch, WatchHit


def _same(matcher: WatchMatcher, article: Article) -> list[str]:
    """The names of the watches hit, after checking them against the plain evaluation."""
    assert matcher._kernel is not None
    hits = matcher.match(article)
    assert hits == [h for h, _ in matcher.match_exhaustive(article)]
    return [h.watch_name for h in hits]


def _watches(*queries: str) -> list[Watch]:
    return [make_watch(f"w{n}", q) for n, q in enumerate(queries)]


@pytest.mark.parametrize(("text", "expected"), [
    ("It cost £5bn — “a record” at the café", ["w0", "w1", "w2"]),  # é: Python folds it
    ("It cost £5bn — “a record”", ["w0", "w1"]),  # folded here: £ — “ ” are separators
    ("IT COST 5BN_A RECORD", ["w0", "w1"]),  # an underscore separates, as in streams.text
    ("Zürich: 5bn, a record", ["w0", "w1"]),
    ("東京 5bn a record", ["w0", "w1"]),  # 4-byte-wide text
    ("", []),
])
def test_folding_matches_the_shared_tokenizer(text: str, expected: list[str]) -> None:
    matcher = WatchMatcher(_watches("5bn", '"a record"', "cafe"))
    assert _same(matcher, Article(id="a", title="", text=text)) == expected
    assert _same(matcher, Article(id="a", title=text, text="")) == expected


def test_buffers_grow_past_their_first_size() -> None:
    # 1,200 tokens (token buffers), 1,200 key occurrences (occurrence list), a NEAR over
    # hundreds of places (span buffer) and 1,500 hits (hit buffer) in one article.
    text = " ".join(["China drills near Taiwan"] * 300)
    queries = ["china", "drills OR exercises", '"near taiwan"~']
    watches = [make_watch(f"w{n:04}", queries[n % 3]) for n in range(1497)]
    watches += _watches("china NEAR/2 taiwan", "(china OR drills) NEAR/1 taiwan", "china NEAR/0 taiwan")
    matcher = WatchMatcher(watches)
    assert len(_same(matcher, Article(id="a", title="China", text=text))) == 1500  # "Taiwan China"


def test_remembered_outcomes_are_bounded_and_hits_stay_right(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(match_module, "MAX_OUTCOMES", 4)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    query = " OR ".join(words)  # 31 sets of terms a hit can name
    watches = [make_watch("shared", query), make_watch("shared too", query),
               make_watch("near", "alpha NEAR/3 (beta OR gamma)")]
    matcher = WatchMatcher(watches)
    articles = [Article(id=str(n), title="", text=" ".join(
        w for k, w in enumerate(words) if n >> k & 1)) for n in range(1, 32)]
    for _ in range(2):  # the second round recalls what is still remembered
        for article in articles:
            _same(matcher, article)
            assert matcher._kernel.remembered <= 4 + 2  # forgotten at the next article


def test_a_rebuild_keeps_the_hits_made_unless_a_query_s_watches_changed() -> None:
    queries = ["china OR drills OR taiwan", "exercises NEAR/2 taiwan"]
    articles = [Article(id=str(n), title="", text=text) for n, text in enumerate(
        ["China drills", "Taiwan", "exercises near Taiwan", "China"])]
    old = WatchMatcher(_watches(*queries))
    for article in articles:
        _same(old, article)
    learned = old._kernel.remembered
    assert learned >= 4  # three sets of the OR's terms, one of the NEAR's
    # An unrelated watch added: every outcome is carried and recalled, none made again
    same = WatchMatcher(_watches(*queries) + [make_watch("other", "japan")], previous=old)
    assert same._kernel.remembered == learned
    for article in articles:
        _same(same, article)
    assert same._kernel.remembered == learned
    # A second watch on the OR's query: its hits (one per watch) are made afresh, with both
    grown = WatchMatcher(_watches(*queries) + [make_watch("twin", queries[0])], previous=same)
    assert grown._kernel.remembered == 1  # the NEAR's
    assert [_same(grown, article) for article in articles] == [
        ["twin", "w0"], ["twin", "w0"], ["twin", "w0", "w1"], ["twin", "w0"]]
    # A renamed watch is a new watch (its id is its name's): nothing of the OR's is kept
    renamed = WatchMatcher([make_watch("w0 renamed", queries[0]), _watches(*queries)[1]],
                           previous=old)
    assert renamed._kernel.remembered == 1
    assert _same(renamed, articles[0]) == ["w0 renamed"]


def test_the_registry_rebuilds_on_what_the_worker_learned() -> None:
    registry = registry_module.WatchRegistry(_watches("china OR drills", "taiwan"))
    _same(registry.matcher, Article(id="a", title="", text="China drills"))
    learned = registry.matcher._kernel.remembered
    assert learned == 1
    registry.apply("new", make_watch("japan"))
    assert registry.matcher._kernel.remembered == learned


def test_queries_whose_terms_share_a_label_are_named_by_python() -> None:
    # "china" twice (scoped and not): the kernel hands the naming back (Hits.pending)
    matcher = WatchMatcher(_watches("title:china OR (china AND drills)", "china NOT taiwan",
                                    'entity:"Xi Jinping" OR xi'))
    article = Article(id="a", title="Drills", text="China drills", entities=[Entity("Xi Jinping", "per")])
    assert _same(matcher, article) == ["w0", "w1", "w2"]
    assert matcher.match(article)[0].terms == ["china", "drills"]
    assert matcher.match(article)[2].terms == ["entity:Xi Jinping"]


def test_near_pairs_by_bisection_equal_every_pair_checked() -> None:
    rng = random.Random(5)
    for _ in range(300):
        spans = [[(rng.randrange(2), i, i + rng.randrange(3), ((side, i),))
                  for i in rng.sample(range(60), rng.randrange(1, 25))] for side in range(2)]
        n = rng.randrange(6)
        plain = [(fa, min(ia, ib), max(ja, jb), la + lb)
                 for fa, ia, ja, la in spans[0] for fb, ib, jb, lb in spans[1]
                 if fa == fb and ((ja < ib and ib - ja - 1 <= n) or (jb < ia and ia - jb - 1 <= n))]
        assert sorted(query_module._near_pairs(spans[0], spans[1], n)) == sorted(plain)  # type: ignore[arg-type]


@pytest.mark.timeout(60)
def test_near_over_a_long_repetitive_text_does_not_stall() -> None:
    # 15,000 places on each side: every pair would be 225 million checks (minutes in Python);
    # both matchers pair only places within n tokens
    text = " ".join(["China Taiwan"] * 15000)
    matcher = WatchMatcher(_watches("china NEAR/3 taiwan", "taiwan NEAR/0 (china OR beijing)"))
    assert _same(matcher, Article(id="a", title="", text=text)) == ["w0", "w1"]


# --- one opcode table (agents.watch.plan.OPCODES) ----------------------------------------------

def test_the_kernel_has_the_planner_s_opcodes() -> None:
    assert match_module.kernel is not None
    assert match_module.kernel.OPCODES == plan_module.OPCODES
    plan_module.check_opcodes(match_module.kernel.OPCODES)


@pytest.mark.parametrize("opcodes", [
    {**plan_module.OPCODES, "NEAR": 9},  # a number changed on one side
    {k: v for k, v in plan_module.OPCODES.items() if k != "SP_NEAR"},  # an opcode missing
    {**plan_module.OPCODES, "XOR": 9},  # one the planner does not know
    None,  # a build older than the table: no OPCODES at all
])
def test_a_kernel_with_other_opcodes_is_refused(opcodes: dict[str, int] | None) -> None:
    with pytest.raises(RuntimeError, match=r"opcodes \(.*\) are not agents\.watch\.plan\.OPCODES"):
        plan_module.check_opcodes(opcodes)


def test_a_kernel_with_other_opcodes_fails_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check sits outside the ImportError fallback: a mismatch never means "match in Python".
    monkeypatch.setattr(match_module.kernel, "OPCODES", {**plan_module.OPCODES, "NOT": 0})
    with pytest.raises(RuntimeError, match="rebuild"):
        importlib.reload(match_module)


@pytest.mark.parametrize(("program", "reason"), [
    ((99, 0), "unknown opcode 99"),
    ((plan_module.OP_NEAR, 1, 99, 0), "unknown span opcode 99"),
])
def test_the_kernel_refuses_an_opcode_it_does_not_know(program: tuple[int, ...], reason: str) -> None:
    assert match_module.kernel is not None
    query = SimpleNamespace(plan=(program, ((1 | 2, (" taiwan ",)),), ((0, "taiwan"),)), static=None)
    kernel = match_module.kernel.Kernel({" taiwan ": 0}, {" taiwan ": [0]}, [query],
                                        [[(0, "id", "w")]], 1, 16, str, WatchHit)
    for _ in range(2):  # and it stays usable: the error is not "not reentrant" the second time
        with pytest.raises(ValueError, match=reason):
            kernel.match("Taiwan", "", "")
