// The review page: keyboard-first review of one schema's queue. The server leases items (so two
// reviewers never get the same one) and records reviews; this script only shows them and sends
// the reviewer's choice. No framework: the page must load and answer instantly.
"use strict";

(() => {
  // The schema picker submits on change (no inline handlers: the page's CSP forbids them).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  const root = document.getElementById("review");
  if (!root) return;

  const schema = root.dataset.schema;
  const labels = JSON.parse(document.getElementById("labels-data").textContent);
  const $ = (id) => document.getElementById(id);
  const el = {
    workspace: $("workspace"), empty: $("empty"), item: $("item"), itemId: $("item-id"),
    itemStatus: $("item-status"), text: $("item-text"), meta: $("item-meta"),
    proposal: $("proposal"), accept: $("accept"), candidates: $("candidates"),
    none: $("none"), openSearch: $("open-search"), skip: $("skip"), message: $("message"),
    reviewed: $("count-reviewed"), remaining: $("count-remaining"), mine: $("count-mine"),
    search: $("search"), searchInput: $("search-input"), results: $("search-results"),
    reason: $("item-reason"), note: $("note"), undo: $("undo"), help: $("help"),
    selection: $("selection"), guidelines: $("guidelines"),
    detailName: $("label-detail-name"), detailDescription: $("label-detail-description"),
    detailExamples: $("label-detail-examples"),
  };
  const multiLabel = root.dataset.multiLabel === "true";
  const labelByName = new Map(labels.map((l) => [l.name, l]));

  // The item on screen plus one fetched ahead, so the next item appears without a round trip.
  const AHEAD = 2;
  const MAX_EXCLUDE = 900; // the server takes up to 1000 ids to leave out
  // Skipped items are not shown again in this browser tab (sessionStorage survives a reload).
  const skippedKey = `rac-review-skipped:${schema}`;
  const skipped = new Set(JSON.parse(sessionStorage.getItem(skippedKey) || "[]"));
  let queue = [];
  let busy = false; // a decision is being saved
  let refilling = null; // the claim in flight, if any
  let shown = null; // id of the item on screen
  let mine = 0;
  let exhausted = false;
  // Multi-label schemas: the labels toggled for the item on screen (starts as the proposal).
  let selected = new Set();
  // The reviewer's last decisions in this tab, newest last: what `u` takes back.
  const UNDO_DEPTH = 20;
  const undoKey = `rac-review-undo:${schema}`;
  const done = JSON.parse(sessionStorage.getItem(undoKey) || "[]");

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(path, body) {
    let response;
    try {
      response = await fetch(`/review/api/${path}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Requested-With": "rac-review-page" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError("The server did not answer; check the connection and try again.", 0);
    }
    if (response.status === 401) {
      window.location.assign("/review/sign-in");
      throw new ApiError("Signed out.", 401);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError((data && data.detail) || `HTTP ${response.status}`, response.status);
    }
    return data;
  }

  function setCounts(data) {
    if (!data) return;
    el.reviewed.textContent = data.reviewed;
    el.remaining.textContent = data.remaining;
    el.mine.textContent = mine;
  }

  function say(text, kind) {
    el.message.textContent = text;
    el.message.className = `message ${kind === "error" ? "error-text" : kind === "ok" ? "ok-text" : ""}`;
  }

  const fmt = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(2));

  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function kbd(text) { return node("kbd", "", text); }

  // Candidates by retrieval score, best first: the order the model considered them in.
  function candidatesOf(item) {
    return [...item.candidates].sort((a, b) => b.retrieval_score - a.retrieval_score || a.rank - b.rank);
  }

  // Draws the first item of the queue; a no-op while it is already on screen, so a refill that
  // lands in the background never resets what the reviewer is looking at (or the search box).
  function render() {
    const item = queue[0];
    el.workspace.hidden = !item;
    el.empty.hidden = Boolean(item) || !exhausted;
    if (!item) {
      shown = null;
      return;
    }
    if (item.id === shown) return;
    shown = item.id;
    root.dataset.item = item.id;
    el.itemId.textContent = item.id;
    el.itemStatus.textContent = item.status.replace("_", " ");
    el.itemStatus.className = `badge ${item.status}`;
    el.text.textContent = item.text; // textContent: an item's text is data, never markup
    el.reason.textContent = reasonOf(item);
    el.note.value = "";

    el.meta.replaceChildren();
    for (const [key, value] of Object.entries(item.metadata || {}).slice(0, 8)) {
      el.meta.append(node("dt", "", key),
                     node("dd", "", typeof value === "string" ? value : JSON.stringify(value)));
    }

    el.proposal.replaceChildren();
    if (item.label) {
      el.proposal.append(labelName(item.labels.length ? item.labels.join(", ") : item.label),
                         node("span", "muted", ` · confidence ${fmt(item.confidence)}`));
      el.accept.disabled = false;
      showLabel(item.label);
    } else {
      el.proposal.append(node("span", "", "No label: the model accepted none of the candidates"),
                         node("span", "muted", ` · confidence ${fmt(item.confidence)}`));
      el.accept.disabled = !multiLabel;
      showLabel(candidatesOf(item)[0] ? candidatesOf(item)[0].label : null);
    }
    selected = new Set(multiLabel ? item.labels : []);

    el.candidates.replaceChildren();
    candidatesOf(item).slice(0, 9).forEach((c, i) => {
      const button = node("button", "candidate");
      button.type = "button";
      button.dataset.label = c.label;
      const proposed = c.label === item.label;
      if (proposed) button.classList.add("proposed");
      const name = labelName(c.label, "name");
      if (proposed) name.append(node("span", "tag", "proposed"));
      const score = node("span", "score", `P(yes) ${fmt(c.p_yes)} · score ${fmt(c.retrieval_score)}`);
      const meter = node("span", "meter"); // P(yes) at a glance; the number is in the label
      const fill = node("span");
      fill.style.width = `${Math.round((c.p_yes || 0) * 100)}%`;
      meter.append(fill);
      meter.setAttribute("aria-hidden", "true");
      button.append(kbd(String(i + 1)), name, score, meter, node("span", "desc", c.description));
      button.setAttribute("aria-label",
        `${i + 1}: ${c.label}${proposed ? " (proposed)" : ""}, P(yes) ${fmt(c.p_yes)}. ${c.description}`);
      button.addEventListener("click", () => (multiLabel ? toggle(c.label) : decide(c.label)));
      button.addEventListener("focus", () => showLabel(c.label));
      button.addEventListener("mouseenter", () => showLabel(c.label));
      if (multiLabel) button.setAttribute("aria-pressed", "false");
      const li = node("li");
      li.append(button);
      el.candidates.append(li);
    });
    showSelection();
    if (!el.search.open) focusItem();
  }

  // Why a person is asked: the decision's confidence against the cutoff it had to reach.
  function reasonOf(item) {
    const target = item.target_precision ? ` (chosen for precision ${fmt(item.target_precision)})` : "";
    if (item.status === "no_match") {
      return `No match: the model accepted none of the ${item.candidates.length} candidates it asked about.`;
    }
    return `Needs review: confidence ${fmt(item.confidence)} is below the cutoff ${fmt(item.cutoff)}${target}.`;
  }

  // A label name that may wrap after "_", "-", "." or "/", never inside a word.
  function labelName(text, className = "label-name") {
    const span = node("span", className);
    for (const part of text.split(/(?<=[_\-./])/)) {
      span.append(document.createTextNode(part), document.createElement("wbr"));
    }
    return span;
  }

  // The focused label's description and examples, so the reviewer need not guess what it means.
  function showLabel(name) {
    const l = name ? labelByName.get(name) : null;
    el.detailName.replaceChildren(l ? labelName(l.name) : document.createTextNode("—"));
    el.detailDescription.textContent = l ? l.description : "";
    el.detailExamples.replaceChildren(...(l ? l.examples : []).map((x) => node("li", "", x)));
  }

  function showSelection() {
    if (!multiLabel) return;
    for (const b of el.candidates.querySelectorAll(".candidate")) {
      const on = selected.has(b.dataset.label);
      b.classList.toggle("selected", on);
      b.setAttribute("aria-pressed", String(on));
    }
    el.selection.textContent = selected.size ? [...selected].join(", ") : "none yet";
  }

  function toggle(label) {
    if (!queue[0]) return;
    if (selected.has(label)) selected.delete(label);
    else selected.add(label);
    showLabel(label);
    showSelection();
  }

  // Keys go to the page, not to whichever button was clicked last (Enter on a focused button
  // would press that button instead of accepting).
  function focusItem() { el.item.focus({ preventScroll: true }); }

  // Top the queue up to AHEAD items in the background; one claim at a time. Items on screen or
  // skipped are excluded, so the server hands out new ones instead of our own leases again.
  function refill() {
    if (!refilling) {
      refilling = (async () => {
        for (;;) {
          const need = AHEAD - queue.length;
          if (need <= 0) return;
          const exclude = [...skipped].slice(-MAX_EXCLUDE).concat(queue.map((i) => i.id));
          const data = await api("claim", { schema, limit: need, exclude });
          let added = 0;
          for (const item of data.items) {
            if (!queue.some((q) => q.id === item.id) && !skipped.has(item.id)) {
              queue.push(item);
              added += 1;
            }
          }
          setCounts(data);
          exhausted = data.items.length < need;
          if (added < need) return; // nothing more to have (or nothing new): stop asking
        }
      })()
        .catch((err) => say(err.message, "error"))
        .finally(() => {
          refilling = null;
          render();
        });
    }
    return refilling;
  }

  // One decision at a time: keys pressed while one is being saved are dropped on purpose, so a
  // double Enter cannot label an item nobody has looked at. Refilling does not hold this lock:
  // the next item is answerable as soon as it is on screen.
  async function run(action) {
    if (busy) return;
    busy = true;
    root.classList.add("busy");
    try {
      await action();
    } catch (err) {
      say(err.message, "error");
    } finally {
      busy = false;
      root.classList.remove("busy");
    }
  }

  function next() {
    queue.shift();
    render();
  }

  // `choice` is one label, null (none of these) or, on a multi-label schema, a list of labels.
  function decide(choice) {
    const item = queue[0];
    if (!item) return;
    const note = el.note.value.trim();
    const body = { schema, item: item.id, ...(note ? { note } : {}) };
    if (Array.isArray(choice)) body.labels = choice;
    else body.label = choice;
    const said = Array.isArray(choice) ? (choice.length ? choice.join(", ") : "none of these")
      : choice === null ? "none of these" : choice;
    return run(async () => {
      try {
        const data = await api("review", body);
        mine += 1;
        done.push(item.id);
        remember();
        setCounts(data);
        say(`Saved ${item.id} as ${said}.`, "ok");
      } catch (err) {
        // Someone else holds it now (our lease ran out) or it is gone: move on. Anything else
        // (a network error) keeps the item on screen to try again.
        if (err.status !== 409 && err.status !== 404) throw err;
        say(`Not saved: ${err.message}`, "error");
      }
      next();
      refill();
    });
  }

  function skip() {
    const item = queue[0];
    if (!item) return;
    return run(async () => {
      skipped.add(item.id);
      sessionStorage.setItem(skippedKey, JSON.stringify([...skipped].slice(-MAX_EXCLUDE)));
      next();
      refill();
      const data = await api("release", { schema, item: item.id });
      setCounts(data);
      say(`Skipped ${item.id}.`);
    });
  }

  function remember() {
    done.splice(0, Math.max(0, done.length - UNDO_DEPTH));
    sessionStorage.setItem(undoKey, JSON.stringify(done));
    el.undo.disabled = done.length === 0;
  }

  // Take back the last decision: the server deletes the review, restores the item's earlier
  // decision and takes the exemplar out of the index; the item comes back on screen.
  function undo() {
    const last = done[done.length - 1];
    if (!last) {
      say("Nothing to undo in this tab.", "error");
      return;
    }
    return run(async () => {
      let data;
      try {
        data = await api("undo", { schema, item: last });
      } catch (err) {
        if (err.status === 409 || err.status === 403 || err.status === 404) {
          done.pop(); // it cannot be undone (any more): do not offer it again
          remember();
        }
        throw err;
      }
      done.pop();
      remember();
      mine = Math.max(0, mine - 1);
      setCounts(data);
      if (data.item) {
        queue = [data.item, ...queue.filter((q) => q.id !== data.item.id)];
        render();
      }
      say(`Undid the review of ${last}.`, "ok");
    });
  }

  function accept() {
    const item = queue[0];
    if (!item) return;
    if (multiLabel) {
      if (!selected.size) {
        say("No label chosen: toggle labels with 1–9 or /, or press 0 for none of these.", "error");
        return;
      }
      decide([...selected]);
      return;
    }
    if (!item.label) {
      say("No proposal to accept: pick 1–9, search all labels with /, or 0 for none of these.", "error");
      return;
    }
    decide(item.label);
  }

  function pick(n) {
    const item = queue[0];
    if (!item) return;
    const candidates = candidatesOf(item);
    if (n > candidates.length) {
      say(`There are only ${candidates.length} candidates.`, "error");
      return;
    }
    if (multiLabel) toggle(candidates[n - 1].label);
    else decide(candidates[n - 1].label);
  }

  // --- search over all labels of the schema ---------------------------------------------------
  let matches = [];
  let active = 0;

  // Words of the query match the starts of a label's words ("card arr" finds card_arrival),
  // then anywhere in its name, then in its description; last, the letters in order ("crdarv").
  const wordsOf = (text) => text.toLowerCase().split(/[\s_\-./:]+/).filter(Boolean);

  function scoreLabel(l, tokens, squashed) {
    const name = l.name.toLowerCase();
    const words = wordsOf(l.name);
    if (tokens.every((t) => words.some((w) => w.startsWith(t)))) {
      return words[0].startsWith(tokens[0]) ? 5 : 4;
    }
    if (tokens.every((t) => name.includes(t))) return 3;
    const description = (l.description || "").toLowerCase();
    if (tokens.every((t) => description.includes(t))) return 2;
    if (squashed.length >= 3) {
      let at = 0;
      for (const ch of name) if (ch === squashed[at]) at += 1;
      if (at === squashed.length) return 1;
    }
    return 0;
  }

  function filterLabels(query) {
    const tokens = wordsOf(query);
    if (!tokens.length) return labels.slice(0, 100);
    const squashed = tokens.join("");
    return labels.map((l, i) => ({ l, i, score: scoreLabel(l, tokens, squashed) }))
      .filter((m) => m.score > 0)
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .slice(0, 100).map((m) => m.l);
  }

  function renderResults() {
    el.results.replaceChildren();
    if (!matches.length) {
      el.results.append(node("li", "nothing", "No label matches."));
      el.searchInput.removeAttribute("aria-activedescendant");
      return;
    }
    matches.forEach((l, i) => {
      const li = node("li");
      li.id = `search-option-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === active));
      li.dataset.label = l.name;
      li.append(labelName(l.name, "name"), node("span", "desc", l.description || ""));
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
      el.results.append(li);
    });
    el.searchInput.setAttribute("aria-activedescendant", `search-option-${active}`);
    showLabel(matches[active] && matches[active].name);
    const current = el.results.children[active];
    if (current) current.scrollIntoView({ block: "nearest" });
  }

  function openSearch() {
    if (!queue[0]) return;
    el.searchInput.value = "";
    matches = filterLabels("");
    active = 0;
    renderResults();
    el.search.showModal();
    el.searchInput.focus();
  }

  function closeSearch() {
    if (el.search.open) el.search.close();
    focusItem();
  }

  function choose(i) {
    const l = matches[i];
    if (!l) return;
    closeSearch();
    if (multiLabel) toggle(l.name);
    else decide(l.name);
  }

  el.searchInput.addEventListener("input", () => {
    matches = filterLabels(el.searchInput.value);
    active = 0;
    renderResults();
  });
  el.searchInput.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!matches.length) return;
      active = (active + (e.key === "ArrowDown" ? 1 : -1) + matches.length) % matches.length;
      renderResults();
    } else if (e.key === "Enter") {
      e.preventDefault();
      choose(active);
    }
  });
  el.search.addEventListener("close", focusItem);

  // --- keys -----------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (el.search.open || el.help.open || e.altKey || e.repeat) return;
    const target = e.target;
    const tag = target && target.tagName;
    if (target === el.note && e.key === "Escape") { e.preventDefault(); focusItem(); return; }
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if ((e.ctrlKey || e.metaKey) && (e.key === "z" || e.key === "Z")) { e.preventDefault(); undo(); return; }
    if (e.ctrlKey || e.metaKey) return;
    // Enter on a focused button or link does what that control says.
    if ((e.key === "Enter" || e.key === " ") && (tag === "BUTTON" || tag === "A" || tag === "SUMMARY")) return;
    if (e.key === "Enter") { e.preventDefault(); accept(); }
    else if (e.key === "0") { e.preventDefault(); decide(multiLabel ? [] : null); }
    else if (/^[1-9]$/.test(e.key)) { e.preventDefault(); pick(Number(e.key)); }
    else if (e.key === "/") { e.preventDefault(); openSearch(); }
    else if (e.key === "s" || e.key === "S") { e.preventDefault(); skip(); }
    else if (e.key === "u" || e.key === "U" || e.key === "Backspace") { e.preventDefault(); undo(); }
    else if (e.key === "n" || e.key === "N") { e.preventDefault(); el.note.focus(); }
    else if (e.key === "g" || e.key === "G") { e.preventDefault(); el.guidelines.open = !el.guidelines.open; }
    else if (e.key === "?") { e.preventDefault(); el.help.showModal(); }
  });

  el.accept.addEventListener("click", accept);
  el.none.addEventListener("click", () => decide(multiLabel ? [] : null));
  el.skip.addEventListener("click", skip);
  el.undo.addEventListener("click", undo);
  el.openSearch.addEventListener("click", openSearch);
  // The close event comes a moment after Esc: a key pressed meanwhile (n: the note) keeps focus.
  el.help.addEventListener("close", () => {
    const at = document.activeElement;
    if (!at || at === document.body || el.help.contains(at)) focusItem();
  });
  el.undo.disabled = done.length === 0;

  // An item chosen in the items browser (?item=ID) comes first, leased to this reviewer; then the
  // queue as usual. The id leaves the address, so a reload does not open it again.
  const chosen = new URLSearchParams(window.location.search).get("item");
  if (chosen) {
    const address = new URL(window.location.href);
    address.searchParams.delete("item");
    window.history.replaceState(null, "", address);
    api("open", { schema, item: chosen })
      .then((data) => {
        queue = [...data.items, ...queue.filter((q) => q.id !== chosen)];
        setCounts(data);
        render();
      })
      .catch((err) => say(`Cannot open ${chosen}: ${err.message}`, "error"))
      .finally(refill);
  } else {
    refill();
  }
})();
