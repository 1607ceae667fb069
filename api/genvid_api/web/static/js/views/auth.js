// Sign up and log in. Both end signed in, on the page the user was sent away from.

import {api, ApiError} from '../api.js';
import {h, append} from '../dom.js';
import {login} from '../session.js';
import {busy, errorBox, field, showError} from './forms.js';

function card(ctx, title, lead, form, footer) {
  append(ctx.main, h('section', {class: 'auth card'},
    h('h1', {tabindex: '-1'}, title),
    h('p', {class: 'muted'}, lead),
    ctx.notice ? h('p', {class: 'notice', role: 'alert'}, ctx.notice) : null,
    form, footer));
}

export function loginView(ctx) {
  const username = h('input', {name: 'username', autocomplete: 'username', required: true});
  const password = h('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const error = errorBox();
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Log in');
  const form = h('form', {novalidate: true}, field('Username or email', username),
    field('Password', password), error, submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!username.value.trim() || !password.value) {
      showError(error, 'Enter your username (or email) and your password.');
      return;
    }
    busy(submit, 'Logging in…', error, async () => {
      const result = await login(username.value.trim(), password.value);
      if (!result.ok) {
        showError(error, result.status === 401
          ? 'That username or password is not right. Please try again.'
          : new ApiError(result.status, result.body));
        return;
      }
      await ctx.signedIn();
    });
  });
  card(ctx, 'Log in', 'Welcome back. Type a prompt, watch it become a video, share it.', form,
    h('p', {}, 'New here? ', h('a', {href: '#/signup'}, 'Create an account')));
}

export function signupView(ctx) {
  const email = h('input', {name: 'email', type: 'email', autocomplete: 'email', required: true});
  const username = h('input', {name: 'username', autocomplete: 'username', required: true,
    minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{2,31}'});
  const password = h('input', {name: 'password', type: 'password', autocomplete: 'new-password',
    required: true, minlength: 10, maxlength: 256});
  const error = errorBox();
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create account');
  const form = h('form', {novalidate: true},
    field('Email', email),
    field('Username', username, '3 to 32 letters, digits, “_”, “.” or “-”, starting with a letter or digit.'),
    field('Password', password, 'At least 10 characters; not a common password, and not your name.'),
    error, submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, 'Creating your account…', error, async () => {
      await api('/auth/register', {method: 'POST', auth: false, json: {
        email: email.value.trim(), username: username.value.trim(), password: password.value,
      }});
      const result = await login(username.value.trim(), password.value);
      if (!result.ok) throw new ApiError(result.status, result.body);
      if (!sessionStorage.getItem('genvid.next')) sessionStorage.setItem('genvid.next', '/create');
      await ctx.signedIn();
    });
  });
  card(ctx, 'Create your account', 'Turn a sentence into a short video in about a minute.', form,
    h('p', {}, 'Already have an account? ', h('a', {href: '#/login'}, 'Log in')));
}
