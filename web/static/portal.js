// Vitrine portal: confirmations and upload progress. No inline scripts (CSP: script-src 'self').
(function () {
  "use strict";
  // <form data-confirm="..."> asks before submitting (delegated: the dashboard re-renders).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // Stock upload: show htmx's upload progress, then clear the textarea on success.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("stock-progress");
    if (!bar || !event.detail.lengthComputable) { return; }
    bar.hidden = false;
    bar.value = Math.round(100 * event.detail.loaded / event.detail.total);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (!form || form.id !== "stock-form") { return; }
    var bar = document.getElementById("stock-progress");
    if (bar) { bar.value = 100; bar.hidden = true; }
    if (event.detail.successful) { form.reset(); }
  });
  // htmx does not swap 4xx answers by default; the stock form's errors are worth showing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400 && event.detail.target && event.detail.target.id === "stock-result") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
