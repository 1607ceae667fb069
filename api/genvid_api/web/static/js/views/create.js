// Generate: the prompt with the server's limits as you type, the model, duration and aspect
// ratio, and before submitting the estimated cost against what is left of the budget.

import {api} from '../api.js';
import {append, fromNow, h, money, plural, replace, toMicros} from '../dom.js';
import {busy, errorBox, field} from './forms.js';

const WARN_REMAINING = 100; // characters left before the counter turns to a warning

function radios(name, values, checked, labels) {
  return h('div', {class: 'choices'}, values.map((value) => h('label', {class: 'choice'},
    h('input', {type: 'radio', name, value, checked: value === checked}), labels[value] ?? value)));
}

export async function createView(ctx) {
  const {config} = ctx;
  const limits = config.prompt;
  const prompt = h('textarea', {name: 'prompt', rows: 4, maxlength: limits.max_length, required: true,
    placeholder: 'A red fox running through fresh snow at dawn, cinematic'});
  const counter = h('p', {class: 'counter', id: 'prompt-count'});
  const model = h('select', {name: 'model'}, config.models.map((m) =>
    h('option', {value: m.id, selected: m.id === config.default_model}, m.id)));
  const duration = h('select', {name: 'duration'});
  for (let s = config.duration_seconds.minimum; s <= config.duration_seconds.maximum; s++) {
    duration.append(h('option', {value: s, selected: s === config.duration_seconds.default}, plural(s, 'second')));
  }
  const aspect = radios('aspect', config.aspect_ratios, config.default_aspect_ratio,
    {'16:9': '16:9 landscape', '9:16': '9:16 portrait'});
  const negative = h('textarea', {name: 'negative_prompt', rows: 2, maxlength: 1000});
  const seed = h('input', {name: 'seed', type: 'number', min: 0, max: 4294967295, inputmode: 'numeric'});
  const estimate = h('div', {class: 'estimate', 'aria-live': 'polite', id: 'estimate'});
  const error = errorBox();
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Generate');
  let usage = null;
  let idempotencyKey = crypto.randomUUID();

  function updateCounter() {
    const used = prompt.value.length;
    const left = limits.max_length - used;
    replace(counter, `${used} / ${limits.max_length} characters`);
    counter.classList.toggle('warn', left <= WARN_REMAINING);
  }

  function updateEstimate() {
    const chosen = config.models.find((m) => m.id === model.value);
    const cost = chosen?.estimates_usd[duration.value] ?? null;
    const rows = [h('div', {class: 'stat'}, h('span', {class: 'label'}, 'Estimated cost'),
      h('strong', {id: 'estimated-cost'}, cost === null ? 'not priced' : money(cost)))];
    if (usage) {
      const period = usage.period === 'monthly' ? 'this month' : 'today';
      rows.push(h('div', {class: 'stat'}, h('span', {class: 'label'}, `Budget left ${period}`),
        h('strong', {id: 'remaining-budget'}, money(usage.remaining_usd)),
        h('span', {class: 'muted'}, ` of ${money(usage.limit_usd)}, resets ${fromNow(usage.resets_at)}`)));
      if (usage.active || usage.waiting) {
        rows.push(h('p', {class: 'muted'}, `${plural(usage.active, 'video')} in progress` +
          (usage.waiting ? `, ${usage.waiting} waiting for capacity` : '') + '.'));
      }
      if (cost !== null && toMicros(cost) > toMicros(usage.remaining_usd)) {
        rows.push(h('p', {class: 'warn'}, 'This costs more than your remaining budget.'));
      }
    }
    replace(estimate, rows);
  }

  async function loadUsage() {
    usage = await api('/me/usage', {signal: ctx.signal});
    updateEstimate();
  }

  // A new body is a new request; resubmitting the same one (after a timeout) never pays twice.
  const changed = () => { idempotencyKey = crypto.randomUUID(); };
  prompt.addEventListener('input', () => { updateCounter(); changed(); });
  for (const control of [model, duration]) {
    control.addEventListener('change', () => { updateEstimate(); changed(); });
  }
  for (const control of [negative, seed, aspect]) control.addEventListener('change', changed);

  const form = h('form', {novalidate: true, class: 'create'},
    h('div', {class: 'field'}, h('label', {for: 'prompt'}, 'Prompt'),
      Object.assign(prompt, {id: 'prompt'}), counter),
    h('div', {class: 'row'}, field('Model', model), field('Duration', duration)),
    h('fieldset', {}, h('legend', {}, 'Aspect ratio'), aspect),
    h('details', {}, h('summary', {}, 'More options'),
      field('Negative prompt (what to avoid)', negative),
      field('Seed', seed, 'The same seed and prompt give the same video.')),
    estimate, error, submit);
  prompt.setAttribute('aria-describedby', 'prompt-count');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!prompt.value.trim()) {
      error.hidden = false;
      replace(error, 'Write a prompt first: describe the video you want.');
      prompt.focus();
      return;
    }
    const body = {
      prompt: prompt.value,
      model: model.value,
      duration_seconds: Number(duration.value),
      aspect_ratio: form.querySelector('input[name=aspect]:checked').value,
    };
    if (negative.value.trim()) body.negative_prompt = negative.value;
    if (seed.value !== '') body.seed = Number(seed.value);
    busy(submit, 'Submitting…', error, async () => {
      const generation = await api('/generate', {method: 'POST', json: body,
        headers: {'Idempotency-Key': idempotencyKey}});
      ctx.go(`/generations/${generation.id}`);
    }).then(() => loadUsage().catch(() => {}));
  });

  append(ctx.main, h('section', {class: 'card narrow'},
    h('h1', {tabindex: '-1'}, 'Create a video'),
    h('p', {class: 'muted'}, 'Describe a scene. GenVid renders a short preview you can review, then publish.'),
    form));
  updateCounter();
  updateEstimate();
  await loadUsage();
}
