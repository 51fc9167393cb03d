// The arena page: plays tag in an "arena" room through the roomwire SDK, drawn on a canvas.
//
// The room is synced (see examples/arena/app.py): `room.synced` is the server's room state,
// kept current by the SDK, and the canvas is redrawn from it every animation frame. Our own
// player moves at once on key presses (prediction) and each step is sent as a `move` message;
// the server applies them in order, so it ends up where we drew it. A refused move puts us back
// where the server has us.

// Every URL is relative to this file's folder, the app's base: the page works at `/` and with
// the app mounted under a prefix (`Mount("/game", app=game_app)` serves it at /game/).
const BASE = new URL(".", import.meta.url);
const SDK_URL = new URL("sdk/roomwire-client.js", BASE).href;
const SDK_MISSING =
  `The roomwire SDK is missing (no <code>${new URL(SDK_URL).pathname}</code>). Build the SDK: ` +
  "<code>cd clients/js &amp;&amp; npm ci &amp;&amp; npm run build</code>, then restart the server.";
const MOVE_EVERY_MS = 50;
const STEP = 10; // units per `move`: 200 units/s, well under the server's max step per message
const KEYS = {
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  w: [0, -1],
  s: [0, 1],
  a: [-1, 0],
  d: [1, 0],
};

const $ = (id) => document.getElementById(id);
const canvas = $("arena");
const ctx = canvas.getContext("2d");

let arena = { width: 800, height: 600, tag_radius: 24 }; // from /rules, then the room's state
const seen = []; // {seq, type} of every event delivered, in order: for the end-to-end tests
const held = new Set(); // direction keys held down
const tapped = new Set(); // keys pressed since the last step: a quick tap still moves one step
const drawn = new Map(); // id -> {x, y}: positions eased towards the latest ones, for smooth drawing
let Client = null;
let client = null;
let room = null;
let me = null; // our predicted position {x, y}
let status = "idle";
let clockOffsetS = 0; // server clock minus ours

// A read-only view for tests and for poking around in the console.
window.__arena = Object.freeze({
  get state() {
    const state = room?.synced;
    return state ? structuredClone({ ...state, players: Object.values(state.players) }) : null;
  },
  get mirror() {
    return room?.mirror.status ?? null;
  },
  get events() {
    return seen.map((e) => ({ ...e }));
  },
  get lastSeq() {
    return room?.lastSeq ?? 0;
  },
  get status() {
    return status;
  },
  get room() {
    return room?.id ?? null;
  },
  get player() {
    return room?.player ?? null;
  },
  get position() {
    return me && { ...me };
  },
  /** Cut the socket as a network failure would; the SDK reconnects and resumes. */
  disconnect() {
    client?.simulateDisconnect();
  },
});

// --- joining ----------------------------------------------------------------------------------

async function play(name) {
  $("play").disabled = true;
  notice(null);
  localStorage.setItem("arena-name", name);
  client = new Client(BASE.href);
  client.onStatus(setStatus);
  try {
    await client.loginGuest(name || undefined);
    room = await client.joinOrCreate("arena");
  } catch (err) {
    client.close();
    notice(`Could not join: ${describe(err)}`);
    $("play").disabled = false;
    return;
  }
  // Added right after the join: the SDK holds the first events (and the state) until then.
  room.onEvent((event) => seen.push({ seq: event.seq, type: event.type }));
  room.onChange(["players", room.player], ({ value }) => {
    if (me === null || value === undefined) me = value ? { x: value.x, y: value.y } : null;
  });
  room.onChange("arena", ({ value }) => {
    arena = value;
    resizeCanvas();
  });
  room.onRemove("players", (id) => drawn.delete(id));
  room.onChange("players", renderScores);
  room.onChange("it", renderScores);
  room.onError((err) => {
    // A refused move: go back to where the server has us. Lost history heals itself: the SDK
    // joins again and the mirror gets the whole state.
    const mine = room?.synced?.players?.[room.player];
    if (err.code === "rejected" && mine) me = { x: mine.x, y: mine.y };
    else if (err.code !== "history_gone") notice(describe(err));
  });
  room.onLeave((info) => {
    notice(`You left the room: ${leftBecause(info)}. Press Play to join again.`);
    room = null;
    me = null;
    renderScores();
    client.close();
    $("play").disabled = false;
  });
  canvas.focus();
}

