// The share page of an end-to-end encrypted file: the key comes from location.hash (#k=…),
// or a password is asked; the file is decrypted here and saved. The secret never goes into
// a URL, a request or the page's markup: the service worker gets it by postMessage.
//
// Saving streams to disk through the service worker (sw.js answers /d/{id}/save); where
// there is none (a browser without module service workers, a private window that refuses
// them), a file up to BLOB_LIMIT is decrypted into memory and saved from a Blob.

import { E2EError, MESSAGES, openEncrypted, parseFragment, safeName } from "/static/js/e2e.js";

const BLOB_LIMIT = 256 * 1024 * 1024;
const WORKER_TIMEOUT = 10000;

const root = document.getElementById("e2e");
const id = root.dataset.id;
const size = Number(root.dataset.size);
const form = document.getElementById("e2e-form");
const passwordField = document.getElementById("e2e-password-field");
const passwordInput = document.getElementById("e2e-password");
const button = document.getElementById("e2e-download");
const status = document.getElementById("e2e-status");
const bar = document.getElementById("e2e-progress");
const title = document.getElementById("e2e-name");

let link = { key: null, password: false };
let answerPassword = null; // set while the worker waits for a password
const worker = registerWorker();

function say(text, kind = "muted") {
  status.textContent = text;
  status.className = kind;
}

function describe(error) {
  if (error instanceof E2EError) return MESSAGES[error.code] ? capital(MESSAGES[error.code]) : error.message;
  return capital(error.message || String(error));
}

function capital(text) {
  return text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith(".") ? "" : ".");
}

function setState(state) {
  root.dataset.state = state; // for people's styles and for tests: idle, working, done, error
  button.disabled = state === "working";
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    await navigator.serviceWorker.register("/sw.js", { type: "module", scope: "/" });
    const ready = await Promise.race([
      navigator.serviceWorker.ready,
      new Promise((resolve) => setTimeout(() => resolve(null), WORKER_TIMEOUT)),
    ]);
    return ready ? ready.active : null;
  } catch {
    return null;
  }
}

function secret() {
  if (link.key) return { key: link.key };
  return { password: passwordInput.value };
}

function showProgress(done, total) {
  bar.hidden = false;
  bar.max = total || 1;
  bar.value = done;
}

/** Streams the file to disk through the service worker; resolves when it is saved. */
export async function saveWithWorker(active, given = secret()) {
  const channel = new MessageChannel();
  const ticket = Array.from(crypto.getRandomValues(new Uint8Array(16)),
                            (b) => b.toString(16).padStart(2, "0")).join("");
  const port = channel.port1;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the service worker did not answer")), WORKER_TIMEOUT);
    port.onmessage = (event) => {
      if (event.data && event.data.type === "ready") {
        clearTimeout(timer);
        resolve();
      }
    };
    active.postMessage({ type: "satchel-e2e-save", ticket, id, secret: given }, [channel.port2]);
  });
  return new Promise((resolve, reject) => {
    port.onmessage = (event) => onWorkerMessage(event.data || {}, port, resolve, reject);
    const frame = document.createElement("iframe");
    frame.hidden = true;
    frame.title = "download";
    frame.src = `/d/${id}/save?t=${ticket}`;
    document.body.append(frame);
    setTimeout(() => frame.remove(), 60 * 60 * 1000);
  });
}

function onWorkerMessage(data, port, resolve, reject) {
  if (data.type === "start") {
    title.textContent = data.name || "End-to-end encrypted file";
    say(`Decrypting ${data.name}…`);
    showProgress(0, data.size);
  } else if (data.type === "progress") {
    showProgress(data.done, data.total);
  } else if (data.type === "done") {
    showProgress(data.total, data.total);
    resolve();
  } else if (data.type === "password") {
    passwordField.hidden = false;
    passwordInput.value = "";
    passwordInput.focus();
    say(data.code === "wrong_key" ? "Wrong password, try again." : "Enter the password.", "error");
    button.disabled = false;
    answerPassword = (password) => port.postMessage({ type: "password", password });
  } else if (data.type === "error") {
    reject(data.code ? new E2EError(data.code, data.message) : new Error(data.message));
  }
}

/** Decrypts in memory and saves from a Blob: for small files where there is no worker. */
export async function saveWithBlob(given = secret()) {
  if (size > BLOB_LIMIT) {
    throw new Error("this browser cannot save a file this large while decrypting it; use the satchel CLI");
  }
  const response = await fetch(`/f/${id}/encrypted`, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error(answer.error || `the server answered ${response.status}`);
  }
  const opened = await openEncrypted(response.body);
  const meta = await opened.unlock(given);
  title.textContent = safeName(meta.name);
  const parts = [];
  let done = 0;
  const reader = opened.stream().getReader();
  for (;;) {
    const step = await reader.read();
    if (step.done) break;
    parts.push(step.value);
    done += step.value.length;
    showProgress(done, meta.size);
  }
  showProgress(meta.size, meta.size);
  const url = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = safeName(meta.name);
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60 * 1000);
}

async function start() {
  setState("working");
  say("Fetching the encrypted file…");
  try {
    const active = await worker;
    if (active) await saveWithWorker(active);
    else await saveWithBlob();
    setState("done");
    say("Saved. It was decrypted in this browser.", "ok");
  } catch (error) {
    setState("error");
    say(describe(error), "error");
  } finally {
    answerPassword = null;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (answerPassword) {
    const answer = answerPassword;
    answerPassword = null;
    button.disabled = true;
    say("Checking the password…");
    answer(passwordInput.value);
    return;
  }
  if (!link.key && !passwordInput.value) {
    passwordInput.focus();
    say("Enter the password.", "error");
    return;
  }
  start();
});

function init() {
  say("");
  try {
    link = parseFragment(location.hash);
  } catch (error) {
    setState("error");
    say(describe(error) + " Check that the whole link was copied.", "error");
    button.disabled = true;
    return;
  }
  passwordField.hidden = Boolean(link.key);
  passwordInput.required = !link.key;
  if (!link.key) {
    say(link.password ? "This file is protected by a password."
      : "This link has no key after #. If the file has a password, enter it; otherwise ask for the whole link.");
  }
  setState("idle");
}

init();
window.addEventListener("hashchange", init); // a key pasted after the page opened
