/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  // Move focus to the error summary so a screen reader announces it first.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }

  // Show the yearly-limit field only when mutual aid is chosen (shown to everyone without JS).
  document.querySelectorAll("[data-show-when]").forEach(function (block) {
    var parts = block.getAttribute("data-show-when").split("=");
    var radios = document.querySelectorAll('input[name="' + parts[0] + '"]');
    function update() {
      var chosen = document.querySelector('input[name="' + parts[0] + '"]:checked');
      block.hidden = !(chosen && chosen.value === parts[1]);
    }
    radios.forEach(function (r) { r.addEventListener("change", update); });
    update();
  });

  // The e-voucher's countdown (without this file the page shows the expiry time).
  document.querySelectorAll("[data-countdown]").forEach(function (box) {
    var text = box.querySelector("[data-countdown-text]");
    box.classList.add("ticking");
    var ends = Date.now() + 1000 * parseInt(box.getAttribute("data-seconds"), 10);
    function tick() {
      var left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      if (left > 0) {
        text.textContent = box.getAttribute("data-remaining").replace("__S__", String(left));
        window.setTimeout(tick, 1000);
      } else {
        text.textContent = box.getAttribute("data-expired");
        box.classList.add("expired");
        box.setAttribute("role", "status");
      }
    }
    tick();
  });

  // A second tap on a submit button while the first is on its way does nothing.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[data-once]");
      if (button) { window.setTimeout(function () { button.disabled = true; }, 0); }
    });
  });
})();
