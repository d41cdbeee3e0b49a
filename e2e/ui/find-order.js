// find-order.js: the Web UI browser test. In Debian's headless chromium,
// driven by playwright-core (never a browser Playwright downloads), it opens
// the Temporal Web UI, types QUERY into the workflow list's query box, finds
// the order's saga in the filtered list (reloading while visibility catches
// up), opens it, and checks on its User Metadata tab that the summary names
// ORDER_ID and the current details say "Order status: WANT_STATUS". It saves
// a full-page screenshot to SCREENSHOT and prints its path; on failure it
// saves <SCREENSHOT without .png>.failure.png instead and exits 1.
//
// Run by e2e/ui_test.go (make test). Environment:
//   UI_URL       the Web UI, e.g. http://127.0.0.1:8243
//   NAMESPACE    Temporal namespace (default)
//   QUERY        list filter, e.g. OrderStatus="CONFIRMED"
//   WORKFLOW_ID  the saga to find, order-<ORDER_ID>
//   ORDER_ID     the order id its summary must name
//   WANT_STATUS  the status its current details must name
//   WANT_ATTRS   optional JSON object of search attributes its Search
//                Attributes tab must show, e.g. {"CustomerId":"c-1"}
//   SCREENSHOT   where the screenshot goes (a .png path)
//   CHROMIUM     the browser binary (/usr/bin/chromium)
//   UI_TIMEOUT_MS  how long to wait for the saga to show up (60000)
//   CODEC_URL    optional: the gateway's codec server (http://.../codec).
//                Payloads are sealed; with it, the browser first signs in
//                at CODEC_URL/session with CODEC_TOKEN (an operator's
//                token), then sets the UI's Codec Server setting to
//                CODEC_URL with cross-origin credentials, as an operator
//                would, so the UI shows the decoded summary and details.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

