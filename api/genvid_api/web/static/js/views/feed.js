// The feeds: everyone's videos, or those of the people I follow, newest first, loading the
// next page as the end of the list scrolls into view.

import {append, h} from '../dom.js';
import {videoCard} from './cards.js';
import {pager} from './pages.js';

export function feedView(ctx, which) {
  const list = h('ul', {class: 'video-grid', id: 'feed'});
  const path = which === 'following' ? '/feed/following' : '/feed';
  const empty = which === 'following'
    ? h('span', {}, 'No videos from people you follow yet. Find creators in the ',
      h('a', {href: '#/feed'}, 'public feed'), ' and follow them.')
    : h('span', {}, 'No videos yet. ', h('a', {href: '#/create'}, 'Be the first to publish one.'));
  append(ctx.main,
    h('div', {class: 'heading'},
      h('h1', {tabindex: '-1'}, which === 'following' ? 'Following' : 'Feed'),
      h('nav', {class: 'tabs', 'aria-label': 'Feeds'},
        h('a', {href: '#/feed', 'aria-current': which === 'everyone' ? 'page' : null}, 'Everyone'),
        h('a', {href: '#/following', 'aria-current': which === 'following' ? 'page' : null}, 'Following'))),
    list,
    pager({list, path, limit: 9, render: (video) => videoCard(video, ctx), empty,
      signal: ctx.signal, infinite: true}));
}
