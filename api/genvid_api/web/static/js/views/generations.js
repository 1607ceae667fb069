// My generations, newest first: status, cost and the preview of each.

import {append, h, money, time} from '../dom.js';
import {badge} from './media.js';
import {pager} from './pages.js';

function item(g) {
  const preview = g.poster_url
    ? h('img', {src: g.poster_url, alt: '', loading: 'lazy', class: g.aspect_ratio === '9:16' ? 'portrait' : ''})
    : h('div', {class: 'placeholder', 'aria-hidden': 'true'}, '▶');
  return h('li', {class: 'generation', dataset: {id: g.id, status: g.status}},
    h('a', {href: `#/generations/${g.id}`, class: 'thumb', tabindex: '-1', 'aria-hidden': 'true'}, preview),
    h('div', {class: 'body'},
      h('a', {href: `#/generations/${g.id}`, class: 'title'}, g.prompt),
      h('p', {class: 'meta'}, badge(g.status), ' ',
        h('span', {class: 'cost'}, money(g.cost_usd)), ' · ', `${g.duration_seconds} s`,
        ' · ', time(g.created_at))));
}

export function generationsView(ctx) {
  const list = h('ul', {class: 'generations', id: 'generations'});
  append(ctx.main,
    h('div', {class: 'heading'}, h('h1', {tabindex: '-1'}, 'My generations'),
      h('a', {href: '#/create', class: 'button primary'}, 'New video')),
    list,
    pager({list, path: '/generations', limit: 10, render: item, signal: ctx.signal,
      empty: h('span', {}, 'Nothing yet. ', h('a', {href: '#/create'}, 'Create your first video.'))}));
}
