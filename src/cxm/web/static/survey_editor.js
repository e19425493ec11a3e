// Live preview: re-render a moment after typing stops (the form works without this, too).
(function () {
  var form = document.getElementById("editor"), timer = null;
  function refresh(delay) {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var data = new FormData(form); data.set("action", "preview");
      // form.action would read the button named "action"; the attribute is the form's address.
      fetch(form.getAttribute("action"), {method: "POST", body: data, headers: {"Accept": "text/html"}}).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector(".preview"), old = document.querySelector(".preview");
        // The preview holds its language picker: keep the focus on it across the re-render.
        var focused = old && old.contains(document.activeElement) ? document.activeElement.id : "";
        if (fresh && old) { old.replaceWith(fresh); }
        if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
        // The builder shows the same definition: keep it in step with the text.
        var freshBuilder = doc.getElementById("builder"), oldBuilder = document.getElementById("builder");
        if (freshBuilder && oldBuilder) { oldBuilder.replaceWith(freshBuilder); }
        var err = doc.querySelector(".error"), oldErr = document.querySelector("main > .error");
        if (oldErr) { oldErr.remove(); }
        if (err) { document.querySelector("main h1").after(err); }
      });
    }, delay);
  }
  form.definition.addEventListener("input", function () { refresh(600); });
  // The picker is re-rendered with the preview: listen on the document, not on one element.
  document.addEventListener("change", function (e) { if (e.target.id === "language") { refresh(0); } });
})();
// Preview as on a phone (390 px) or a desktop; the choice survives the live re-render.
(function () {
  var size = "desktop";
  function apply() {
    var box = document.querySelector(".preview");
    if (!box) { return; }
    box.classList.toggle("preview-phone", size === "phone");
    box.querySelectorAll("[data-preview-size]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.previewSize === size));
    });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-preview-size]") : null;
    if (b) { size = b.dataset.previewSize; apply(); }
  });
  new MutationObserver(apply).observe(document.querySelector("main"), {childList: true, subtree: true});
})();
