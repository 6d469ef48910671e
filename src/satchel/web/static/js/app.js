// What every page does: copy buttons, confirmations, and the CSRF token for scripts.

/** The CSRF token of this browser, for state-changing fetches (sent as X-CSRF-Token). */
export function csrfToken() {
  const field = document.querySelector("input[name=csrf_token]");
  if (field) return field.value;
  const meta = document.querySelector("meta[name=csrf-token]");
  return meta ? meta.content : "";
}

/** Copies text to the clipboard; says so on the button for a moment. */
export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (an http:// site): select the text so that Ctrl+C works.
    const field = button && document.getElementById(button.dataset.copy);
    if (field && field.select) field.select();
    return;
  }
  if (button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  }
}

function wireCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    if (button.dataset.wired) continue;
    button.dataset.wired = "1";
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copy);
      const text = target ? (target.value ?? target.textContent) : "";
      copy(text, button);
    });
  }
}

function wireConfirmations(root) {
  for (const form of root.querySelectorAll("form[data-confirm]")) {
    if (form.dataset.wired) continue;
    form.dataset.wired = "1";
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

export function wire(root = document) {
  wireCopyButtons(root);
  wireConfirmations(root);
}

document.documentElement.classList.add("js");
wire();
