// Previews: a <video> with its poster, and the status words every list shows.

import {h} from '../dom.js';

export const STATUS_WORDS = {
  QUEUED: 'Queued', RUNNING: 'Rendering', SUCCEEDED: 'Ready', FAILED: 'Failed',
  CANCELED: 'Canceled', REJECTED: 'Rejected',
};

export const FINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED']);

export function badge(status) {
  return h('span', {class: `badge ${status.toLowerCase()}`, dataset: {status}}, STATUS_WORDS[status] ?? status);
}

/**
 * A player for a signed preview URL. Signed URLs expire: when loading fails, `refresh` (if
 * given) is asked for new ones, once.
 */
export function player({video_url: src, poster_url: poster, aspect_ratio: aspect}, label,
  {preload = 'metadata', refresh} = {}) {
  const video = h('video', {src, poster, controls: true, playsinline: true, preload,
    class: aspect === '9:16' ? 'portrait' : 'landscape', 'aria-label': label});
  if (refresh) {
    video.addEventListener('error', async () => {
      const fresh = await refresh().catch(() => null);
      if (fresh?.video_url && fresh.video_url !== video.src) {
        video.poster = fresh.poster_url ?? '';
        video.src = fresh.video_url;
      }
    }, {once: true});
  }
  return video;
}
