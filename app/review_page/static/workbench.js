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
        const { count } = await call("bulk", { json: body(pending.action, pending.count) });
        say(message, `Done: ${count} items ${pending.action === "accept" ? "accepted" : "sent to review"}. `, "ok");
        const again = document.createElement("a");
        again.href = window.location.href;
        again.textContent = "Show the list again";
        message.append(again);
      } catch (err) { say(message, err.message, "error"); }
      $("bulk-confirm").hidden = true;
      pending = null;
    });
  }

  // --- datasets: upload with the bad-rows report -------------------------------------------------
  const uploadForm = $("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const result = $("upload-result");
      const progress = $("upload-progress");
      const form = new FormData(uploadForm);
      if (!form.get("id_column")) form.delete("id_column");
      progress.hidden = false;
      progress.removeAttribute("value"); // indeterminate while the server reads the stream
      result.replaceChildren();
      try {
        const d = await call("datasets", { form });
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
      } catch (err) {
        const p = document.createElement("p");
        p.className = "error-text";
        p.textContent = `Not uploaded: ${err.message}`;
        result.append(p);
      } finally {
        progress.hidden = true;
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
