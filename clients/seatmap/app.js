// The boxoffice seat map: a show list, a live drawing of each show's hall, the
// bookings made in this browser, and an admin view. Plain ES modules, no build
// step; served by boxoffice itself.
import { bookingList, refresh } from "/assets/mine.js";
import { showView } from "/assets/show.js";
import { api, el, formatWhen, showConnection } from "/assets/util.js";

const view = document.getElementById("view");
let leave = () => {}; // tears down the current view (timers, sockets)

// ---- show list ----------------------------------------------------------------------
function listView() {
  view.replaceChildren(el("h1", {}, "Shows"), el("p", { id: "list-status" }, "Loading…"));
  showConnection("");
  const render = async () => {
    const { status, body } = await api("/shows").catch(() => ({ status: 0 }));
    if (status !== 200) {
      document.getElementById("list-status").textContent = "Cannot reach the server; retrying…";
      return;
    }
    const rows = body.shows.map((s) =>
      el("tr", { "data-show": s.id },
        el("td", {}, el("a", { href: `#/shows/${s.id}` }, s.name)),
        el("td", {}, formatWhen(s.start_time)),
        el("td", { class: "available" }, `${s.available_seats} of ${s.total_seats} available`)));
    const table = el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Show"), el("th", {}, "Starts"), el("th", {}, "Availability"))),
      el("tbody", {}, ...rows));
    view.replaceChildren(el("h1", {}, "Shows"), body.count ? table : el("p", {}, "No shows yet. Create one in Admin."));
  };
  render();
  // Availability counts stay live by polling the list, which is cheap.
  const timer = setInterval(render, 2000);
  return () => clearInterval(timer);
}

// ---- my bookings --------------------------------------------------------------------
function mineView() {
  showConnection("");
  document.title = "My bookings · boxoffice";
  const message = el("div", { id: "message", role: "alert" });
  const box = el("div", { id: "my-bookings" });
  view.replaceChildren(el("h1", {}, "My bookings"), el("p", { class: "muted" }, "Bookings made in this browser."), message, box);
  const stop = bookingList(box, { say: ({ ok, text }) => { message.className = `message ${ok ? "ok" : "error"}`; message.textContent = text; } });
  refresh();
  return stop;
}

// ---- admin --------------------------------------------------------------------------
function adminView() {
  showConnection("");
  const result = el("div", { id: "admin-result", role: "alert" });
  const field = (label, attrs) => [el("label", { for: attrs.id }, label), el("input", attrs)];
  const form = el("form", { id: "create-show" },
    ...field("Admin token", { id: "token", type: "password", autocomplete: "off", value: sessionStorage.getItem("boxoffice.admin") ?? "" }),
    ...field("Show name", { id: "name", required: "", maxlength: "200" }),
    ...field("Starts at", { id: "start", type: "datetime-local", required: "" }),
    ...field("Seats (a plain hall of numbered seats)", { id: "seats", type: "number", min: "1", value: "40" }),
    el("label", { for: "layout" }, "Or a hall layout (JSON, see the README)"),
    el("textarea", { id: "layout", rows: "6", spellcheck: "false", placeholder: '{"categories": [...], "sections": [...]}' }),
    el("p", {}, el("button", { class: "action primary", type: "submit" }, "Create show")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = form.querySelector("#token").value.trim();
    sessionStorage.setItem("boxoffice.admin", token);
    const { status, body } = await api("/admin/shows", {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: showBody(form),
    });
    if (status === 201) {
      result.className = "message ok";
      result.replaceChildren(`Created “${body.show.name}”. `, el("a", { href: `#/shows/${body.show.id}` }, "Open its seat map"));
    } else {
      result.className = "message error";
      result.textContent = body.error ?? `Failed (${status}).`;
    }
  });
  view.replaceChildren(el("h1", {}, "Create a show"), form, result);
  return () => {};
}

function showBody(form) {
  const body = {
    name: form.querySelector("#name").value,
    start_time: new Date(form.querySelector("#start").value).toISOString(),
  };
  const layout = form.querySelector("#layout").value.trim();
  if (!layout) return JSON.stringify({ ...body, total_seats: Number(form.querySelector("#seats").value) });
  // Sent as written: a layout that is not JSON gets the server's own 400 with its reason.
  return `{"name": ${JSON.stringify(body.name)}, "start_time": "${body.start_time}", "layout": ${layout}}`;
}

// ---- routing ------------------------------------------------------------------------
function route() {
  leave();
  const path = location.hash.replace(/^#/, "") || "/";
  const show = path.match(/^\/shows\/(\d+)$/);
  document.title = "boxoffice";
  leave = show ? showView(view, Number(show[1]))
    : path === "/admin" ? adminView()
    : path === "/bookings" ? mineView()
    : listView();
  view.focus();
}
window.addEventListener("hashchange", route);
route();
