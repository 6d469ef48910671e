// The uploader of the home page and the drive: drag and drop (anywhere on the page), files and
// folders, progress with speed and time left, cancel; small uploads in one request, large ones
// through tus (resumable, also after a reload), end-to-end encryption in the browser.

import { copy, csrfToken } from "./app.js";
import { Aborted, TusUpload, fileSource, forget, storedUploads } from "./tus.js";

const MiB = 1024 * 1024;
const SMALL = 8 * MiB; // up to this, a file goes in one request
const ZIP_LIMIT = 512 * MiB; // several files go as one ZIP (one request) up to this in all
const CHUNK = 8 * MiB; // bytes per tus PATCH
const E2E_CHUNK = 4 * MiB; // plaintext per end-to-end encrypted chunk

const units = ["B", "KB", "MB", "GB", "TB"];
// Binary multiples, as the pages show sizes (web/templates.py human_size): 1.5 KB, 15 KB, 5 GB.
export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  const shown = value < 10 ? value.toFixed(1).replace(/\.0$/, "") : value.toFixed(0);
  return `${shown} ${units[unit]}`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Bytes per second over the last few seconds. */
class Speed {
  constructor() {
    this.samples = [];
  }
  add(bytes) {
    const now = performance.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 4000) this.samples.shift();
  }
  get value() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? Math.max(0, ((b1 - b0) * 1000) / (t1 - t0)) : 0;
  }
}

/** Files of a drop, folders walked (their path kept as the name inside the ZIP). */
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const found = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push({ file, path: prefix + file.name });
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  }
  for (const entry of entries) await walk(entry, "");
  return found;
}

function fingerprint(file, folderId) {
  return [file.name, file.size, file.lastModified, folderId || ""].join("|");
}

/** The upload options of the form, as /upload fields and tus metadata share them. */
function readOptions(form) {
  const value = (name) => form.elements[name]?.value ?? "";
  const checked = (name) => form.elements[name]?.checked ?? false;
  const options = {};
  if (value("expires")) options.expires = value("expires");
  const max = Number(value("max_downloads"));
  if (max > 0) options.max_downloads = String(max);
  if (checked("short_url")) options.short_url = "true";
  if (checked("public")) options.public = "false";
  const folder = form.dataset.folderId;
  if (folder !== undefined) {
    options.is_temp = "false";
    if (folder) options.folder_id = folder;
  }
  return { fields: options, password: value("password") };
}

class Item {
  constructor(list, template, name, size) {
    this.node = template.content.firstElementChild.cloneNode(true);
    this.node.querySelector(".name").textContent = name;
    this.node.querySelector(".size").textContent = formatBytes(size);
    this.bar = this.node.querySelector("progress");
    this.bar.setAttribute("aria-label", name);
    this.meta = this.node.querySelector(".meta");
    this.size = size;
    list.append(this.node);
  }
  show(sent, speed) {
    const share = this.size ? Math.min(100, (sent / this.size) * 100) : 100;
    this.bar.value = share;
    if (sent >= this.size) {
      this.meta.textContent = "Finishing";
      return;
    }
    const rate = speed ? ` · ${formatBytes(speed)}/s` : "";
    const left = speed ? ` · ${formatDuration((this.size - sent) / speed)} left` : "";
    this.meta.textContent = `${formatBytes(sent)} of ${formatBytes(this.size)}${rate}${left}`;
  }
  done(text) {
    this.bar.value = 100;
    this.meta.textContent = text;
    this.node.classList.add("done");
  }
  failed(text) {
    this.meta.textContent = text;
    this.node.classList.add("failed");
  }
}

export class Uploader {
  constructor(form) {
    this.form = form;
    this.$ = (selector) => form.ownerDocument.querySelector(selector);
    this.picked = [];
    this.running = [];
    this.cancelled = false;
    this.maxSize = Number(form.dataset.maxSize || 0);
    this.folderId = form.dataset.folderId;
    this.enhance();
  }

