// Managing the conversation from its page: rename it inline (Enter saves, Escape cancels) and
// delete it after a confirmation that names it. Every tab follows either (conversation.js).
(function () {
  "use strict";
  const heading = document.getElementById("conversation-title");
  const renameButton = document.getElementById("rename");
  const form = document.getElementById("rename-form");
  if (!heading || !renameButton || !form) return;
  const input = document.getElementById("rename-input");
  const error = document.getElementById("rename-error");
  const titleRow = heading.parentElement;

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  function open() {
    input.value = heading.textContent;
    showError("");
    titleRow.hidden = true;
    form.hidden = false;
    input.focus();
    input.select();
  }

  function close() {
    form.hidden = true;
    titleRow.hidden = false;
    renameButton.focus();
  }

  renameButton.hidden = false;
  renameButton.addEventListener("click", open);
  document.getElementById("rename-cancel").addEventListener("click", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();  // not the page's Escape, which stops a reply
      close();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const payload = await response.json().catch(() => ({}));
      if (!response.ok) {
        showError(payload.error || "The title could not be saved.");
        return;
      }
      window.ChatPage.showTitle(payload.title);
      close();
    } catch {
      showError("The title could not be saved (connection lost).");
    } finally {
      submit.disabled = false;
    }
  });

  // Delete: the dialog names the conversation; without the script, the link's own page does.
  const dialog = document.getElementById("delete-dialog");
  const link = document.getElementById("delete-link");
  if (dialog && link && typeof dialog.showModal === "function") {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      dialog.showModal();
    });
    dialog.querySelector(".dialog-cancel").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => link.focus());
  }
})();