function need(name, fallback) {
  const v = process.env[name] || fallback;
  if (!v) {
    console.error(`find-order: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const ui = need('UI_URL').replace(/\/+$/, '');
const namespace = need('NAMESPACE', 'default');
const query = need('QUERY');
const workflowId = need('WORKFLOW_ID');
const orderId = need('ORDER_ID');
const wantStatus = need('WANT_STATUS');
const screenshot = need('SCREENSHOT');
const executablePath = need('CHROMIUM', '/usr/bin/chromium');
const timeoutMs = Number(process.env.UI_TIMEOUT_MS || 60000);
const wantAttrs = JSON.parse(process.env.WANT_ATTRS || '{}');
const codecUrl = (process.env.CODEC_URL || '').replace(/\/+$/, '');

// The flags the project runs chromium with: no sandbox (root), no GPU, and
// none of the background connections a closed network refuses.
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

const started = Date.now();
function step(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

// untilTrue polls fn until it returns a truthy value or the deadline passes.
async function untilTrue(what, deadline, fn, between) {
  for (;;) {
    const got = await fn().catch(() => false);
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    if (between) await between();
  }
}

// frameText returns the text of the markdown frame under the User Metadata
// tab's heading (Summary, Details, Current Details): the UI renders each in
// an iframe of its own (/render?content=...).
async function frameText(page, heading) {
  const frame = page.locator(`xpath=//h3[normalize-space()="${heading}"]/following::iframe[1]`).contentFrame();
  return (await frame.locator('body').innerText({ timeout: 5000 })).trim();
}

// codecSignIn signs in at the codec server's session page with the
// operator's token and points the Web UI's Codec Server setting (kept in the
// browser's localStorage) at it, credentials included.
async function codecSignIn(page) {
  step(`codec session: ${codecUrl}/session`);
  await page.goto(`${codecUrl}/session`, { waitUntil: 'domcontentloaded' });
  await page.locator('input[name="token"]').fill(need('CODEC_TOKEN'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();
  step((await page.getByText('Signed in as').innerText()).split('.')[0]);
  await page.goto(`${ui}/namespaces/${namespace}/workflows`, { waitUntil: 'domcontentloaded' });
  await page.evaluate((endpoint) => {
    localStorage.setItem('endpoint', JSON.stringify(endpoint));
    localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
    localStorage.setItem('includeCredentials', 'true');
  }, codecUrl);
}

async function main(page) {
  const deadline = Date.now() + timeoutMs;
  if (codecUrl) await codecSignIn(page);

  step(`open ${ui}/namespaces/${namespace}/workflows`);
  await page.goto(`${ui}/namespaces/${namespace}/workflows`, { waitUntil: 'domcontentloaded' });

  step(`query box: ${query}`);
  await page.getByTestId('toggle-manual-query').click();
  const box = page.getByTestId('manual-search-input');
  await box.fill(query);
  await box.press('Enter');
  await page.waitForURL((u) => new URL(u).searchParams.get('query') === query);
  // The UI turns the query into a filter chip on the attribute.
  const [attr, value] = query.split('=').map((x) => x.trim());
  const chip = page.getByRole('button', { name: `${attr} = ${value}` });
  await chip.first().waitFor();
  step(`filter chip: ${(await chip.first().innerText()).replace(/\s+/g, ' ').trim()}`);

  // Visibility may lag the saga's completion by a moment: reload the
  // filtered list until the saga is in it.
  const row = page.locator(`a[href*="/workflows/${encodeURIComponent(workflowId)}/"]`).first();
  await untilTrue(`${workflowId} in the list filtered by ${query}`, deadline,
    () => row.isVisible(),
    async () => {
      await page.waitForTimeout(1000);
      await page.reload({ waitUntil: 'domcontentloaded' });
      await page.getByTestId('workflow-count').waitFor().catch(() => {});
      await page.waitForTimeout(500);
    });
  const count = (await page.getByTestId('workflow-count').innerText().catch(() => '?')).trim();
  step(`found ${workflowId} in the filtered list (${count})`);

  await row.click();
  await page.waitForURL(new RegExp(`/workflows/${workflowId}/[^/]+/`));
  step(`opened ${page.url()}`);

  await page.getByTestId('user-metadata-tab').click();
  await page.waitForURL(/\/user-metadata$/);
  const summary = await untilTrue('the summary', deadline, async () => {
    const t = await frameText(page, 'Summary');
    return t.includes(`Order ${orderId}`) && t;
  }, () => page.waitForTimeout(500));
  step(`summary: ${summary}`);
  const details = await frameText(page, 'Details');
  if (!details.includes('Customer:')) throw new Error(`details do not name the customer: ${JSON.stringify(details)}`);
  step(`details: ${details.replace(/\s+/g, ' ')}`);
  // Current details come from a query the saga's worker answers; press R
  // (the UI's refresh) until they are there.
  const current = await untilTrue(`current details saying ${wantStatus}`, deadline, async () => {
    const t = await frameText(page, 'Current Details');
    return t.includes(`Order status: ${wantStatus}`) && t;
  }, async () => {
    await page.waitForTimeout(500);
    await page.keyboard.press('r');
  });
  step(`current details: ${current}`);

  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot: ${screenshot}`);

  if (Object.keys(wantAttrs).length > 0) {
    await page.getByTestId('search-attributes-tab').click();
    await page.waitForURL(/\/search-attributes$/);
    const shown = await untilTrue('the search attributes', deadline, async () => {
      const t = await page.locator('main').innerText();
      return Object.entries(wantAttrs).every(([k, v]) => t.includes(k) && t.includes(String(v))) && t;
    }, () => page.waitForTimeout(500));
    step(`search attributes shown: ${Object.entries(wantAttrs).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (!shown) throw new Error('search attributes missing');
  }
}

(async () => {
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orderflow-chromium-'));
  let context;
  let failed = false;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: chromiumArgs,
      viewport: { width: 1400, height: 900 },
      timezoneId: 'UTC',
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    try {
      await main(page);
    } catch (err) {
      failed = true;
      console.error(`find-order: FAILED at ${page.url()}: ${err.message}`);
      const shot = screenshot.replace(/\.png$/, '') + '.failure.png';
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`find-order: screenshot of the failure: ${shot}`);
    }
  } catch (err) {
    failed = true;
    console.error(`find-order: could not drive ${executablePath}: ${err.message}`);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
})();
