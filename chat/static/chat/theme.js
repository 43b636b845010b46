// Light or dark: the system's preference unless the person chose one (remembered in this
// browser). Loaded in <head>, before the page is painted, so it never flashes the other theme.
(function () {
  "use strict";
  const KEY = "chatsite-theme";
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const CHOICES = ["auto", "dark", "light"];
  const LABELS = { auto: "Theme: system", dark: "Theme: dark", light: "Theme: light" };

  function chosen() {
    try {
      const value = window.localStorage.getItem(KEY);
      return CHOICES.includes(value) ? value : "auto";
    } catch {
      return "auto";  // storage refused (a private window): follow the system
    }
  }

  function apply() {
    const choice = chosen();
    const theme = choice === "auto" ? (dark.matches ? "dark" : "light") : choice;
    document.documentElement.dataset.theme = theme;
    const button = document.getElementById("theme-toggle");
    if (button) {
      button.textContent = LABELS[choice];
      const next = CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length];
      button.title = `Switch to: ${LABELS[next].replace("Theme: ", "")}`;
    }
  }

  apply();
  dark.addEventListener("change", apply);
  // Another tab changed it: follow.
  window.addEventListener("storage", (event) => { if (event.key === KEY) apply(); });
  document.addEventListener("DOMContentLoaded", () => {
    apply();
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      const next = CHOICES[(CHOICES.indexOf(chosen()) + 1) % CHOICES.length];
      try { window.localStorage.setItem(KEY, next); } catch { /* not remembered */ }
      if (next === "auto") { try { window.localStorage.removeItem(KEY); } catch { /* */ } }
      apply();
    });
  });
})();
