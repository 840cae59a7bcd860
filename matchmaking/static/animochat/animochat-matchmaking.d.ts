// Types of animochat-matchmaking.js, the AnimoChat Matchmaking client kit.

/** What `findMatch` resolves with: the chat to join. */
export interface Match {
  matchedUserId: string;
  /** The shared interests, comma-joined; empty for a fallback or random-chat match. */
  interest: string;
  chatId: string;
  chatServerUrl: string;
  /** True when the match came through `fallbackAfter` or a random-chat user. */
  fallback: boolean;
}

/** The queue's live numbers, sent on arrival and at every keepalive while waiting. */
export interface WaitingInfo {
  /** Others waiting in your interests' queues. */
  waiting: number;
  /** Expected wait from recent arrivals in your interests; null when nobody asked lately. */
  estimatedWaitSeconds: number | null;
}

export interface FindMatchOptions {
  /** The service's URL, e.g. "https://matchmaking.example.com"; default: this page's origin. */
  baseUrl?: string;
  userId: string;
  /** Interests (any case); none means random chat with anyone. */
  interests?: string[] | string;
  /** A JWT when the service verifies identity: ?token= on the stream, the bearer header on the cancel. */
  token?: string;
  /** A one-use ticket from POST /matchmaking/ticket, sent as ?ticket= instead of the token. */
  ticket?: string;
  /** Seconds after which anyone past their own fallback will do (0 to 600). */
  fallbackAfter?: number;
  onWaiting?: (info: WaitingInfo) => void;
  /** Aborting closes the stream, sends the cancel beacon and rejects with code "ABORTED". */
  signal?: AbortSignal;
}

/**
 * Codes of `MatchmakingError`: the stream's ERROR codes, the ending states, and the
 * kit's own (ABORTED, NETWORK_ERROR, CONNECTION_REFUSED, MISSING_USER_ID).
 */
export type MatchmakingErrorCode =
  | "ABORTED"
  | "CANCELLED"
  | "REPLACED"
  | "MAINTENANCE"
  | "NETWORK_ERROR"
  | "CONNECTION_REFUSED"
  | "SERVICE_UNAVAILABLE"
  | "NO_CHAT_SERVER"
  | "SERVER_SHUTDOWN"
  | "QUEUE_PLACE_LOST"
  | "MISSING_USER_ID"
  | (string & {});

export class MatchmakingError extends Error {
  constructor(
    code: MatchmakingErrorCode,
    message: string,
    details?: { status?: number | null; event?: object | null; cause?: unknown },
  );
  readonly name: "MatchmakingError";
  readonly code: MatchmakingErrorCode;
  /** HTTP status of GET /maintenance when it explained a refused stream. */
  readonly status: number | null;
  /** The stream event that ended matchmaking, if one did. */
  readonly event: object | null;
}

/** Resolves with the match; rejects with a `MatchmakingError`. Always closes the stream. */
export function findMatch(options: FindMatchOptions): Promise<Match>;

/**
 * POST /cancel_matchmaking by navigator.sendBeacon (a keepalive fetch with the bearer
 * header when a token is given); true when the browser queued it.
 */
export function cancelMatchmaking(options: {
  baseUrl?: string;
  userId: string;
  token?: string;
}): boolean;
