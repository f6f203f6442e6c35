// mailout web app: small progressive enhancements. Every page works
// without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The language menu changes at once; its button stays for keyboards and
  // for browsers without script.
  document.querySelectorAll("select.autosubmit").forEach(function (sel) {
    sel.addEventListener("change", function () {
      if (sel.form) { sel.form.requestSubmit(); }
    });
  });
});
