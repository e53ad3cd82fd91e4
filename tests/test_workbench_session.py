"""A whole session in the browser workbench (Debian's Chromium, a live server, the bundled
embedder): push a schema, upload a 300-row CSV, start a job and watch it reach 100%, filter the
low-confidence items, review three (one undone, one on a multi-label schema), bulk-accept above
a confidence, download the export — checking the database at each step. Every page is also
checked with axe-core (shipped by the axe-playwright-python package) at 1366 and 390 px."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from app.datasets.models import Dataset
from app.items.models import Item
from app.jobs.models import Job
from app.labelling.models import Annotation, ItemState
from tests.helpers import new_key, seed_labelled_items
from tests.test_review_page import NARROW, ROWS, SCHEMA, expect_item, screenshot, sign_in
from tests.test_review_page import browser as browser  # noqa: PLC0414  (fixture)
from tests.test_review_page import live_server as live_server  # noqa: PLC0414  (fixture)

LAPTOP = {"width": 1366, "height": 850}
SERIOUS = ("serious", "critical")


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


def _serious_violations(page: Any) -> list[str]:
    page.evaluate(_axe_source())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in SERIOUS]


def _count(factory: Any, query: Any) -> int:
    with factory() as session:
        return session.scalar(query) or 0


def _csv(tmp_path: Path) -> Path:
    texts = [x for label in SCHEMA["labels"] for x in label["examples"]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text", "channel"])
    for i in range(300):
        writer.writerow([f"c{i:03}", f"{texts[i % len(texts)]} (ticket {i})", "app"])
    writer.writerow(["bad1", "", "app"])  # two bad rows: no text
    writer.writerow(["bad2", "   ", "email"])
    path = tmp_path / "tickets.csv"
    path.write_text(out.getvalue())
    return path


def test_a_whole_session_from_a_csv_to_reviewed_labels(browser, live_server, session_factory,
                                                       tmp_path):
    from playwright.sync_api import expect

    # a multi-label schema with items the model labelled, for the multi-label review
    seed_labelled_items(session_factory, "acme", {**SCHEMA, "name": "topics",
                                                  "multi_label": True}, ROWS)
    key = new_key(session_factory, "acme", "admin")
    context = browser.new_context(viewport=LAPTOP, bypass_csp=True, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    shots: list[tuple[str, str]] = []

    def shoot(name: str) -> None:
        violations = _serious_violations(page)
        assert violations == [], (name, violations)
        screenshot(page, f"workbench-{name}-wide.png", full_page=True)
        shots.append((name, page.url))

    page.goto(f"{live_server}/review/sign-in")
    shoot("sign-in")
    sign_in(page, live_server, key)

    # 1. push the schema from a file
    schema_file = tmp_path / "support.yaml"
    schema_file.write_text(yaml.safe_dump(SCHEMA))
    page.goto(f"{live_server}/review/schemas")
    page.get_by_label("YAML or JSON file").set_input_files(str(schema_file))
    page.get_by_role("button", name="Push").click()
    expect(page.locator("#schema-result")).to_contain_text("Pushed support version 1")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#schemas")).to_contain_text("support")
    shoot("schemas")
    page.get_by_role("link", name="support", exact=True).click()
    expect(page.locator("#labels tbody tr")).to_have_count(len(SCHEMA["labels"]))
    shoot("schema")

    # 2. upload 300 rows (and two bad ones): bytes sent, then rows read, then the report; the
    # list below shows the new dataset without a reload
    page.goto(f"{live_server}/review/datasets")
    expect(page.locator("#datasets tbody tr[data-dataset]")).to_have_count(0)
    page.evaluate("""() => { window.stayed = true; window.phases = [];
        new MutationObserver(() => window.phases.push(
            document.getElementById("upload-phase").textContent))
          .observe(document.getElementById("upload-phase"), {childList: true}); }""")
    page.get_by_label("CSV (with a header), JSONL or Parquet").set_input_files(
        str(_csv(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-summary")).to_contain_text("302 rows, 300 items (300 new), "
                                                             "2 bad rows")
    expect(page.locator(".bad-rows li")).to_have_count(2)
    with session_factory() as session:
        dataset = session.scalars(select(Dataset)).one()
        assert (dataset.rows, dataset.items, dataset.bad_rows) == (302, 300, 2)
    expect(page.locator(f"#datasets tr[data-dataset='{dataset.external_id}']")).to_contain_text(
        "302")
    phases = page.evaluate("window.phases")
    assert phases[0].startswith(("Sending the file", "Sent;")), phases
    assert any(p.startswith("Reading rows") for p in phases) and phases[-1] == "Done.", phases
    size = _csv(tmp_path).stat().st_size
    bar = page.locator("#upload-progress")
    assert [int(v) for v in bar.evaluate("p => [p.value, p.max]")] == [size, size]  # bytes
    assert page.evaluate("window.stayed")  # no reload
    shoot("datasets")

    # 3. start a job (retrieval: the fast first pass) and watch it reach 100%
    page.locator("#upload-start-job").click()
    page.get_by_label("Schema").last.select_option("support")
    page.get_by_label("Strategy").select_option("retrieval")
    shoot("jobs")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{live_server}/review/jobs/job_*")
    # the jobs list, opened while the job runs, follows it to the end without a reload (on an
    # idle machine the 300-item retrieval job can finish before the list loads: then the list
    # shows the outcome at once and the following is not exercised)
    jobs_list = context.new_page()
    jobs_list.goto(f"{live_server}/review/jobs")
    jobs_list.evaluate("window.stayed = true")
    listed_live = jobs_list.locator("#jobs tr[data-live]").count()
    assert listed_live in (0, 1)
    expect(page.locator("#job-percent")).to_have_text("100%", timeout=240_000)  # loaded CI
    expect(page.locator("#job-state")).to_have_text("succeeded")
    with session_factory() as session:
        job = session.scalars(select(Job)).one()
        assert (job.state, job.done, job.total) == ("succeeded", 300, 300)
        assert session.scalar(select(func.count()).where(Annotation.job_id == job.id)) == 300
    expect(page.locator("#job-progress")).to_have_attribute("value", "300")
    shoot("job")
    expect(jobs_list.locator("#jobs tbody tr").first).to_contain_text("succeeded",
                                                                      timeout=15_000)
    expect(jobs_list.locator("#jobs tbody tr").first).to_contain_text("300 / 300")
    assert jobs_list.evaluate("window.stayed")  # followed (or showed) it without a reload
    jobs_list.close()

    # 4. the low-confidence items of the job
    page.get_by_role("link", name="Low-confidence items of this job").click()
    with session_factory() as session:
        low = session.scalar(select(func.count()).select_from(ItemState).where(
            ItemState.confidence <= 0.8, ItemState.model_annotation_id.in_(
                select(Annotation.id).where(Annotation.job_id == job.id))))
    assert low and low < 300
    expect(page.locator("#items-total")).to_have_text(str(low))
    page.get_by_label("Text contains").fill("parcel")
    page.get_by_role("button", name="Filter").click()
    with session_factory() as session:
        parcels = session.scalar(select(func.count()).select_from(ItemState)
                                 .join(Item, Item.id == ItemState.item_id)
                                 .where(ItemState.confidence <= 0.8,
                                        ItemState.schema_id == job.schema_id,
                                        func.lower(Item.text).contains("parcel")))
    expect(page.locator("#items-total")).to_have_text(str(parcels))
    expect(page.locator("#items tbody tr")).to_have_count(min(parcels, 50))
    assert parcels <= 50
    shown = page.locator("#items tbody tr").evaluate_all("rows => rows.map(r => r.dataset.item)")
    # the export link downloads exactly these rows (text, job and confidence filters applied)
    with page.expect_download() as download:
        page.locator(".export-links").get_by_role("link", name="jsonl", exact=True).click()
    exported = [json.loads(line)["id"]
                for line in Path(download.value.path()).read_text().splitlines()]
    assert exported == shown
    shoot("items")

    # 5. review three: one opened from the items browser and accepted, one picked then undone
    # and picked again, one multi-label
    first = shown[0]
    page.locator(f"#items tr[data-item='{first}']").get_by_role("link", name=first).click()
    expect_item(page, first)
    assert "item=" not in page.url  # a reload does not open it again
    page.keyboard.press("Enter")
    second = _next_item(page, first)
    page.keyboard.press("2")
    _next_item(page, second)
    page.keyboard.press("u")
    expect_item(page, second)
    page.keyboard.press("1")
    _next_item(page, second)
    shoot("review")
    page.goto(f"{live_server}/review/dashboard/support")
    expect(page.locator("main h1")).to_contain_text("support")
    shoot("dashboard")
    with session_factory() as session:
        reviewed = dict(session.execute(
            select(Item.external_id, func.count()).join(Annotation, Annotation.item_id == Item.id)
            .where(Annotation.status == "reviewed").group_by(Item.external_id)).all())
    assert reviewed == {first: 1, second: 1}  # the undone review is gone
    page.goto(f"{live_server}/review?schema=topics")
    expect_item(page, "t1")
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect_item(page, "t2")
    with session_factory() as session:
        labels = session.scalar(select(Annotation.labels).join(Item, Item.id == Annotation.item_id)
                                .where(Item.external_id == "t1", Annotation.status == "reviewed"))
    assert labels == ["login_problem", "billing_refund", "app_crash"]

    # 6. bulk-accept the proposals at or above a confidence, confirmed with the count
    page.goto(f"{live_server}/review/items?schema=support&status=needs_review")
    threshold = 0.5
    with session_factory() as session:
        expected = session.scalar(select(func.count()).select_from(ItemState).where(
            ItemState.status == "needs_review", ItemState.model_label.is_not(None),
            ItemState.model_confidence >= threshold,
            ItemState.schema_id == job.schema_id))
        accepted_before = session.scalar(select(func.count()).select_from(ItemState).where(
            ItemState.status == "accepted", ItemState.schema_id == job.schema_id))
    assert expected
    page.get_by_label("Accept proposals needing review with confidence at least").fill(
        str(threshold))
    page.get_by_role("button", name="Accept…").click()
    expect(page.locator("#bulk-question")).to_contain_text(f"for {expected} items")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#bulk-message")).to_contain_text(f"Done: {expected} items accepted")

    def accepted_now() -> int:
        with session_factory() as session:
            return session.scalar(select(func.count()).select_from(ItemState).where(
                ItemState.status == "accepted", ItemState.schema_id == job.schema_id)) or 0

    assert accepted_now() == accepted_before + expected
    # undone as one batch, then done again
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#bulk-message")).to_contain_text(
        f"Undone: {expected} items have their earlier decision back")
    assert accepted_now() == accepted_before
    assert _count(session_factory, select(func.count()).where(
        Annotation.note.like("bulk accept%"))) == 0
    page.get_by_role("button", name="Accept…").click()
    expect(page.locator("#bulk-question")).to_contain_text(f"for {expected} items")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#bulk-message")).to_contain_text(f"Done: {expected} items accepted")
    assert accepted_now() == accepted_before + expected
    assert _count(session_factory, select(func.count()).where(
        Annotation.note.like("bulk accept%"))) == expected

    # 7. download the export of the dataset's labels in every format, Parquet last (checked
    # against the database: every row, labels as the schema's class names)
    page.goto(page.url.split("/review/")[0] + f"/review/jobs/{job.external_id}")
    links = page.locator("#job .export-links").get_by_role("link")
    assert links.all_inner_texts() == ["jsonl", "csv", "parquet", "label-studio"]
    for fmt in ("jsonl", "csv", "label-studio", "parquet"):
        with page.expect_download() as download:
            page.locator("#job .export-links").get_by_role("link", name=fmt, exact=True).click()
        path = Path(download.value.path())
        if fmt == "parquet":
            _check_parquet(path, session_factory, job.schema_id, second)
            continue
        body = path.read_text()
        if fmt == "jsonl":
            records = [json.loads(line) for line in body.splitlines()]
            assert len(records) == 300
            by_id = {r["id"]: r for r in records}
            assert by_id[second]["status"] == "reviewed"
            assert sum(r["status"] == "accepted" for r in records) == accepted_before + expected
        elif fmt == "csv":
            assert len(list(csv.DictReader(io.StringIO(body)))) == 300
        else:
            assert len(json.loads(body)) == 300
    context.close()

    # every page at 390 px: no serious accessibility violation, nothing wider than the screen
    narrow = browser.new_context(viewport=NARROW, bypass_csp=True)
    page = narrow.new_page()
    assert [name for name, _ in shots] == ["sign-in", "schemas", "schema", "datasets", "jobs",
                                           "job", "items", "review", "dashboard"]
    for name, url in shots:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        violations = _serious_violations(page)
        assert violations == [], (name, violations)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], (name, width)
        screenshot(page, f"workbench-{name}-narrow.png", full_page=True)
        if name == "sign-in":
            sign_in(page, live_server, key)
    narrow.close()


def _check_parquet(path: Path, factory: Any, schema_id: int, reviewed: str) -> None:
    """The Parquet download holds the dataset's 300 items with the labels the database holds,
    as class indices named by the schema's labels in the file's Hugging Face features."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    names = features["label"]["names"]
    assert features["label"]["_type"] == "ClassLabel"
    assert names[:len(SCHEMA["labels"])] == [x["name"] for x in SCHEMA["labels"]]
    rows = table.to_pylist()
    exported = {r["id"]: (None if r["label"] is None else names[r["label"]], r["status"])
                for r in rows}
    with factory() as session:
        stored = {external_id: (label, status) for external_id, label, status in session.execute(
            select(Item.external_id, ItemState.label, ItemState.status)
            .join(ItemState, ItemState.item_id == Item.id)
            .where(ItemState.schema_id == schema_id, Item.external_id.like("c%")))}
    assert len(rows) == 300 and exported == stored
    assert exported[reviewed][1] == "reviewed"
    assert {label for label, _ in exported.values()} - {None} <= set(names)


def _next_item(page: Any, after: str | None) -> str:
    from playwright.sync_api import expect

    expect(page.locator("#review")).not_to_have_attribute("data-item", after or "")
    current = page.locator("#review").get_attribute("data-item")
    assert current
    return current
