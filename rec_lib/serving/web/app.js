// rec_lib web page: log in by name, search and tick liked movies, get recommendations.
// The selection lives in localStorage under the user's name (case and outer spaces ignored), so it survives a
// reload. What the page sends is checked here first and every problem is said in words; the API stays strict.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_K = 100;
const YEARS = [1, 9999];
const DEFAULT_K = "10";
const state = { user: null, liked: new Map(), shown: null }; // liked: movie_id -> title; shown: what results are for

// "  Alice   Smith " -> "Alice Smith" (shown) and "alice smith" (the storage key): one person, however typed.
const displayName = (raw) => raw.trim().replace(/\s+/g, " ");
const nameKey = (name) => displayName(name).toLowerCase();
const storageKey = () => `rec_lib.liked.${nameKey(state.user)}`;

function save() {
  localStorage.setItem("rec_lib.user", state.user);
  localStorage.setItem(storageKey(), JSON.stringify([...state.liked]));
}

// A saved selection as [[movie_id, title], ...]; anything else (a hand-edited or corrupt entry) is
// discarded with a note, so the page still opens for that name.
function savedSelection() {
  const raw = localStorage.getItem(storageKey());
  if (raw === null) return { liked: new Map(), lost: false };
  try {
    const pairs = JSON.parse(raw);
    const valid = Array.isArray(pairs) && pairs.every((pair) =>
      Array.isArray(pair) && pair.length === 2 && Number.isSafeInteger(pair[0]) && typeof pair[1] === "string");
    if (valid) return { liked: new Map(pairs), lost: false };
  } catch (error) {
    // fall through: the entry is not JSON
  }
  localStorage.removeItem(storageKey());
  return { liked: new Map(), lost: true };
}

// Everything on screen that belongs to a person goes when another logs in: query, matches, options, results.
function clearScreen() {
  $("query").value = "";
  $("matches").replaceChildren();
  $("k").value = DEFAULT_K;
  $("year-from").value = "";
  $("year-to").value = "";
  document.querySelectorAll("#genres input").forEach((box) => { box.checked = false; });
  $("results").tBodies[0].replaceChildren();
  $("results").classList.remove("stale");
  state.shown = null;
  for (const id of ["search-status", "results-status"]) say(id, "");
}

function restore(user) {
  state.user = user;
  clearScreen();
  const saved = savedSelection();
  state.liked = saved.liked;
  $("who").textContent = `Logged in as ${user}.`;
  $("app").hidden = false;
  say("search-status", saved.lost ? "Your saved selection could not be read, so it starts empty." : "", saved.lost);
  renderLiked();
}

// An API error in words: which field is wrong and why, not the answer's JSON.
function describeError(status, body) {
  const detail = body.detail;
  if (status === 422 && Array.isArray(detail)) {
    const problems = detail.map((p) => `${(p.loc || []).slice(1).join(" ") || "request"}: ${p.msg}`);
    return `The server refused this request. ${problems.join("; ")}.`;
  }
  if (status === 404 && Array.isArray(body.unknown_ids)) {
    return `These liked movies are no longer in the catalogue (ids ${body.unknown_ids.join(", ")}): untick them.`;
  }
  if (status === 503) return `The recommender cannot answer right now (${detail}). Try again in a moment.`;
  return typeof detail === "string" ? detail : `The server answered with status ${status}.`;
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("The server cannot be reached. Is it still running?");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(describeError(response.status, body));
  return body;
}

