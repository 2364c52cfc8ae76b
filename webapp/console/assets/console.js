// The console's keyboard, reviews and live refresh. Pages work without it; it adds:
// j/k to move through the queue, Enter to open, a to approve, 1-7 to label (the selected row,
// or the open decision), q back to the queue, u to the user; the queue's first page refreshes
// itself every few seconds. Nothing here builds HTML from data: rows come rendered (and
// escaped) by the server, and messages are set as text.
"use strict";
(function () {
  const body = document.body;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  const categories = Array.from(document.querySelectorAll("[data-label]")).map((el) => el.dataset.label);
  let selected = null;

  function say(text) { status.textContent = text; }

  function hhmmss(iso) { return new Date(iso).toISOString().slice(11, 19) + "Z"; }

  async function review(url, label, note) {
    const form = new URLSearchParams({ label: label, note: note || "", csrf_token: csrf });
    const answer = await fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) { say("Review failed: " + (data.message || answer.status)); return null; }
    const from = hhmmss(data.applies_from);
    say(data.published
      ? "Reviewed as " + label + ". Sent to the screening workers; screenings from " + from + " on use it."
      : "Reviewed as " + label + ". The workers pick it up when they next start (the stream was unreachable).");
    const wait = new Date(data.applies_from) - Date.now();
    if (data.published) {
      setTimeout(() => say("Review " + label + " has reached the screening workers."), Math.max(wait, 0));
    }
    return data;
  }

  // A key meant for a field, or for the browser (with a modifier), is not a console key.
  function typing(event) {
    const t = event.target;
    return event.ctrlKey || event.metaKey || event.altKey ||
      (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)));
  }

  function labelFor(key, machine) {
    if (key === "a") return machine;
    const n = Number(key);
    return n >= 1 && n <= categories.length ? categories[n - 1] : null;
  }

  // --- the queue ---
  function rows() { return Array.from(document.querySelectorAll("#queue tbody tr[data-key]")); }

  function select(row) {
    if (selected) selected.classList.remove("selected");
    selected = row || null;
    if (!selected) return;
    selected.classList.add("selected");
    const link = selected.querySelector("a.open");
    if (link) link.focus({ preventScroll: true });
    selected.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(selected);
    select(all[Math.min(Math.max(at + step, 0), all.length - 1)] || all[0]);
  }

  async function refresh() {
    const url = body.dataset.rows;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (answer.status === 401) { say("Signed out: reload the page to sign in."); return; }
      if (!answer.ok) return;
      const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
      const keep = selected ? selected.dataset.key : null;
      document.getElementById("rows").replaceChildren(...Array.from(doc.body.childNodes));
      selected = null;
      const again = rows().find((r) => r.dataset.key === keep);
      if (again) { again.classList.add("selected"); selected = again; }
    } catch (error) {
      say("Live refresh paused: " + error.message);
    }
  }

  if (body.dataset.page === "queue") {
    document.addEventListener("keydown", async (event) => {
      if (typing(event)) return;
      if (event.key === "j") { move(1); event.preventDefault(); }
      else if (event.key === "k") { move(-1); event.preventDefault(); }
      else if (event.key === "Enter") {
        // On a link or button Enter does its own thing (the selected row's link is focused).
        if (selected && !["A", "BUTTON"].includes(event.target.tagName)) {
          selected.querySelector("a.open").click();
        }
      }
      else if (selected) {
        const label = labelFor(event.key, selected.dataset.category);
        if (!label) return;
        event.preventDefault();
        const row = selected;
        if (await review(row.dataset.review, label, "")) { row.classList.add("done"); move(1); }
      }
    });
    if (body.dataset.rows) setInterval(refresh, Number(body.dataset.refreshS) * 1000);
  }

  // --- a decision ---
  if (body.dataset.page === "decision") {
    const form = document.querySelector("[data-review-form]");
    const note = document.getElementById("note");
    async function send(label) {
      if (await review(body.dataset.review, label, note ? note.value : "")) {
        document.querySelectorAll(".labels button").forEach((b) => {
          b.setAttribute("aria-pressed", String(b.value === label && !b.classList.contains("approve")));
        });
      }
    }
    if (form) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (event.submitter) send(event.submitter.value);
      });
    }
    document.addEventListener("keydown", (event) => {
      if (typing(event)) return;
      if (event.key === "q") { location.href = "/console/"; return; }
      if (event.key === "u") { document.querySelector(".facts a").click(); return; }
      const label = form && labelFor(event.key, body.dataset.category);
      if (label) { event.preventDefault(); send(label); }
    });
  }
})();
