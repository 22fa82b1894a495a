// wsstack dev's console. Everything arrives through one WebSocket (/__console/api/stream): the
// connections ("state") and what dev does ("activity"). The form and the token go through the
// console's API with this session's key; the client pane talks to the stage like any client.
// Text from the server is only ever put in the page as text (textContent), never as HTML.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const KEY = meta("wsstack-key");
const STAGE = meta("wsstack-stage");
const AUTH = meta("wsstack-auth");
const MAX_LOG = 500;
const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function clock(iso) {
  const at = iso ? new Date(iso) : new Date();
  const two = (n) => String(n).padStart(2, "0");
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${String(at.getMilliseconds()).padStart(3, "0")}`;
}

function timeElement(iso) {
  const at = iso || new Date().toISOString();
  return element("time", { datetime: at, title: at }, clock(at));
}

// Append to a log, keeping it bounded and scrolled to the end when it was at the end.
function appendToLog(log, item) {
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(item);
  while (log.children.length > MAX_LOG) log.firstElementChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

async function api(path, body) {
  const response = await fetch(`/__console/api/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-wsstack-console-key": KEY },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || `${response.status} ${response.statusText}`);
  return answer;
}

// ---- connections -------------------------------------------------------------------------------

function renderState(state) {
  const rows = $("connection-rows");
  $("connection-count").textContent = String(state.open);
  rows.replaceChildren();
  if (state.connections.length === 0) {
    rows.append(element("tr", {}, element("td", { colspan: "4", class: "muted" }, "No connection yet.")));
  }
  for (const connection of state.connections) {
    const subscriptions = connection.subscriptions.length ? connection.subscriptions.join(", ") : "—";
    const row = element(
      "tr",
      { "data-connection": connection.id },
      element("td", {}, element("code", {}, connection.id), connection.open ? "" : " (left behind: no socket)"),
      element("td", {}, connection.user || "—"),
      element("td", {}, connection.connectedAt ? timeElement(connection.connectedAt) : "—"),
      element("td", {}, subscriptions),
    );
    if (!connection.open) row.className = "stale";
    rows.append(row);
  }
  const top = $("top-entities");
  top.replaceChildren();
  if (state.topEntities.length === 0) top.append(element("li", { class: "muted" }, "None yet."));
  for (const entity of state.topEntities) {
    const watchers = entity.subscribers === 1 ? "1 subscriber" : `${entity.subscribers} subscribers`;
    top.append(element("li", {}, element("code", {}, entity.entityId), ` · ${watchers}`));
  }
  const note = $("state-note");
  const notes = [];
  if (state.tableError) notes.push(`The table could not be read: ${state.tableError}`);
  if (state.truncated) notes.push("The table holds more records than the console reads: the list is partial.");
  if (state.total > state.connections.length) notes.push(`Listing the first ${state.connections.length} of ${state.total} connections.`);
  note.textContent = notes.join(" ");
  note.hidden = notes.length === 0;
}

// ---- activity ----------------------------------------------------------------------------------

function describe(entry) {
  const f = entry.fields || {};
  switch (entry.kind) {
    case "connect": return `${f.connection_id} connected`;
    case "disconnect": return `${f.connection_id} disconnected (${f.code}${f.reason ? " " + f.reason : ""})`;
    case "subscribe": case "unsubscribe": case "frame":
      return `${f.connection_id} sent ${f.frame}${f.answer ? " → " + f.answer : ""}`;
    case "push": return `posted to ${f.connection_id}: ${f.frame}`;
    case "bus": return `put on the bus: ${f.detail_type} ${f.detail} (event ${f.event_id})`;
    case "event": {
      const events = String(f.events || "").split("\n").map((line) => {
        try {
          const event = JSON.parse(line);
          return `${event["detail-type"]} ${JSON.stringify(event.detail)}`;
        } catch (_) {
          return line;
        }
      });
      return `the queue delivered to ${f.function}: ${events.join("; ")}`;
    }
    case "handler-error": case "handler-warning": {
      try {
        const line = JSON.parse(entry.message);
        const extra = Object.entries(line.fields || {}).filter(([k]) => k !== "message")
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
        return `${f.function}: ${line.fields && line.fields.message}${extra ? " " + extra : ""}`;
      } catch (_) {
        return `${f.function}: ${entry.message}`;
      }
    }
    default: {
      const extra = Object.entries(f).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
      return `${entry.message}${extra ? " " + extra : ""}`;
    }
  }
}

function filterActivity() {
  const wanted = $("activity-filter").value.split(" ").filter(Boolean);
  for (const item of $("activity-log").children) {
    item.hidden = wanted.length > 0 && !wanted.includes(item.dataset.kind);
  }
}

function addActivity(entry) {
  const wanted = $("activity-filter").value.split(" ").filter(Boolean);
  const item = element(
    "li",
    { "data-kind": entry.kind },
    timeElement(entry.at),
    element("span", { class: `kind kind-${entry.kind}` }, entry.kind),
    element("code", {}, describe(entry)),
  );
  item.hidden = wanted.length > 0 && !wanted.includes(entry.kind);
  appendToLog($("activity-log"), item);
}

// ---- the stream --------------------------------------------------------------------------------

