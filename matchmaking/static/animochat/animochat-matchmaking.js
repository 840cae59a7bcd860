// AnimoChat Matchmaking client kit: a dependency-free ES module for browsers.
//
//   import { findMatch } from "https://<service>/static/animochat/animochat-matchmaking.js";
//   const match = await findMatch({ baseUrl: "https://<service>", userId, interests: ["anime"] });
//
// findMatch opens the Server-Sent Events stream (GET /matchmaking) and settles on its
// first terminal event, closing the EventSource every time: an EventSource left open
// reconnects by itself a few seconds after the server ends a stream. Types are in
// animochat-matchmaking.d.ts beside this file.

/** Every failure of findMatch: switch on `code`. */
export class MatchmakingError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number|null, event?: object|null, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "MatchmakingError";
    this.code = code;
    this.status = details.status ?? null;
    this.event = details.event ?? null;
  }
}

// Stream events after which the server ends the stream (besides MATCHED).
const ENDING_STATES = new Set(["CANCELLED", "REPLACED", "MAINTENANCE"]);

/**
 * Wait for a partner. Resolves with the match; rejects with a MatchmakingError.
 * @param {import("./animochat-matchmaking").FindMatchOptions} options
 * @returns {Promise<import("./animochat-matchmaking").Match>}
 */
export function findMatch(options) {
  const { userId, interests, token, ticket, fallbackAfter, onWaiting, signal } = options || {};
  return new Promise((resolve, reject) => {
    if (typeof userId !== "string" || userId === "") {
      reject(new MatchmakingError("MISSING_USER_ID", "findMatch needs a userId."));
      return;
    }
    if (signal && signal.aborted) {
      reject(abortError(signal));
      return;
    }
    const base = serviceBase(options.baseUrl);
    const url = new URL("matchmaking", base);
    url.searchParams.set("userId", userId);
    const list = interestList(interests);
    if (list.length) url.searchParams.set("interests", list.join(","));
    if (fallbackAfter !== undefined && fallbackAfter !== null) {
      url.searchParams.set("fallbackAfter", String(fallbackAfter));
    }
    // A one-use ticket keeps the long-lived token out of the stream's URL.
    if (ticket) url.searchParams.set("ticket", ticket);
    else if (token) url.searchParams.set("token", token);

    const source = new EventSource(url.href);
    let settled = false;
    let openedSinceError = false;

    const settle = (outcome, value) => {
      if (settled) return;
      settled = true;
      source.close();
      if (signal) signal.removeEventListener("abort", onAbort);
      removeEventListener("pagehide", onPageHide);
      outcome(value);
    };
    // Closing the stream already takes the user out of the queues; the cancel makes
    // sure of it even where a proxy keeps the server's side of the stream open. With
    // only a ticket there is no credential to cancel with: closing has to do.
    const giveUp = (error) => {
      const pending = !settled;
      settle(reject, error);
      if (pending && (token || !ticket)) cancelMatchmaking({ baseUrl: base.href, userId, token });
    };
    const onAbort = () => giveUp(abortError(signal));
    const onPageHide = () =>
      giveUp(new MatchmakingError("ABORTED", "The page was closed while matchmaking."));
    if (signal) signal.addEventListener("abort", onAbort);
    addEventListener("pagehide", onPageHide);

    source.onopen = () => {
      openedSinceError = true;
    };
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not an event of this protocol
      }
      if (event.state === "WAITING") {
        if (onWaiting) {
          onWaiting({ waiting: event.waiting, estimatedWaitSeconds: event.estimatedWaitSeconds });
        }
      } else if (event.state === "MATCHED") {
        settle(resolve, {
          matchedUserId: event.matchedUserId,
          interest: event.interest,
          chatId: event.chatId,
          chatServerUrl: event.chatServerUrl,
          fallback: event.fallback === true,
        });
      } else if (event.state === "ERROR") {
        settle(reject, new MatchmakingError(event.code || "ERROR", event.message || "", { event }));
      } else if (ENDING_STATES.has(event.state)) {
        settle(reject, new MatchmakingError(event.state, event.message || "", { event }));
      }
    };
    source.onerror = () => {
      if (settled) return;
      // A stream that was open and dropped: the browser reconnects by itself and the
      // new request queues the user again. A connection that failed before opening
      // (refused with a non-200 answer, or unreachable) is the end.
      if (openedSinceError && source.readyState === EventSource.CONNECTING) {
        openedSinceError = false;
        return;
      }
      source.close();
      describeFailure(base).then((error) => settle(reject, error));
    };
  });
}

/**
 * Tell the service the user stopped looking: POST /cancel_matchmaking by
 * navigator.sendBeacon, which still goes out while the page unloads. A beacon cannot
 * send headers, so with a token it is a keepalive fetch carrying the bearer header.
 * @param {{baseUrl?: string, userId: string, token?: string}} options
 * @returns {boolean} whether the browser queued the request
 */
export function cancelMatchmaking({ baseUrl, userId, token }) {
  const url = new URL("cancel_matchmaking", serviceBase(baseUrl)).href;
  // A form body keeps the beacon a "simple" cross-origin request: no preflight.
  const body = new URLSearchParams({ userId });
  if (!token && typeof navigator !== "undefined" && navigator.sendBeacon) {
    return navigator.sendBeacon(url, body);
  }
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  fetch(url, { method: "POST", body, headers, keepalive: true }).catch(() => {});
  return true;
}

// An EventSource cannot read the body of a refused request, so ask the service.
async function describeFailure(base) {
  let response;
  try {
    response = await fetch(new URL("maintenance", base).href, { cache: "no-store" });
  } catch (cause) {
    return new MatchmakingError(
      "NETWORK_ERROR",
      "The matchmaking service could not be reached.",
      { cause },
    );
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page
  }
  if (body && body.state === "MAINTENANCE") {
    return new MatchmakingError("MAINTENANCE", body.message || "Under maintenance.", {
      status: response.status,
    });
  }
  if (!response.ok) {
    return new MatchmakingError(
      (body && body.code) || "SERVICE_UNAVAILABLE",
      (body && body.message) || "The matchmaking service is unavailable.",
      { status: response.status },
    );
  }
  return new MatchmakingError(
    "CONNECTION_REFUSED",
    "The service refused the stream: check userId, interests and token, or slow down.",
  );
}

function abortError(signal) {
  return new MatchmakingError("ABORTED", "Matchmaking was cancelled.", { cause: signal.reason });
}

function serviceBase(baseUrl) {
  const raw = baseUrl || globalThis.location?.origin;
  if (!raw) throw new TypeError("findMatch needs a baseUrl outside a web page.");
  const base = new URL(raw, globalThis.location?.href);
  // Relative endpoint paths resolve under a base with a path ("https://host/api").
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  return base;
}

function interestList(interests) {
  if (!interests) return [];
  const items = typeof interests === "string" ? interests.split(",") : Array.from(interests);
  return items.map((item) => String(item).trim()).filter((item) => item !== "");
}
