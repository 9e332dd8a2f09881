// Unread-message counters outside the conversation itself: the header's badge on "Bookings"
// and the per-booking badges of the bookings list. The server's counts are authoritative (they
// come with every message frame and receipt), so these only ever show the latest one.

// `[data-unread-messages]`: the count, with words for screen readers; hidden at 0.
export function setUnreadMessages(doc, count) {
  if (!Number.isSafeInteger(count) || count < 0) return;
  for (const badge of doc.querySelectorAll("[data-unread-messages]")) {
    badge.textContent = String(count);
    const words = doc.createElement("span");
    words.className = "visually-hidden";
    words.textContent = count === 1 ? " unread message" : " unread messages";
    badge.append(words);
    badge.hidden = count === 0;
  }
}

// `[data-conversation-unread="42"]`: "2 unread messages"; hidden at 0.
export function setConversationUnread(doc, bookingId, count) {
  if (!Number.isSafeInteger(bookingId) || !Number.isSafeInteger(count) || count < 0) return;
  for (const badge of doc.querySelectorAll(`[data-conversation-unread="${bookingId}"]`)) {
    badge.textContent = count === 1 ? "1 unread message" : `${count} unread messages`;
    badge.hidden = count === 0;
  }
}
