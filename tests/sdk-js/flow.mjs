// Upload → ready → list → update → playback → delete with the official TypeScript SDK.
// Usage: node flow.mjs <root url, e.g. http://127.0.0.1:3000> <api key> <media file>
// Prints one JSON object with what the SDK returned at each step.
import { readFile } from "node:fs/promises";
import { Livepeer } from "livepeer";

const [root, apiKey, mediaPath] = process.argv.slice(2);
const lp = new Livepeer({ apiKey, serverURL: `${root}/api` });
const out = {};

const created = await lp.asset.create({ name: "from-typescript.mp4" });
out.createdPhase = created.data.asset.status.phase;
const put = await fetch(created.data.url, { method: "PUT", body: await readFile(mediaPath) });
out.putStatus = put.status;

const advance = await fetch(`${root}/_emulator/clock/advance`, {
  method: "POST",
  headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
  body: JSON.stringify({ seconds: 10 }),
});
out.advanceStatus = advance.status;

const id = created.data.asset.id;
const ready = (await lp.asset.get(id)).asset;
out.readyPhase = ready.status.phase;
out.duration = ready.videoSpec.duration;
out.hasPlaybackUrl = Boolean(ready.playbackUrl);
out.listed = (await lp.asset.getAll()).data.map((a) => a.id).includes(id);
out.renamed = (await lp.asset.update({ name: "renamed" }, id)).asset.name;
out.taskPhase = (await lp.task.get(created.data.task.id)).task.status.phase;
out.playbackType = (await lp.playback.get(ready.playbackId)).playbackInfo.type;

const viaUrl = await lp.asset.createViaUrl({ name: "imported", url: `${root}/nowhere.mp4` });
out.importStatus = viaUrl.statusCode;
out.importPhase = viaUrl.twoHundredAndOneApplicationJsonData.asset.status.phase;

await lp.asset.delete(id);
try {
  await lp.asset.get(id);
  out.afterDelete = "still there";
} catch (err) {
  out.afterDelete = err.statusCode;
}
console.log(JSON.stringify(out));