  enhance() {
    document.documentElement.classList.add("js");
    for (const node of this.form.querySelectorAll("[data-js-only]")) node.hidden = false;
    const input = this.$("#file-input");
    input.required = false;
    input.addEventListener("change", () => this.add(this.fromInput(input)));
    const folders = this.$("#folder-input");
    if (folders && "webkitdirectory" in folders) {
      folders.addEventListener("change", () => this.add(this.fromInput(folders)));
    } else if (folders) {
      folders.closest("label").hidden = true;
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.$("#cancel-button").addEventListener("click", () => this.cancel());
    const e2e = this.$("#opt-e2e");
    const password = this.form.elements.password;
    if (e2e && password) {
      // With end-to-end encryption the password makes the key: it never leaves the page.
      const label = password.closest("label").querySelector("span");
      const plain = label.textContent;
      e2e.addEventListener("change", () => {
        label.textContent = e2e.checked ? "Password that encrypts it (optional, never sent)" : plain;
      });
    }
    this.wireDrop();
    this.showUnfinished();
  }

  fromInput(input) {
    const files = [...input.files].map((file) => ({
      file,
      path: file.webkitRelativePath || file.name,
    }));
    input.value = "";
    return files;
  }

  wireDrop() {
    const zone = this.$("#dropzone");
    let depth = 0;
    document.addEventListener("dragenter", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      depth += 1;
      document.body.classList.add("dragging");
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) document.body.classList.remove("dragging");
    });
    document.addEventListener("dragover", (event) => event.preventDefault());
    document.addEventListener("drop", async (event) => {
      event.preventDefault();
      depth = 0;
      document.body.classList.remove("dragging");
      if (event.dataTransfer) this.add(await droppedFiles(event.dataTransfer));
    });
    zone.addEventListener("click", (event) => {
      if (event.target === zone) this.$("#file-input").click();
    });
  }

  add(files) {
    if (!files.length) return;
    this.error("");
    this.picked.push(...files);
    const list = this.$("#queue");
    list.replaceChildren();
    const template = this.$("#item-template");
    for (const entry of this.picked) {
      entry.item = new Item(list, template, entry.path, entry.file.size);
      entry.item.meta.textContent = "Ready";
    }
    this.$("#upload-button").textContent = "Upload";
  }

  showUnfinished() {
    const unfinished = storedUploads();
    const notice = this.$("#resume-notice");
    if (!unfinished.length) {
      notice.hidden = true;
      return;
    }
    const names = unfinished.map((entry) => entry.name || "a file").join(", ");
    this.$("#resume-text").textContent =
      `${unfinished.length} upload${unfinished.length > 1 ? "s" : ""} did not finish (${names}). ` +
      "Choose the same files again and upload: they continue where they stopped.";
    notice.hidden = false;
    this.$("#forget-button").onclick = async () => {
      for (const entry of unfinished) {
        forget(entry.key);
        fetch(entry.url, {
          method: "DELETE",
          headers: { "Tus-Resumable": "1.0.0", "X-CSRF-Token": csrfToken() },
        }).catch(() => {});
      }
      notice.hidden = true;
    };
  }

  error(text) {
    const node = this.$("#upload-error");
    node.textContent = text;
    node.hidden = !text;
  }

  busy(on) {
    this.$("#upload-button").disabled = on;
    this.$("#cancel-button").hidden = !on;
    this.$("#overall").hidden = !on && !this.picked.length;
    this.form.classList.toggle("busy", on);
  }

  /** What goes how: one ZIP request, single requests, tus, or encrypted tus uploads. */
  plan(options) {
    const e2e = this.$("#opt-e2e")?.checked;
    const zip = this.$("#opt-zip")?.checked ?? true;
    const total = this.picked.reduce((sum, entry) => sum + entry.file.size, 0);
    if (e2e) return this.picked.map((entry) => ({ kind: "e2e", entries: [entry] }));
    if (this.picked.length > 1 && zip && total <= ZIP_LIMIT) {
      return [{ kind: "form", entries: this.picked }];
    }
    return this.picked.map((entry) => ({
      kind: entry.file.size <= SMALL ? "form" : "tus",
      entries: [entry],
    }));
  }

  async run() {
    if (!this.picked.length) {
      this.error("Choose or drop the files to upload first.");
      return;
    }
    const tooBig = this.picked.find((entry) => this.maxSize && entry.file.size > this.maxSize);
    if (tooBig) {
      this.error(`${tooBig.path} is larger than ${formatBytes(this.maxSize)}, the limit here.`);
      return;
    }
    this.error("");
    this.cancelled = false;
    this.busy(true);
    const options = readOptions(this.form);
    const jobs = this.plan(options);
    const total = this.picked.reduce((sum, entry) => sum + entry.file.size, 0);
    const overall = { total, done: 0, speed: new Speed() };
    const results = [];
    try {
      for (const job of jobs) {
        if (this.cancelled) break;
        results.push(await this.runJob(job, options, overall));
        overall.done += job.entries.reduce((sum, entry) => sum + entry.file.size, 0);
      }
    } catch (error) {
      if (!(error instanceof Aborted)) this.error(error.message || String(error));
    } finally {
      this.running = [];
      this.busy(false);
    }
    this.finished(results);
  }

  finished(results) {
    if (!results.length) return;
    this.picked = [];
    this.showUnfinished();
    this.$("#queue").replaceChildren();
    this.$("#overall").hidden = true;
    this.form.dispatchEvent(new CustomEvent("satchel:uploaded", { detail: results, bubbles: true }));
    if (this.folderId !== undefined) {
      location.reload(); // the drive lists what came
      return;
    }
    for (const result of results) this.showResult(result);
    const first = this.$("#results").firstElementChild;
    if (first) {
      first.tabIndex = -1; // keyboard users land on the links
      first.focus({ preventScroll: true });
      first.scrollIntoView({ behavior: "smooth", block: "start" });
    }
  }

  progress(job, overall, sent) {
    let left = sent;
    overall.speed.add(overall.done + sent);
    const speed = overall.speed.value;
    for (const entry of job.entries) {
      const mine = Math.min(left, entry.file.size);
      entry.item.show(mine, speed);
      left -= mine;
    }
    const all = overall.done + sent;
    this.$("#overall-bar").value = overall.total ? (all / overall.total) * 100 : 100;
    const rest = speed ? ` · ${formatDuration((overall.total - all) / speed)} left` : "";
    this.$("#overall-text").textContent =
      `${formatBytes(all)} of ${formatBytes(overall.total)}` +
      (speed ? ` · ${formatBytes(speed)}/s${rest}` : "");
  }

  async runJob(job, options, overall) {
    const onProgress = (sent) => this.progress(job, overall, sent);
    let result;
    if (job.kind === "form") result = await this.sendForm(job.entries, options, onProgress);
    else if (job.kind === "tus") result = await this.sendTus(job.entries[0], options, onProgress);
    else result = await this.sendEncrypted(job.entries[0], options, onProgress);
    for (const entry of job.entries) entry.item.done("Uploaded");
    return result;
  }

  sendForm(entries, options, onProgress) {
    const body = new FormData();
    body.append("csrf_token", csrfToken());
    for (const [name, value] of Object.entries(options.fields)) body.append(name, value);
    if (options.password) body.append("password", options.password);
    for (const { file, path } of entries) body.append("files", file, path);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const handle = { abort: () => xhr.abort(), cancel: () => xhr.abort() };
      this.running.push(handle);
      xhr.open("POST", "/upload");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        let answer = {};
        try {
          answer = JSON.parse(xhr.responseText);
        } catch {
          answer = { error: `The server answered ${xhr.status}` };
        }
        if (xhr.status === 200) resolve(answer);
        else reject(new Error(answer.error || `The server answered ${xhr.status}`));
      };
      xhr.onerror = () => reject(new Error("The connection was lost: try again."));
      xhr.onabort = () => reject(new Aborted());
      xhr.send(body);
    }).then((result) => {
      // The request's progress counts the form's own bytes too: scale them to the files'.
      const size = entries.reduce((sum, entry) => sum + entry.file.size, 0);
      onProgress(size);
      return result;
    });
  }

  async sendTus({ file, path }, options, onProgress) {
    const metadata = { ...options.fields, filename: path, filetype: file.type };
    if (options.password) metadata.password = options.password;
    const upload = new TusUpload(fileSource(file), {
      metadata,
      chunkSize: CHUNK,
      fingerprint: fingerprint(file, this.folderId),
      onProgress,
    });
    this.running.push(upload);
    return upload.start();
  }

  async sendEncrypted({ file, path }, options, onProgress) {
    const e2e = await import("./e2e.js");
    const secret = options.password ? { password: options.password } : { key: e2e.newKey() };
    const name = path.split("/").pop();
    // Sealed a chunk at a time as the upload asks for its bytes: never the whole file.
    const sealed = await e2e.encryptor(file, name, file.type, secret, E2E_CHUNK);
    const source = {
      size: sealed.size,
      blob: async (start, end) => new Blob([await sealed.read(start, end)]),
    };
    // The server gets neither the name, the type nor the password: only the options.
    const upload = new TusUpload(source, {
      metadata: { ...options.fields, e2e: "v1" },
      chunkSize: CHUNK,
      fingerprint: null, // its key lives in this page only: nothing to resume after a reload
      onProgress: (sent) => onProgress((sent / sealed.size) * file.size),
    });
    this.running.push(upload);
    const result = await upload.start();
    result.name = name;
    result.size = file.size;
    result.share_url = e2e.shareLink(result.share_url, secret.key || null);
    result.password_mode = !secret.key;
    return result;
  }

  async cancel() {
    this.cancelled = true;
    for (const job of this.running) await job.cancel();
    for (const entry of this.picked) entry.item?.failed("Cancelled");
    this.error("Cancelled: nothing was kept.");
  }

  showResult(result) {
    const card = this.$("#result-template").content.firstElementChild.cloneNode(true);
    card.querySelector(".result-name").textContent = result.name;
    const files = result.files > 1 ? ` · ${result.files} files in one ZIP` : "";
    const expiry = result.expires_at
      ? ` · expires ${new Date(result.expires_at).toLocaleString()}`
      : "";
    card.querySelector(".result-meta").textContent = `${formatBytes(result.size)}${files}${expiry}`;
    const links = card.querySelector(".links");
    this.addLink(links, "Share link", result.share_url);
    if (!result.e2e) this.addLink(links, "Download link", result.download_url);
    if (result.short_url) this.addLink(links, "Short link", result.short_url);
    this.addLink(links, "Management link (keep it to yourself)", result.manage_url);
    if (result.e2e) {
      const note = card.querySelector(".e2e-note");
      if (result.password_mode) {
        note.textContent =
          "Encrypted with your password, which Satchel never saw: whoever opens the link needs it.";
      }
      note.hidden = false;
    } else {
      const qr = card.querySelector(".qr");
      qr.src = `/qr.svg?url=${encodeURIComponent(result.share_url)}`;
      qr.alt = `QR code of the share link of ${result.name}`;
      qr.hidden = false;
    }
    this.$("#results").prepend(card);
  }

  addLink(container, label, url) {
    const row = this.$("#link-template").content.firstElementChild.cloneNode(true);
    row.querySelector(".link-label").textContent = label;
    const field = row.querySelector(".link-value");
    field.value = url;
    field.setAttribute("aria-label", label);
    const button = row.querySelector("button");
    button.setAttribute("aria-label", `Copy the ${label.split(" (")[0].toLowerCase()}`);
    button.addEventListener("click", () => copy(url, button));
    container.append(row);
  }
}

const form = document.getElementById("uploader");
if (form) window.satchelUploader = new Uploader(form);
