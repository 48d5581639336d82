// leadgate pages: countdowns, confirmations, the return reason, and the dashboard's
// refresh. Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  function left(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var text = d > 0 ? d + "d " + h + "h" : h > 0 ? h + "h " + m + "m" : m > 0 ? m + "m " + (s % 60) + "s" : s + "s";
    return ms >= 0 ? "in " + text : text + " ago";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-deadline"));
      if (isNaN(at)) { return; }
      var ms = at - now;
      el.textContent = left(ms);
      el.classList.toggle("soon", ms >= 0 && ms < 5 * 60 * 1000);
      el.classList.toggle("passed", ms < 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);

    document.querySelectorAll("[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (ev) {
        if (!window.confirm(button.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });

    // A return needs a reason: say so before the round trip.
    document.querySelectorAll("form.disposition").forEach(function (form) {
      var reason = form.querySelector("[name=reason]");
      form.querySelectorAll("[name=status]").forEach(function (radio) {
        radio.addEventListener("change", function () {
          reason.required = form.querySelector("[name=status]:checked").value === "returned";
        });
      });
    });

    // A claim button can be pressed once: a second press would only meet our own claim.
    document.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      });
    });

    var refresh = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (refresh > 0) {
      setTimeout(function () { window.location.reload(); }, refresh * 1000);
    }
  });
})();
