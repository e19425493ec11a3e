// A table wider than the screen scrolls inside itself (cxm.css, phones); a keyboard user must
// be able to reach it to scroll it, so such a table takes focus, and loses it when it fits.
(function () {
  function mark() {
    document.querySelectorAll("main table, main .scroll").forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.dataset.scrollFocus = "1";
      } else if (!scrolls && el.dataset.scrollFocus) {
        el.removeAttribute("tabindex");
        delete el.dataset.scrollFocus;
      }
    });
  }
  mark();
  window.addEventListener("load", mark);
  window.addEventListener("resize", mark);
  // A table inside a closed <details> has no width until it opens.
  document.addEventListener("toggle", mark, true);
})();
