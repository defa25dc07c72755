// Behaviours any page gets by markup alone; every page works without them.
//   <button type="button" class="copy" data-copy="#element-id">Copy</button>
//     copies the text of #element-id to the clipboard.
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function flash(button, label, cls) {
    var original = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", original);
    button.textContent = label;
    button.classList.add(cls);
    window.setTimeout(function () {
      button.textContent = original;
      button.classList.remove(cls);
    }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy[data-copy]") : null;
    if (!button) { return; }
    event.preventDefault();
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    copyText(source.textContent).then(
      function () { flash(button, "Copied", "copied"); },
      function () { flash(button, "Select and copy", "failed"); }
    );
  });

  // Copy buttons are useless without this script: show them only once it runs.
  document.documentElement.classList.add("js");
})();
