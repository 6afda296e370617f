// rec_lib web page: log in by name, search and tick liked movies, get recommendations.
// The selection lives in localStorage under the user's name, so it survives a reload.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { user: null, liked: new Map() }; // movie_id -> title

const storageKey = () => `rec_lib.liked.${state.user}`;

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

function restore(user) {
  state.user = user;
  const saved = savedSelection();
  state.liked = saved.liked;
  $("who").textContent = `Logged in as ${user}.`;
  $("app").hidden = false;
  say("search-status", saved.lost ? "Your saved selection could not be read, so it starts empty." : "", saved.lost);
  renderLiked();
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
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
    say("search-status", movies.length ? `${movies.length} matches for “${q}”.` : `No title matches “${q}”.`,
        !movies.length);
  } catch (error) {
    say("search-status", error.message, true);
  }
}

async function recommend() {
  const body = { liked: [...state.liked.keys()], k: Number($("k").value) || 10 };
  if ($("genre").value) body.genres = [$("genre").value];
  say("results-status", "Working…");
  try {
    const result = await api("/recommend", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const rows = result.recommendations.map((r, i) => {
      const row = document.createElement("tr");
      const cells = [i + 1, r.title, r.year ?? "", r.genres.join(", "), r.score.toFixed(3), r.because];
      cells.forEach((value, column) => {
        const cell = document.createElement("td");
        cell.textContent = value;
        if (column === 0 || column === 4) cell.className = "num";
        row.append(cell);
      });
      return row;
    });
    $("results").tBodies[0].replaceChildren(...rows);
    say("results-status", result.fallback
      ? "Nothing liked yet: these are the most popular movies."
      : `${rows.length} recommendations for your ${state.liked.size} liked movies.`);
  } catch (error) {
    say("results-status", error.message, true);
  }
}

async function loadGenres() {
  try {
    const genres = await api("/genres");
    $("genre").append(...genres.map((g) => new Option(g, g)));
  } catch (error) {
    say("results-status", error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    if (name) {
      restore(name);
      save();
      $("query").focus();
    }
  });
  $("search").addEventListener("submit", search);
  $("recommend").addEventListener("click", recommend);
  $("clear").addEventListener("click", () => { state.liked.clear(); save(); renderLiked(); });
  loadGenres();
  const user = localStorage.getItem("rec_lib.user");
  if (user) {
    $("name").value = user;
    restore(user);
  }
});
