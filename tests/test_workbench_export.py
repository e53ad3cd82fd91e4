"""The items browser's export link downloads exactly the rows the browser shows, under every
filter (text, status, label, confidence range, dataset, reviewer; the job filter is exercised by
the whole-session browser test). Both databases, through the page's HTTP routes."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import select

from app.labelling.models import Annotation
from tests.helpers import bearer, new_key, page_sign_in, seed_labelled_items
from tests.test_review_page import ROWS, SCHEMA

TEXT = dict((r[0], r[1]) for r in ROWS)


@pytest.fixture
def workbench(client, session_factory):  # type: ignore[no-untyped-def]
    """ROWS seeded; t2 reviewed (as app_crash) by a reviewer; t1, t2, t5 also uploaded as a
    dataset; the client signed in to the page as an editor. Returns (dataset id, reviewer)."""
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    reviewer = bearer(new_key(session_factory, "acme", "reviewer"))
    client.post("/v1/items/t2/review", headers=reviewer,
                json={"label": "app_crash"}).raise_for_status()
    with session_factory() as session:
        reviewer_name = session.scalar(select(Annotation.source)
                                       .where(Annotation.status == "reviewed"))
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(["id", "text"])
    for item in ("t1", "t2", "t5"):
        writer.writerow([item, TEXT[item]])
    r = client.post("/v1/datasets", files={"file": ("three.csv", body.getvalue().encode())},
                    data={"text_column": "text", "id_column": "id"},
                    headers=bearer(new_key(session_factory, "acme", "editor")))
    assert r.status_code == 201, r.text
    dataset = r.json()["id"]
    r = page_sign_in(client, new_key(session_factory, "acme", "editor"))
    assert r.status_code == 303, r.text
    return dataset, reviewer_name


def _shown(client, params: dict[str, str]) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    r = client.get("/review/items", params={"schema": "support", **params})
    assert r.status_code == 200, r.text
    html = r.text
    links = re.findall(r'href="(/review/export\?[^"]+)"', html)
    assert len(links) >= 3  # jsonl, csv, label-studio at least
    return re.findall(r'<tr data-item="([^"]+)"', html), [link.replace("&amp;", "&")
                                                          for link in links]


def test_the_export_link_downloads_exactly_the_rows_shown(client, workbench):
    dataset, reviewer = workbench
    cases = [
        ({}, {"t1", "t2", "t3", "t4", "t5", "t6", "ok"}),
        ({"q": "ORDER"}, {"t3", "t5"}),
        ({"status": "needs_review"}, {"t1", "t5", "t6"}),
        ({"label": "billing_refund"}, {"t5", "ok"}),
        ({"min_confidence": "0.5", "max_confidence": "0.7"}, {"t3", "t4", "t5", "t6"}),
        ({"dataset": dataset}, {"t1", "t2", "t5"}),
        ({"reviewer": reviewer}, {"t2"}),
        ({"dataset": dataset, "status": "needs_review", "max_confidence": "0.5"}, {"t1"}),
        ({"q": "nothing like this"}, set()),
    ]
    for params, expected in cases:
        shown, links = _shown(client, params)
        assert set(shown) == expected, params
        by_format = {re.search(r"format=([\w-]+)", link).group(1): link  # type: ignore[union-attr]
                     for link in links}
        r = client.get(by_format["jsonl"])
        assert r.status_code == 200, r.text
        exported = [json.loads(line)["id"] for line in r.text.splitlines()]
        assert exported == shown, params  # the same rows, in the same order
        rows = list(csv.DictReader(io.StringIO(client.get(by_format["csv"]).text)))
        assert [row["id"] for row in rows] == shown, params


def test_bad_export_filters_are_named(client, workbench):
    for params, words in [({"min_confidence": "high"}, "min_confidence must be a number"),
                          ({"max_confidence": "2"}, "max_confidence must be between 0 and 1"),
                          ({"status": "done"}, "status must be one of"),
                          ({"dataset": "ds_nope"}, "ds_nope"),
                          ({"job": "job_nope"}, "job_nope"),
                          ({"format": "xls"}, "format must be one of")]:
        r = client.get("/review/export", params={"schema": "support", **params})
        assert r.status_code in (404, 422), (params, r.status_code)
        assert words in r.json()["detail"], (params, r.text)
