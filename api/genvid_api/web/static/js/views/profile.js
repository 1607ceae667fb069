// A user's profile: who they are, their counts, follow or unfollow, and their videos.

import {api} from '../api.js';
import {append, h, plural, replace, time} from '../dom.js';
import {followButton, videoCard} from './cards.js';
import {pager} from './pages.js';

export async function profileView(ctx) {
  const [username] = ctx.params;
  const profile = await api(`/users/${encodeURIComponent(username)}?limit=9`, {signal: ctx.signal});
  const mine = ctx.me?.id === profile.id;
  const followers = h('span', {id: 'follower-count'}, plural(profile.follower_count, 'follower'));
  const list = h('ul', {class: 'video-grid', id: 'profile-videos'});
  append(ctx.main,
    h('section', {class: 'card profile'},
      h('div', {class: 'avatar', 'aria-hidden': 'true'}, profile.username.charAt(0).toUpperCase()),
      h('div', {},
        h('h1', {tabindex: '-1'}, `@${profile.username}`),
        h('p', {class: 'meta'}, followers, ' · ', `${profile.following_count} following`, ' · ',
          plural(profile.video_count, 'video'), ' · joined ', time(profile.created_at)),
        mine ? null : followButton(profile.username, profile.followed_by_me, ctx.toast,
          (state) => replace(followers, plural(state.followers, 'follower'))))),
    h('h2', {class: 'section-title'}, mine ? 'Your published videos' : 'Videos'),
    list,
    pager({list, path: `/users/${encodeURIComponent(profile.username)}/videos`, limit: 9,
      render: (video) => videoCard(video, ctx), signal: ctx.signal, infinite: true,
      first: profile.videos, empty: mine ? 'You have not published anything yet.' : 'No videos yet.'}));
}
