// wsstack's client: a WebSocket to a wsstack stage that reconnects by itself and presents every
// entity's (and the user's) events exactly once and in order, across reconnects.
//
// One ES module, no dependencies, for browsers and Node 22+ (its global WebSocket). The protocol it
// speaks (README, "Nothing missed"; the AsyncAPI document of `wsstack asyncapi`):
// - every push carries `seq`, one more per event of its stream (an entity, or the user);
// - `{"action":"subscribe","entityId":X,"since":N}` replays X's events after N still in the
//   stack's history window, then acknowledges `{"type":"subscribed","entityId":X,"seq":L}`, or answers
//   `{"type":"resync","entityId":X,"seq":L}` when events after N have left the window;
// - `{"action":"resume","since":N}` does the same for the user's notifications:
//   `{"type":"resumed","userId":U,"seq":L}` or `{"type":"resync","userId":U,"seq":L}`.
// Delivery underneath is at least once (a push may arrive live and replayed) and, between two
// pushes of one stream posted by different invocations, in any order: this client holds frames
// that arrive ahead of a missing one, drops the ones it has presented, and asks for a replay when a
// gap does not fill by itself. Frames that carry no `seq` (a stack that keeps no history) are
// presented as they arrive.

/** API Gateway closes every connection after 2 hours. */
const API_GATEWAY_MAX_CONNECTION_MS = 2 * 60 * 60 * 1000;
/** API Gateway closes a connection after 10 minutes without a message. */
const API_GATEWAY_IDLE_MS = 10 * 60 * 1000;

const DEFAULTS = {
  // Reconnection: full jitter (a random delay between 0 and the capped exponential), so that a
  // fleet of clients cut off at once does not come back at once.
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  // A connection that stayed open this long resets the backoff: one that the server closes right
  // after it opened keeps backing off instead of reconnecting in a tight loop.
  stableAfterMs: 10_000,
  // Reconnect by itself this long before API Gateway's 2-hour limit, minus up to `renewJitterMs`
  // more, so that clients connected together do not all renew together.
  renewBeforeMs: 5 * 60 * 1000,
  renewJitterMs: 10 * 60 * 1000,
  // Send `keepAliveFrame` when nothing was sent for this long: API Gateway's idle timeout is 10
  // minutes; the check runs every fifth of this (7 + 1.4 minutes at worst), and a background
  // browser tab runs timers up to a minute late: 9.4 minutes. Each keep-alive is a billed message
  // (and its error frame answer another): about 17 messages per idle connection-hour.
  keepAliveMs: 7 * 60 * 1000,
  keepAliveFrame: { action: "ping" },
  // How long frames that arrived after a gap wait for the missing one before a replay is asked for.
  reorderWindowMs: 2_000,
  // Track the user's notifications (`resume` on every connection); for authenticated stacks.
  // Without it they are presented as they arrive.
  user: false,
};

export const STATES = Object.freeze(["connecting", "open", "reconnecting", "closed"]);

/**
 * One stream (an entity, or the user): the last sequence number presented, and frames held until
 * the ones before them arrive.
 */
class Stream {
  constructor() {
    /** Last seq presented; undefined until the stream's first acknowledgement or frame. */
    this.last = undefined;
    /** seq -> frame, held: they came ahead of a missing one, or before the acknowledgement. */
    this.held = new Map();
    /** Whether a subscribe/resume is waiting for its acknowledgement. */
    this.pending = false;
    /** When the oldest held frame past a gap arrived (for the reorder window). */
    this.gapSince = undefined;
  }
}

