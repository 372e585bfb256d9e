// Small DOM helpers the demo's modules share.

const root = document.getElementById("shop");

/** The URLs and currency the page was rendered with (data-* attributes of #shop). */
export const page = {
  purchaseUrl: root.dataset.purchaseUrl,
  productsUrl: root.dataset.productsUrl,
  jobsUrl: root.dataset.jobsUrl,
  reportUrl: root.dataset.reportUrl,
  currency: root.dataset.currency,
};

export const $ = (id) => document.getElementById(id);

/** A new element with attributes and children (nodes or strings). */
export function element(tag, attributes, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...(Array.isArray(children) ? children : [children]));
  return node;
}

export function money(amount, code = page.currency) {
  return `${amount} ${code}`;
}
