// Satchel's end-to-end encryption format, SE2E version 1 (docs/e2e-format.md), with WebCrypto.
// The same bytes as satchel/crypto/e2e.py, both ways. Files are read chunk by chunk
// (file.slice) and streams decrypted chunk by chunk: a whole file is never held in memory.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export const KEY_SIZE = 32;
export const SALT_SIZE = 16;
export const TAG_SIZE = 16;
export const FIXED_HEADER_SIZE = 68;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = MAX_CHUNK_SIZE;
export const PBKDF2_ITERATIONS = 600000;
export const MIN_PBKDF2_ITERATIONS = 100000;
// A forged header must not freeze the tab for minutes before it can say "wrong password".
export const MAX_PBKDF2_ITERATIONS = 10000000;
const MAGIC = [0x53, 0x45, 0x32, 0x45]; // "SE2E"
const VERSION = 1;
const MODE_KEY = 1;
const MODE_PASSWORD = 2;
const METADATA_BLOCK = 128;
const MAX_METADATA_SIZE = 65536;
const MAX_CHUNKS = 2 ** 32;
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

export const MESSAGES = {
  bad_link: "the link's key is not valid",
  bad_header: "not a Satchel encrypted file",
  unsupported_version: "this encrypted file needs a newer version of Satchel",
  weak_kdf: "the password key derivation uses fewer than 100000 iterations",
  secret_required: "this file needs a password or the key from its link",
  wrong_key: "wrong key or password",
  tampered: "the file was altered",
  truncated: "the file is truncated",
  trailing_data: "the file has extra data after its last chunk",
};

/** An encrypted file or link that cannot be read; `code` is a code of docs/e2e-format.md §5. */
export class E2EError extends Error {
  constructor(code, message) {
    super(message || MESSAGES[code] || "cannot decrypt the file");
    this.name = "E2EError";
    this.code = code;
  }
}

// -- keys and links ------------------------------------------------------------------------

/** A new random 32-byte file key. */
export function newKey() {
  return crypto.getRandomValues(new Uint8Array(KEY_SIZE));
}

/** The key as it goes after `#k=`: 43 characters of unpadded base64url. */
export function keyText(key) {
  checkKey(key);
  let binary = "";
  for (const byte of key) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The key of a `#k=` value; E2EError bad_link unless it is canonical. */
export function keyFromText(text) {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new E2EError("bad_link");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
  const key = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (keyText(key) !== text) throw new E2EError("bad_link", "the link's key is not canonical");
  return key;
}

/** `location.hash` (with or without its `#`) → {key: Uint8Array | null, password: boolean}.
 * `password` says the link announced a password (`#p`); the header's mode decides. */
export function parseFragment(hash) {
  const text = String(hash || "").replace(/^#/, "");
  const items = text.split("&").filter(Boolean).map((item) => {
    const at = item.indexOf("=");
    return at < 0 ? [item, ""] : [item.slice(0, at), item.slice(at + 1)];
  });
  const keys = items.filter(([name]) => name === "k");
  if (keys.length > 1) throw new E2EError("bad_link", "the link has more than one key");
  return {
    key: keys.length ? keyFromText(keys[0][1]) : null,
    password: items.some(([name]) => name === "p"),
  };
}

/** `url#k=…` for a key, `url#p` (ask for the password) without one. */
export function shareLink(url, key) {
  return key ? `${url}#k=${keyText(key)}` : `${url}#p`;
}

function checkKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new TypeError(`a file key is ${KEY_SIZE} bytes (a Uint8Array)`);
  }
}

/** {key}, {password}, a Uint8Array key or a password string → {key, password}. */
function secretOf(secret) {
  if (secret instanceof Uint8Array) return { key: secret, password: null };
  if (typeof secret === "string") return { key: null, password: secret };
  return { key: secret?.key ?? null, password: secret?.password ?? null };
}

async function passwordKey(password, salt, iterations) {
  const material = await subtle.importKey(
    "raw", utf8.encode(password.normalize("NFC")), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, 256);
  return new Uint8Array(bits);
}

