// The signed-in user's tokens, kept in localStorage so that a reload or a second tab stays
// signed in. Access tokens live 15 minutes; they are refreshed before they expire and on any
// 401, without the user noticing. Refresh tokens rotate and the server revokes every token of
// a user whose used refresh token is presented again, so two tabs must never refresh with the
// same one: a Web Lock serializes refreshes, and a tab that waited finds the new pair stored.

const KEY = 'genvid.session';
const EARLY_MS = 60_000; // refresh this long before the access token expires

export class SessionEnded extends Error {
  constructor() {
    super('Your session has ended. Please log in again.');
    this.name = 'SessionEnded';
  }
}

const listeners = new Set();

/** `listener(reason)` runs when the session ends by itself ('ended') or on log out ('logout'). */
export function onEnd(listener) {
  listeners.add(listener);
}

export function current() {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? 'null');
  } catch {
    return null;
  }
}

function store(pair, user) {
  const value = {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    expires_at: Date.now() + pair.expires_in * 1000,
    user: user ?? current()?.user ?? null,
  };
  localStorage.setItem(KEY, JSON.stringify(value));
  return value;
}

export function setUser(user) {
  const value = current();
  if (value) localStorage.setItem(KEY, JSON.stringify({...value, user}));
}

export function end(reason) {
  localStorage.removeItem(KEY);
  for (const listener of listeners) listener(reason);
}

async function tokenRequest(path, init) {
  const response = await fetch(path, {...init, cache: 'no-store'});
  const body = await response.json().catch(() => null);
  return {response, body};
}

/** Logs in with a username or email; the caller gets the server's words on failure. */
export async function login(username, password) {
  const form = new URLSearchParams({username, password});
  const {response, body} = await tokenRequest('/auth/token', {method: 'POST', body: form});
  if (!response.ok) return {ok: false, status: response.status, body};
  store(body, null);
  return {ok: true};
}

function withLock(work) {
  if (navigator.locks) return navigator.locks.request('genvid-refresh', work);
  return work();
}

/** A new token pair, unless another tab already replaced `stale` (then its pair). */
export async function refresh(stale) {
  return withLock(async () => {
    const now = current();
    if (!now) throw new SessionEnded();
    if (stale && now.access_token !== stale) return now.access_token;
    const {response, body} = await tokenRequest('/auth/refresh', {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({refresh_token: now.refresh_token}),
    });
    if (response.status === 401 || response.status === 422) {
      end('ended');
      throw new SessionEnded();
    }
    if (!response.ok) throw new Error(`refresh failed: ${response.status}`);
    return store(body).access_token;
  });
}

/** An access token that is valid for at least another minute. */
export async function accessToken() {
  const now = current();
  if (!now) throw new SessionEnded();
  if (now.expires_at - EARLY_MS > Date.now()) return now.access_token;
  return refresh(now.access_token);
}
