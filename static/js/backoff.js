// Reconnection delays: exponential backoff with full jitter, drawn anew for every attempt.
//   delay(n) = random() * min(maxDelay, minDelay * 2 ** n)
// (Full jitter spreads a crowd of clients that all lost the server at the same moment.)

export const BACKOFF_DEFAULTS = Object.freeze({
  minReconnectionDelay: 500, // ms, the cap of the first attempt's draw
  // ms, the largest cap: how stale a page may stay after the server is back. At 30 s a page
  // once waited 29 s for its next attempt after a restart; jitter and the server's handshake
  // gate already spread a crowd, so the wait need not be that long.
  maxReconnectionDelay: 10000,
});

export function backoffDelay(attempt, options = {}, random = Math.random) {
  const base = options.minReconnectionDelay ?? BACKOFF_DEFAULTS.minReconnectionDelay;
  const cap = options.maxReconnectionDelay ?? BACKOFF_DEFAULTS.maxReconnectionDelay;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

// The server's shutdown close reason names its own delay: "reconnect in 1200 ms".
export function serverDelay(reason) {
  const match = /reconnect in (\d+) ms/.exec(reason || "");
  return match ? Number(match[1]) : null;
}