async function subkeys(fileKey, salt, usage) {
  const ikm = await subtle.importKey("raw", fileKey, "HKDF", false, ["deriveBits", "deriveKey"]);
  const params = (label) => ({
    name: "HKDF", hash: "SHA-256", salt, info: utf8.encode("satchel-e2e v1 " + label),
  });
  const aes = (label) => subtle.deriveKey(
    params(label), ikm, { name: "AES-GCM", length: 256 }, false, [usage]);
  return {
    check: new Uint8Array(await subtle.deriveBits(params("key check"), ikm, 256)),
    content: await aes("content"),
    metadata: await aes("metadata"),
  };
}

function nonce(index, last) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(7, index);
  iv[11] = last ? 1 : 0;
  return iv;
}

function chunkCount(size, chunkSize) {
  return Math.max(1, Math.ceil(size / chunkSize)); // an empty file is one empty chunk
}

function plainLength(index, size, chunkSize) {
  return Math.min(chunkSize, size - index * chunkSize);
}

function metadataPlaintext(name, type, size) {
  const text = utf8.encode(JSON.stringify({ name, type, size }));
  const padded = new Uint8Array(Math.ceil(text.length / METADATA_BLOCK) * METADATA_BLOCK);
  padded.fill(0x20);
  padded.set(text);
  return padded;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Blob length for a plaintext of `size` bytes with this name and type. */
export function encryptedSize(size, chunkSize, name, type) {
  const metaLen = metadataPlaintext(name, type, size).length + TAG_SIZE;
  return FIXED_HEADER_SIZE + metaLen + size + TAG_SIZE * chunkCount(size, chunkSize);
}

// -- writing -------------------------------------------------------------------------------

/**
 * Encrypts `file` (a Blob or File: anything with `size` and `slice`) for upload.
 * `secret`: {key} (32 bytes, for a #k= link), {password}, or a Uint8Array key.
 * `options.salt` and `options.iterations` exist for the test vectors.
 * Resolves to {size, header, chunks(), stream(), read(start, end)}: `size` is the blob's
 * length, `chunks()` an async iterator over the header then each sealed chunk, `read` any
 * byte range of the blob (chunks are sealed again on demand: the same bytes every time, so
 * a resumed upload fits what was sent before).
 */
export async function encryptor(file, name, type, secret, chunkSize = DEFAULT_CHUNK_SIZE,
                                options = {}) {
  const size = file.size;
  if (!(chunkSize >= MIN_CHUNK_SIZE && chunkSize <= MAX_CHUNK_SIZE)) {
    throw new RangeError(`chunk size must be ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes`);
  }
  if (!(size <= MAX_SIZE) || chunkCount(size, chunkSize) > MAX_CHUNKS) {
    throw new RangeError("file size out of range for this chunk size");
  }
  const salt = options.salt || crypto.getRandomValues(new Uint8Array(SALT_SIZE));
  const { mode, fileKey, iterations } = await writerKey(secretOf(secret), salt,
                                                       options.iterations ?? PBKDF2_ITERATIONS);
  const keys = await subkeys(fileKey, salt, "encrypt");
  const metadata = metadataPlaintext(String(name), String(type), size);
  const metaLen = metadata.length + TAG_SIZE;
  if (metaLen > MAX_METADATA_SIZE) throw new RangeError("file name or content type too long");
  const fixed = new Uint8Array(FIXED_HEADER_SIZE);
  const view = new DataView(fixed.buffer);
  fixed.set(MAGIC, 0);
  fixed[4] = VERSION;
  fixed[5] = mode;
  view.setUint32(8, chunkSize);
  view.setUint32(12, iterations);
  fixed.set(salt, 16);
  fixed.set(keys.check, 32);
  view.setUint32(64, metaLen);
  const sealedMeta = await subtle.encrypt(
    { name: "AES-GCM", iv: new Uint8Array(12), additionalData: fixed }, keys.metadata, metadata);
  const header = concat(fixed, new Uint8Array(sealedMeta));
  return new Writer(file, header, keys.content, chunkSize);
}

async function writerKey(secret, salt, iterations) {
  if (secret.key) {
    if (secret.password) throw new TypeError("give either a key or a password, not both");
    checkKey(secret.key);
    return { mode: MODE_KEY, fileKey: secret.key, iterations: 0 };
  }
  if (typeof secret.password !== "string") throw new TypeError("give a key or a password");
  if (!secret.password) throw new TypeError("the password must not be empty");
  if (!(iterations >= MIN_PBKDF2_ITERATIONS && iterations <= MAX_PBKDF2_ITERATIONS)) {
    throw new RangeError("PBKDF2 iterations out of range");
  }
  const fileKey = await passwordKey(secret.password, salt, iterations);
  return { mode: MODE_PASSWORD, fileKey, iterations };
}

class Writer {
  constructor(file, header, content, chunkSize) {
    this.file = file;
    this.header = header;
    this.content = content;
    this.chunkSize = chunkSize;
    this.plainSize = file.size;
    this.count = chunkCount(file.size, chunkSize);
    this.size = header.length + file.size + TAG_SIZE * this.count;
    this.cached = null; // the last sealed chunk: sequential reads seal each chunk once
  }

  /** Sealed chunk `index` of the file. */
  async chunk(index) {
    if (this.cached && this.cached.index === index) return this.cached.sealed;
    const start = index * this.chunkSize;
    const length = plainLength(index, this.plainSize, this.chunkSize);
    const plain = new Uint8Array(await this.file.slice(start, start + length).arrayBuffer());
    if (plain.length !== length) throw new Error("the file changed while it was encrypted");
    const sealed = new Uint8Array(await subtle.encrypt(
      { name: "AES-GCM", iv: nonce(index, index === this.count - 1), additionalData: this.header },
      this.content, plain));
    this.cached = { index, sealed };
    return sealed;
  }

  /** The header, then each sealed chunk. */
  async *chunks() {
    yield this.header;
    for (let index = 0; index < this.count; index++) yield await this.chunk(index);
  }

  /** The blob as a ReadableStream of Uint8Array. */
  stream() {
    const pieces = this.chunks();
    return new ReadableStream({
      async pull(controller) {
        const { value, done } = await pieces.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    }, { highWaterMark: 0 });
  }

  /** Bytes [start, end) of the blob. */
  async read(start, end = this.size) {
    start = Math.max(0, start);
    end = Math.min(end, this.size);
    const parts = [];
    let at = start;
    if (at < this.header.length && at < end) {
      parts.push(this.header.subarray(at, Math.min(end, this.header.length)));
      at = Math.min(end, this.header.length);
    }
    const stride = this.chunkSize + TAG_SIZE;
    while (at < end) {
      const offset = at - this.header.length;
      const index = Math.floor(offset / stride);
      const sealed = await this.chunk(index);
      const from = offset - index * stride;
      const upto = Math.min(sealed.length, from + (end - at));
      parts.push(sealed.subarray(from, upto));
      at += upto - from;
    }
    return parts.length === 1 ? parts[0].slice() : concat(...parts);
  }
}

// -- reading -------------------------------------------------------------------------------

/** Exact byte counts from a stream of pieces of any size. */
class ByteReader {
  constructor(source) {
    this.reader = readerOf(source);
    this.pieces = [];
    this.buffered = 0;
    this.ended = false;
  }

  async fill(count) {
    while (this.buffered < count && !this.ended) {
      const { value, done } = await this.reader.read();
      if (done) {
        this.ended = true;
      } else if (value && value.byteLength) {
        const piece = value instanceof Uint8Array ? value : new Uint8Array(value);
        this.pieces.push(piece);
        this.buffered += piece.length;
      }
    }
  }

  /** `count` bytes, fewer only when the input ends first. */
  async read(count) {
    await this.fill(count);
    const out = new Uint8Array(Math.min(count, this.buffered));
    let at = 0;
    while (at < out.length) {
      const piece = this.pieces[0];
      const take = Math.min(piece.length, out.length - at);
      out.set(piece.subarray(0, take), at);
      at += take;
      if (take === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(take);
    }
    this.buffered -= out.length;
    return out;
  }

  async atEnd() {
    await this.fill(1);
    return this.buffered === 0;
  }

  cancel(reason) {
    return this.reader.cancel(reason).catch(() => {});
  }
}

function readerOf(source) {
  if (source instanceof ReadableStream) return source.getReader();
  if (typeof Response !== "undefined" && source instanceof Response) return source.body.getReader();
  if (source instanceof Blob) return source.stream().getReader();
  const bytes = source instanceof ArrayBuffer ? new Uint8Array(source)
    : ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
      : null;
  if (!bytes) throw new TypeError("a ReadableStream, Response, Blob or bytes to decrypt");
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  }).getReader();
}

async function readHeader(reader) {
  const fixed = await reader.read(FIXED_HEADER_SIZE);
  if (fixed.length < 4 || MAGIC.some((byte, i) => fixed[i] !== byte)) {
    throw new E2EError("bad_header");
  }
  if (fixed.length > 4 && fixed[4] !== VERSION) {
    throw new E2EError("unsupported_version", `SE2E version ${fixed[4]} is not supported`);
  }
  if (fixed.length < FIXED_HEADER_SIZE) throw new E2EError("truncated");
  const view = new DataView(fixed.buffer, fixed.byteOffset, FIXED_HEADER_SIZE);
  const header = {
    fixed,
    mode: fixed[5],
    chunkSize: view.getUint32(8),
    iterations: view.getUint32(12),
    salt: fixed.slice(16, 32),
    keyCheck: fixed.slice(32, 64),
  };
  checkFields(header, view.getUint16(6), view.getUint32(64));
  const sealedMeta = await reader.read(view.getUint32(64));
  if (sealedMeta.length < view.getUint32(64)) throw new E2EError("truncated");
  header.sealedMeta = sealedMeta;
  header.raw = concat(fixed, sealedMeta);
  return header;
}

function checkFields({ mode, chunkSize, iterations }, reserved, metaLen) {
  if (mode !== MODE_KEY && mode !== MODE_PASSWORD) throw new E2EError("bad_header");
  if (reserved !== 0) throw new E2EError("bad_header");
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) throw new E2EError("bad_header");
  if (mode === MODE_KEY && iterations !== 0) throw new E2EError("bad_header");
  if (mode === MODE_PASSWORD && iterations < MIN_PBKDF2_ITERATIONS) throw new E2EError("weak_kdf");
  if (iterations > MAX_PBKDF2_ITERATIONS) throw new E2EError("bad_header");
  if (!(metaLen > TAG_SIZE && metaLen <= MAX_METADATA_SIZE)) throw new E2EError("bad_header");
}

