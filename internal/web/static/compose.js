// mailout compose page: merge fields insert at the cursor, and the
// preview follows the form as it is typed. The page works without it:
// the Preview button renders the same preview on the server.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("compose-form");
  var preview = document.getElementById("preview");
  if (!form || !preview) { return; }

  // The body field last focused takes the merge field a button inserts.
  var target = document.getElementById("c-text");
  form.querySelectorAll("textarea.body, #c-subject").forEach(function (el) {
    el.addEventListener("focus", function () { target = el; });
  });
  form.querySelectorAll("button.insert").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!target) { return; }
      var text = b.getAttribute("data-insert");
      var start = target.selectionStart, end = target.selectionEnd;
      target.value = target.value.slice(0, start) + text + target.value.slice(end);
      target.focus();
      target.selectionStart = target.selectionEnd = start + text.length;
      schedule();
    });
  });

  // The preview is posted (without attachments) half a second after the
  // last change; an answer older than the latest request is dropped.
  var timer = null, seq = 0;
  function refresh() {
    var body = new FormData(form);
    body.delete("attachments");
    var mine = ++seq;
    fetch("/campaigns/new/preview", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html !== null && mine === seq) { preview.innerHTML = html; }
      })
      .catch(function () { /* the Preview button still works */ });
  }
  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 500);
  }
  form.addEventListener("input", function (e) {
    if (e.target && e.target.type !== "file") { schedule(); }
  });
  form.addEventListener("change", function (e) {
    if (e.target && (e.target.name === "subscriber" || e.target.name === "list")) { schedule(); }
  });
});