/** What went wrong, in words: the error's code, message and cause (a close code, a reason). */
function describe(err) {
  if (err === null || err === undefined) return "no reason given";
  const parts = [];
  if (err.code) parts.push(err.code);
  if (err.message && err.message !== err.code) parts.push(err.message);
  if (err.closeCode) parts.push(`WebSocket close ${err.closeCode}`);
  if (err.ref) parts.push(`server log ref ${err.ref}`);
  if (err.cause && err.cause !== err) parts.push(`(${describe(err.cause)})`);
  return parts.join(": ") || String(err);
}

/** Why the room was left, for the notice: the reason, the game's detail, and the error behind it. */
function leftBecause(info) {
  const what = {
    left: "you left",
    ended: "the room ended",
    replaced: "you joined from another tab",
    removed: "the game removed you",
    closed: "the page closed its connection",
    failed: "the connection or the rejoin failed for good",
  }[info.reason] ?? info.reason;
  const extra = [info.detail, info.error ? describe(info.error) : null].filter(Boolean).join("; ");
  return extra ? `${what} (${extra})` : what;
}

function setStatus(next) {
  status = next;
  const conn = $("conn");
  conn.dataset.status = next;
  conn.querySelector("span").textContent = next === "idle" ? "offline" : next;
}

function notice(text) {
  const box = $("notice");
  box.hidden = text === null;
  box.textContent = text ?? "";
}

// --- moving -----------------------------------------------------------------------------------

function onKey(event, isDown) {
  if (event.target instanceof HTMLInputElement) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (!(key in KEYS)) return;
  event.preventDefault(); // arrows would scroll the page
  if (isDown) {
    held.add(key);
    tapped.add(key);
  } else {
    held.delete(key);
  }
}

