// Server-sent events with EventSource's semantics (the text/event-stream format, `id:` kept
// as the last event id, `retry:`, reconnecting with `Last-Event-ID`, a 204 ending it for
// good) over fetch: EventSource cannot send the `Authorization: Bearer` header the API
// requires, and a token in the URL would land in logs. A dropped connection resumes where
// it stopped: the API replays every event after the last id, so nothing is missed or repeated.

import {accessToken, refresh, SessionEnded} from './session.js';
import {sleep} from './dom.js';

const MAX_RETRY_MS = 15_000;

/** Parses a text/event-stream body, calling `dispatch({id, data, event})` per event. */
export async function readEvents(body, dispatch, state) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let event = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) {
          const stop = dispatch({id: state.lastId, event: event || 'message', data: data.join('\n')});
          if (stop) {
            await reader.cancel();
            return;
          }
        }
        data = [];
        event = '';
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: the server's heartbeat
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) state.lastId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) state.retryMs = Number(value);
    }
  }
}

/**
 * Follows `path` until `onEvent(payload)` returns true (a final event), the server answers
 * 204, or `signal` aborts. `onState` hears 'live', 'reconnecting' and 'closed'.
 */
export async function follow(path, {onEvent, onState = () => {}, signal}) {
  const state = {lastId: null, retryMs: 1000};
  let failures = 0;
  while (!signal.aborted) {
    try {
      const token = await accessToken();
      const headers = {Authorization: `Bearer ${token}`, Accept: 'text/event-stream'};
      if (state.lastId !== null) headers['Last-Event-ID'] = state.lastId;
      const response = await fetch(path, {headers, signal, cache: 'no-store'});
      if (response.status === 204) break;
      if (response.status === 401) {
        await refresh(token);
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`event stream: HTTP ${response.status}`);
      failures = 0;
      onState('live');
      let finished = false;
      await readEvents(response.body, (message) => {
        finished = Boolean(onEvent(JSON.parse(message.data)));
        return finished;
      }, state);
      if (finished) break;
    } catch (error) {
      if (signal.aborted || error instanceof SessionEnded) break;
      failures += 1;
    }
    if (signal.aborted) break;
    onState('reconnecting');
    const backoff = Math.min(state.retryMs * 2 ** Math.min(failures, 4), MAX_RETRY_MS);
    await sleep(backoff * (0.75 + Math.random() / 2), signal);
  }
  onState('closed');
}
