"""Log lines: repeated warnings and errors are rate-limited, as a person reading them sees."""

from __future__ import annotations

import io
import logging

from streams.logs import RepeatFilter, install_repeat_filter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logger(filt: RepeatFilter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(filt)
    logger = logging.getLogger(f"test.repeat.{id(filt)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def test_a_flood_of_one_error_is_cut_to_the_burst_and_then_counted() -> None:
    clock = Clock()
    logger, out = _logger(RepeatFilter(burst=3, window=10.0, clock=clock))
    for n in range(150):  # a second of "broker down"
        clock.now = n / 150
        logger.error("Unable connect to node with id %d: %s", 1, "Connect call failed")
    logger.warning("a different warning")
    lines = out.getvalue().splitlines()
    assert lines == ["Unable connect to node with id 1: Connect call failed"] * 3 + [
        "a different warning"]

    clock.now = 10.5  # the next window: the first line says what was dropped
    logger.error("Unable connect to node with id %d: %s", 1, "Connect call failed")
    assert out.getvalue().splitlines()[-1] == (
        "Unable connect to node with id 1: Connect call failed [and 147 more like it in the "
        "10 s before, not logged]")


def test_info_and_debug_lines_are_never_dropped() -> None:
    logger, out = _logger(RepeatFilter(burst=1, window=10.0, clock=Clock()))
    for _ in range(50):
        logger.info("dead letter at %s", "t[0]@1")
    assert len(out.getvalue().splitlines()) == 50


def test_the_kinds_remembered_are_bounded() -> None:
    filt = RepeatFilter(burst=1, window=10.0, clock=Clock())
    logger, _ = _logger(filt)
    for n in range(RepeatFilter.MAX_KINDS + 500):
        logger.warning(f"formatted by a library {n}")
    assert len(filt._kinds) == RepeatFilter.MAX_KINDS


def test_installed_once_per_handler_and_one_verdict_per_record() -> None:
    root = logging.Logger("root-under-test")
    outs = [io.StringIO(), io.StringIO()]
    for out in outs:
        root.addHandler(logging.StreamHandler(out))
    install_repeat_filter(root)
    install_repeat_filter(root)
    assert all(len(h.filters) == 1 for h in root.handlers)
    for _ in range(30):
        root.error("same")
    # Both handlers see the same 20 lines: a record is judged once, not once per handler.
    assert [len(out.getvalue().splitlines()) for out in outs] == [20, 20]
