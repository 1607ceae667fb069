// The shell: navigation by the URL fragment (#/feed, #/generations/ID, ...), the header, and
// the signed-in user. Each view renders into <main> and stops its work (streams, observers)
// when the user leaves it, through the AbortSignal it is given.

import {api, ApiError, sentence} from './api.js';
import {h, replace} from './dom.js';
import * as session from './session.js';
import {loginView, signupView} from './views/auth.js';
import {createView} from './views/create.js';
import {feedView} from './views/feed.js';
import {generationView} from './views/generation.js';
import {generationsView} from './views/generations.js';
import {profileView} from './views/profile.js';
import {videoView} from './views/video.js';

const ROUTES = [
  [/^\/login$/, loginView, {public: true}],
  [/^\/signup$/, signupView, {public: true}],
  [/^\/(feed)?$/, (ctx) => feedView(ctx, 'everyone')],
  [/^\/following$/, (ctx) => feedView(ctx, 'following')],
  [/^\/create$/, createView],
  [/^\/generations$/, generationsView],
  [/^\/generations\/([\w-]+)$/, generationView],
  [/^\/videos\/([\w-]+)$/, videoView],
  [/^\/users\/([\w.-]+)$/, profileView],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const toastBox = document.getElementById('toast');
let leaving = null;
let config = null;
let notice = null; // shown once on the next login page

export function toast(text) {
  replace(toastBox, text);
  toastBox.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => toastBox.classList.remove('shown'), 4000);
}

export function go(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = path;
}

async function loadConfig() {
  config ??= await (await fetch('/ui/config.json', {cache: 'no-store'})).json();
  return config;
}

function navLink(href, label, path) {
  const active = path === href.slice(1) || (href === '#/feed' && path === '/');
  return h('a', {href, 'aria-current': active ? 'page' : null}, label);
}

function renderNav(path) {
  const user = session.current()?.user;
  if (!session.current()) {
    replace(nav, h('ul', {}, h('li', {}, navLink('#/login', 'Log in', path)),
      h('li', {}, navLink('#/signup', 'Sign up', path))));
    return;
  }
  replace(nav, h('ul', {},
    h('li', {}, navLink('#/feed', 'Feed', path)),
    h('li', {}, navLink('#/following', 'Following', path)),
    h('li', {}, navLink('#/create', 'Create', path)),
    h('li', {}, navLink('#/generations', 'My generations', path)),
    user ? h('li', {}, navLink(`#/users/${user.username}`, `@${user.username}`, path)) : null,
    h('li', {}, h('button', {type: 'button', class: 'link', onclick: () => session.end('logout')}, 'Log out')),
  ));
}

async function render() {
  const path = location.hash.startsWith('#/') ? location.hash.slice(1) : '/';
  leaving?.abort();
  const controller = new AbortController();
  leaving = controller;
  const match = ROUTES.map(([pattern, view, options]) => [path.match(pattern), view, options])
    .find(([found]) => found);
  if (!match) {
    go('/feed');
    return;
  }
  const [found, view, options = {}] = match;
  if (!options.public && !session.current()) {
    if (path !== '/' && path !== '/feed') sessionStorage.setItem('genvid.next', path);
    go('/login');
    return;
  }
  if (options.public && session.current()) {
    go('/feed');
    return;
  }
  renderNav(path);
  replace(main);
  const ctx = {
    main, params: found.slice(1), signal: controller.signal, go, toast,
    config: await loadConfig(), me: session.current()?.user ?? null,
    notice: options.public ? notice : null, signedIn,
  };
  notice = null;
  try {
    await view(ctx);
  } catch (error) {
    if (controller.signal.aborted || error instanceof session.SessionEnded) return;
    if (!(error instanceof ApiError)) console.error(error);
    replace(main, h('h1', {tabindex: '-1'}, 'Something went wrong'), h('p', {class: 'error', role: 'alert'}, sentence(error)));
  }
  if (!controller.signal.aborted) {
    const heading = main.querySelector('h1');
    document.title = heading ? `${heading.textContent} · GenVid` : 'GenVid';
    if (render.navigated) (heading ?? main).focus({preventScroll: true});
    render.navigated = true;
    window.scrollTo(0, 0);
  }
}

/** Signed in: who am I (username for the header and links). */
async function signedIn() {
  const me = await api('/me');
  session.setUser({id: me.id, username: me.username});
  const next = sessionStorage.getItem('genvid.next');
  sessionStorage.removeItem('genvid.next');
  go(next && next !== '/login' ? next : '/feed');
}

session.onEnd((reason) => {
  if (reason === 'ended') {
    notice = 'Your session has ended. Please log in again.';
    const path = location.hash.slice(1);
    if (path.startsWith('/') && !['/', '/feed', '/login'].includes(path)) {
      sessionStorage.setItem('genvid.next', path); // back here after logging in again
    }
  } else {
    toast('You are logged out.');
  }
  go('/login');
});

window.addEventListener('hashchange', render);
window.addEventListener('storage', (event) => {
  // Logged out (or in) in another tab.
  if (event.key === 'genvid.session' && Boolean(event.oldValue) !== Boolean(event.newValue)) render();
});
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

if (session.current() && !session.current().user) {
  signedIn().catch(() => render());
} else {
  render();
}
