// Building the page without innerHTML: every text from the server is set as text, never parsed.

/** An element: h('a', {href: '#/feed', class: 'tab'}, 'Feed'). `on*` props are listeners. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'muted') {
      el[key] = value;
      if (key === 'muted') el.setAttribute('muted', '');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// --- Money: decimal strings from the API, compared in integer micro-dollars (never floats).

const MICROS = 1_000_000n;

export function toMicros(usd) {
  const [whole, fraction = ''] = String(usd).split('.');
  const padded = (fraction + '000000').slice(0, 6);
  const roundUp = /[1-9]/.test(fraction.slice(6)) ? 1n : 0n;
  return BigInt(whole) * MICROS + BigInt(padded) + roundUp;
}

/** "$0.60" from "0.6" or "0.600000": cents at least, every significant digit kept. */
export function money(usd) {
  if (usd === null || usd === undefined) return '—';
  const [whole, fraction = ''] = String(usd).split('.');
  return `$${whole}.${fraction.replace(/0+$/, '').padEnd(2, '0')}`;
}

// --- Time

const relative = new Intl.RelativeTimeFormat('en', {numeric: 'auto'});
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
  ['hour', 3600], ['minute', 60], ['second', 1]];

/** "3 minutes ago", "in 5 hours". */
export function fromNow(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return relative.format(Math.round(seconds / size), unit);
    }
  }
  return '';
}

export function timeOf(iso) {
  return new Date(iso).toLocaleTimeString('en', {hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

export function dateTime(iso) {
  return new Date(iso).toLocaleString('en', {dateStyle: 'medium', timeStyle: 'short'});
}

export function plural(count, word, many = `${word}s`) {
  return `${count} ${count === 1 ? word : many}`;
}

/** A <time> element: the exact moment for machines and tooltips, a friendly text for people. */
export function time(iso, text = fromNow(iso)) {
  return h('time', {datetime: iso, title: dateTime(iso)}, text);
}

/**
 * Calls `load` whenever `sentinel` comes near the viewport: infinite scroll. The returned
 * `recheck()` asks again after a page arrived, for a sentinel that never left the viewport.
 */
export function whenVisible(sentinel, load, signal) {
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) load();
  }, {rootMargin: '600px 0px'});
  observer.observe(sentinel);
  signal.addEventListener('abort', () => observer.disconnect());
  return () => {
    observer.unobserve(sentinel);
    if (!signal.aborted) observer.observe(sentinel); // observing anew reports where it is now
  };
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}
