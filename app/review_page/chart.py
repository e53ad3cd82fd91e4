"""Geometry of the precision–coverage chart, drawn as inline SVG by the dashboard template (no
chart library, nothing to download, readable without JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass

from app.rac.evaluation import CurvePoint

WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 44
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float  # x for the coverage axis, y for the precision axis


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    point: CurvePoint


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    polyline: str
    dots: list[tuple[float, float]]
    marker: Marker | None


def _x(coverage: float) -> float:
    return round(LEFT + coverage * (WIDTH - LEFT - RIGHT), 1)


def _y(precision: float) -> float:
    return round(HEIGHT - BOTTOM - precision * (HEIGHT - TOP - BOTTOM), 1)


def precision_coverage_chart(curve: list[CurvePoint], at_cutoff: CurvePoint | None) -> Chart:
    """Both axes run 0–1, so a glance compares schemas and cutoffs honestly."""
    coords = [(_x(p.coverage), _y(p.precision)) for p in curve]
    return Chart(
        width=WIDTH, height=HEIGHT, left=LEFT, right=WIDTH - RIGHT, top=TOP,
        bottom=HEIGHT - BOTTOM,
        x_ticks=[Tick(t, _x(t)) for t in TICKS], y_ticks=[Tick(t, _y(t)) for t in TICKS],
        polyline=" ".join(f"{x},{y}" for x, y in coords),
        # dots show where the data is when there is little of it; many would be a smudge
        dots=coords if len(coords) <= 60 else [],
        marker=(Marker(_x(at_cutoff.coverage), _y(at_cutoff.precision), at_cutoff)
                if at_cutoff else None),
    )
