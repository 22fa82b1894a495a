// Drives clients/js/wsstack.js under Node for tests/js_client.rs: commands arrive on stdin as JSON
// lines, everything the client reports leaves on stdout as JSON lines. The test on the other end
// plays the server's side (events, closing connections) against `wsstack dev`.
//
//   node driver.mjs <stage url> <options JSON>
// options: {"tokens": true} makes the token function ask the test for each token ({"event":"token?"})
// and wait for {"cmd":"token","token":...}; the rest is passed to WsstackClient.
import { createInterface } from "node:readline";

const [url, optionsText] = process.argv.slice(2);
const { tokens, ...options } = JSON.parse(optionsText ?? "{}");
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

const waitingForToken = [];
if (tokens) {
  options.token = () => {
    say({ event: "token?" });
    return new Promise((resolve) => waitingForToken.push(resolve));
  };
}

const client = new WsstackClient(url, options);
for (const type of ["state", "entity", "user", "acknowledged", "unsubscribed", "resync", "error", "disconnected"]) {
  client.addEventListener(type, (event) => say({ event: type, detail: event.detail }));
}

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  try {
    switch (command.cmd) {
      case "subscribe":
        client.subscribe(command.entityId).then((ack) => say({ event: "subscribe resolved", detail: ack }));
        break;
      case "token":
        waitingForToken.shift()?.(command.token);
        break;
      case "close":
        client.close();
        process.exit(0);
    }
  } catch (error) {
    say({ event: "driver error", message: String(error) });
  }
}
