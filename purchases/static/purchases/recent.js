// The page's lists that refresh themselves: products' stock and the shopper's recent jobs.
import { $, element, page } from "./dom.js";
import { kindName, statusWord } from "./words.js";

const jobsBody = $("jobs-body");
const jobsUpdated = $("jobs-updated");
let jobsLoading = false;

/** Put the current stock of each product in its row. */
export async function refreshProducts() {
  const products = await getJSON(page.productsUrl);
  if (!products) return;
  for (const product of products) {
    const cell = document.querySelector(`#purchase-form tr[data-product-id="${product.id}"] [data-stock]`);
    if (!cell) continue;
    cell.textContent = String(product.stock);
    cell.classList.toggle("out", product.stock === 0);
  }
}

/** Show the shopper's ten newest jobs. */
export async function refreshJobs() {
  if (jobsLoading) return;
  jobsLoading = true;
  try {
    const jobs = await getJSON(`${page.jobsUrl}?page_size=10`);
    if (!jobs) return;
    const rows = jobs.results.map(jobRow);
    if (rows.length === 0) {
      rows.push(element("tr", {}, [element("td", { colspan: "5", class: "hint" }, "No jobs yet.")]));
    }
    jobsBody.replaceChildren(...rows);
    jobsUpdated.textContent = ` (last at ${new Date().toLocaleTimeString()})`;
  } finally {
    jobsLoading = false;
  }
}

function jobRow(job) {
  const created = new Date(job.created_at);
  let progress = job.progress.message || "";
  // The message is written for people; the error's code stays in the job for support.
  if (job.error) progress = job.error.message || statusWord(job.status);
  else if (job.status === "processing") progress = `${job.progress.percentage}% ${progress}`;
  else if (job.status === "completed" && job.result?.order_id) progress = `Order #${job.result.order_id}`;
  return element("tr", { "data-job-id": job.id }, [
    element("td", { class: "job-id" }, element("code", { title: job.id }, job.id.slice(0, 8))),
    element("td", { class: "job-kind", "data-kind": job.kind }, kindName(job.kind)),
    element("td", { class: "job-status" }, element("span", { class: `badge badge-${job.status}` }, statusWord(job.status))),
    element("td", { class: "job-progress" }, progress),
    element("td", { class: "job-created" }, element("time", { datetime: job.created_at }, created.toLocaleString())),
  ]);
}

async function getJSON(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) return response.json();
    if (response.status === 401 || response.status === 403) {
      jobsUpdated.textContent = " (paused: you are signed out; reload the page)";
    }
  } catch {
    // Offline for a moment: the next refresh tries again.
  }
  return null;
}
