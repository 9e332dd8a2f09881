// Messages as DOM nodes, built with createElement and textContent only: a message is what a
// stranger typed, so it is never parsed as HTML. http(s) URLs become links (rel and target
// as the server renders them); anything else that looks like a link (javascript:, data:, a
// bare domain) stays text.

const LINK_REL = "nofollow noopener noreferrer ugc";
// A candidate starts at a word boundary with http:// or https:// and runs to whitespace or a
// character that cannot be in a URL as people paste them.
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"]+/gi;

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatTime(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? String(iso ?? "") : timeFormat.format(moment);
}

// Punctuation that ends a sentence is not part of the link: "see https://x.org/a." A closing
// bracket stays when it closes one opened inside the URL (Wikipedia's "Foo_(bar)").
function trimUrl(candidate) {
  let url = candidate;
  for (;;) {
    const last = url.at(-1);
    if (".,;:!?'*".includes(last)) url = url.slice(0, -1);
    else if (last === ")" && count(url, "(") < count(url, ")")) url = url.slice(0, -1);
    else if (last === "]" && count(url, "[") < count(url, "]")) url = url.slice(0, -1);
    else return url;
  }
}

function count(text, char) {
  return text.split(char).length - 1;
}

function isHttpUrl(text) {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

// The text as nodes: strings, and <a> elements for its http(s) URLs.
export function linkify(doc, text) {
  const nodes = [];
  const source = String(text ?? "");
  let at = 0;
  for (const match of source.matchAll(URL_CANDIDATE)) {
    const url = trimUrl(match[0]);
    if (!isHttpUrl(url)) continue;
    if (match.index > at) nodes.push(source.slice(at, match.index));
    const link = doc.createElement("a");
    link.href = url;
    link.rel = LINK_REL;
    link.target = "_blank";
    link.textContent = url;
    nodes.push(link);
    at = match.index + url.length;
  }
  if (at < source.length) nodes.push(source.slice(at));
  return nodes;
}

function meta(doc, name, extra) {
  const line = doc.createElement("p");
  line.className = "message-meta";
  const who = doc.createElement("strong");
  who.textContent = name;
  line.append(who, " ", extra);
  return line;
}

function bodyOf(doc, text) {
  const body = doc.createElement("div");
  body.className = "message-body";
  body.append(...linkify(doc, text));
  return body;
}

// A stored message, as the server renders it in `ol[data-messages]` (ours under "You").
export function messageItem(doc, message, { selfId }) {
  const mine = message.sender_id === selfId;
  const item = doc.createElement("li");
  item.className = `message ${mine ? "mine" : "theirs"}`;
  item.id = `m-${message.seq}`;
  item.dataset.seq = String(message.seq);
  item.dataset.senderId = String(message.sender_id);
  const time = doc.createElement("time");
  time.setAttribute("datetime", String(message.created_at ?? ""));
  time.textContent = formatTime(message.created_at);
  item.append(meta(doc, mine ? "You" : String(message.sender_name ?? ""), time), bodyOf(doc, message.body));
  return item;
}

// Our own message before the server has it: shown at once, marked as sending.
export function pendingItem(doc, body, clientMsgId) {
  const item = doc.createElement("li");
  item.className = "message mine pending";
  item.dataset.pending = "";
  item.dataset.clientMsgId = clientMsgId;
  const status = doc.createElement("span");
  status.className = "message-status";
  status.textContent = "Sending…";
  item.append(meta(doc, "You", status), bodyOf(doc, body));
  return item;
}

// The server refused it: it stays, saying why, so the text is not silently lost.
export function markFailed(item, reason) {
  item.classList.remove("pending");
  item.classList.add("failed");
  const status = item.querySelector(".message-status");
  if (status) status.textContent = `Not sent: ${reason || "the server refused it"}`;
}

// "just now", "5 min ago", "3 hours ago", "2 days ago".
export function timeAgo(ms) {
  const minutes = Math.floor(Math.max(0, ms) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return hours === 1 ? "1 hour ago" : `${hours} hours ago`;
  const days = Math.floor(hours / 24);
  return days === 1 ? "1 day ago" : `${days} days ago`;
}

// Fills `[data-presence]` as the server renders it: a dot, then "<name> is online", "<name>
// was last seen <time>5 min ago</time>", or "<name> has not been online yet". The dot's
// colour only repeats what the words say.
export function renderPresence(doc, element, { name, online, lastSeen }, now) {
  element.dataset.online = String(Boolean(online));
  const dot = doc.createElement("span");
  dot.className = online ? "presence-dot online" : "presence-dot";
  dot.setAttribute("aria-hidden", "true");
  element.textContent = "";
  element.append(dot);
  if (online) {
    element.append(`${name} is online`);
    return;
  }
  const moment = lastSeen ? new Date(lastSeen) : null;
  if (!moment || Number.isNaN(moment.getTime())) {
    element.append(`${name} has not been online yet`);
    return;
  }
  const time = doc.createElement("time");
  time.setAttribute("datetime", moment.toISOString());
  time.title = formatTime(lastSeen);
  time.textContent = timeAgo(now - moment.getTime());
  element.append(`${name} was last seen `, time);
}
