"""The precision–coverage curve and its chart geometry: pure functions, no database."""

from __future__ import annotations

import pytest

from app.rac.evaluation import CurvePoint, point_at, precision_coverage_curve
from app.review_page.chart import precision_coverage_chart


def precision_coverage(pairs: list[tuple[float, bool]]) -> list[CurvePoint]:
    return precision_coverage_curve([c for c, _ in pairs], [ok for _, ok in pairs])


def test_empty_input_gives_no_curve():
    assert precision_coverage([]) == []
    assert point_at([], 0.8) is None


def test_one_point_per_threshold_highest_first():
    pairs = [(0.9, True), (0.5, False), (0.7, True), (0.3, False)]
    curve = precision_coverage(pairs)
    assert [p.threshold for p in curve] == [0.9, 0.7, 0.5, 0.3]
    assert [p.count for p in curve] == [1, 2, 3, 4]
    assert [p.coverage for p in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [p.precision for p in curve] == pytest.approx([1.0, 1.0, 2 / 3, 0.5])


def test_equal_confidences_enter_together():
    # no cutoff can take one of two items with the same confidence and leave the other
    curve = precision_coverage([(0.8, True), (0.8, False), (0.6, True)])
    assert curve == [CurvePoint(0.8, pytest.approx(2 / 3), 0.5, 2, 1),
                     CurvePoint(0.6, 1.0, pytest.approx(2 / 3), 3, 2)]


def test_input_order_does_not_matter():
    pairs = [(0.2, False), (0.95, True), (0.6, False), (0.6, True), (0.85, True)]
    assert precision_coverage(pairs) == precision_coverage(list(reversed(pairs)))


def test_full_coverage_precision_is_plain_accuracy():
    pairs = [(c / 10, c % 3 == 0) for c in range(10)]
    last = precision_coverage(pairs)[-1]
    assert last.coverage == 1.0 and last.count == 10
    assert last.precision == pytest.approx(sum(ok for _, ok in pairs) / 10)


def test_point_at_cutoff():
    curve = precision_coverage([(0.95, True), (0.85, False), (0.8, True), (0.4, False)])
    at = point_at(curve, 0.8)
    assert at is not None and at.threshold == 0.8 and at.count == 3  # >= cutoff, like the engine
    assert point_at(curve, 0.9).threshold == 0.95  # type: ignore[union-attr]
    assert point_at(curve, 0.99) is None  # nothing reviewed that high
    assert point_at(curve, 0.0).coverage == 1.0  # type: ignore[union-attr]


def test_chart_maps_both_axes_zero_to_one():
    curve = precision_coverage([(0.9, True), (0.5, False)])
    chart = precision_coverage_chart(curve, point_at(curve, 0.8))
    (x1, y1), (x2, y2) = chart.dots
    assert x1 == pytest.approx(chart.left + 0.5 * (chart.right - chart.left))  # coverage 0.5
    assert y1 == chart.top  # precision 1.0 at the top
    assert x2 == chart.right  # coverage 1.0 at the right edge
    assert y2 == pytest.approx((chart.top + chart.bottom) / 2)  # precision 0.5 halfway
    assert chart.polyline == f"{x1},{y1} {x2},{y2}"
    assert chart.marker is not None and (chart.marker.x, chart.marker.y) == (x1, y1)
    assert [t.value for t in chart.x_ticks] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_chart_without_a_point_at_the_cutoff_has_no_marker():
    curve = precision_coverage([(0.5, True)])
    assert precision_coverage_chart(curve, point_at(curve, 0.8)).marker is None


def test_many_points_are_drawn_as_a_line_only():
    curve = precision_coverage([(i / 1000, i % 2 == 0) for i in range(200)])
    chart = precision_coverage_chart(curve, None)
    assert chart.dots == [] and len(chart.polyline.split()) == 200
