// Types of wsstack.js: the client of a wsstack stage (README, "Nothing missed").

export type State = "connecting" | "open" | "reconnecting" | "closed";
export declare const STATES: readonly State[];
export declare const API_GATEWAY_MAX_CONNECTION_MS: number;
export declare const API_GATEWAY_IDLE_MS: number;

/** A push of an entity's event: `{"type":"Entity Updated","entityId":...,"message":...,"seq":...}`. */
export interface EntityFrame {
  type: string;
  entityId: string;
  message: unknown;
  /** One more per event of this entity; absent when the stack keeps no history. */
  seq?: number;
}

/** A user notification: `{"type":"User Push Notification","message":...,"callback"?:...,"seq":...}`. */
export interface UserFrame {
  type: "User Push Notification";
  message: unknown;
  callback?: string;
  seq?: number;
}

/** `subscribed` / `resumed`: the subscription is stored; `seq` is the stream's latest. */
export interface Acknowledgement {
  type: "subscribed" | "resumed";
  entityId?: string;
  userId?: string;
  seq?: number;
}

/** Events after the client's last seq have left the stack's history window: refetch the state. */
export interface Resync {
  type: "resync";
  entityId?: string;
  userId?: string;
  seq: number;
}

export interface ErrorFrame {
  type: "error";
  message: string;
}

export interface Options {
  /** A token (sent as the `websocket, <token>` sub-protocol), or a function that returns a fresh one on every (re)connect. */
  token?: string | (() => string | Promise<string>);
  /**
   * Track the user's notifications: `resume` on every connection, so that they come once, in order,
   * and what was missed while disconnected is replayed. Without it they are presented as they arrive.
   */
  user?: boolean;
  /** First reconnect delay cap, doubled per failed attempt (full jitter). Default 500. */
  initialDelayMs?: number;
  /** Largest reconnect delay cap. Default 30000. */
  maxDelayMs?: number;
  /** Open this long and the backoff starts over. Default 10000. */
  stableAfterMs?: number;
  /** The gateway's connection limit. Default 2 hours (API Gateway's). */
  maxConnectionMs?: number;
  /** Renew this long before the limit... Default 5 minutes. */
  renewBeforeMs?: number;
  /** ...minus up to this much more, at random. Default 10 minutes. */
  renewJitterMs?: number;
  /** Send `keepAliveFrame` after this long without sending. Default 7 minutes (API Gateway closes after 10 idle). */
  keepAliveMs?: number;
  keepAliveFrame?: unknown;
  /** How long frames after a gap wait for the missing one before a replay is asked for. Default 2000. */
  reorderWindowMs?: number;
  /** A WebSocket constructor, where there is no global one. */
  WebSocket?: typeof WebSocket;
}

export interface WsstackEvents {
  state: CustomEvent<{ state: State }>;
  entity: CustomEvent<EntityFrame>;
  user: CustomEvent<UserFrame>;
  acknowledged: CustomEvent<Acknowledgement>;
  unsubscribed: CustomEvent<{ type: "unsubscribed"; entityId: string }>;
  resync: CustomEvent<Resync>;
  error: CustomEvent<ErrorFrame | { message: string }>;
  disconnected: CustomEvent<{ code: number; reason: string; openForMs: number }>;
  /** Every frame as it arrives, before ordering and duplicate removal. */
  frame: CustomEvent<{ data: unknown }>;
}

export declare class WsstackClient extends EventTarget {
  constructor(url: string, options?: Options);
  readonly url: string;
  readonly state: State;
  /** Subscribe to an entity (kept across reconnects); resolves with its acknowledgement or resync. */
  subscribe(entityId: string): Promise<Acknowledgement | Resync>;
  unsubscribe(entityId: string): Promise<{ type: "unsubscribed"; entityId: string } | undefined>;
  /** Send a frame of the stack's own routes (an object goes as JSON). Throws when not open. */
  send(frame: unknown): void;
  /** Close for good. */
  close(): void;
  addEventListener<K extends keyof WsstackEvents>(
    type: K,
    listener: (event: WsstackEvents[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof WsstackEvents>(
    type: K,
    listener: (event: WsstackEvents[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
}
