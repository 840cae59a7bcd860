// The live demo page: the client kit and the page's own elements, nothing else.
// The kit's URL comes from the page (it may carry a content hash once collected).
const kitUrl = document.querySelector("script[data-kit]").dataset.kit;
const { findMatch } = await import(kitUrl);

const MAX_INTERESTS = 10;
const $ = (id) => document.getElementById(id);
const form = $("search");
const stateBox = $("state");
const chosen = [];
let controller = null;
let ticker = null;

$("user-id").value = `demo-${Math.random().toString(36).slice(2, 8)}`;

function showState(state, { reveal = true } = {}) {
  stateBox.dataset.state = state;
  // On a phone the status card is below the form: bring it into view.
  if (reveal) stateBox.scrollIntoView({ block: "nearest", behavior: "smooth" });
  document.body.dataset.state = state;
  const busy = state === "waiting";
  $("find").hidden = busy;
  $("cancel").hidden = !busy;
  for (const input of form.querySelectorAll("input, select")) input.disabled = busy;
  for (const chip of document.querySelectorAll(".chips button")) chip.disabled = busy;
  if (!busy) clearInterval(ticker);
}

// -- interests ---------------------------------------------------------------------

function chip(label, { removable, onClick, pressed }) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = removable ? "chip chosen" : "chip";
  button.textContent = label;
  button.dataset.interest = label;
  if (removable) button.setAttribute("aria-label", `Remove ${label}`);
  if (pressed !== undefined) button.setAttribute("aria-pressed", String(pressed));
  button.addEventListener("click", onClick);
  item.append(button);
  return item;
}

function renderChosen() {
  $("chosen").replaceChildren(
    ...chosen.map((name) => chip(name, { removable: true, onClick: () => toggle(name) })),
  );
  for (const button of $("popular").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(chosen.includes(button.dataset.interest)));
  }
}

function add(raw) {
  for (const part of raw.split(",")) {
    const name = part.trim().toUpperCase();
    if (name && !chosen.includes(name) && chosen.length < MAX_INTERESTS) chosen.push(name);
  }
  renderChosen();
}

function toggle(name) {
  const at = chosen.indexOf(name);
  if (at >= 0) {
    chosen.splice(at, 1);
    renderChosen();
  } else {
    add(name);
  }
}

$("interest-input").addEventListener("keydown", (event) => {
  const input = event.target;
  if ((event.key === "Enter" || event.key === ",") && input.value.trim()) {
    event.preventDefault();
    add(input.value);
    input.value = "";
  } else if (event.key === "Backspace" && !input.value && chosen.length) {
    chosen.pop();
    renderChosen();
  }
});
$("tag-box").addEventListener("click", () => $("interest-input").focus());

async function loadPopular() {
  try {
    const response = await fetch("/interests/popular?limit=12", { cache: "no-store" });
    if (!response.ok) return;
    const rows = await response.json();
    if (!rows.length) return;
    $("popular").replaceChildren(
      ...rows.map(({ interest, count }) => {
        const item = chip(interest, {
          pressed: chosen.includes(interest),
          onClick: () => toggle(interest),
        });
        item.firstChild.title = `${count} recent ${count === 1 ? "search" : "searches"}`;
        return item;
      }),
    );
  } catch {
    // the list stays as it was; the page works without it
  }
}

async function loadServiceState() {
  const pill = $("service-state");
  const show = (state, text) => {
    pill.dataset.state = state;
    pill.title = text;
    pill.querySelector(".pill-text").textContent = text;
  };
  try {
    const response = await fetch("/maintenance", { cache: "no-store" });
    const body = await response.json();
    if (body.state === "ACTIVE") show("active", "Service online");
    else show("maintenance", "Under maintenance");
  } catch {
    show("down", "Service unreachable");
  }
}

// -- matchmaking -------------------------------------------------------------------

function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds < 60) return `about ${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `about ${minutes} min` : `over ${Math.floor(minutes / 60)} h`;
}

function startClock() {
  const started = Date.now();
  $("elapsed").textContent = "0:00";
  ticker = setInterval(() => {
    const seconds = Math.floor((Date.now() - started) / 1000);
    $("elapsed").textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }, 1000);
}

async function find() {
  const userId = $("user-id").value.trim();
  if (!userId) {
    $("user-id").focus();
    return;
  }
  const fallback = $("fallback-after").value;
  controller = new AbortController();
  $("searching-for").textContent = chosen.length
    ? `Someone who likes ${chosen.join(", ")}`
    : "Anyone at all (random chat)";
  $("waiting-count").textContent = "–";
  $("estimate").textContent = "–";
  $("waiting-count").dataset.value = "";
  showState("waiting");
  startClock();
  try {
    const match = await findMatch({
      userId,
      interests: chosen,
      fallbackAfter: fallback === "" ? undefined : Number(fallback),
      signal: controller.signal,
      onWaiting({ waiting, estimatedWaitSeconds }) {
        $("waiting-count").textContent = String(waiting);
        $("waiting-count").dataset.value = String(waiting);
        $("estimate").textContent = formatWait(estimatedWaitSeconds);
        $("estimate").dataset.seconds = estimatedWaitSeconds ?? "";
      },
    });
    $("matched-user").textContent = match.matchedUserId;
    $("shared").textContent = match.interest
      ? `You both like ${match.interest.split(",").join(", ")}`
      : "A random match: you share no listed interest";
    $("chat-id").textContent = match.chatId;
    $("chat-server").textContent = match.chatServerUrl;
    showState("matched");
  } catch (error) {
    if (error.code === "ABORTED") {
      showState("idle");
    } else {
      $("error-title").textContent =
        error.code === "MAINTENANCE" ? "Under maintenance" : "Matchmaking stopped";
      $("error-message").textContent = error.message;
      $("error-code").textContent = error.code || "UNKNOWN";
      showState("error");
      loadServiceState();
    }
  } finally {
    controller = null;
    loadPopular();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  add($("interest-input").value);
  $("interest-input").value = "";
  find();
});
$("cancel").addEventListener("click", () => controller && controller.abort());
$("again").addEventListener("click", () => find());
$("retry").addEventListener("click", () => find());

showState("idle", { reveal: false });
loadServiceState();
loadPopular();
document.body.dataset.ready = "true";
