// The drive pages without a script are plain forms; this adds select-all, a count of the
// ticked items, buttons that only work with the right selection, confirmations and a
// Rename dialog per row, and folds the folder tree on a phone.
import { csrfToken, wire } from "/static/js/app.js";

const PHONE = window.matchMedia("(max-width: 52rem)");

function foldTreeOnPhone() {
  const box = document.querySelector(".drive-tree-box");
  if (!box) return;
  box.open = !PHONE.matches;
  PHONE.addEventListener("change", () => { box.open = !PHONE.matches; });
}

function itemBoxes(form) {
  return [...form.querySelectorAll("input[type=checkbox][name=item]")];
}

function describe(ticked) {
  if (ticked.length === 0) return "Tick items, then choose what to do with them.";
  const folders = ticked.filter((box) => box.value.startsWith("folder-")).length;
  const files = ticked.length - folders;
  const parts = [];
  if (folders) parts.push(`${folders} folder${folders === 1 ? "" : "s"}`);
  if (files) parts.push(`${files} file${files === 1 ? "" : "s"}`);
  return `${parts.join(" and ")} selected`;
}

function button(form, action) {
  return form.querySelector(`button[formaction="${action}"]`);
}

function update(form) {
  const boxes = itemBoxes(form);
  const ticked = boxes.filter((box) => box.checked);
  for (const box of boxes) box.closest("tr").classList.toggle("selected", box.checked);
  const all = form.querySelector("#drive-all");
  all.checked = ticked.length > 0 && ticked.length === boxes.length;
  all.indeterminate = ticked.length > 0 && ticked.length < boxes.length;
  form.querySelector("#drive-count").textContent = describe(ticked);
  const anyFolder = ticked.some((box) => box.value.startsWith("folder-"));
  button(form, "/drive/move").disabled = ticked.length === 0;
  button(form, "/drive/delete").disabled = ticked.length === 0;
  button(form, "/drive/copy").disabled = ticked.length === 0 || anyFolder;
  button(form, "/drive/rename").disabled = ticked.length !== 1;
  const name = form.querySelector("#drive-new-name");
  if (ticked.length === 1 && (!name.value || name.dataset.filled === "1")) {
    name.value = ticked[0].closest("tr").dataset.name;
    name.dataset.filled = "1";
  }
}

function wireSelection(form) {
  const all = form.querySelector("#drive-all");
  all.hidden = false;
  all.addEventListener("change", () => {
    for (const box of itemBoxes(form)) box.checked = all.checked;
    update(form);
  });
  for (const box of itemBoxes(form)) box.addEventListener("change", () => update(form));
  form.querySelector("#drive-new-name").addEventListener("input", (event) => {
    event.target.dataset.filled = "";
  });
  update(form);
}

function wireConfirmButtons(root) {
  for (const confirming of root.querySelectorAll("button[data-confirm-button]")) {
    confirming.addEventListener("click", (event) => {
      if (!window.confirm(confirming.dataset.confirmButton)) event.preventDefault();
    });
  }
}

function renameDialog() {
  const dialog = document.createElement("dialog");
  dialog.className = "drive-dialog";
  dialog.setAttribute("aria-labelledby", "rename-title");
  dialog.innerHTML = `
    <form method="post" action="/drive/rename">
      <h2 id="rename-title">Rename</h2>
      <input type="hidden" name="csrf_token">
      <input type="hidden" name="item">
      <input type="hidden" name="here">
      <label class="field" for="rename-name"><span>New name</span>
        <input type="text" id="rename-name" name="name" maxlength="255" required autocomplete="off">
      </label>
      <div class="actions">
        <button type="submit">Rename</button>
        <button type="button" class="secondary" value="cancel">Cancel</button>
      </div>
    </form>`;
  dialog.querySelector("button[value=cancel]").addEventListener("click", () => dialog.close());
  document.body.append(dialog);
  return dialog;
}

function wireRenameButtons(form) {
  let dialog = null;
  const here = form.querySelector("input[name=here]").value;
  for (const row of form.querySelectorAll("tbody tr")) {
    const box = row.querySelector("input[name=item]");
    const cell = row.querySelector(".drive-row-actions");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = "Rename";
    open.setAttribute("aria-label", `Rename ${row.dataset.name}`);
    open.addEventListener("click", () => {
      dialog = dialog || renameDialog();
      const field = (name) => dialog.querySelector(`input[name=${name}]`);
      field("csrf_token").value = csrfToken();
      field("item").value = box.value;
      field("here").value = here;
      field("name").value = row.dataset.name;
      dialog.showModal();
      field("name").select();
    });
    cell.prepend(open);
  }
}

function start() {
  foldTreeOnPhone();
  wireConfirmButtons(document);
  const form = document.getElementById("drive-items");
  if (form) {
    wireSelection(form);
    wireRenameButtons(form);
  }
  wire();
}

start();
