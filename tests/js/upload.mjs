// Upload a file with tus-js-client, as a Node app integrating with Livepeer would.
// usage: node upload.mjs <tusEndpoint> <file> <chunkSize> [uploadUrl to resume]
// Prints {"url": <upload URL>, "bytes": <size>} on success; exits 1 with the error otherwise.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import * as tus from "tus-js-client";

const [endpoint, file, chunkSize, uploadUrl] = process.argv.slice(2);
const data = readFileSync(file);

const upload = new tus.Upload(data, {
  endpoint,
  uploadUrl: uploadUrl || null,
  chunkSize: Number(chunkSize),
  retryDelays: null,
  storeFingerprintForResuming: false,
  metadata: { filename: basename(file), filetype: "video/mp4" },
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url, bytes: data.length }));
  },
});
upload.start();
