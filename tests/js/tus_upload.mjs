// Uploads one file to a tus endpoint with tus-js-client under Node.
//
//   node tests/js/tus_upload.mjs ENDPOINT FILE [options]
//
//   --chunk-size N        bytes per PATCH (default 1 MiB + 7: never a multiple of the server's chunk)
//   --abort-after N       abort the upload once N PATCH requests have been answered
//   --url-storage PATH    remember the upload URL in PATH (tus-js-client's FileUrlStorage)
//   --resume              with --url-storage: find the previous upload of this file and resume it
//   --upload-url URL      resume the upload at URL
//   --header "Name: v"    an extra request header (repeatable), e.g. an Authorization header
//   --meta key=value      an Upload-Metadata field (repeatable); filename and filetype are set
//
// The last line on stdout is JSON: {"status": "complete"|"aborted", "url", "offset", "size",
// "chunks", "resumed", "headers"} (headers: the Satchel-* headers of the last response).
// Errors go to stderr with exit status 1.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { FileUrlStorage, Upload } from "tus-js-client";

function parseArgs(argv) {
  const [endpoint, file, ...rest] = argv;
  if (!endpoint || !file) {
    throw new Error("usage: tus_upload.mjs ENDPOINT FILE [options]");
  }
  const args = { endpoint, file, chunkSize: 1024 * 1024 + 7, headers: {}, metadata: {} };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = () => {
      if (i + 1 >= rest.length) throw new Error(`${flag} needs a value`);
      return rest[++i];
    };
    if (flag === "--chunk-size") args.chunkSize = Number(value());
    else if (flag === "--abort-after") args.abortAfter = Number(value());
    else if (flag === "--url-storage") args.urlStorage = value();
    else if (flag === "--resume") args.resume = true;
    else if (flag === "--upload-url") args.uploadUrl = value();
    else if (flag === "--header") {
      const [name, ...parts] = value().split(":");
      args.headers[name.trim()] = parts.join(":").trim();
    } else if (flag === "--meta") {
      const [key, ...parts] = value().split("=");
      args.metadata[key] = parts.join("=");
    } else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

function satchelHeaders(response) {
  const headers = {};
  for (const name of ["Satchel-Download-Url", "Satchel-Manage-Url", "Satchel-Short-Url"]) {
    const value = response?.getHeader(name);
    if (value) headers[name] = value;
  }
  return headers;
}

function run(args) {
  const data = readFileSync(args.file);
  let chunks = 0;
  let resumed = false;
  return new Promise((resolve, reject) => {
    const upload = new Upload(data, {
      endpoint: args.endpoint,
      uploadUrl: args.uploadUrl ?? null,
      chunkSize: args.chunkSize,
      // A failed request is retried from the offset HEAD reports.
      retryDelays: [0, 500, 1500],
      headers: args.headers,
      metadata: { filename: basename(args.file), filetype: "application/octet-stream", ...args.metadata },
      // Without --url-storage the client's default (remember nothing) stays.
      ...(args.urlStorage ? { urlStorage: new FileUrlStorage(args.urlStorage) } : {}),
      storeFingerprintForResuming: Boolean(args.urlStorage),
      removeFingerprintOnSuccess: true,
      onChunkComplete(_chunkSize, bytesAccepted) {
        chunks += 1;
        if (args.abortAfter !== undefined && chunks >= args.abortAfter) {
          upload.abort().then(
            () => resolve({ status: "aborted", url: upload.url, offset: bytesAccepted, size: data.length, chunks, resumed, headers: {} }),
            reject,
          );
        }
      },
      onSuccess({ lastResponse }) {
        resolve({ status: "complete", url: upload.url, offset: data.length, size: data.length, chunks, resumed, headers: satchelHeaders(lastResponse) });
      },
      onError: reject,
    });
    const start = args.resume
      ? upload.findPreviousUploads().then((previous) => {
          if (previous.length === 0) throw new Error("no previous upload of this file to resume");
          resumed = true;
          upload.resumeFromPreviousUpload(previous[0]);
        })
      : Promise.resolve();
    start.then(() => upload.start(), reject);
  });
}

try {
  const outcome = await run(parseArgs(process.argv.slice(2)));
  // Exit at once: a kept-alive socket would hold the process open.
  process.stdout.write(`${JSON.stringify(outcome)}\n`, () => process.exit(0));
} catch (error) {
  process.stderr.write(`tus upload failed: ${error?.stack ?? error}\n`, () => process.exit(1));
}
