/* cxm in-product surveys: include with
 *   <script src="https://cxm.example.com/inproduct/cxm.js" data-user-id="USER-ID" async></script>
 * then call cxm.track("event_name") when something happens; page views are reported on load.
 * Shows a survey in a small dialog when one of its in-product rules matches and the contact
 * rules allow it. No framework, no cookies; an anonymous id lives in localStorage. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.cxm && window.cxm.loaded) { return; }
  var base = script.src.replace(/\/inproduct\/cxm\.js.*$/, "");
  var state = { userId: script.getAttribute("data-user-id") || null, open: false };
  var KEY = "cxm_anonymous_id";

  function anonymousId() {
    try {
      var id = window.localStorage.getItem(KEY);
      if (!id) {
        id = "anon-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
        window.localStorage.setItem(KEY, id);
      }
      return id;
    } catch (e) { return null; }
  }

  function close(box, opener) {
    if (box && box.parentNode) { box.parentNode.removeChild(box); }
    state.open = false;
    if (opener && opener.focus) { opener.focus(); }
  }

  function show(answer) {
    if (!answer || !answer.show || state.open) { return; }
    state.open = true;
    var opener = document.activeElement;
    var box = document.createElement("div");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", answer.title || "Survey");
    box.setAttribute("data-cxm-survey", answer.survey || "");
    box.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483647;" +
      "width:min(380px,calc(100vw - 32px));height:min(540px,calc(100vh - 32px));" +
      "background:#fff;border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);overflow:hidden";
    var shut = document.createElement("button");
    shut.type = "button";
    shut.textContent = "\u00d7";
    shut.setAttribute("aria-label", "Close the survey");
    shut.style.cssText = "position:absolute;top:6px;right:8px;border:0;background:transparent;" +
      "font-size:24px;line-height:1;cursor:pointer;color:#333";
    shut.onclick = function () { close(box, opener); };
    var frame = document.createElement("iframe");
    frame.src = answer.url;
    frame.title = answer.title || "Survey";
    frame.style.cssText = "width:100%;height:100%;border:0";
    box.appendChild(frame);
    box.appendChild(shut);
    box.addEventListener("keydown", function (e) { if (e.key === "Escape") { close(box, opener); } });
    document.body.appendChild(box);
    shut.focus();
  }

  function check(event, properties) {
    var body = {
      user_id: state.userId, anonymous_id: anonymousId(), event: event,
      path: window.location.pathname, properties: properties || {}
    };
    // text/plain keeps this a simple cross-origin request (no preflight); the body is JSON.
    return window.fetch(base + "/inproduct/check", {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body)
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(show)
      .catch(function () { /* never break the host page */ });
  }

  window.cxm = {
    loaded: true,
    identify: function (userId) { state.userId = userId ? String(userId) : null; },
    track: function (event, properties) { return check(String(event), properties); }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { check("page_viewed"); });
  } else {
    check("page_viewed");
  }
})();
