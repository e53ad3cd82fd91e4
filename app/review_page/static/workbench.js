// The workbench pages (items, datasets, jobs, schemas): forms that call the page API, bulk
// actions confirmed with their count, and a job's live progress from server-sent events.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const HEADER = { "X-Requested-With": "rac-review-page" };

  async function call(path, { json, form } = {}) {
    let response;
    try {
      response = await fetch(`/review/api/${path}`, {
        method: "POST", credentials: "same-origin",
        headers: json ? { ...HEADER, "Content-Type": "application/json" } : HEADER,
        body: json ? JSON.stringify(json) : form,
      });
    } catch (err) {
      throw new Error("The server did not answer; check the connection and try again.");
    }
    if (response.status === 401) window.location.assign("/review/sign-in");
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.detail) || `HTTP ${response.status}`);
    return data;
  }

  function say(el, text, kind) {
    el.textContent = text;
    el.className = `message ${kind === "error" ? "error-text" : kind === "ok" ? "ok-text" : ""}`;
  }

  // --- items: bulk actions on the filtered set, confirmed with their count ----------------------
  const bulk = $("bulk");
  if (bulk) {
    const filters = JSON.parse(bulk.dataset.filters);
    const message = $("bulk-message");
    let pending = null;
    const again = () => {
      const link = document.createElement("a");
      link.href = window.location.href;
      link.textContent = "Show the list again";
      return link;
    };
    const body = (action, expected) => ({
      filters, action, expected,
      min_confidence: action === "accept" ? Number($("bulk-min").value) : null,
    });
    for (const button of bulk.querySelectorAll("[data-bulk]")) {
      button.addEventListener("click", async () => {
        const action = button.dataset.bulk;
        try {
          const { count } = await call("bulk", { json: body(action, null) });
          pending = { action, count };
          $("bulk-question").textContent = action === "accept"
            ? `Accept the model's proposal for ${count} items (confidence at least ${$("bulk-min").value})?`
            : `Send ${count} accepted items back to review?`;
          $("bulk-confirm").hidden = false;
          $("bulk-yes").disabled = count === 0;
          $("bulk-yes").focus();
        } catch (err) { say(message, err.message, "error"); }
      });
    }
    $("bulk-no").addEventListener("click", () => { $("bulk-confirm").hidden = true; pending = null; });
    $("bulk-yes").addEventListener("click", async () => {
      if (!pending) return;
      try {
        const { count, batch } = await call("bulk", { json: body(pending.action, pending.count) });
        say(message, `Done: ${count} items ${pending.action === "accept" ? "accepted" : "sent to review"}. `, "ok");
        const undo = document.createElement("button");
        undo.type = "button";
        undo.className = "secondary";
        undo.id = "bulk-undo";
        undo.textContent = "Undo";
        undo.addEventListener("click", async () => {
          undo.disabled = true;
          try {
            const back = await call("bulk/undo", { json: { batch } });
            say(message, `Undone: ${back.count} items have their earlier decision back` +
              (back.changed ? `; ${back.changed} changed since and were left as they are. ` : ". "), "ok");
            message.append(again());
          } catch (err) { say(message, err.message, "error"); undo.disabled = false; }
        });
        message.append(undo, " ", again());
      } catch (err) { say(message, err.message, "error"); }
      $("bulk-confirm").hidden = true;
      pending = null;
    });
  }

  // --- list tables that follow running jobs ------------------------------------------------------
  // A table with data-refresh is fetched again (its rows replaced, nothing else) when asked, and
  // every few seconds while one of its rows is marked data-live (a job not finished yet).
  const REFRESH_MS = 3000;
  async function refreshTable(table) {
    const response = await fetch(table.dataset.refresh, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html")
      .getElementById(table.id);
    if (fresh) table.tBodies[0].replaceWith(fresh.tBodies[0]);
  }
  function followTable(table) {
    if (table.followed) return;
    table.followed = true;
    const tick = async () => {
      try { await refreshTable(table); } catch (err) { /* try again on the next tick */ }
      if (table.querySelector("[data-live]")) window.setTimeout(tick, REFRESH_MS);
      else table.followed = false;
    };
    window.setTimeout(tick, REFRESH_MS);
  }
  for (const table of document.querySelectorAll("table[data-refresh]")) {
    if (table.querySelector("[data-live]")) followTable(table);
  }

  // --- datasets: upload with progress and the bad-rows report ------------------------------------
  // XMLHttpRequest, not fetch: only it reports the bytes sent. The answer is JSON lines (the
  // rows read so far, then the outcome), read as they arrive; an error before reading is JSON.
  function send(path, form, { onSent, onLine }) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/review/api/${path}`);
      for (const [name, value] of Object.entries(HEADER)) xhr.setRequestHeader(name, value);
      const ok = () => xhr.status >= 200 && xhr.status < 300;
      let seen = 0;
      const readLines = () => {
        if (!ok()) return;
        const text = xhr.responseText;
        for (let end = text.indexOf("\n", seen); end >= 0; end = text.indexOf("\n", seen)) {
          const line = text.slice(seen, end);
          seen = end + 1;
          if (line.trim()) onLine(JSON.parse(line));
        }
      };
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onSent(e.loaded, e.total); });
      xhr.addEventListener("progress", readLines);
      xhr.addEventListener("load", () => {
        if (xhr.status === 401) window.location.assign("/review/sign-in");
        if (!ok()) {
          let detail = null;
          try { detail = JSON.parse(xhr.responseText).detail; } catch (err) { /* not JSON */ }
          reject(new Error(detail || `HTTP ${xhr.status}`));
          return;
        }
        readLines();
        resolve();
      });
      xhr.addEventListener("error", () => reject(new Error("The server did not answer; check the connection and try again.")));
      xhr.send(form);
    });
  }

  const megabytes = (n) => (n / 1048576).toFixed(n < 10485760 ? 2 : 0);
  const percent = (part, whole) => (whole ? Math.floor((100 * part) / whole) : 0);

  const uploadForm = $("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const result = $("upload-result");
      const meter = $("upload-meter");
      const progress = $("upload-progress");
      const phase = $("upload-phase");
      const button = $("upload-button");
      const form = new FormData(uploadForm);
      if (!form.get("id_column")) form.delete("id_column");
      meter.hidden = false;
      progress.max = 1;
      progress.value = 0;
      phase.textContent = "Sending the file…";
      result.replaceChildren();
      button.disabled = true;
      let d = null;
      let failure = null;
      try {
        await send("datasets", form, {
          onSent: (loaded, total) => {
            progress.max = total;
            progress.value = loaded;
            progress.setAttribute("aria-valuetext", `sent ${percent(loaded, total)}%`);
            phase.textContent = loaded < total
              ? `Sending the file: ${percent(loaded, total)}% (${megabytes(loaded)} of ${megabytes(total)} MB)`
              : "Sent; checking the columns…";
          },
          onLine: (line) => {
            if (line.done) d = line.done;
            else if (line.error) failure = line.error;
            else {
              progress.max = line.size || 1;
              progress.value = line.read;
              progress.setAttribute("aria-valuetext", `read ${percent(line.read, line.size)}%`);
              phase.textContent = `Reading rows: ${line.rows.toLocaleString()} read, ${percent(line.read, line.size)}% of the file`;
            }
          },
        });
        if (failure || !d) throw new Error(failure || "the server ended the answer early");
        progress.value = progress.max;
        phase.textContent = "Done.";
        const p = document.createElement("p");
        p.className = "ok-text";
        p.id = "upload-summary";
        p.textContent = `Uploaded ${d.filename} as ${d.id}: ${d.rows} rows, ${d.items} items (${d.created} new), ${d.bad_rows} bad rows.`;
        const link = document.createElement("a");
        link.href = `/review/jobs?dataset=${encodeURIComponent(d.id)}`;
        link.textContent = "Start a job on it";
        link.id = "upload-start-job";
        result.append(p, link);
        if (d.errors.length) {
          const list = document.createElement("ul");
          list.className = "bad-rows";
          for (const row of d.errors) {
            const li = document.createElement("li");
            li.textContent = `row ${row.row}: ${row.reason || row.error || JSON.stringify(row)}`;
            list.append(li);
          }
          result.append(list);
        }
        const table = $("datasets");
        if (table) await refreshTable(table).catch(() => null);
      } catch (err) {
        meter.hidden = true;
        const p = document.createElement("p");
        p.className = "error-text";
        p.textContent = `Not uploaded: ${err.message}`;
        result.append(p);
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- jobs: start, then follow -------------------------------------------------------------------
  const jobForm = $("job-form");
  if (jobForm) {
    jobForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(jobForm);
      const json = { schema: f.get("schema"), dataset: f.get("dataset") };
      if (f.get("strategy")) json.strategy = f.get("strategy");
      if (f.get("target_precision")) json.target_precision = Number(f.get("target_precision"));
      try {
        const job = await call("jobs", { json });
        window.location.assign(`/review/jobs/${encodeURIComponent(job.id)}`);
      } catch (err) { say($("job-message"), err.message, "error"); }
    });
  }

  const job = $("job");
  if (job) {
    const id = job.dataset.job;
    const FINAL = ["succeeded", "failed", "cancelled"];
    const fmt = (v, d) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
    const show = (j) => {
      $("job-state").textContent = j.state;
      $("job-state").className = `badge job-${j.state}`;
      job.dataset.state = j.state;
      $("job-progress").max = j.total || 1;
      $("job-progress").value = j.done;
      $("job-done").textContent = j.done;
      $("job-total").textContent = j.total;
      $("job-percent").textContent = `${j.total ? Math.round((100 * j.done) / j.total) : 0}%`;
      $("job-rate").textContent = fmt(j.items_per_second, 1);
      $("job-eta").textContent = fmt(j.eta_seconds, 0);
      $("job-accepted").textContent = j.counts.accepted;
      $("job-needs-review").textContent = j.counts.needs_review;
      $("job-no-match").textContent = j.counts.no_match;
      $("job-error").textContent = j.error || "";
      const cancel = $("job-cancel");
      if (cancel) cancel.disabled = FINAL.includes(j.state);
    };
    if (!FINAL.includes(job.dataset.state)) {
      const events = new EventSource(`/review/api/jobs/${encodeURIComponent(id)}/events`);
      events.addEventListener("progress", (e) => show(JSON.parse(e.data)));
      events.addEventListener("end", () => events.close());
    }
    const cancel = $("job-cancel");
    if (cancel) {
      cancel.addEventListener("click", async () => {
        try {
          show(await call(`jobs/${encodeURIComponent(id)}/cancel`, { json: {} }));
          say($("job-message"), "Cancelled: chunks not started are left undone.", "ok");
        } catch (err) { say($("job-message"), err.message, "error"); }
      });
    }
  }

  // --- schemas: push a file ------------------------------------------------------------------------
  const schemaForm = $("schema-form");
  if (schemaForm) {
    schemaForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const result = $("schema-result");
      try {
        const s = await call("schemas", { form: new FormData(schemaForm) });
        result.className = "ok-text";
        result.textContent = s.created ? `Pushed ${s.name} version ${s.version}.`
          : `${s.name} is unchanged: still version ${s.version}.`;
        window.setTimeout(() => window.location.reload(), 800);
      } catch (err) {
        result.className = "error-text";
        result.textContent = `Not pushed: ${err.message}`;
      }
    });
  }
})();
