// Drives clients/js/wsstack.js under Node for tests/js_client.rs: commands arrive on stdin as JSON
// lines (see drive.mjs), everything the client reports leaves on stdout as JSON lines. The test on
// the other end plays the server's side (events, closing connections) against `wsstack dev`.
//
//   node driver.mjs <stage url> <options JSON>
import { createInterface } from "node:readline";

import { drive } from "./drive.mjs";

const [url, optionsText] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

// The module from a file, or from `wsstack dev`'s /client.js as a page on another origin fetches
// it (Node imports no http: URL; the text is imported as a data: URL instead).
let moduleUrl = process.env.WSSTACK_CLIENT_MODULE;
if (moduleUrl.startsWith("http")) {
  const response = await fetch(moduleUrl, { headers: { Origin: "http://localhost:3000" } });
  const text = await response.text();
  say({ event: "module", status: response.status, cors: response.headers.get("access-control-allow-origin"), text });
  moduleUrl = "data:text/javascript;base64," + Buffer.from(text).toString("base64");
}
const { WsstackClient } = await import(moduleUrl);

const command = drive(WsstackClient, url, JSON.parse(optionsText ?? "{}"), say);
for await (const line of createInterface({ input: process.stdin })) {
  const parsed = JSON.parse(line);
  command(parsed);
  if (parsed.cmd === "close") {
    process.exit(0);
  }
}
