// A small tus 1.0 client (creation, HEAD resume, PATCH with upload progress, termination),
// made for Satchel's pages: it sends the page's CSRF token and remembers unfinished uploads in
// localStorage so that a reloaded page resumes them when the same file is picked again.

import { csrfToken } from "./app.js";

const VERSION = "1.0.0";
const STORE_PREFIX = "satchel.tus.";
const DEFAULT_RETRIES = [0, 1000, 3000, 5000, 10000, 20000];

/** Why an upload stopped for good (not retried): a refusal by the server. */
export class UploadError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export class Aborted extends Error {
  constructor() {
    super("Cancelled");
  }
}

/** A File (or Blob) as the upload source: byte ranges as Blobs, read lazily by the browser. */
export function fileSource(file) {
  return { size: file.size, blob: async (start, end) => file.slice(start, end) };
}

function encodeMetadata(metadata) {
  const encoder = new TextEncoder();
  return Object.entries(metadata)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => {
      const bytes = encoder.encode(String(value));
      let text = "";
      for (const byte of bytes) text += String.fromCharCode(byte);
      return `${key} ${btoa(text)}`;
    })
    .join(",");
}

function errorText(xhr) {
  try {
    return JSON.parse(xhr.responseText).error || `HTTP ${xhr.status}`;
  } catch {
    return xhr.status ? `HTTP ${xhr.status}` : "The connection was lost";
  }
}

/** Unfinished uploads this browser remembers: [{key, name, size, url, started}]. */
export function storedUploads() {
  const found = [];
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(STORE_PREFIX)) continue;
    try {
      found.push({ key, ...JSON.parse(localStorage.getItem(key)) });
    } catch {
      localStorage.removeItem(key);
    }
  }
  return found;
}

export function forget(key) {
  localStorage.removeItem(key);
}

export class TusUpload {
  /**
   * source: {size, blob(start, end)}; options: endpoint, metadata, chunkSize, fingerprint
   * (remember the upload under it; null for uploads that must not outlive the page),
   * onProgress(sentBytes, totalBytes), retryDelays (ms).
   */
  constructor(source, options = {}) {
    this.source = source;
    this.endpoint = options.endpoint || "/tus/";
    this.metadata = options.metadata || {};
    this.chunkSize = options.chunkSize || 8 * 1024 * 1024;
    this.fingerprint = options.fingerprint || null;
    this.onProgress = options.onProgress || (() => {});
    this.retryDelays = options.retryDelays || DEFAULT_RETRIES;
    this.url = null;
    this.offset = 0;
    this.xhr = null;
    this.aborted = false;
    this.resumed = false;
  }

  get storeKey() {
    return this.fingerprint ? STORE_PREFIX + this.fingerprint : null;
  }

  /** Uploads everything; resolves with the upload's answer (the links), as /upload gives it. */
  async start() {
    await this.locate();
    let failures = 0;
    let stale = false; // after a failure the server's offset is asked for again
    while (this.offset < this.source.size) {
      this.check();
      try {
        if (stale) await this.refreshOffset();
        stale = false;
        await this.sendChunk();
        failures = 0;
      } catch (error) {
        if (error instanceof UploadError || error instanceof Aborted) throw error;
        if (failures >= this.retryDelays.length) throw error;
        await this.pause(this.retryDelays[failures]);
        this.check();
        failures += 1;
        stale = true;
      }
    }
    if (this.source.size === 0) this.onProgress(0, 0);
    const result = await this.request("GET", `${this.url}/result`);
    if (this.storeKey) forget(this.storeKey);
    return JSON.parse(result.responseText);
  }

  /** Stops sending; what the server has is kept, so start() later resumes. */
  abort() {
    this.aborted = true;
    if (this.xhr) this.xhr.abort();
  }

  /** Stops and asks the server to discard what it has. */
  async cancel() {
    this.abort();
    if (this.storeKey) forget(this.storeKey);
    if (!this.url) return;
    try {
      await this.request("DELETE", this.url, null, {}, true);
    } catch {
      // Already gone or unreachable: the server's sweep removes unfinished uploads.
    }
  }

  check() {
    if (this.aborted) throw new Aborted();
  }

  pause(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async locate() {
    const stored = this.storeKey && localStorage.getItem(this.storeKey);
    if (stored) {
      try {
        this.url = JSON.parse(stored).url;
        await this.refreshOffset();
        this.resumed = true;
        this.onProgress(this.offset, this.source.size);
        return;
      } catch {
        forget(this.storeKey);
        this.url = null;
        this.offset = 0;
      }
    }
    await this.create();
  }

  async create() {
    const headers = { "Upload-Length": String(this.source.size) };
    const encoded = encodeMetadata(this.metadata);
    if (encoded) headers["Upload-Metadata"] = encoded;
    const xhr = await this.request("POST", this.endpoint, null, headers);
    this.url = new URL(xhr.getResponseHeader("Location"), location.href).href;
    this.offset = 0;
    if (this.storeKey) {
      const record = {
        url: this.url,
        name: this.metadata.filename || "",
        size: this.source.size,
        started: Date.now(),
      };
      localStorage.setItem(this.storeKey, JSON.stringify(record));
    }
  }

  async refreshOffset() {
    const xhr = await this.request("HEAD", this.url);
    const length = Number(xhr.getResponseHeader("Upload-Length"));
    if (length !== this.source.size) throw new UploadError("This is not the same file", 409);
    this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
  }

  async sendChunk() {
    const end = Math.min(this.offset + this.chunkSize, this.source.size);
    const body = await this.source.blob(this.offset, end);
    this.check();
    const start = this.offset;
    const headers = {
      "Upload-Offset": String(start),
      "Content-Type": "application/offset+octet-stream",
    };
    const xhr = await this.request("PATCH", this.url, body, headers, false, (sent) => {
      this.onProgress(start + sent, this.source.size);
    });
    this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
    this.onProgress(this.offset, this.source.size);
  }

  /**
   * One request. Resolves with the XHR on 2xx; rejects with UploadError on a refusal that a
   * retry cannot fix (4xx other than 409/423/429) and with a plain Error otherwise (retried).
   */
  request(method, url, body = null, headers = {}, quiet = false, onSent = null) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", VERSION);
      const token = csrfToken();
      if (token) xhr.setRequestHeader("X-CSRF-Token", token);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      if (onSent) xhr.upload.onprogress = (event) => onSent(event.loaded);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
        const retryable = xhr.status >= 500 || [409, 423, 429].includes(xhr.status);
        const message = errorText(xhr);
        reject(retryable && !quiet ? new Error(message) : new UploadError(message, xhr.status));
      };
      xhr.onerror = () => reject(new Error("The connection was lost"));
      xhr.onabort = () => reject(new Aborted());
      xhr.send(body);
    });
  }
}
