// Requests to the GenVid API (same origin), and what its errors mean in plain sentences.

import {accessToken, refresh, SessionEnded} from './session.js';
import {fromNow, money} from './dom.js';

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(typeof body?.detail === 'string' ? body.detail : `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.retryAfter = Number(headers?.get('Retry-After') ?? NaN);
  }
}

/**
 * JSON in, JSON out. `form` sends a URL-encoded form instead of `json`. With `auth` (the
 * default) it sends the access token and, on a 401, refreshes it once and retries.
 */
export async function api(path, {method = 'GET', json, headers = {}, auth = true, signal} = {}) {
  for (let attempt = 0; ; attempt++) {
    const sent = {...headers};
    let token = null;
    if (auth) {
      token = await accessToken();
      sent.Authorization = `Bearer ${token}`;
    }
    if (json !== undefined) sent['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method, headers: sent, signal, cache: 'no-store',
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    if (response.status === 401 && auth && attempt === 0) {
      await refresh(token);
      continue;
    }
    if (response.status === 401 && auth) throw new SessionEnded();
    if (response.status === 204) return null;
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body, response.headers);
    return body;
  }
}

const FIELD_NAMES = {
  prompt: 'The prompt', negative_prompt: 'The negative prompt', seed: 'The seed',
  duration_seconds: 'The duration', aspect_ratio: 'The aspect ratio', model: 'The model',
  email: 'The email', username: 'The username', password: 'The password',
  title: 'The title', description: 'The description', body: 'The comment',
};

function fieldSentence(entry) {
  const field = entry.loc?.[entry.loc.length - 1];
  const name = FIELD_NAMES[field] ?? 'This value';
  const words = String(entry.msg ?? 'is not valid')
    .replace(/^Value error, /, '').replace(/^(String|Input|Value) (?=should|must|is)/, '');
  const text = /^(must|is|should|has|can|may)\b/.test(words) ? `${name} ${words}` : `${name}: ${words}`;
  return text.endsWith('.') ? text : `${text}.`;
}

function budgetSentence(detail) {
  const period = detail.period === 'monthly' ? 'this month' : 'today';
  const resets = `It resets ${fromNow(detail.resets_at)}.`;
  if (detail.scope === 'global') {
    return `GenVid has reached its spending limit for everyone ${period}, so this ` +
      `${money(detail.requested_usd)} video cannot start now. ${resets}`;
  }
  return `This video would cost ${money(detail.requested_usd)}, but only ` +
    `${money(detail.remaining_usd)} of your ${money(detail.limit_usd)} budget is left ${period}. ` +
    `Try a shorter or cheaper video. ${resets}`;
}

/** What went wrong, as a sentence a person can act on. */
export function sentence(error) {
  if (error instanceof SessionEnded) return error.message;
  if (!(error instanceof ApiError)) {
    return 'GenVid cannot be reached right now. Check your connection and try again.';
  }
  const detail = error.body?.detail;
  if (error.status === 402 && detail?.code === 'budget_exceeded') return budgetSentence(detail);
  if (error.status === 429) {
    const wait = Number.isFinite(error.retryAfter) ? error.retryAfter : 60;
    return `You have asked for many videos in a short time. Please wait ${wait} ` +
      `${wait === 1 ? 'second' : 'seconds'} and try again.`;
  }
  if (error.status === 422 && Array.isArray(detail)) return detail.map(fieldSentence).join(' ');
  if (error.status >= 500) return 'Something went wrong on our side. Please try again in a moment.';
  if (typeof detail === 'string') return detail.endsWith('.') ? detail : `${detail}.`;
  return 'That did not work. Please try again.';
}
