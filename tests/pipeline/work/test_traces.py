"""pipeline.work.traces: a fit's traces downsampled for the ledger."""

from __future__ import annotations

import json
import math

import pytest

from dip_engine.result import History
from pipeline.work.traces import TRACE_POINTS, downsample_trace, kept_indices, significant


def history(count: int, *, psnr: bool = False) -> History:
    """Traces of `count` iterations: loss 1/(i+1), criterion NaN for the first 10, PSNR 20 + i/100."""
    return History(
        loss=[1 / (i + 1) for i in range(count)],
        criterion=[math.nan if i < 10 else 0.001 * i + 1e-7 for i in range(count)],
        psnr=[20 + i / 100 for i in range(count)] if psnr else [],
        rule="variance",
    )


@pytest.mark.parametrize("kept", [1, 2, 777, 1234, 2999, 3000])
def test_a_long_trace_keeps_at_most_trace_points_with_the_first_last_and_kept(kept: int) -> None:
    trace = downsample_trace(history(3000, psnr=True), kept)
    assert trace is not None and set(trace) == {"iteration", "loss", "criterion", "psnr"}
    iterations = trace["iteration"]
    assert len(iterations) <= TRACE_POINTS and all(len(values) == len(iterations) for values in trace.values())
    assert iterations[0] == 1 and iterations[-1] == 3000 and kept in iterations
    assert iterations == sorted(set(iterations))
    gaps = {b - a for a, b in zip(iterations, iterations[1:])}
    assert max(gaps) <= math.ceil(2999 / (TRACE_POINTS - 2))  # evenly spaced: TRACE_POINTS - 1 points over the iterations, and the kept one
    position = iterations.index(kept)
    assert trace["loss"][position] == pytest.approx(1 / kept, rel=1e-3)  # iteration k is History entry k - 1


def test_a_short_trace_is_kept_whole_and_rounded_to_four_significant_digits() -> None:
    source = history(40)
    trace = downsample_trace(source, 12)
    assert trace is not None and "psnr" not in trace  # no reference: no PSNR trace
    assert trace["iteration"] == list(range(1, 41))
    assert trace["loss"][2] == 0.3333 and trace["loss"][0] == 1.0
    assert trace["criterion"][:10] == [None] * 10  # NaN while undefined
    assert trace["criterion"][10] == 0.010000 and trace["criterion"][39] == 0.039
    assert json.loads(json.dumps(trace)) == trace


def test_values_that_are_not_finite_are_gaps_and_missing_entries_none() -> None:
    source = History(loss=[1.0, math.inf, 0.5], criterion=[math.nan, 0.25], psnr=[20.0, math.nan, 30.123456])
    trace = downsample_trace(source, 3)
    assert trace == {
        "iteration": [1, 2, 3],
        "loss": [1.0, None, 0.5],
        "criterion": [None, 0.25, None],
        "psnr": [20.0, None, 30.12],
    }


def test_a_history_without_traces_has_no_trace() -> None:
    assert downsample_trace(History(rule="fixed"), 0) is None  # a restoration blended from tiles


def test_kept_indices() -> None:
    assert kept_indices(5, 2, 200) == [0, 1, 2, 3, 4]
    assert kept_indices(10, 5, 4) == [0, 4, 5, 9]
    assert kept_indices(10, 4, 4) == kept_indices(10, -1, 4) == [0, 4, 9]  # kept among the spaced, or out of range
    assert len(kept_indices(10**6, 123_457, 200)) == 200
    with pytest.raises(ValueError, match="at least 3"):
        kept_indices(10, 1, 2)


def test_significant() -> None:
    assert significant(123456.7, 5) == 123460.0 and significant(0.000123456, 5) == 0.00012346
    assert significant(math.nan, 5) is None and significant(None, 5) is None and significant(math.inf, 5) == math.inf
