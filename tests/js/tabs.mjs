// One browser with a fake clock and a fake WebSocket class, into which tabs running
// connectRealtime are opened: the harness of the tab-sharing tests. `callbacks(log)` gives each
// tab's callbacks, recording into that tab's `log`.
import { connectRealtime } from "../../static/js/realtime.js";
import { FakeClock, makeBrowser, makeWebSocketClass, settle } from "./fakes.mjs";

export const USER = 7;

export function makeTabsEnv({ locks = true, broadcastChannel = true, random = () => 0, callbacks } = {}) {
  const env = {
    browser: makeBrowser({ locks, broadcastChannel }),
    clock: new FakeClock(),
    WS: makeWebSocketClass(),
    tabs: [],
    get sockets() {
      return env.WS.instances;
    },
    get ws() {
      return env.WS.instances.at(-1);
    },
    leaders: () => env.tabs.filter((t) => !t.rt.tab.closed && t.rt.isLeader),
    openTab({ visibilityState = "visible", userId = USER, shareTabs, lastId } = {}) {
      const win = env.browser.newWindow({ visibilityState });
      const log = {};
      const rt = connectRealtime({
        window: win,
        userId,
        shareTabs,
        lastId,
        ...callbacks(log),
        socketOptions: {
          WebSocket: env.WS,
          setTimeout: env.clock.setTimeout,
          clearTimeout: env.clock.clearTimeout,
          now: env.clock.now,
          random,
          warn: () => {},
        },
      });
      const tab = { win, rt, log, statuses: () => (log.status ?? []).map((s) => s.status) };
      env.tabs.push(tab);
      return tab;
    },
  };
  return env;
}

export async function openTabs(env, n, options) {
  const tabs = [];
  for (let i = 0; i < n; i += 1) tabs.push(env.openTab(options));
  await settle();
  return tabs;
}
