// The console works without this file; it only asks before a button that starts work.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.action && /\/run$/.test(form.action) && !window.confirm("Start a run of this connection now?")) {
    event.preventDefault();
  }
});
