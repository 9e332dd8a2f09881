// Show every <time datetime="…Z"> in the viewer's own time zone. Without this script the
// server-rendered UTC text stays, labelled as UTC.
const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function localizeTimes(root = document) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.textContent = format.format(moment);
      element.title = moment.toISOString();
    }
  }
}

localizeTimes();
