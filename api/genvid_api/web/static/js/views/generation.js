// Watch a generation live (its events over SSE: phase, place in the queue, cancel), then
// review the preview and publish it (or unpublish it again).

import {api} from '../api.js';
import {append, h, money, plural, replace, time, timeOf} from '../dom.js';
import {follow} from '../stream.js';
import {busy, errorBox, field, onSubmit} from './forms.js';
import {badge, FINAL, player, STATUS_WORDS} from './media.js';

const STEPS = ['QUEUED', 'RUNNING', 'SUCCEEDED'];

function phaseSentence(g) {
  if (g.status === 'QUEUED' && g.reason === 'WaitingForCapacity') {
    return g.queue_position
      ? `Waiting for capacity: you are number ${g.queue_position} in line.`
      : 'Waiting for capacity: it starts as soon as a slot frees up.';
  }
  if (g.status === 'QUEUED') return g.cancel_requested ? 'Canceling…' : 'Queued: starting soon.';
  if (g.status === 'RUNNING') {
    if (g.cancel_requested) return 'Canceling…';
    return g.attempts > 1 ? `Rendering (attempt ${g.attempts}).` : 'Rendering your video…';
  }
  if (g.status === 'SUCCEEDED') return 'Your video is ready.';
  if (g.status === 'CANCELED') return 'This generation was canceled. Nothing was charged unless it had started.';
  return g.message ? `${STATUS_WORDS[g.status]}: ${g.message}` : `${STATUS_WORDS[g.status]}.`;
}

export async function generationView(ctx) {
  const [id] = ctx.params;
  let generation = await api(`/generations/${id}`, {signal: ctx.signal});

  const steps = h('ol', {class: 'steps', 'aria-label': 'Progress'},
    STEPS.map((s) => h('li', {dataset: {step: s}}, STATUS_WORDS[s])));
  const progress = h('progress', {max: 100, 'aria-label': 'Generation progress'});
  const phase = h('p', {class: 'phase', id: 'phase', role: 'status'});
  const statusLine = h('div', {class: 'status-line'});
  const connection = h('p', {class: 'connection muted', id: 'connection'});
  const cancelError = errorBox();
  const cancel = h('button', {type: 'button', class: 'danger'}, 'Cancel');
  const timeline = h('ol', {class: 'timeline', id: 'timeline'});
  const review = h('section', {class: 'review', 'aria-labelledby': 'review-title', hidden: true});
  const facts = h('dl', {class: 'facts'});

  function render() {
    const g = generation;
    replace(statusLine, badge(g.status), ' ', h('span', {class: 'muted'}, `updated ${timeOf(g.updated_at)}`));
    replace(phase, phaseSentence(g));
    const reached = g.status === 'SUCCEEDED' ? 3 : STEPS.indexOf(g.status) + 1;
    for (const [i, li] of [...steps.children].entries()) {
      li.classList.toggle('done', i < reached - (FINAL.has(g.status) ? 0 : 1));
      li.classList.toggle('current', i === reached - 1 && !FINAL.has(g.status));
      if (i === reached - 1 && !FINAL.has(g.status)) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
    if (FINAL.has(g.status)) {
      progress.value = 100;
      progress.classList.toggle('failed', g.status !== 'SUCCEEDED');
    } else {
      progress.removeAttribute('value'); // indeterminate: the provider gives no percentage
    }
    cancel.hidden = FINAL.has(g.status) || g.cancel_requested;
    replace(facts,
      h('dt', {}, 'Model'), h('dd', {}, g.model),
      h('dt', {}, 'Length'), h('dd', {}, plural(g.duration_seconds, 'second')),
      h('dt', {}, 'Aspect'), h('dd', {}, g.aspect_ratio),
      h('dt', {}, g.status === 'SUCCEEDED' || FINAL.has(g.status) ? 'Cost' : 'Reserved'),
      h('dd', {id: 'cost'}, money(g.cost_usd)),
      h('dt', {}, 'Created'), h('dd', {}, time(g.created_at)));
  }

  function arrived(event) {
    const last = timeline.lastElementChild;
    if (last?.dataset.status !== event.status) {
      timeline.append(h('li', {dataset: {status: event.status, seq: event.seq ?? ''}},
        badge(event.status), ' ', h('time', {datetime: event.updated_at}, timeOf(event.updated_at))));
    }
  }

  async function reload() {
    generation = await api(`/generations/${id}`, {signal: ctx.signal});
    render();
    return generation;
  }

  function showReview() {
    const g = generation;
    const video = player(g, `Preview: ${g.prompt}`, {preload: 'auto', refresh: reload});
    video.id = 'preview';
    const title = h('input', {name: 'title', maxlength: 120, required: true});
    const description = h('textarea', {name: 'description', rows: 3, maxlength: 2000});
    const error = errorBox();
    const publish = h('button', {type: 'submit', class: 'primary'}, 'Publish');
    const outcome = h('div', {class: 'outcome', role: 'status'});
    const form = h('form', {class: 'publish', novalidate: true},
      h('h3', {}, 'Publish to the feed'),
      field('Title', title), field('Description (optional)', description), error, publish);
    onSubmit(form, title, error, 'Give your video a title first.', () => {
      busy(publish, 'Publishing…', error, async () => {
        const published = await api('/videos', {method: 'POST', json: {
          generation_id: g.id, title: title.value.trim(), description: description.value,
        }});
        form.hidden = true;
        const unpublish = h('button', {type: 'button'}, 'Unpublish');
        const unpublishError = errorBox();
        unpublish.addEventListener('click', () => busy(unpublish, 'Unpublishing…', unpublishError, async () => {
          await api(`/videos/${published.id}`, {method: 'DELETE'});
          replace(outcome, 'Unpublished: it is private again. ');
          form.hidden = false;
          ctx.toast('Video unpublished.');
        }));
        replace(outcome, h('p', {}, 'Published! ',
          h('a', {href: `#/videos/${published.id}`}, 'See it as others do')), unpublish, unpublishError);
        ctx.toast('Video published.');
      });
    });
    replace(review, h('h2', {id: 'review-title'}, 'Review'), h('div', {class: 'stage'}, video),
      form, outcome);
    review.hidden = false;
  }

  cancel.addEventListener('click', () => busy(cancel, 'Canceling…', cancelError, async () => {
    generation = await api(`/generations/${id}/cancel`, {method: 'POST'});
    render();
  }));

  append(ctx.main,
    h('p', {}, h('a', {href: '#/generations'}, '← My generations')),
    h('section', {class: 'card'},
      h('h1', {tabindex: '-1'}, 'Your generation'),
      h('blockquote', {class: 'prompt'}, generation.prompt),
      statusLine, steps, progress, phase, connection, cancel, cancelError, facts),
    review,
    h('section', {class: 'card', 'aria-labelledby': 'updates-title'},
      h('h2', {id: 'updates-title'}, 'Live updates'), timeline));
  render();
  if (generation.status === 'SUCCEEDED') showReview();

  follow(`/generations/${id}/events`, {
    signal: ctx.signal,
    onState: (state) => replace(connection, {live: 'Live.', reconnecting: 'Connection lost: reconnecting…',
      closed: ''}[state]),
    onEvent: (event) => {
      arrived(event);
      const wasFinal = FINAL.has(generation.status);
      generation = {...generation, ...event};
      render();
      if (FINAL.has(event.status)) {
        if (!wasFinal) {
          reload().then(() => { if (generation.status === 'SUCCEEDED') showReview(); }).catch(() => {});
        }
        return true;
      }
      return false;
    },
  });
}
