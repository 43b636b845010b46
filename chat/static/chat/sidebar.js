// On a phone the conversation list slides out from the left behind the menu button; Escape, the
// button again or a tap beside it closes it, and focus goes back where it was.
(function () {
  "use strict";
  const button = document.getElementById("menu-toggle");
  const sidebar = document.getElementById("sidebar");
  if (!button || !sidebar) return;
  const backdrop = document.getElementById("sidebar-backdrop");

  function setOpen(open) {
    document.body.classList.toggle("sidebar-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      const first = sidebar.querySelector("button, a");
      if (first) first.focus();
    } else if (sidebar.contains(document.activeElement)) {
      button.focus();
    }
  }

  button.hidden = false;
  button.addEventListener("click", () => setOpen(!document.body.classList.contains("sidebar-open")));
  if (backdrop) backdrop.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("sidebar-open")) {
      event.stopImmediatePropagation();  // not a Stop of the reply
      setOpen(false);
    }
  }, true);
})();
