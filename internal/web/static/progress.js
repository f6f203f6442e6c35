// Live progress of a campaign: reads the server-sent events of
// /campaigns/{id}/events and updates the numbers and the progress bar.
// Without script the page shows the numbers and a refresh link.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("progress");
  if (!box || !window.EventSource) { return; }
  var url = box.getAttribute("data-events");
  var updateText = box.getAttribute("data-live-update") || "%d / %d";
  var endText = box.getAttribute("data-live-end") || "%s";
  var lastAnnounced = -1;
  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
  function set(name, value) {
    var el = field(name);
    if (el) { el.textContent = value === undefined || value === "" ? "\u2013" : String(value); }
  }
  function show(ev) {
    ["total", "delivered", "failed", "deferred", "suppressed", "pending", "rate", "eta"].forEach(function (k) { set(k, ev[k]); });
    set("status_text", ev.status_text);
    var bar = field("percent");
    if (bar) { bar.value = ev.percent; bar.textContent = ev.percent + "%"; }
    set("percent_text", ev.percent + "%");
    // Announce every tenth, not every message, to screen readers.
    var tenth = Math.floor(ev.percent / 10);
    if (tenth !== lastAnnounced) {
      lastAnnounced = tenth;
      set("live", updateText.replace("%d", ev.done).replace("%d", ev.total));
    }
  }
  // Once the run ends (done, paused, cancelled) the buttons, the failed
  // reasons and the diagnosis the page was served with are out of date:
  // they are replaced by those of the page as it is now, the progress box
  // (and what it announced) stays.
  function refreshSections() {
    if (!window.fetch || !window.DOMParser) { return; }
    fetch(window.location.href, { credentials: "same-origin" }).then(function (res) {
      return res.ok ? res.text() : Promise.reject(new Error(res.status));
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("main > section:not(#progress)").forEach(function (s) { s.remove(); });
      var after = box;
      doc.querySelectorAll("main > section:not(#progress)").forEach(function (s) {
        var fresh = document.importNode(s, true);
        after.after(fresh);
        after = fresh;
      });
    }).catch(function () { /* the refresh link still works */ });
  }
  var status = field("status_text");
  var servedStatus = box.getAttribute("data-status");
  var source = new EventSource(url);
  source.addEventListener("progress", function (e) { show(JSON.parse(e.data)); });
  source.addEventListener("end", function (e) {
    var ev = JSON.parse(e.data);
    show(ev);
    if (status) { status.className = "status " + ev.status; }
    set("live", endText.replace("%s", ev.status_text));
    source.close();
    if (ev.status !== servedStatus) { refreshSections(); }
  });
});
