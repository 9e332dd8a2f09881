// Shared by the header's disclosures (the bell's dropdown, the phone menu): one closes when the
// focus moves to another element of the page, as a click elsewhere closes it. Focus leaving
// the page (another window) or going nowhere (a click on plain text, which the click handler
// sees) has no relatedTarget and leaves it open.

export function closeWhenFocusLeaves(parts, isOpen, close) {
  const onFocusOut = (event) => {
    const next = event.relatedTarget;
    if (!isOpen() || !next || parts.some((part) => part.contains(next))) return;
    close();
  };
  for (const part of parts) part.addEventListener("focusout", onFocusOut);
}
