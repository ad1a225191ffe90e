// Docket web desk: progressive enhancement only. Every page works without this file for
// reading and searching; this adds live updates, the editor (preview, drop and paste of
// files), keyboard shortcuts, theme switching and small conveniences. No inline script: the
// Content-Security-Policy forbids it, so all behaviour hangs off data- attributes.
(function () {
  "use strict";
  var doc = document, root = doc.documentElement, body = doc.body;
  root.classList.add("js");
  var csrf = body.getAttribute("data-csrf") || "";

  // Old xyOps links (/#Tickets?id=ID, as in emails) lead to the ticket's page.
  var m = /^#Tickets\?(?:.*&)?(id|num)=([A-Za-z0-9_]+)/.exec(location.hash);
  if (m) {
    location.replace(m[1] === "num" ? "/tickets/" + m[2] : "/tickets/id/" + m[2]);
    return;
  }

  function $(sel, el) { return (el || doc).querySelector(sel); }
  function $$(sel, el) { return Array.prototype.slice.call((el || doc).querySelectorAll(sel)); }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // ---- Theme: auto (system) -> dark -> light -> auto; remembered in a cookie.
  var themeBtn = $("#theme-toggle");
  if (themeBtn) themeBtn.addEventListener("click", function () {
    var next = { auto: "dark", dark: "light", light: "auto" }[root.getAttribute("data-theme")] || "dark";
    root.setAttribute("data-theme", next);
    doc.cookie = "docket_theme=" + next + "; Path=/; Max-Age=31536000; SameSite=Lax";
    themeBtn.setAttribute("aria-label", "Switch theme (now: " + next + ")");
    themeBtn.title = "Theme: " + next;
  });

  // ---- Relative times ("3 minutes ago"), kept fresh.
  function ago(secs) {
    var d = Math.round(Date.now() / 1000) - secs, future = d < 0, n, unit;
    d = Math.abs(d);
    if (d < 45) return "just now";
    if (d < 90) { n = 1; unit = "minute"; }
    else if (d < 3300) { n = Math.round(d / 60); unit = "minute"; }
    else if (d < 5400) { n = 1; unit = "hour"; }
    else if (d < 79200) { n = Math.round(d / 3600); unit = "hour"; }
    else if (d < 129600) { n = 1; unit = "day"; }
    else if (d < 2505600) { n = Math.round(d / 86400); unit = "day"; }
    else if (d < 31536000) { n = Math.round(d / 2592000); unit = "month"; }
    else { n = Math.round(d / 31536000); unit = "year"; }
    var s = n + " " + unit + (n === 1 ? "" : "s");
    return future ? "in " + s : s + " ago";
  }
  function refreshTimes(scope) {
    $$("time[data-rel]", scope).forEach(function (t) {
      var secs = Date.parse(t.getAttribute("datetime")) / 1000;
      if (!isNaN(secs)) t.textContent = ago(secs);
    });
  }
  setInterval(function () { refreshTimes(); }, 30000);

  // ---- Confirmations, auto-submitting filters and selects, select-all.
  $$("[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!confirm(b.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
  $$("form.filters select").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  $$("form[data-autosubmit] select:not([multiple]), form[data-autosubmit] input[type=date]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  var all = $("#select-all");
  if (all) all.addEventListener("change", function () {
    $$("input[name=ids]").forEach(function (c) { c.checked = all.checked; });
  });

  // ---- Due date presets.
  $$("[data-due-presets]").forEach(function (group) {
    var input = doc.getElementById(group.getAttribute("data-due-presets"));
    group.addEventListener("click", function (e) {
      var b = e.target.closest("button");
      if (!b || !input) return;
      if (b.hasAttribute("data-clear")) { input.value = ""; return; }
      var d = new Date();
      if (b.dataset.days) d.setDate(d.getDate() + Number(b.dataset.days));
      if (b.dataset.months) d.setMonth(d.getMonth() + Number(b.dataset.months));
      var p = function (n) { return (n < 10 ? "0" : "") + n; };
      input.value = d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate());
    });
  });

  // ---- Markdown editor: Write / Preview tabs, files by drop or paste.
  function api(name, form) {
    return fetch("/api/app/" + name + "/v1", {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (r) {
      return r.json().catch(function () { return { code: "http", description: "HTTP " + r.status }; });
    }).then(function (j) {
      if (j.code !== 0) throw new Error(j.description || "Request failed");
      return j;
    });
  }
  function fileLink(f) {
    var url = "/files/" + f.path;
    var name = (f.filename || "file").replace(/[\[\]]/g, "");
    return (/^image\//.test(f.type || "") && f.type !== "image/svg+xml" ? "!" : "") + "[" + name + "](" + url + ")";
  }
  function insertAtCursor(ta, text) {
    var s = ta.selectionStart || 0, e = ta.selectionEnd || 0, v = ta.value;
    var before = v.slice(0, s), pad = before && !/\n$/.test(before) ? "\n" : "";
    ta.value = before + pad + text + "\n" + v.slice(e);
    ta.selectionStart = ta.selectionEnd = (before + pad + text + "\n").length;
    ta.dispatchEvent(new Event("input"));
  }
  $$("[data-editor]").forEach(function (ed, i) {
    var ta = $("textarea", ed);
    if (!ta) return;
    var tabs = doc.createElement("div");
    tabs.className = "editor-tabs";
    tabs.setAttribute("role", "tablist");
    tabs.innerHTML = '<button type="button" role="tab" aria-selected="true">Write</button><button type="button" role="tab" aria-selected="false">Preview</button>';
    var preview = doc.createElement("div");
    preview.className = "preview markdown";
    preview.hidden = true;
    preview.setAttribute("role", "tabpanel");
    preview.id = "preview-" + i;
    ed.insertBefore(tabs, ta);
    ed.appendChild(preview);
    var status = doc.createElement("div");
    status.className = "upload-status";
    status.setAttribute("role", "status");
    ed.appendChild(status);
    var bw = tabs.children[0], bp = tabs.children[1];
    bw.addEventListener("click", function () {
      bw.setAttribute("aria-selected", "true"); bp.setAttribute("aria-selected", "false");
      preview.hidden = true; ta.hidden = false; ta.focus();
    });
    bp.addEventListener("click", function () {
      bp.setAttribute("aria-selected", "true"); bw.setAttribute("aria-selected", "false");
      preview.textContent = "Rendering…";
      preview.hidden = false; ta.hidden = true;
      fetch("/preview", { method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "text/plain; charset=utf-8" }, body: ta.value })
        .then(function (r) { return r.text(); })
        // The server renders and sanitizes; what comes back is safe HTML.
        .then(function (html) { preview.innerHTML = html || "<p class=\"muted\">Nothing to preview.</p>"; });
    });
    var ticket = ed.getAttribute("data-upload-ticket");
    if (!ticket) return;
    function upload(files) {
      if (!files || !files.length) return;
      var form = new FormData();
      form.append("json", JSON.stringify({ ticket: ticket, save: true }));
      for (var k = 0; k < files.length; k++) form.append("file" + k, files[k], files[k].name || "pasted.png");
      status.textContent = "Uploading " + files.length + " file" + (files.length > 1 ? "s" : "") + "…";
      api("upload_user_ticket_files", form).then(function (j) {
        (j.files || []).forEach(function (f) { insertAtCursor(ta, fileLink(f)); });
        status.textContent = "Attached " + (j.files || []).length + " file(s) to the ticket.";
      }).catch(function (err) { status.textContent = "Upload failed: " + err.message; });
    }
    ed.addEventListener("dragover", function (e) { e.preventDefault(); ed.classList.add("dragging"); });
    ed.addEventListener("dragleave", function () { ed.classList.remove("dragging"); });
    ed.addEventListener("drop", function (e) {
      e.preventDefault(); ed.classList.remove("dragging");
      upload(e.dataTransfer && e.dataTransfer.files);
    });
    ta.addEventListener("paste", function (e) {
      var files = e.clipboardData && e.clipboardData.files;
      if (files && files.length) { e.preventDefault(); upload(files); }
    });
  });

  // ---- New ticket with files: the same fields go to the API's streaming create.
  var newForm = $("form[data-api-create]");
  if (newForm) newForm.addEventListener("submit", function (e) {
    var input = $("input[type=file]", newForm);
    if (!input || !input.files.length) return;
    e.preventDefault();
    var fd = new FormData(newForm), params = {};
    ["subject", "body", "type", "status", "category", "due"].forEach(function (k) {
      var v = (fd.get(k) || "").toString();
      if (v.trim()) params[k] = v;
    });
    params.assignees = fd.getAll("assignees");
    params.tags = fd.getAll("tags");
    params.cc = (fd.get("cc") || "").toString().split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    var form = new FormData();
    form.append("json", JSON.stringify(params));
    for (var k = 0; k < input.files.length; k++) form.append("file" + k, input.files[k], input.files[k].name);
    var btn = $("button[type=submit]", newForm);
    btn.disabled = true;
    api("create_ticket", form).then(function (j) {
      location.href = "/tickets/" + j.ticket.num;
    }).catch(function (err) {
      btn.disabled = false;
      var p = $(".error", newForm.parentNode) || doc.createElement("p");
      p.className = "error"; p.setAttribute("role", "alert"); p.textContent = err.message;
      newForm.parentNode.insertBefore(p, newForm);
    });
  });

  // ---- Live updates over Server-Sent Events. A stream is closed when the page is left:
  // browsers keep few connections per server, and a page in the back/forward cache must not
  // hold one.
  var streams = [];
  // `el`'s data-feed-at is the feed position read before the page was built: the stream
  // starts after it, so nothing committed meanwhile is missed.
  function stream(url, el) {
    var at = el.getAttribute("data-feed-at");
    if (at) url += "&after=" + encodeURIComponent(at);
    var es = new EventSource(url);
    streams.push(es);
    return es;
  }
  window.addEventListener("pagehide", function () {
    streams.forEach(function (es) { es.close(); });
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) location.reload();
  });
  function banner(scope, text) {
    var b = $(".live-banner", scope);
    if (!b) return;
    b.textContent = text;
    b.hidden = false;
  }
  function reloadParts(ids, done) {
    fetch(location.pathname + location.search, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var old = doc.getElementById(id), neu = fresh.getElementById(id);
          if (!old || !neu) return;
          // Never pull a form out from under someone using it.
          if (old.contains(doc.activeElement) && typing(doc.activeElement)) return;
          if ($("details[open]", old)) return;
          old.replaceWith(doc.importNode(neu, true));
        });
        refreshTimes();
        if (done) done();
      });
  }
  var ticketEl = $("#ticket[data-ticket-id]");
  if (ticketEl && window.EventSource) {
    var es = stream("/events?ticket=" + encodeURIComponent(ticketEl.getAttribute("data-ticket-id")), ticketEl);
    es.addEventListener("ticket", function (e) {
      var d = JSON.parse(e.data);
      if (d.kind === "deleted") { banner(ticketEl, "This ticket was deleted."); es.close(); return; }
      reloadParts(["ticket-head", "ticket-body", "ticket-files", "timeline", "ticket-meta"], function () {
        banner(ticketEl, "Updated just now.");
      });
    });
    es.addEventListener("refresh", function () { reloadParts(["ticket-head", "ticket-body", "timeline", "ticket-meta"]); });
  }
  var results = $("#results[data-live-query]");
  if (results && window.EventSource) {
    var rs = stream("/events?q=" + encodeURIComponent(results.getAttribute("data-live-query")), results);
    var update = function () {
      if ($$("input[name=ids]:checked").length) { banner(results, "Tickets changed. Reload to see them."); return; }
      reloadParts(["results"], function () { results = $("#results"); bindRows(); banner(results, "Updated just now."); });
    };
    rs.addEventListener("search", function (e) {
      var d = JSON.parse(e.data);
      var shown = !!$('tr[data-num="' + d.num + '"]', results);
      if (d.matches || shown) update();
    });
    rs.addEventListener("refresh", update);
  }

  // ---- Keyboard: / search, j/k move, o/Enter open, x select, c comment, e edit, n new, ? help.
  var current = -1;
  function rows() { return $$("table.tickets tbody tr"); }
  function bindRows() { current = -1; }
  function move(delta) {
    var r = rows();
    if (!r.length) return;
    if (current >= 0 && r[current]) r[current].classList.remove("current");
    current = Math.max(0, Math.min(r.length - 1, current + delta));
    r[current].classList.add("current");
    var link = $("td.subject a", r[current]);
    if (link) link.focus();
  }
  var helpDialog = $("#shortcuts");
  var helpBtn = $("#help-toggle");
  if (helpBtn && helpDialog) helpBtn.addEventListener("click", function () { helpDialog.showModal(); });
  doc.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var k = e.key;
    if (k === "/") {
      var q = $("#q") || $("#quick-q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    } else if (k === "j") { move(1); }
    else if (k === "k") { move(-1); }
    else if ((k === "o" || k === "Enter") && current >= 0 && rows()[current]) {
      if (k === "o" || e.target.tagName !== "A") { e.preventDefault(); location.href = rows()[current].getAttribute("data-href"); }
    } else if (k === "x" && current >= 0 && rows()[current]) {
      var box = $("input[name=ids]", rows()[current]);
      if (box) box.checked = !box.checked;
    } else if (k === "c") {
      var c = $("#comment-body");
      if (c) { e.preventDefault(); c.focus(); c.scrollIntoView({ block: "center" }); }
    } else if (k === "e") {
      var ed = $("#edit-ticket");
      if (ed) { e.preventDefault(); ed.open = true; var s = $("#edit-subject"); if (s) s.focus(); }
    } else if (k === "n") {
      if ($('a[href="/tickets/new"]')) location.href = "/tickets/new";
    } else if (k === "?") {
      if (helpDialog) { e.preventDefault(); helpDialog.showModal(); }
    }
  });
})();
