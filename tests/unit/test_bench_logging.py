"""bench.logging's arithmetic: blocks paired as logged, the share of step time and its CI."""

from __future__ import annotations

import pytest

from bench import logging as bench_logging


def test_pair_blocks_compares_each_logged_block_with_its_neighbour():
    block = 2
    spans = []
    for report in range(16):  # ABBA: blocks 0 on, 1 off, 2 off, 3 on, 4 on, 5 off, ...
        on = (report // block) % 4 in (0, 3)
        wall = 1.1 if on else 1.0  # logging costs 10%
        spans.append((report, on, wall, wall / 2))
    diffs = bench_logging.pair_blocks(spans, block)
    assert len(diffs["wall"]) == 3  # pairs (2,3), (4,5), (6,7); blocks 0 and 1 warm up
    assert diffs["wall"] == pytest.approx([0.1] * 3)
    assert diffs["cpu"] == pytest.approx([0.1] * 3)
    # An incomplete last block is left out, as is a pair whose blocks are alike.
    assert len(bench_logging.pair_blocks(spans[:-1], block)["wall"]) == 2
    alike = [(r, True, 1.0, 1.0) for r in range(16)]
    assert bench_logging.pair_blocks(alike, block) == {"wall": [], "cpu": []}


def test_share_is_row_cost_over_log_every_steps_with_an_interval_around_it():
    rows = [100e-6 + i * 1e-6 for i in range(-10, 11)]  # ~100 us per row
    steps = [0.05 + i * 1e-4 for i in range(-10, 11)]  # ~50 ms per step
    point, lo, hi = bench_logging.share(rows, steps, 10)
    assert point == pytest.approx(100e-6 / (10 * 0.05))
    assert lo < point < hi and hi - lo < point  # a spread, narrow for steady samples


def test_cpu_ns_counts_this_process_and_grows():
    before = bench_logging.cpu_ns([])
    sum(i * i for i in range(200_000))
    assert bench_logging.cpu_ns([]) > before