function say(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

function checkboxItem(movie, checked, onChange) {
  const item = document.createElement("li");
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = checked;
  box.dataset.movieId = movie.movie_id;
  box.addEventListener("change", () => onChange(box.checked));
  label.append(box, document.createTextNode(movie.title));
  item.append(label);
  return item;
}

function toggle(movie, liked) {
  if (liked) state.liked.set(movie.movie_id, movie.title);
  else state.liked.delete(movie.movie_id);
  save();
  renderLiked();
  markStale();
}

function renderLiked() {
  const list = $("liked");
  list.replaceChildren(
    ...[...state.liked].map(([id, title]) => checkboxItem({ movie_id: id, title }, true, (on) => {
      toggle({ movie_id: id, title }, on);
      const match = document.querySelector(`#matches input[data-movie-id="${id}"]`);
      if (match) match.checked = on;
    }))
  );
  $("liked-count").textContent = `(${state.liked.size})`;
}

async function search(event) {
  event.preventDefault();
  const q = $("query").value.trim();
  if (!q) return say("search-status", "Type part of a title first.", true);
  try {
    const movies = await api(`/movies/search?q=${encodeURIComponent(q)}&limit=30`);
    $("matches").replaceChildren(
      ...movies.map((m) => checkboxItem(m, state.liked.has(m.movie_id), (on) => toggle(m, on)))
    );
    const found = movies.length === 1 ? "1 match" : `${movies.length} matches`;
    say("search-status", movies.length ? `${found} for “${q}”.` : `No title matches “${q}”.`, !movies.length);
  } catch (error) {
    say("search-status", error.message, true);
  }
}

// A whole number typed in a number box, or an error message naming the box.
function wholeNumber(id, name, [low, high], optional) {
  const input = $(id);
  const raw = input.value.trim();
  if (raw === "" && !input.validity.badInput) return optional ? { value: null } : { error: `${name}: type a number.` };
  const typed = raw === "" ? "" : ` (you typed ${raw})`;
  if (!/^\d+$/.test(raw) || Number(raw) < low || Number(raw) > high) {
    return { error: `${name}: type a whole number from ${low} to ${high}${typed}.` };
  }
  return { value: Number(raw) };
}

// The request body for what is on screen, or the first problem with it in words.
function request() {
  const k = wholeNumber("k", "How many", [1, MAX_K], false);
  const from = wholeNumber("year-from", "Years from", YEARS, true);
  const to = wholeNumber("year-to", "Years to", YEARS, true);
  const error = k.error || from.error || to.error;
  if (error) return { error };
  const body = { liked: [...state.liked.keys()], mode: "set", k: k.value };
  if (from.value !== null || to.value !== null) {
    body.years = [from.value ?? YEARS[0], to.value ?? YEARS[1]];
    if (body.years[0] > body.years[1]) {
      return { error: `Years: the first year (${body.years[0]}) is after the last (${body.years[1]}).` };
    }
  }
  const genres = [...document.querySelectorAll("#genres input:checked")].map((box) => box.value);
  if (genres.length) body.genres = genres;
  return { body };
}

function markStale() {
  if (state.shown === null) return;
  const current = request();
  const stale = JSON.stringify(current.body ?? null) !== state.shown;
  $("results").classList.toggle("stale", stale);
  if (stale) say("results-status", "Your liked movies or filters changed: press Recommend to update these results.");
}

// A problem with the request, said where the person is looking (the status line is below the options).
function refuse(message) {
  say("results-status", message, true);
  $("results-status").scrollIntoView({ block: "center" });
}

async function recommend(event) {
  event.preventDefault();
  const { body, error } = request();
  if (error) return refuse(error);
  say("results-status", "Working…");
  try {
    const result = await api("/recommend", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const labels = [...$("results").tHead.rows[0].cells].map((cell) => cell.textContent);
    const rows = result.recommendations.map((r, i) => {
      const row = document.createElement("tr");
      const cells = [i + 1, r.title, r.year ?? "", r.genres.join(", "), r.score.toFixed(3), r.because];
      cells.forEach((value, column) => {
        const cell = document.createElement("td");
        cell.textContent = value;
        cell.dataset.label = labels[column];
        if (column === 0 || column === 4) cell.className = "num";
        row.append(cell);
      });
      return row;
    });
    $("results").tBodies[0].replaceChildren(...rows);
    $("results").classList.remove("stale");
    state.shown = JSON.stringify(body);
    say("results-status", result.fallback
      ? "Nothing liked yet: these are the most popular movies (score: their number of ratings)."
      : rows.length ? `${rows.length} recommendations for your ${state.liked.size} liked movies.`
        : "No movie passes these filters: widen the years or tick other genres.");
    $("results-status").scrollIntoView({ block: "start" });
  } catch (error) {
    refuse(error.message);
  }
}

async function loadGenres() {
  try {
    const genres = await api("/genres");
    $("genres").replaceChildren(...genres.map((genre, i) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = genre;
      box.id = `genre-${i}`;
      label.append(box, document.createTextNode(genre));
      return label;
    }));
  } catch (error) {
    say("results-status", error.message, true);
  }
}

// Enter on a focused checkbox ticks it, as Space does.
function enterTicks(event) {
  if (event.key === "Enter" && event.target.matches("input[type=checkbox]")) {
    event.preventDefault();
    event.target.click();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = displayName($("name").value);
    if (!name) return;
    $("name").value = name;
    restore(name);
    save();
    $("query").focus();
  });
  $("search").addEventListener("submit", search);
  $("options").addEventListener("submit", recommend);
  $("options").addEventListener("input", markStale);
  for (const id of ["matches", "liked", "genres"]) $(id).addEventListener("keydown", enterTicks);
  $("clear").addEventListener("click", () => {
    state.liked.clear();
    save();
    renderLiked();
    document.querySelectorAll("#matches input:checked").forEach((box) => { box.checked = false; });
    markStale();
  });
  loadGenres();
  const user = localStorage.getItem("rec_lib.user");
  if (user) {
    $("name").value = user;
    restore(user);
  }
});