export class WsstackClient extends EventTarget {
  /**
   * @param {string} url the stage's URL (`wss://.../prod`, or `wsstack dev`'s `ws://127.0.0.1:PORT/dev`)
   * @param {object} [options] see wsstack.d.ts
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new Error("no WebSocket: use a browser or Node 22+, or pass options.WebSocket");
    }
    /** @type {Map<string, Stream>} entity id -> stream */
    this.entities = new Map();
    this.userStream = new Stream();
    this.socket = null;
    this.state = "connecting";
    this.attempt = 0;
    this.timers = new Set();
    this.lastSent = 0;
    this.closedByUser = false;
    this.connect();
  }

  /** Subscribe to an entity's events (kept across reconnects). Resolves with the acknowledgement. */
  subscribe(entityId) {
    if (typeof entityId !== "string" || entityId === "") {
      throw new TypeError("subscribe: entityId must be a non-empty string");
    }
    if (!this.entities.has(entityId)) {
      this.entities.set(entityId, new Stream());
    }
    const acknowledged = this.waitFor((frame) =>
      (frame.type === "subscribed" || frame.type === "resync") && frame.entityId === entityId);
    if (this.state === "open") {
      this.requestEntity(entityId);
    }
    return acknowledged;
  }

  /** Stop an entity's events; resolves when the stack acknowledged it (or at once when offline). */
  unsubscribe(entityId) {
    this.entities.delete(entityId);
    if (this.state !== "open") {
      return Promise.resolve(undefined);
    }
    const acknowledged = this.waitFor((frame) => frame.type === "unsubscribed" && frame.entityId === entityId);
    this.send({ action: "unsubscribe", entityId });
    return acknowledged;
  }

  /** Send a frame of the team's own routes (an object is sent as JSON). */
  send(frame) {
    if (this.state !== "open") {
      throw new Error(`not connected (state ${this.state})`);
    }
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    this.lastSent = Date.now();
  }

  /** Close for good: no reconnection. */
  close() {
    this.closedByUser = true;
    this.clearTimers();
    if (this.socket) {
      this.socket.close(1000, "closed by the client");
    }
    this.setState("closed");
  }

  // --- connection ---------------------------------------------------------------------------

  async connect() {
    let token;
    try {
      token = await this.token();
    } catch (error) {
      this.emit("error", { message: `the token function failed: ${error?.message ?? error}` });
      this.reconnectLater();
      return;
    }
    if (this.closedByUser) {
      return;
    }
    // API Gateway reads a token from Sec-WebSocket-Protocol (`websocket, <token>`): the one header
    // a browser's WebSocket lets a page set.
    const socket = token ? new this.WebSocket(this.url, ["websocket", token]) : new this.WebSocket(this.url);
    this.socket = socket;
    let openedAt;
    socket.onopen = () => {
      openedAt = Date.now();
      this.lastSent = openedAt;
      this.setState("open");
      this.every(this.options.keepAliveMs / 5, () => this.keepAlive(socket));
      this.later(this.renewAfter(), () => this.renew(socket));
      this.later(this.options.stableAfterMs, () => {
        if (this.socket === socket) {
          this.attempt = 0;
        }
      });
      for (const entityId of this.entities.keys()) {
        this.requestEntity(entityId);
      }
      if (this.options.user) {
        this.requestUser();
      }
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) {
        return; // an earlier socket, replaced by renew()
      }
      this.clearTimers();
      this.socket = null;
      this.emit("disconnected", { code: event.code, reason: event.reason, openForMs: openedAt ? Date.now() - openedAt : 0 });
      if (!this.closedByUser) {
        this.reconnectLater();
      }
    };
  }

  async token() {
    const { token } = this.options;
    return typeof token === "function" ? await token() : token;
  }

  reconnectLater() {
    if (this.closedByUser) {
      return;
    }
    this.forgetRequests();
    this.setState("reconnecting");
    const cap = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** this.attempt);
    this.attempt += 1;
    this.later(Math.random() * cap, () => this.connect());
  }

  renewAfter() {
    const { renewBeforeMs, renewJitterMs, maxConnectionMs } = this.options;
    const limit = maxConnectionMs ?? API_GATEWAY_MAX_CONNECTION_MS;
    return Math.max(1_000, limit - renewBeforeMs - Math.random() * renewJitterMs);
  }

  /** Before API Gateway's limit: close and reconnect at once; the replay covers the gap. */
  renew(socket) {
    if (this.socket !== socket) {
      return;
    }
    this.attempt = 0;
    this.socket = null;
    this.clearTimers();
    socket.onclose = null;
    socket.close(1000, "renewing before the 2-hour limit");
    this.forgetRequests();
    this.setState("reconnecting");
    this.connect();
  }

  /**
   * A connection is gone: its requests will not be answered, and the repairs it had planned died
   * with its timers. The next connection asks again for every stream, and a gap still open after
   * that answer plans a repair of its own (with `gapSince` left set, none would ever be planned).
   */
  forgetRequests() {
    for (const stream of this.streams()) {
      stream.pending = false;
      stream.gapSince = undefined;
    }
  }

  keepAlive(socket) {
    if (this.socket === socket && Date.now() - this.lastSent >= this.options.keepAliveMs) {
      this.send(this.options.keepAliveFrame);
    }
  }

  // --- streams ------------------------------------------------------------------------------

  requestEntity(entityId) {
    const stream = this.entities.get(entityId);
    stream.pending = true;
    const frame = { action: "subscribe", entityId };
    if (stream.last !== undefined) {
      frame.since = stream.last;
    }
    this.send(frame);
  }

  requestUser() {
    this.userStream.pending = true;
    const frame = { action: "resume" };
    if (this.userStream.last !== undefined) {
      frame.since = this.userStream.last;
    }
    this.send(frame);
  }

  *streams() {
    yield* this.entities.values();
    yield this.userStream;
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.emit("frame", { data });
      return;
    }
    if (frame === null || typeof frame !== "object") {
      this.emit("frame", { data: frame });
      return;
    }
    this.emit("frame", { data: frame });
    const entityStream = typeof frame.entityId === "string" ? this.entities.get(frame.entityId) : undefined;
    switch (frame.type) {
      case "subscribed":
        if (entityStream) this.acknowledged(entityStream, frame.seq, frame);
        return;
      case "resumed":
        this.acknowledged(this.userStream, frame.seq, frame);
        return;
      case "resync": {
        const stream = frame.userId !== undefined && frame.entityId === undefined ? this.userStream : entityStream;
        if (stream) this.resync(stream, frame);
        return;
      }
      case "unsubscribed":
        this.emit("unsubscribed", frame);
        return;
      case "User Push Notification":
        if (this.options.user) {
          this.arrived(this.userStream, frame, "user");
        } else {
          // Not tracked (no `resume`): nothing anchors an order or replays a gap, and holding
          // the frame for a `resumed` that never comes would hide it for good.
          this.emit("user", frame);
        }
        return;
      case "error":
        this.emit("error", frame);
        return;
      default:
        if (entityStream && typeof frame.seq === "number") {
          this.arrived(entityStream, frame, "entity");
        } else if (entityStream && frame.seq === undefined) {
          // A stack with history off (history.window_seconds: 0) numbers nothing: presented as is.
          this.emit("entity", frame);
        }
    }
  }

  arrived(stream, frame, kind) {
    if (typeof frame.seq !== "number") {
      this.emit(kind, frame);
      return;
    }
    if (stream.last !== undefined && frame.seq <= stream.last) {
      return; // presented already (a replay of what arrived live, or a redelivery)
    }
    stream.held.set(frame.seq, { frame, kind });
    if (!stream.pending) {
      this.flush(stream);
    }
  }

  acknowledged(stream, seq, frame) {
    stream.pending = false;
    if (stream.last === undefined) {
      // A first subscription starts after the acknowledged seq: what came before it is history the
      // client did not ask for.
      stream.last = typeof seq === "number" ? seq : 0;
      for (const held of [...stream.held.keys()]) {
        if (held <= stream.last) stream.held.delete(held);
      }
    }
    this.flush(stream);
    this.emit("acknowledged", frame);
  }

  resync(stream, frame) {
    stream.pending = false;
    stream.last = frame.seq;
    for (const held of [...stream.held.keys()]) {
      if (held <= stream.last) stream.held.delete(held);
    }
    this.emit("resync", frame);
    this.flush(stream);
  }

  /** Present held frames while they follow the last one; a gap waits for the reorder window. */
  flush(stream) {
    if (stream.last === undefined) {
      return; // a user stream before its first resume: nothing to order against yet
    }
    while (stream.held.has(stream.last + 1)) {
      const { frame, kind } = stream.held.get(stream.last + 1);
      stream.held.delete(stream.last + 1);
      stream.last += 1;
      this.emit(kind, frame);
    }
    if (stream.held.size === 0) {
      stream.gapSince = undefined;
      return;
    }
    if (stream.gapSince === undefined) {
      stream.gapSince = Date.now();
      this.later(this.options.reorderWindowMs, () => this.repair(stream));
    }
  }

  /** A gap that did not fill within the window: ask for a replay since the last presented seq. */
  repair(stream) {
    if (stream.gapSince === undefined || stream.held.size === 0 || this.state !== "open") {
      return;
    }
    stream.gapSince = undefined;
    if (stream === this.userStream) {
      this.requestUser();
      return;
    }
    for (const [entityId, candidate] of this.entities) {
      if (candidate === stream) this.requestEntity(entityId);
    }
  }

  // --- plumbing -----------------------------------------------------------------------------

  waitFor(matches) {
    return new Promise((resolve) => {
      const listener = (event) => {
        if (matches(event.detail)) {
          this.removeEventListener("acknowledged", listener);
          this.removeEventListener("resync", listener);
          this.removeEventListener("unsubscribed", listener);
          resolve(event.detail);
        }
      };
      this.addEventListener("acknowledged", listener);
      this.addEventListener("resync", listener);
      this.addEventListener("unsubscribed", listener);
    });
  }

  setState(state) {
    if (this.state !== state) {
      this.state = state;
      this.emit("state", { state });
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  later(ms, run) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  every(ms, run) {
    const timer = setInterval(run, ms);
    this.timers.add(timer);
  }

  clearTimers() {
    for (const timer of this.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this.timers.clear();
  }
}

export { API_GATEWAY_IDLE_MS, API_GATEWAY_MAX_CONNECTION_MS };