function parseMetadata(plain, chunkSize) {
  let fields;
  try {
    fields = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch {
    throw new E2EError("bad_header", "the file's metadata is not valid JSON");
  }
  if (!fields || typeof fields !== "object" || Array.isArray(fields)) {
    throw new E2EError("bad_header", "the file's metadata is not a JSON object");
  }
  const { name, type, size } = fields;
  if (typeof name !== "string" || typeof type !== "string") {
    throw new E2EError("bad_header", "the file's metadata lacks a name or type");
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new E2EError("bad_header", "the file's metadata lacks a valid size");
  }
  if (chunkCount(size, chunkSize) > MAX_CHUNKS) throw new E2EError("bad_header");
  return { name, type, size };
}

/**
 * Reads and checks the header of an encrypted blob (a ReadableStream, a Response, a Blob or
 * bytes), so that a caller can see whether to ask for a password before decrypting.
 * Resolves to {mode, needsPassword, chunkSize, iterations, unlock(secret) → meta, stream()}.
 * `unlock` may be retried after wrong_key.
 */
export async function openEncrypted(source) {
  const reader = new ByteReader(source);
  let header;
  try {
    header = await readHeader(reader);
  } catch (error) {
    reader.cancel();
    throw error;
  }
  return new Opened(reader, header);
}

class Opened {
  constructor(reader, header) {
    this.reader = reader;
    this.header = header;
    this.mode = header.mode === MODE_KEY ? "key" : "password";
    this.needsPassword = header.mode === MODE_PASSWORD;
    this.chunkSize = header.chunkSize;
    this.iterations = header.iterations;
    this.meta = null;
    this.started = false;
  }

  /** Checks the key or password and decrypts the metadata: {name, type, size}. */
  async unlock(secret) {
    const { key, password } = secretOf(secret);
    const header = this.header;
    let fileKey = key;
    if (fileKey) {
      checkKey(fileKey);
    } else if (header.mode === MODE_KEY) {
      throw new E2EError("secret_required", "this file needs the key from its link (#k=…)");
    } else if (!password) {
      throw new E2EError("secret_required", "this file needs a password");
    } else {
      fileKey = await passwordKey(password, header.salt, header.iterations);
    }
    const keys = await subkeys(fileKey, header.salt, "decrypt");
    if (!keys.check.every((byte, i) => byte === header.keyCheck[i])) {
      throw new E2EError("wrong_key");
    }
    let plain;
    try {
      plain = await subtle.decrypt(
        { name: "AES-GCM", iv: new Uint8Array(12), additionalData: header.fixed },
        keys.metadata, header.sealedMeta);
    } catch {
      throw new E2EError("tampered", "the file's header was altered");
    }
    this.meta = parseMetadata(new Uint8Array(plain), header.chunkSize);
    this.content = keys.content;
    return this.meta;
  }

  /** The plaintext as a ReadableStream of Uint8Array; it errors with an E2EError when a
   * chunk fails, the blob ends early or has more after its last chunk. */
  stream() {
    if (!this.meta) throw new Error("unlock() first");
    if (this.started) throw new Error("a file is decrypted once");
    this.started = true;
    const { size } = this.meta;
    const { chunkSize, raw } = this.header;
    const count = chunkCount(size, chunkSize);
    const reader = this.reader;
    const content = this.content;
    let index = 0;
    return new ReadableStream({
      async pull(controller) {
        try {
          for (;;) { // until a chunk with bytes, or the end (an empty file has neither)
            if (index === count) {
              if (!(await reader.atEnd())) throw new E2EError("trailing_data");
              controller.close();
              return;
            }
            const want = plainLength(index, size, chunkSize) + TAG_SIZE;
            const sealed = await reader.read(want);
            if (sealed.length < want) throw new E2EError("truncated");
            const plain = await openChunk(content, index, index === count - 1, sealed, raw);
            index += 1;
            if (plain.length) {
              controller.enqueue(plain);
              return;
            }
          }
        } catch (error) {
          reader.cancel();
          controller.error(error);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }
}

async function openChunk(content, index, last, sealed, aad) {
  try {
    return new Uint8Array(await subtle.decrypt(
      { name: "AES-GCM", iv: nonce(index, last), additionalData: aad }, content, sealed));
  } catch {
    throw new E2EError("tampered", `chunk ${index} failed authentication`);
  }
}

/** Opens, unlocks and streams in one go: {meta, stream}. */
export async function decryptor(source, secret) {
  const opened = await openEncrypted(source);
  const meta = await opened.unlock(secret);
  return { meta, stream: opened.stream() };
}

/** The whole plaintext of a stream, as a Blob (for small files). */
export async function streamToBlob(stream, type = "application/octet-stream") {
  const parts = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return new Blob(parts, { type });
}

/** A file name from the metadata (untrusted) that is safe to save under and to show: as the
 * server's names are (core.names), without control and format characters, whose
 * bidirectional overrides would make "a\u202etxt.exe" read as "aexe.txt". */
export function safeName(name) {
  const base = String(name).split(/[/\\]/).pop().replace(/[\p{Cc}\p{Cf}]/gu, "")
    .trim().replace(/^\.+/, "");
  return base || "download";
}
