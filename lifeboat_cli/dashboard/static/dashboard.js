// Live updates without a framework: every element with data-refresh is replaced by a fresh rendering of its
// fragment URL every data-every milliseconds (the server renders; this only swaps the HTML).
(function () {
  "use strict";
  function follow(element) {
    var url = element.getAttribute("data-refresh");
    var every = parseInt(element.getAttribute("data-every") || "2000", 10);
    var last = null;
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
          return response.text();
        })
        .then(function (html) {
          if (html !== last) { element.innerHTML = html; last = html; }
          document.body.classList.remove("stale");
        })
        .catch(function () { document.body.classList.add("stale"); })
        .finally(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(follow);
  });
})();
