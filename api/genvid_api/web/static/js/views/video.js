// One published video: play it, like it, read and write comments, follow its author; its
// owner may unpublish it.

import {api} from '../api.js';
import {append, h, plural, replace, time} from '../dom.js';
import {followButton, likeButton} from './cards.js';
import {busy, errorBox, field, onSubmit} from './forms.js';
import {player} from './media.js';
import {pager} from './pages.js';

function comment(c) {
  return h('li', {class: 'comment', dataset: {id: c.id}},
    h('p', {class: 'meta'}, h('a', {href: `#/users/${c.author.username}`}, `@${c.author.username}`),
      ' · ', time(c.created_at), c.edited_at ? ' · edited' : ''),
    h('p', {class: 'text'}, c.body));
}

export async function videoView(ctx) {
  const [id] = ctx.params;
  const load = () => api(`/videos/${id}`, {signal: ctx.signal});
  const video = await load();
  const mine = ctx.me?.id === video.author.id;
  let profile = null;
  if (!mine) profile = await api(`/users/${encodeURIComponent(video.author.username)}?limit=1`, {signal: ctx.signal});

  const comments = h('ol', {class: 'comments', id: 'comments'});
  const body = h('textarea', {name: 'body', rows: 3, maxlength: 2000, required: true});
  const error = errorBox();
  const post = h('button', {type: 'submit', class: 'primary'}, 'Post comment');
  const count = h('span', {id: 'comment-count'}, plural(video.comment_count, 'comment'));
  let total = video.comment_count;
  const form = h('form', {class: 'comment-form', novalidate: true}, field('Add a comment', body), error, post);
  onSubmit(form, body, error, 'Write something first.', () => {
    busy(post, 'Posting…', error, async () => {
      const created = await api(`/videos/${id}/comments`, {method: 'POST', json: {body: body.value}});
      comments.append(comment(created));
      body.value = '';
      replace(count, plural(++total, 'comment'));
    });
  });

  let owner = null;
  if (mine) {
    const unpublish = h('button', {type: 'button', class: 'danger'}, 'Unpublish');
    const unpublishError = errorBox();
    unpublish.addEventListener('click', () => busy(unpublish, 'Unpublishing…', unpublishError, async () => {
      await api(`/videos/${id}`, {method: 'DELETE'});
      ctx.toast('Video unpublished: it is private again.');
      ctx.go(video.generation_id ? `/generations/${video.generation_id}` : '/generations');
    }));
    owner = h('div', {class: 'owner'}, unpublish, unpublishError);
  }

  append(ctx.main,
    h('article', {class: 'card watch'},
      h('div', {class: 'stage'}, player(video, video.title, {preload: 'auto', refresh: load})),
      h('h1', {tabindex: '-1'}, video.title),
      h('p', {class: 'meta'}, h('a', {href: `#/users/${video.author.username}`}, `@${video.author.username}`),
        ' · ', time(video.published_at)),
      video.description ? h('p', {class: 'description'}, video.description) : null,
      h('div', {class: 'actions'}, likeButton(video, ctx.toast),
        profile ? followButton(video.author.username, profile.followed_by_me, ctx.toast) : null),
      owner),
    h('section', {class: 'card', 'aria-labelledby': 'comments-title'},
      h('h2', {id: 'comments-title'}, 'Comments ', h('span', {class: 'muted'}, '(', count, ')')),
      comments,
      pager({list: comments, path: `/videos/${id}/comments`, limit: 20, render: comment,
        signal: ctx.signal, empty: 'No comments yet. Be the first.'}),
      form));
}
