// Satchel's service worker (a module worker, scope /): it saves end-to-end encrypted files
// to disk while they are decrypted, without holding them in memory.
//
// The share page posts {type: "satchel-e2e-save", ticket, id, secret} with a MessagePort,
// then opens /d/{id}/save?t={ticket}. This worker answers that request: it fetches
// /f/{id}/encrypted, decrypts it chunk by chunk and streams the plaintext as an attachment.
// The secret travels by postMessage only: never in a URL, never to the server. Every other
// request goes to the network untouched.

import { E2EError, openEncrypted, safeName } from "/static/js/e2e.js";

const TICKET_LIFETIME = 60 * 1000;
const PASSWORD_TRIES = 5;
const SAVE_PATH = /^\/d\/([0-9a-f-]{36})\/save$/;
const jobs = new Map(); // ticket → {id, secret, port}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const data = event.data || {};
  const port = event.ports && event.ports[0];
  if (data.type !== "satchel-e2e-save" || !port || typeof data.ticket !== "string") return;
  jobs.set(data.ticket, { id: data.id, secret: data.secret, port });
  setTimeout(() => jobs.delete(data.ticket), TICKET_LIFETIME);
  port.postMessage({ type: "ready" });
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const match = url.origin === self.location.origin && SAVE_PATH.exec(url.pathname);
  if (!match) return;
  const ticket = url.searchParams.get("t") || "";
  const job = jobs.get(ticket);
  if (!job || job.id !== match[1]) return; // the server sends the browser back to the page
  jobs.delete(ticket);
  event.respondWith(save(job));
});

async function save(job) {
  try {
    const encrypted = await fetch(`/f/${job.id}/encrypted`, {
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!encrypted.ok) {
      const answer = await encrypted.json().catch(() => ({}));
      throw new Error(answer.error || `the server answered ${encrypted.status}`);
    }
    const opened = await openEncrypted(encrypted.body);
    const meta = await unlock(opened, job);
    const name = safeName(meta.name);
    job.port.postMessage({ type: "start", name, size: meta.size });
    const body = reporting(opened.stream(), job.port, meta.size);
    return new Response(body, {
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": disposition(name),
        "Content-Length": String(meta.size),
        "X-Content-Type-Options": "nosniff",
      },
    });
  } catch (error) {
    job.port.postMessage({ type: "error", code: error.code || "", message: error.message });
    return new Response(null, { status: 204 }); // a 204 leaves the page where it is
  }
}

/** The secret from the page; a password asked again (over the port) while it is wrong. */
async function unlock(opened, job) {
  let secret = job.secret;
  for (let tries = 1; ; tries++) {
    try {
      return await opened.unlock(secret);
    } catch (error) {
      const again = error instanceof E2EError && opened.needsPassword && tries < PASSWORD_TRIES
        && (error.code === "wrong_key" || error.code === "secret_required");
      if (!again) throw error;
      secret = { password: await askPassword(job.port, error.code) };
      if (!secret.password) throw error;
    }
  }
}

function askPassword(port, code) {
  return new Promise((resolve) => {
    port.onmessage = (event) => {
      if (event.data && event.data.type === "password") resolve(String(event.data.password || ""));
    };
    port.postMessage({ type: "password", code });
  });
}

/** The plaintext, with progress, the end and any failure (tampered, truncated: the
 * download then fails, it never ends as if complete) told to the page. */
function reporting(stream, port, total) {
  const reader = stream.getReader();
  let done = 0;
  let last = 0;
  return new ReadableStream({
    async pull(controller) {
      let step;
      try {
        step = await reader.read();
      } catch (error) {
        port.postMessage({ type: "error", code: error.code || "", message: error.message });
        controller.error(error);
        return;
      }
      if (step.done) {
        port.postMessage({ type: "done", done, total });
        controller.close();
        return;
      }
      done += step.value.length;
      if (Date.now() - last > 200) {
        last = Date.now();
        port.postMessage({ type: "progress", done, total });
      }
      controller.enqueue(step.value);
    },
    cancel(reason) {
      port.postMessage({ type: "error", code: "cancelled", message: "the download was cancelled" });
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

function disposition(name) {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => "%" + c.charCodeAt(0).toString(16));
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
