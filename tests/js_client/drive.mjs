// The client as the tests drive it, in Node (driver.mjs) and in Chromium (tests/js_browser/page.py's
// page) alike: `drive` makes a WsstackClient, reports everything it emits through `say` as plain
// objects, and returns the function that runs the test's commands:
//   {"cmd":"subscribe","entityId":X}   subscribe; its promise reports {"event":"subscribe resolved"}
//   {"cmd":"send","frame":{...}}       a frame of the caller's choosing, through client.send
//   {"cmd":"token","token":T}          answers the token function's oldest call (null: no token)
//   {"cmd":"close"}                    closes for good
// options: {"tokens": true} makes the token function ask the test for each token ({"event":"token?"})
// and wait for its answer, which also holds a reconnection for as long as the test needs; the rest
// goes to WsstackClient.

const EVENTS = ["state", "entity", "user", "acknowledged", "unsubscribed", "resync", "error", "disconnected", "frame"];

export function drive(WsstackClient, url, { tokens, ...options }, say) {
  const waitingForToken = [];
  if (tokens) {
    options.token = () => {
      say({ event: "token?" });
      return new Promise((resolve) => waitingForToken.push(resolve));
    };
  }
  const client = new WsstackClient(url, options);
  for (const type of EVENTS) {
    client.addEventListener(type, (event) => say({ event: type, detail: event.detail }));
  }
  return (command) => {
    try {
      switch (command.cmd) {
        case "subscribe":
          client.subscribe(command.entityId).then((ack) => say({ event: "subscribe resolved", detail: ack }));
          break;
        case "send":
          client.send(command.frame);
          break;
        case "token":
          waitingForToken.shift()?.(command.token);
          break;
        case "close":
          client.close();
          break;
        default:
          say({ event: "driver error", message: `unknown command ${JSON.stringify(command)}` });
      }
    } catch (error) {
      say({ event: "driver error", message: String(error) });
    }
  };
}