function step() {
  const keys = new Set([...held, ...tapped]);
  tapped.clear();
  // Not while the room is resuming: moves would pile up unacknowledged.
  if (!me || room?.status !== "joined") return;
  let dx = 0;
  let dy = 0;
  for (const key of keys) {
    dx += KEYS[key][0];
    dy += KEYS[key][1];
  }
  const length = Math.hypot(dx, dy);
  if (length === 0) return;
  const x = round1(clamp(me.x + (dx / length) * STEP, 0, arena.width));
  const y = round1(clamp(me.y + (dy / length) * STEP, 0, arena.height));
  if (x === me.x && y === me.y) return; // against a wall
  me = { x, y };
  room.send("move", me);
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const round1 = (v) => Math.round(v * 10) / 10;

// --- drawing ----------------------------------------------------------------------------------

function resizeCanvas() {
  if (canvas.width !== arena.width) canvas.width = arena.width;
  if (canvas.height !== arena.height) canvas.height = arena.height;
}

function draw() {
  const { width, height } = arena;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#1c222a";
  ctx.lineWidth = 1;
  for (let x = 50; x < width; x += 50) line(x, 0, x, height);
  for (let y = 50; y < height; y += 50) line(0, y, width, y);

  const radius = arena.tag_radius / 2; // two players touch when "it" can tag
  const state = room?.synced;
  for (const player of Object.values(state?.players ?? {})) {
    const target = player.id === room?.player && me ? me : player;
    const pos = drawn.get(player.id) ?? { ...target };
    pos.x += (target.x - pos.x) * 0.4;
    pos.y += (target.y - pos.y) * 0.4;
    drawn.set(player.id, pos);
    drawPlayer(player, pos, radius, state.it);
  }
  drawBanner(state);
  $("round").textContent = roundText(state);
  requestAnimationFrame(draw);
}

function drawPlayer(player, pos, radius, it) {
  const isIt = player.id === it;
  if (isIt) {
    ctx.beginPath();
    ctx.arc(pos.x, pos.y, radius + 6, 0, 2 * Math.PI);
    ctx.fillStyle = "rgba(255, 213, 74, 0.25)";
    ctx.fill();
  }
  ctx.beginPath();
  ctx.arc(pos.x, pos.y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = player.color;
  ctx.fill();
  ctx.lineWidth = isIt ? 3 : 2;
  ctx.strokeStyle = isIt ? "#ffd54a" : player.id === room?.player ? "#fff" : "#0008";
  ctx.stroke();
  ctx.font = `${isIt ? "bold " : ""}13px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.fillStyle = isIt ? "#ffd54a" : "#e8eaed";
  const label = (isIt ? "IT · " : "") + player.name + (player.id === room?.player ? " (you)" : "");
  ctx.fillText(label, pos.x, pos.y - radius - 8);
}

function drawBanner(state) {
  let text = null;
  if (!room) text = "Enter a name and press Play";
  else if (!state || state.phase === "waiting") text = "Waiting for the round to start…";
  else if (state.phase === "intermission") {
    const names = state.winners.map((id) => state.players[id]?.name ?? id);
    text = `Round ${state.round} over · ${names.length ? `winner: ${names.join(", ")}` : "no tags"}`;
  }
  if (text === null) return;
  ctx.fillStyle = "#000a";
  ctx.fillRect(0, arena.height / 2 - 30, arena.width, 60);
  ctx.font = "bold 22px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillStyle = "#fff";
  ctx.fillText(text, arena.width / 2, arena.height / 2 + 8);
}

function line(x1, y1, x2, y2) {
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}

function roundText(state) {
  if (!state || state.ends_at === null) return "";
  const left = Math.max(0, Math.ceil(state.ends_at - (Date.now() / 1000 + clockOffsetS)));
  if (state.phase === "playing") return `Round ${state.round} · ${left} s left`;
  if (state.phase === "intermission") return `Next round in ${left} s`;
  return "";
}

function renderScores() {
  const list = $("scores");
  const state = room?.synced;
  const it = state?.it;
  const players = Object.values(state?.players ?? {}).sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  list.replaceChildren(
    ...players.map((p) => {
      const item = document.createElement("li");
      const swatch = Object.assign(document.createElement("span"), {
        className: "swatch",
      });
      swatch.style.background = p.color;
      const name = Object.assign(document.createElement("span"), {
        className: "name" + (p.id === it ? " it" : ""),
        textContent: p.name + (p.id === room?.player ? " (you)" : "") + (p.id === it ? " · it" : ""),
      });
      const score = Object.assign(document.createElement("span"), {
        className: "score",
        textContent: p.score,
      });
      item.append(swatch, name, score);
      return item;
    }),
  );
}

// --- start ------------------------------------------------------------------------------------

async function loadRules() {
  const sent = Date.now();
  const url = new URL("rules", BASE);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url.pathname} answered ${response.status} ${response.statusText}`);
  const rules = await response.json();
  arena = { ...rules.arena, tag_radius: rules.tag_radius };
  resizeCanvas();
  // ends_at is on the server's clock. The Date header has a 1 s resolution: only use it to
  // correct a clock that is clearly off, not to fight NTP over milliseconds.
  const serverMs = Date.parse(response.headers.get("date") ?? "");
  const skewS = (serverMs - (sent + Date.now()) / 2) / 1000;
  if (Math.abs(skewS) > 2) clockOffsetS = skewS;
}

async function start() {
  addEventListener("keydown", (e) => onKey(e, true));
  addEventListener("keyup", (e) => onKey(e, false));
  addEventListener("blur", () => held.clear()); // a key released in another window never says so
  setInterval(step, MOVE_EVERY_MS);
  requestAnimationFrame(draw);

  $("name").value = localStorage.getItem("arena-name") ?? "";
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    play($("name").value.trim());
  });
  try {
    await loadRules();
  } catch (err) {
    notice(`Could not load the rules: ${err.message}`);
  }
  try {
    ({ Client } = await import(SDK_URL));
  } catch {
    Object.assign($("notice"), { innerHTML: SDK_MISSING, hidden: false });
    return;
  }
  $("play").disabled = false;
}

start();
