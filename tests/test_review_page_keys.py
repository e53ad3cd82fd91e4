"""The review page's working aids in Debian's Chromium against a live server: undo (the review
leaves the database and the label index), notes, multi-label review, guidelines and label details,
key help, word-start label search, why an item needs review, and the layout at 1366x850 and
390 px. Both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.items.models import Item
from app.labelling.models import Annotation, Exemplar, ItemState
from tests import test_review_page as review_page
from tests.helpers import new_key, seed_labelled_items
from tests.test_review_page import (
    NARROW,
    ROWS,
    SCHEMA,
    expect_item,
    expect_mine,
    new_page,
    screenshot,
    sign_in,
)

browser = review_page.browser  # the fixtures: one Chromium per module, a live server per test
live_server = review_page.live_server

LAPTOP = {"width": 1366, "height": 850}
LONG_NAME = "app_crash_when_opening_the_settings_page_on_a_phone_or_tablet"
GUIDELINES = "Label what the customer asks for, not how upset they are."
WORKBENCH_SCHEMA = {
    **SCHEMA,
    "description": GUIDELINES,
    "labels": [*SCHEMA["labels"][:2],
               {**SCHEMA["labels"][2], "name": LONG_NAME},
               *SCHEMA["labels"][3:],
               {"name": "card_arrival", "description": "A new card has not arrived yet.",
                "examples": ["My card still has not come"]}],
}


def _reviews(factory: Any) -> dict[str, tuple[str | None, list[str], str | None]]:
    with factory() as session:
        rows = session.execute(
            select(Item.external_id, Annotation.label, Annotation.labels, Annotation.note)
            .join(Item, Item.id == Annotation.item_id).where(Annotation.status == "reviewed")
        ).all()
    return {i: (label, labels, note) for i, label, labels, note in rows}


def _state(factory: Any, item_id: str) -> tuple[str, str | None]:
    with factory() as session:
        state = session.scalars(select(ItemState).join(Item, Item.id == ItemState.item_id)
                                .where(Item.external_id == item_id)).one()
        return state.status, state.label


def _last_exemplar(factory: Any, item_id: str) -> str | None:
    with factory() as session:
        return session.scalar(select(Exemplar.label).join(Item, Item.id == Exemplar.item_id)
                              .where(Item.external_id == item_id)
                              .order_by(Exemplar.id.desc()).limit(1))


def test_undo_note_help_search_and_layout(browser, live_server, session_factory):
    from playwright.sync_api import expect

    seed_labelled_items(session_factory, "acme", WORKBENCH_SCHEMA, ROWS)
    key = new_key(session_factory, "acme", "reviewer")
    page = new_page(browser, LAPTOP)
    sign_in(page, live_server, key)
    expect_item(page, "t1")

    # what the reviewer needs is on screen at 1366x850 without scrolling
    legend = page.locator("#keys-legend")
    expect(legend).to_be_in_viewport(ratio=1)
    expect(page.locator("#guidelines-text")).to_have_text(GUIDELINES)
    expect(page.locator("#item-reason")).to_have_text(
        "Needs review: confidence 0.41 is below the cutoff 0.80.")
    expect(page.locator("#label-detail")).to_contain_text("Cannot sign in")  # the proposal's
    expect(page.locator("#label-detail")).to_contain_text("Locked out of my account")
    page.locator("#candidates .candidate").nth(2).hover()
    expect(page.locator("#label-detail")).to_contain_text("It freezes when I upload a photo")
    screenshot(page, "review-laptop.png")

    # `?` opens the key help, Esc closes it
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    expect(page.locator("#help")).to_contain_text("undo your last decision")
    screenshot(page, "review-help.png")
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    # a note goes with the decision
    page.keyboard.press("n")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("password reset loop")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    expect_item(page, "t2")
    # words match word starts: "card arr" finds card_arrival
    page.keyboard.press("/")
    page.keyboard.type("card arr")
    options = page.locator("#search-results [role=option]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("card_arrival")
    page.keyboard.press("Enter")  # a slip: t2 is about the app, not a card
    expect_item(page, "t3")
    expect_mine(page, 2)
    assert _reviews(session_factory) == {
        "t1": ("login_problem", ["login_problem"], "password reset loop"),
        "t2": ("card_arrival", ["card_arrival"], None)}
    assert _last_exemplar(session_factory, "t2") == "card_arrival"

    # `u` takes the slip back: the item returns, its review and exemplar are gone
    page.keyboard.press("u")
    expect_item(page, "t2")
    expect(page.locator("#message")).to_contain_text("Undid the review of t2")
    expect_mine(page, 1)
    assert "t2" not in _reviews(session_factory)
    assert _state(session_factory, "t2") == ("needs_review", "billing_refund")
    assert _last_exemplar(session_factory, "t2") is None
    # Ctrl+Z goes one further back
    page.keyboard.press("Control+z")
    expect_item(page, "t1")
    assert _reviews(session_factory) == {}
    assert _state(session_factory, "t1") == ("needs_review", "login_problem")
    page.keyboard.press("3")  # now the right label for t1... and t2 follows
    expect_item(page, "t2")
    page.keyboard.press("3")
    expect_item(page, "t3")
    assert {k: v[0] for k, v in _reviews(session_factory).items()} == {
        "t1": LONG_NAME, "t2": LONG_NAME}
    page.context.close()

    # 390 px: a long label name wraps only between its words
    narrow = new_page(browser, NARROW)
    sign_in(narrow, live_server, key)
    expect_item(narrow, "t3")
    name = narrow.locator("#candidates .candidate .name").nth(2)
    expect(name).to_contain_text(LONG_NAME)
    broken = name.evaluate("""(el) => {
        const rows = new Set(), split = [];
        for (const t of el.childNodes) {
          if (t.nodeType !== Node.TEXT_NODE || !t.textContent) continue;
          const range = document.createRange();
          range.selectNodeContents(t);
          const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          if (tops.size > 1) split.push(t.textContent);
          tops.forEach((top) => rows.add(top));
        }
        return {rows: rows.size, split, overflow: el.scrollWidth > el.clientWidth};
    }""")
    assert broken["rows"] > 1 and broken["split"] == [] and not broken["overflow"], broken
    screenshot(narrow, "review-narrow-long-label.png", full_page=True)
    narrow.context.close()


def test_multi_label_review_in_the_page(browser, live_server, session_factory):
    from playwright.sync_api import expect

    seed_labelled_items(session_factory, "acme", {**SCHEMA, "multi_label": True}, ROWS)
    key = new_key(session_factory, "acme", "reviewer")
    page = new_page(browser, LAPTOP)
    sign_in(page, live_server, key)
    expect_item(page, "t1")
    expect(page.locator("#guidelines")).to_contain_text("multi-label")
    expect(page.locator("#selection")).to_have_text("login_problem")  # starts as the proposal
    page.keyboard.press("2")  # toggles the proposal off
    page.keyboard.press("1")
    page.keyboard.press("3")
    candidates = page.locator("#candidates .candidate")
    expect(candidates.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(candidates.nth(1)).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#selection")).to_have_text("billing_refund, app_crash")
    expect_item(page, "t1")  # toggling saves nothing yet
    assert _reviews(session_factory) == {}
    screenshot(page, "review-multi-label.png")
    page.keyboard.press("Enter")
    expect_item(page, "t2")
    page.keyboard.press("0")  # none of these
    expect_item(page, "t3")
    page.keyboard.press("Enter")  # no proposal, nothing toggled: nothing is saved
    expect(page.locator("#message")).to_contain_text("No label chosen")
    assert _reviews(session_factory) == {
        "t1": ("billing_refund", ["billing_refund", "app_crash"], None),
        "t2": (None, [], None)}
    page.context.close()
