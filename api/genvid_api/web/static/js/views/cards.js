// A published video as the feeds and profiles show it, and the like and follow buttons.

import {api, sentence} from '../api.js';
import {h, plural, replace, time} from '../dom.js';
import {player} from './media.js';

/** A toggle button (aria-pressed) whose click asks the API and shows what it answered. */
function toggle({pressed, initial = {}, label, request, onChange, toast}) {
  const button = h('button', {type: 'button', class: 'toggle', 'aria-pressed': String(pressed)});
  const show = (state) => {
    button.setAttribute('aria-pressed', String(state.pressed));
    replace(button, label(state));
  };
  show({pressed, ...initial});
  button.addEventListener('click', async () => {
    const next = button.getAttribute('aria-pressed') !== 'true';
    button.disabled = true;
    try {
      const state = await request(next);
      show(state);
      onChange?.(state);
    } catch (error) {
      toast?.(sentence(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function likeButton(video, toast) {
  return toggle({
    pressed: video.liked_by_me,
    initial: {count: video.like_count},
    label: ({pressed, count}) => [h('span', {'aria-hidden': 'true'}, pressed ? '♥' : '♡'),
      ` ${pressed ? 'Liked' : 'Like'} · `, h('span', {class: 'count'}, plural(count, 'like'))],
    request: async (like) => {
      const state = await api(`/videos/${video.id}/like`, {method: like ? 'PUT' : 'DELETE'});
      return {pressed: state.liked, count: state.like_count};
    },
    toast,
  });
}

export function followButton(username, following, toast, onChange) {
  return toggle({
    pressed: following,
    label: ({pressed}) => (pressed ? `Following @${username}` : `Follow @${username}`),
    request: async (follow) => {
      const state = await api(`/users/${encodeURIComponent(username)}/follow`, {method: follow ? 'PUT' : 'DELETE'});
      return {pressed: state.following, followers: state.follower_count};
    },
    onChange,
    toast,
  });
}

export function videoCard(video, ctx) {
  return h('li', {class: 'video-card', dataset: {id: video.id}},
    h('article', {'aria-labelledby': `t-${video.id}`},
      player(video, video.title),
      h('div', {class: 'body'},
        h('h2', {id: `t-${video.id}`}, h('a', {href: `#/videos/${video.id}`}, video.title)),
        h('p', {class: 'meta'}, h('a', {href: `#/users/${video.author.username}`}, `@${video.author.username}`),
          ' · ', time(video.published_at)),
        h('div', {class: 'actions'}, likeButton(video, ctx.toast),
          h('a', {href: `#/videos/${video.id}`, class: 'button'}, plural(video.comment_count, 'comment'))))));
}
