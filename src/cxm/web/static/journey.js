// The frequency slider: show its value while it moves, apply it when let go.
document.querySelectorAll("input[data-auto-submit]").forEach(function (el) {
  var out = el.parentElement.querySelector("output");
  el.addEventListener("input", function () { if (out) { out.textContent = el.value; } });
  el.addEventListener("change", function () { el.form.requestSubmit(); });
});
