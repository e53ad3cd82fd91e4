"""The review page, end to end in a real browser (Debian's Chromium driven by Playwright) against a
live server on the test database, plus its HTTP rules without a browser. Both databases.

Chromium and Playwright are requirements of these tests, not options: if either is missing the
tests fail with what to install (CI installs both; see .ci/run).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth.service import authenticate, revoke_key
from app.config import Settings
from app.items.models import Item
from app.labelling.models import Annotation, ItemState
from tests.helpers import REPO, bearer, new_key, page_csrf, page_sign_in, seed_labelled_items
from tests.helpers import live_server as serve_live

CHROMIUM = Path(os.environ.get("RAC_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
PAGE_HEADERS = {"X-Requested-With": "rac-review-page"}

SCHEMA = {
    "name": "support",
    "description": "Messages to customer support.",
    "labels": [
        {"name": "billing_refund",
         "description": "Asks for money back or disputes a charge.",
         "examples": ["I was billed twice, refund me", "Cancel and refund my order"]},
        {"name": "login_problem",
         "description": "Cannot sign in: password, two-factor code or a locked account.",
         "examples": ["My password reset link does not work", "Locked out of my account"]},
        {"name": "app_crash",
         "description": "The app closes, freezes or shows an error.",
         "examples": ["The app crashes on start", "It freezes when I upload a photo"]},
        {"name": "shipping_delay",
         "description": "An order is late or has not arrived.",
         "examples": ["Where is my parcel?", "My order is two weeks late"]},
        {"name": "account_deletion",
         "description": "Wants the account and its data deleted.",
         "examples": ["Delete my account", "Remove all my data"]},
        {"name": "feature_request",
         "description": "Asks for something the product does not do yet.",
         "examples": ["Please add dark mode", "Can you support CSV export?"]},
    ],
}
# (id, text, model label, confidence, status): the queue is least confident first, t1 to t6.
# Every item's candidates are the first three labels (billing_refund, login_problem, app_crash).
ROWS: list[tuple[str, str, str | None, float, str]] = [
    ("t1", "I can't log in since I changed my password yesterday, it keeps saying the "
           "credentials are invalid.", "login_problem", 0.41, "needs_review"),
    ("t2", "The app shuts down every time I open the settings page on my phone.",
     "billing_refund", 0.46, "needs_review"),
    ("t3", "Do you have a shop in Lisbon where I could pick up my order myself?", None, 0.52,
     "no_match"),
    ("t4", "It has been three weeks and my parcel still has not shipped.", None, 0.55,
     "no_match"),
    ("t5", "I was charged twice for the same order, I want one of the payments back.",
     "billing_refund", 0.63, "needs_review"),
    ("t6", "Please delete my account and all the data you keep about me.", "login_problem",
     0.68, "needs_review"),
    ("ok", "Refund please, you billed me for a month I had already cancelled.",
     "billing_refund", 0.93, "accepted"),
]


# --- a live server and a browser ----------------------------------------------------------------

@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    from app.main import create_app

    with serve_live(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is not installed: `pip install -e '.[dev]'` "
                    "(never `playwright install`: these tests drive Debian's chromium)")
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `apt-get install -y chromium` "
                    "(or point RAC_TEST_CHROMIUM at a Chromium binary)")
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # the first page of a run waits for models to load
    with sync_playwright() as p:
        # launch() starts Chromium on a fresh temporary profile (user-data dir), removed on close;
        # each context below is a separate cookie jar and storage, i.e. a separate reviewer.
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any, viewport: dict[str, int] = WIDE) -> Any:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(20_000)
    return context.new_page()


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/review/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/review")


def expect_item(page: Any, item_id: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#review")).to_have_attribute("data-item", item_id)
    expect(page.locator("#item-id")).to_have_text(item_id)


def expect_mine(page: Any, n: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#count-mine")).to_have_text(str(n))


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def reviews_in_db(factory: Any) -> dict[str, tuple[str | None, str, int | None]]:
    """item id -> (label, source, reviewer_key_id) of every stored review."""
    with factory() as session:
        rows = session.execute(
            select(Item.external_id, Annotation.label, Annotation.source,
                   Annotation.reviewer_key_id)
            .join(Item, Item.id == Annotation.item_id).where(Annotation.status == "reviewed")
        ).all()
    return {item: (label, source, key_id) for item, label, source, key_id in rows}


def principal_of(factory: Any, key: str) -> Any:
    with factory() as session:
        return authenticate(session, key)


@pytest.fixture
def seeded(session_factory: Any) -> Any:
    seed_labelled_items(session_factory, "acme", SCHEMA, ROWS)
    return session_factory


# --- in the browser -----------------------------------------------------------------------------

def test_review_three_items_with_the_keyboard(browser, live_server, seeded):
    from playwright.sync_api import expect

    key = new_key(seeded, "acme", "reviewer")
    me = principal_of(seeded, key)
    page = new_page(browser)
    page.goto(f"{live_server}/review")
    assert page.url == f"{live_server}/review/sign-in"  # not signed in: sent to sign in
    sign_in(page, live_server, key)

    # one schema: no choice to make; the least confident item comes first
    expect_item(page, "t1")
    expect(page.locator("#item-text")).to_contain_text("changed my password")
    expect(page.locator("#proposal")).to_contain_text("login_problem")
    expect(page.locator("#proposal")).to_contain_text("0.41")
    candidates = page.locator("#candidates .candidate")
    expect(candidates).to_have_count(3)
    expect(candidates.nth(0)).to_contain_text("billing_refund")  # by retrieval score
    expect(candidates.nth(1)).to_contain_text("P(yes) 0.41")
    expect(candidates.nth(1)).to_contain_text("Cannot sign in")  # with its description
    expect(page.locator("#count-remaining")).to_have_text("6")
    expect(page.locator("#count-reviewed")).to_have_text("0")
    screenshot(page, "review-wide.png")

    narrow = new_page(browser, NARROW)
    sign_in(narrow, live_server, key)
    expect_item(narrow, "t1")  # the same reviewer's leases come back
    screenshot(narrow, "review-narrow.png", full_page=True)
    narrow.context.close()

    page.keyboard.press("Enter")  # accept the proposal
    expect_item(page, "t2")
    expect_mine(page, 1)
    page.keyboard.press("3")  # the third candidate
    expect_item(page, "t3")
    expect_mine(page, 2)
    page.keyboard.press("Enter")  # t3 has no proposal: Enter must not record anything
    expect(page.locator("#message")).to_contain_text("No proposal to accept")
    expect_item(page, "t3")
    page.keyboard.press("0")  # none of these
    expect_item(page, "t4")
    expect_mine(page, 3)
    expect(page.locator("#count-reviewed")).to_have_text("3")
    expect(page.locator("#count-remaining")).to_have_text("3")

    assert reviews_in_db(seeded) == {
        "t1": ("login_problem", me.key_name, me.key_id),
        "t2": ("app_crash", me.key_name, me.key_id),
        "t3": (None, me.key_name, me.key_id),
    }
    page.context.close()


def test_skip_releases_the_item_and_hides_it_for_this_session(browser, live_server, seeded):
    from playwright.sync_api import expect

    key = new_key(seeded, "acme", "reviewer")
    page = new_page(browser)
    sign_in(page, live_server, key)
    expect_item(page, "t1")
    page.keyboard.press("s")
    expect_item(page, "t2")
    expect(page.locator("#message")).to_contain_text("Skipped t1")
    with seeded() as session:
        state = session.scalars(select(ItemState).join(Item, Item.id == ItemState.item_id)
                                .where(Item.external_id == "t1")).one()
        assert state.lease_owner is None and state.status == "needs_review"

    # released: another reviewer gets it at once, not when the lease would have run out
    other = bearer(new_key(seeded, "acme", "reviewer"))
    got = httpx.get(f"{live_server}/v1/review", params={"schema": "support", "limit": 1},
                    headers=other).json()
    assert [i["id"] for i in got["items"]] == ["t1"]
    httpx.post(f"{live_server}/v1/items/t1/release", headers=other).raise_for_status()

    # ...and this reviewer does not see it again in this session, even after a reload
    page.reload()
    expect_item(page, "t2")
    page.keyboard.press("Enter")
    expect_item(page, "t3")
    assert reviews_in_db(seeded) == {"t2": ("billing_refund", *_who(seeded, key))}
    assert "t1" not in reviews_in_db(seeded)
    page.context.close()


def _who(factory: Any, key: str) -> tuple[str, int]:
    p = principal_of(factory, key)
    return p.key_name, p.key_id


def test_search_all_labels_with_slash(browser, live_server, seeded):
    from playwright.sync_api import expect

    key = new_key(seeded, "acme", "reviewer")
    page = new_page(browser)
    sign_in(page, live_server, key)
    expect_item(page, "t1")
    page.keyboard.press("/")
    dialog = page.locator("#search")
    expect(dialog).to_be_visible()
    expect(page.locator("#search-input")).to_be_focused()
    expect(page.locator("#search-results [role=option]")).to_have_count(len(SCHEMA["labels"]))
    # typed letters filter; "s" and digits typed here are text, not skip / pick
    page.keyboard.type("ship 1")
    expect(page.locator("#search-results .nothing")).to_be_visible()
    for _ in range(2):
        page.keyboard.press("Backspace")
    options = page.locator("#search-results [role=option]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("shipping_delay")
    expect(options.first).to_contain_text("late or has not arrived")
    expect_item(page, "t1")  # nothing was skipped or picked while typing
    screenshot(page, "review-search.png")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect_item(page, "t2")
    expect_mine(page, 1)

    # a label found through its description, the second match picked with the arrow key
    page.keyboard.press("/")
    page.keyboard.type("account")
    expect(options).to_have_count(2)  # account_deletion by name, login_problem by description
    expect(options.nth(0)).to_contain_text("account_deletion")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect_item(page, "t3")
    expect_mine(page, 2)

    name, key_id = _who(seeded, key)
    assert reviews_in_db(seeded) == {"t1": ("shipping_delay", name, key_id),
                                     "t2": ("login_problem", name, key_id)}
    page.context.close()


def test_sign_in_with_a_bad_key_or_a_viewer_key(browser, live_server, seeded):
    from playwright.sync_api import expect

    page = new_page(browser)
    page.goto(f"{live_server}/review/sign-in")
    page.get_by_label("API key").fill("rac_0000_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    expect(page.get_by_label("API key")).to_have_value("")  # the typed key is not echoed back
    screenshot(page, "sign-in-error.png")
    assert "not-a-real-key" not in page.content()

    # a viewer reads: the sign-in opens the (read-only) dashboard, and the queue stays closed
    viewer = new_key(seeded, "acme", "viewer")
    page.get_by_label("API key").fill(viewer)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/review/dashboard/support")
    expect(page.locator('[data-stat="total"]')).to_have_text("7")
    expect(page.get_by_role("link", name="Review", exact=True)).to_have_count(0)
    r = page.context.request.post(f"{live_server}/review/api/claim",
                                  data={"schema": "support"}, headers=PAGE_HEADERS)
    assert r.status == 403 and "reviewer role" in r.json()["detail"]
    page.goto(f"{live_server}/review?schema=support")
    assert page.url == f"{live_server}/review/dashboard/support"
    with seeded() as session:  # nothing was leased to the viewer
        assert session.scalar(select(ItemState).where(ItemState.lease_owner.is_not(None))) is None
    page.context.close()


def test_the_key_is_never_in_the_page_or_the_cookie(browser, live_server, seeded):
    key = new_key(seeded, "acme", "admin")  # a key that can do much more than review
    secret = key[len("rac_xxxxxxxx_"):]  # the part after the public prefix
    page = new_page(browser)
    sign_in(page, live_server, key)
    expect_item(page, "t1")
    pages = [page.content()]
    for path in ("/review", "/review?schema=support", "/review/dashboard/support",
                 "/review/sign-in"):
        pages.append(page.context.request.get(f"{live_server}{path}").text())
    for html in pages:
        assert key not in html and secret not in html
    assert key not in page.url

    (cookie,) = [c for c in page.context.cookies() if c["name"] == "rac_review"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/review"
    payload = cookie["value"].split(".")[0]
    decoded = base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()
    # signed and readable; it names a server-side session by a random token, never the key
    assert secret not in decoded and '"sid"' in decoded and "key_hash" not in decoded

    # signing out ends the session
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server}/review/sign-in")
    page.goto(f"{live_server}/review")
    assert page.url == f"{live_server}/review/sign-in"
    page.context.close()


def test_two_reviewers_never_see_the_same_item(browser, live_server, seeded):
    from playwright.sync_api import expect

    keys = [new_key(seeded, "acme", "reviewer") for _ in range(2)]
    pages = [new_page(browser) for _ in keys]
    for page, key in zip(pages, keys, strict=True):
        sign_in(page, live_server, key)
    seen: list[list[str]] = [[], []]
    done = [False, False]
    while not all(done):
        for n, page in enumerate(pages):
            if done[n]:
                continue
            # an item on screen or the "nothing left" note, once the page has settled
            expect(page.locator("#workspace:visible, #empty:visible")).to_have_count(1)
            if page.locator("#empty").is_visible():
                done[n] = True
                continue
            current = page.locator("#review").get_attribute("data-item")
            assert current is not None
            seen[n].append(current)
            page.keyboard.press("1")
            expect_mine(page, len(seen[n]))
    assert not set(seen[0]) & set(seen[1]), seen
    assert sorted(seen[0] + seen[1]) == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert seen[0] and seen[1]  # both had work
    stored = reviews_in_db(seeded)
    for n, key in enumerate(keys):
        key_id = principal_of(seeded, key).key_id
        assert {i for i, (_, _, k) in stored.items() if k == key_id} == set(seen[n])
    for page in pages:
        page.context.close()


def test_dashboard_numbers_and_chart(browser, live_server, session_factory):
    from playwright.sync_api import expect

    names = [x["name"] for x in SCHEMA["labels"]]
    rows: list[tuple[str, str, str | None, float, str]] = []
    for i in range(20):
        confidence = round(0.3 + 0.035 * i, 3)  # 0.300 … 0.965, 5 of them >= the 0.8 cutoff
        rows.append((f"d{i:02}", f"message number {i}", names[i % 3], confidence,
                     "accepted" if confidence >= 0.8 else "needs_review"))
    rows += [("n1", "no idea 1", None, 0.2, "no_match"), ("n2", "no idea 2", None, 0.25,
                                                         "no_match")]
    seed_labelled_items(session_factory, "acme", SCHEMA, rows)
    key = new_key(session_factory, "acme", "reviewer")
    for item_id, _, label, _, _ in rows[:20]:
        # every fourth (i % 4 == 1) the reviewer disagrees; of those, d17 is above the cutoff
        right = label if int(item_id[1:]) % 4 != 1 else names[3]
        httpx.post(f"{live_server}/v1/items/{item_id}/review", json={"label": right},
                   headers=bearer(key)).raise_for_status()

    page = new_page(browser)
    sign_in(page, live_server, key)
    page.goto(f"{live_server}/review/dashboard/support")

    def stat(name: str) -> Any:
        return expect(page.locator(f'[data-stat="{name}"]'))

    stat("total").to_have_text("22")
    stat("reviewed").to_have_text("20")
    stat("no_match").to_have_text("2")
    stat("needs_review").to_have_text("0")
    stat("agreement").to_have_text("75%")  # 15 of 20
    stat("precision_at_cutoff").to_have_text("80%")  # 4 of the 5 at or above 0.8
    stat("reviewed_at_cutoff").to_have_text("5")
    stat("coverage").to_have_text("23%")  # 5 of 22 items labelled at or above the cutoff
    stat("curve_precision").to_have_text("80%")
    stat("curve_coverage").to_have_text("25%")  # 5 of the 20 reviewed model labels
    chart = page.locator("svg#pc-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("circle.dot")).to_have_count(20)  # one per distinct confidence
    expect(chart.locator("#pc-cutoff")).to_have_count(1)
    expect(chart.locator("text.cutoff-label")).to_have_text("cutoff 0.80")
    points = chart.locator("polyline.curve").get_attribute("points")
    assert points is not None and len(points.split()) == 20
    per_label = page.locator("#per-label tbody tr")
    expect(per_label).to_have_count(4)  # three labels the model used, one only reviewers did
    only_reviewers = per_label.filter(has_text="shipping_delay").locator("td")
    expect(only_reviewers).to_have_text(["0", "5", "—", "0%"])  # said, said, precision, recall
    screenshot(page, "dashboard.png", full_page=True)
    page.context.close()


# --- HTTP rules, no browser ---------------------------------------------------------------------

def _signed_in(client: Any, key: str) -> None:
    r = page_sign_in(client, key)
    assert r.status_code == 303 and r.headers["location"] == "/review", r.text


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(client, seeded):
    """The cookie is signed, so a copy of it used to keep working after sign-out."""
    _signed_in(client, new_key(seeded, "acme", "reviewer"))
    copied = client.cookies.get("rac_review")
    assert copied and client.get("/review", follow_redirects=False).status_code == 200
    r = client.post("/review/sign-out", data={"csrf": page_csrf_of_page(client)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in"
    client.cookies.set("rac_review", copied, path="/review")  # the stolen or kept copy
    r = client.get("/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in"
    r = client.post("/review/api/claim", json={"schema": "support"}, headers=PAGE_HEADERS)
    assert r.status_code == 401


def page_csrf_of_page(client: Any) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/review").text)
    assert found
    return found.group(1)


def test_the_sign_in_and_sign_out_forms_need_their_csrf_token(client, seeded):
    key = new_key(seeded, "acme", "reviewer")
    # A form posted by another site carries no token, or one from another browser's cookie.
    r = client.post("/review/sign-in", data={"key": key}, follow_redirects=False)
    assert r.status_code == 403 and "another site" in r.text
    from fastapi.testclient import TestClient

    foreign = page_csrf(TestClient(client.app))  # the app's lifespan runs for `client` already
    client.cookies.clear()
    page_csrf(client)  # this browser has a token of its own
    r = client.post("/review/sign-in", data={"key": key, "csrf": foreign},
                    follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/review", follow_redirects=False).status_code == 303  # not signed in
    _signed_in(client, key)
    r = client.post("/review/sign-out", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"
    assert client.get("/review", follow_redirects=False).status_code == 200  # still signed in


def test_page_api_needs_the_session_and_the_page_header(client, seeded):
    body = {"schema": "support", "limit": 1}
    r = client.post("/review/api/claim", json=body, headers=PAGE_HEADERS)
    assert r.status_code == 401
    key = new_key(seeded, "acme", "reviewer")
    # a bearer key is not a session: the page API answers the page only
    assert client.post("/review/api/claim", json=body,
                       headers={**PAGE_HEADERS, **bearer(key)}).status_code == 401
    _signed_in(client, key)
    assert client.post("/review/api/claim", json=body).status_code == 403  # no page header
    r = client.post("/review/api/claim", json=body, headers=PAGE_HEADERS)
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == ["t1"]
    r = client.post("/review/api/review", json={"schema": "support", "item": "t1",
                                                "label": "nope"}, headers=PAGE_HEADERS)
    assert r.status_code == 422 and "not a label" in r.json()["detail"]


def test_revoking_the_key_ends_the_session(client, seeded):
    key = new_key(seeded, "acme", "reviewer")
    _signed_in(client, key)
    assert client.get("/review", follow_redirects=False).status_code == 200
    with seeded() as session:
        revoke_key(session, principal_of(seeded, key).project_id, key[:12])
        session.commit()
    r = client.get("/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in"
    r = client.post("/review/api/claim", json={"schema": "support"}, headers=PAGE_HEADERS)
    assert r.status_code == 401


def test_pages_send_security_headers_and_unknown_schema_is_404(client, seeded):
    _signed_in(client, new_key(seeded, "acme", "reviewer"))
    r = client.get("/review")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/review", params={"schema": "nope"}).status_code == 404
    assert client.get("/review/dashboard/nope").status_code == 404