let retry = 500;
function openStream() {
  const status = $("stream-status");
  const stream = new WebSocket(`ws://${location.host}/__console/api/stream?key=${encodeURIComponent(KEY)}`);
  stream.onopen = () => {
    retry = 500;
    status.textContent = "Live.";
    status.className = "status ok";
  };
  stream.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "state") renderState(data.state);
    else if (data.type === "activity") data.entries.forEach(addActivity);
    else if (data.type === "missed") {
      addActivity({ kind: "warning", at: new Date().toISOString(), message: `${data.count} entries were missed (too many at once)` });
    }
  };
  stream.onclose = () => {
    // A dev started again has a new key: then only a reload of the page helps.
    status.textContent = `dev is not reachable (if it was restarted, reload the page); trying again in ${Math.round(retry / 100) / 10} s…`;
    status.className = "status bad";
    setTimeout(openStream, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

// ---- the send form -----------------------------------------------------------------------------

function kind() {
  return document.querySelector('input[name="kind"]:checked').value;
}

function showKind() {
  const user = kind() === "user";
  $("send-id-label").textContent = user ? "User id" : "Entity id";
  $("send-id").placeholder = user ? "user-1" : "order-42";
  $("callback-field").hidden = !user;
}

async function sendEvent(submit) {
  submit.preventDefault();
  const result = $("send-result");
  result.className = "result";
  result.textContent = "Sending…";
  try {
    const sent = await api("send", {
      kind: kind(),
      id: $("send-id").value.trim(),
      message: $("send-message").value,
      callback: kind() === "user" ? $("send-callback").value : "",
      detail: $("send-detail").value.trim(),
    });
    result.className = "result ok";
    result.textContent = `Sent event ${sent.eventId} (${sent.detailType}).${sent.warning ? " Note: " + sent.warning : ""}`;
  } catch (error) {
    result.className = "result bad";
    result.textContent = `Not sent: ${error.message}`;
  }
}

// ---- the client pane ---------------------------------------------------------------------------

let client = null;

function addFrame(direction, text) {
  const label = direction === "in" ? "received" : direction === "out" ? "sent" : "note";
  const arrow = direction === "in" ? "←" : direction === "out" ? "→" : "·";
  appendToLog(
    $("frames"),
    element("li", { "data-direction": direction }, timeElement(), element("span", { "aria-label": label, title: label }, arrow), element("code", {}, text)),
  );
}

function setClientState(connected, text, good) {
  $("connect").disabled = connected;
  $("disconnect").disabled = !connected;
  const status = $("client-status");
  status.textContent = text;
  status.className = `status ${good ? "ok" : connected ? "" : "bad"}`;
}

function connectClient() {
  if (client) return;
  let url = `ws://${location.host}/${encodeURIComponent(STAGE)}`;
  const token = $("token").value.trim();
  // `?access_token=`: one of the two ways the authorizer takes a token (a browser cannot set headers).
  if (token) url += `?access_token=${encodeURIComponent(token)}`;
  setClientState(true, "Connecting…");
  const socket = new WebSocket(url);
  client = socket;
  socket.onopen = () => {
    setClientState(true, `Connected to ${url.split("?")[0]}.`, true);
    addFrame("note", "connected");
  };
  socket.onmessage = (message) => addFrame("in", String(message.data));
  socket.onclose = (event) => {
    if (client === socket) client = null;
    const why = event.code === 1006 ? "refused or dropped (see the activity for why)" : `closed ${event.code}${event.reason ? " " + event.reason : ""}`;
    addFrame("note", why);
    setClientState(false, `Not connected: ${why}.`);
  };
}

function sendFrame(text) {
  if (!client || client.readyState !== WebSocket.OPEN) {
    setClientState(Boolean(client), "Connect first.");
    $("connect").focus();
    return false;
  }
  client.send(text);
  addFrame("out", text);
  return true;
}

function subscription(action) {
  const entity = $("entity").value.trim();
  if (!entity) {
    $("entity").reportValidity();
    return;
  }
  sendFrame(JSON.stringify({ action, entityId: entity }));
}

async function mintToken(submit) {
  submit.preventDefault();
  const status = $("client-status");
  try {
    const minted = await api("token", {
      userId: $("token-user").value.trim(),
      entities: $("token-entities").value,
      ttlSeconds: Number($("token-ttl").value) || undefined,
    });
    $("token").value = minted.token;
    status.textContent = `Token minted for ${$("token-user").value.trim()}, valid ${minted.expiresIn} s.`;
    status.className = "status ok";
  } catch (error) {
    status.textContent = `No token: ${error.message}`;
    status.className = "status bad";
  }
}

// ---- wiring ------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", showKind);
  $("send-form").addEventListener("submit", sendEvent);
  $("connect").addEventListener("click", connectClient);
  $("disconnect").addEventListener("click", () => client && client.close(1000, "bye"));
  $("subscribe-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    subscription("subscribe");
  });
  $("unsubscribe").addEventListener("click", () => subscription("unsubscribe"));
  $("frame-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    sendFrame($("frame").value);
  });
  $("activity-filter").addEventListener("change", filterActivity);
  $("clear-activity").addEventListener("click", () => $("activity-log").replaceChildren());
  if (AUTH !== "none") {
    $("token-form").hidden = false;
    // An issuer's tokens come from the issuer: paste one.
    $("mint-fields").hidden = AUTH !== "secret";
    $("token-form").addEventListener("submit", mintToken);
  }
  showKind();
  openStream();
});
