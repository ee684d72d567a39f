// plancd dashboard: live updates. The server sends a `change` event when task refs move; the
// page then fetches itself again and swaps in the new <main>, unless the change is about
// another workflow. No framework, no inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  var dot = document.getElementById("live");
  if (!main || !window.EventSource) return;
  var scope = main.getAttribute("data-live");
  var workflow = scope.split("/")[0];
  var busy = false, again = false;
  function refresh(seq) {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var typing = document.activeElement && main.contains(document.activeElement) && document.activeElement.matches("input, textarea");
        if (fresh && !typing) {
          main.innerHTML = fresh.innerHTML;
          main.setAttribute("data-updated", String(seq));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(seq); }
      });
  }
  var source = new EventSource(main.getAttribute("data-events"));
  source.addEventListener("open", function () {
    document.body.setAttribute("data-live-state", "open");
    if (dot) { dot.textContent = "● live"; dot.className = "live on"; }
  });
  source.addEventListener("error", function () {
    document.body.setAttribute("data-live-state", "closed");
    if (dot) { dot.textContent = "○ reconnecting"; dot.className = "live"; }
  });
  source.addEventListener("change", function (e) {
    var change = {};
    try { change = JSON.parse(e.data); } catch (_) {}
    if (workflow && change.workflow && change.workflow !== "*" && change.workflow !== workflow) return;
    refresh(change.seq || 0);
  });
})();
