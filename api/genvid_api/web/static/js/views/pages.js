// Listings on the API's cursors: a "Load more" button that, with `infinite`, presses itself
// as it scrolls into view (and stays a plain button for the keyboard).

import {api} from '../api.js';
import {h, replace, whenVisible} from '../dom.js';
import {errorBox, showError} from './forms.js';

/**
 * Fills `list` from `path` (`?limit=&cursor=`), one page at a time. `first` may hold a page
 * already fetched. Returns the element to place after the list.
 */
export function pager({list, path, limit = 12, render, empty, signal, infinite = false, first = null}) {
  let cursor = null;
  let loading = false;
  let done = false;
  let recheck = () => {};
  const more = h('button', {type: 'button', class: 'more'}, 'Load more');
  const status = h('p', {class: 'muted', role: 'status'});
  const error = errorBox();
  const footer = h('div', {class: 'pager'}, more, status, error);

  function add(page) {
    for (const item of page.items) list.append(render(item));
    cursor = page.next_cursor;
    done = cursor === null;
    more.hidden = done;
    if (done && list.children.length === 0) {
      status.classList.add('empty-note');
      replace(status, empty);
    }
    else if (done && infinite) replace(status, 'You have reached the end.');
  }

  async function load() {
    if (loading || done || signal.aborted) return;
    loading = true;
    more.disabled = true;
    showError(error, '');
    try {
      const query = new URLSearchParams({limit});
      if (cursor) query.set('cursor', cursor);
      const sep = path.includes('?') ? '&' : '?';
      add(await api(`${path}${sep}${query}`, {signal}));
    } catch (failure) {
      if (!signal.aborted) showError(error, failure);
    } finally {
      loading = false;
      more.disabled = false;
    }
    if (!done) recheck();
  }

  more.addEventListener('click', load);
  if (first) add(first);
  else load();
  if (infinite) recheck = whenVisible(more, load, signal);
  return footer;
}
