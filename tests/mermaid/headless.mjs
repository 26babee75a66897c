// Mermaid without a browser: the library rendering into a jsdom document. Shared by
// check.mjs (the tests' checker) and docs/render-gantt.mjs (the README's chart).
import { JSDOM } from 'jsdom';

/** Mermaid, initialised with `config` over the defaults below, its globals in place. */
export async function headlessMermaid(config = {}) {
  const { window } = new JSDOM('<!doctype html><html><body></body></html>', {
    pretendToBeVisual: true,
  });
  globalThis.window = window;
  globalThis.document = window.document;
  for (const name of [
    'Element', 'HTMLElement', 'SVGElement', 'Node', 'DOMParser', 'XMLSerializer',
    'MutationObserver', 'CSSStyleSheet', 'getComputedStyle',
  ]) {
    globalThis[name] = window[name];
  }
  if (!('navigator' in globalThis)) globalThis.navigator = window.navigator;
  // jsdom does no layout: measure text as 8px per character, enough for Mermaid's renderers.
  window.SVGElement.prototype.getBBox = function () {
    return { x: 0, y: 0, width: 8 * (this.textContent || '').length, height: 16 };
  };
  window.SVGElement.prototype.getComputedTextLength = function () {
    return 8 * (this.textContent || '').length;
  };
  const { default: mermaid } = await import('mermaid');
  mermaid.initialize({ startOnLoad: false, logLevel: 'fatal', securityLevel: 'strict', ...config });
  return mermaid;
}
