// Form pieces every view uses: labelled fields, a place for errors, a busy submit button.

import {h, replace} from '../dom.js';
import {sentence} from '../api.js';

let ids = 0;

/** A label and its control; `hint` is read out with the control (aria-describedby). */
export function field(label, control, hint) {
  const id = control.id || `f${++ids}`;
  control.id = id;
  const hintEl = hint ? h('p', {class: 'hint', id: `${id}-hint`}, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', {class: 'field'}, h('label', {for: id}, label), control, hintEl);
}

export function errorBox() {
  return h('p', {class: 'error', role: 'alert', hidden: true});
}

export function showError(box, errorOrText) {
  const text = typeof errorOrText === 'string' ? errorOrText : sentence(errorOrText);
  replace(box, text);
  box.hidden = !text;
}

/** Runs `work` with the button disabled and its label swapped, reporting errors in `box`. */
export async function busy(button, label, box, work) {
  const idle = button.textContent;
  button.disabled = true;
  button.textContent = label;
  if (box) showError(box, '');
  try {
    return await work();
  } catch (error) {
    if (box) showError(box, error);
    else throw error;
    return undefined;
  } finally {
    button.disabled = false;
    button.textContent = idle;
  }
}

/** On submit: `work()` once `input` holds more than blanks, else `message` and the focus. */
export function onSubmit(form, input, error, message, work) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      showError(error, message);
      input.focus();
      return;
    }
    work();
  });
}
