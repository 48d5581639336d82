// The partner portal and operator console in a real browser: Debian's chromium, headless,
// driven by playwright-core (which never downloads a browser). Run by scripts/web-check
// against a running gateway; every page visited is saved as a screenshot.
//
// Environment: BASE_URL, SCREENSHOTS, SOURCE_KEY, PARTNER_A_KEY, PARTNER_B_KEY, ADMIN_KEY.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("BASE_URL");
const SHOTS = env("SCREENSHOTS");
const SOURCE_KEY = env("SOURCE_KEY");
const PARTNER_A = env("PARTNER_A_KEY");
const PARTNER_B = env("PARTNER_B_KEY");
const ADMIN = env("ADMIN_KEY");

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const run = Date.now().toString(36);
const profiles = [];
const problems = [];

/** One person's browser: its own fresh profile (--user-data-dir), so cookies never mix. */
async function person(name, viewport) {
  const dir = mkdtempSync(join(tmpdir(), `leadgate-${name}-`));
  profiles.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    viewport,
    baseURL: BASE,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  // A CSP violation or a script error is a failure of the page, not noise.
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  return { context, page };
}

let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${file}`);
}

async function api(method, path, key, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { "x-api-key": key, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

async function newLead(tag, product) {
  const r = await api("POST", "/v1/leads", SOURCE_KEY, {
    first_name: "Dana", last_name: `Okafor-${tag}`, email: `${tag}-${run}@example.com`,
    phone: `+1206555${String(Math.floor(Math.random() * 9000) + 1000)}`,
    street: "12 Harbor Way", city: "Tacoma", state: "WA", zip: "98402", product,
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.lead_id;
}

async function signIn(page, area, key) {
  await page.goto(`/${area}/login`);
  await page.fill("#key", key);
  await Promise.all([page.waitForURL(`**/${area}`), page.click("main form button[type=submit]")]);
}

async function step(name, fn) {
  console.log(`- ${name}`);
  await fn();
}

const a = await person("partner-a", PHONE);
const b = await person("partner-b", PHONE);
const op = await person("operator", DESKTOP);
try {
  await step("the start page", async () => {
    await a.page.goto("/");
    await snap(a.page, "home");
  });

  let claimed;
  await step("a partner signs in, claims an offer and reports a disposition", async () => {
    claimed = await newLead("claim", "pull-demo");
    await a.page.goto("/portal/login");
    await snap(a.page, "portal-sign-in");
    await signIn(a.page, "portal", PARTNER_A);
    const card = a.page.locator(`li.offer[data-lead="${claimed}"]`);
    await card.waitFor();
    assert.equal(await card.locator("text=Okafor").count(), 0, "offers are masked");
    await a.page.waitForFunction(() => document.querySelector("[data-deadline]")?.textContent.startsWith("in "));
    await snap(a.page, "portal-offers");
    await Promise.all([a.page.waitForURL(`**/portal/leads/${claimed}`), card.locator("button.claim").click()]);
    await a.page.locator("text=Okafor-claim").first().waitFor();
    await snap(a.page, "portal-lead-claimed");
    await Promise.all([a.page.waitForLoadState("load"), a.page.click("button.confirm")]);
    await a.page.locator(".flash", { hasText: "Confirmed" }).waitFor();
    await a.page.check("input[value=converted]");
    await a.page.fill("#value", "1250.00");
    await Promise.all([a.page.waitForLoadState("load"), a.page.click("form.disposition button[type=submit]")]);
    await a.page.locator(".flash", { hasText: "Recorded: converted." }).waitFor();
    await snap(a.page, "portal-lead-disposition");
    await a.page.goto("/portal/history");
    await a.page.locator(`text=${claimed}`).waitFor();
    await snap(a.page, "portal-history");
    const lead = await api("GET", `/v1/leads/${claimed}`, ADMIN);
    assert.equal(lead.json.stage, "converted");
  });

  await step("two partners click Claim at once: one wins, the other is told", async () => {
    const contested = await newLead("race", "pull-demo");
    await signIn(b.page, "portal", PARTNER_B);
    await a.page.goto("/portal");
    await b.page.goto("/portal");
    const button = (p) => p.locator(`li.offer[data-lead="${contested}"] button.claim`);
    await Promise.all([button(a.page).waitFor(), button(b.page).waitFor()]);
    const landed = (p) =>
      p.waitForFunction(() => ["Your lead", "Someone else took it"].includes(document.querySelector("h1")?.textContent));
    await Promise.all([button(a.page).click(), button(b.page).click()]);
    await Promise.all([landed(a.page), landed(b.page)]);
    const headings = [await a.page.locator("h1").textContent(), await b.page.locator("h1").textContent()];
    const winner = headings.indexOf("Your lead");
    const loser = headings.indexOf("Someone else took it");
    assert.ok(winner >= 0 && loser >= 0 && winner !== loser, `one winner and one loser: ${headings}`);
    const loserPage = [a.page, b.page][loser];
    assert.equal(await loserPage.locator("text=Okafor-race").count(), 0, "the loser sees nothing of the lead");
    await snap([a.page, b.page][winner], "race-winner");
    await snap(loserPage, "race-someone-else-took-it");
  });

  await step("the operator searches a lead, reads its history and redelivers it", async () => {
    const pushed = await newLead("push", "solar");
    // The webhook buyer never answers: wait for the dead letter.
    for (let i = 0; ; i++) {
      const l = await api("GET", `/v1/leads/${pushed}`, ADMIN);
      if (l.json.deliveries?.[0]?.status === "dead") break;
      assert.ok(i < 300, `never dead-lettered: ${JSON.stringify(l.json.deliveries)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await op.page.goto("/console/login");
    await snap(op.page, "console-sign-in");
    await signIn(op.page, "console", ADMIN);
    await op.page.locator("svg").first().waitFor();
    await snap(op.page, "console-dashboard");
    await op.page.goto("/console?period=month");
    await snap(op.page, "console-dashboard-30-days");
    await op.page.goto("/console/leads");
    await op.page.fill("#q", `push-${run}@example.com`);
    await Promise.all([op.page.waitForURL("**/console/leads?q=*"), op.page.click("form.search button")]);
    const hit = op.page.locator(`#hits a[href="/console/leads/${pushed}"]`);
    await hit.waitFor();
    await snap(op.page, "console-search");
    await Promise.all([op.page.waitForURL(`**/console/leads/${pushed}`), hit.click()]);
    await op.page.locator("#events", { hasText: "dead_lettered" }).waitFor();
    await snap(op.page, "console-lead-history");
    await op.page.goto("/console/dead-letters");
    const dead = op.page.locator("li.card", { hasText: pushed });
    await dead.waitFor();
    await snap(op.page, "console-dead-letters");
    await Promise.all([op.page.waitForLoadState("load"), dead.locator("button.redeliver").click()]);
    await op.page.locator(".flash", { hasText: "Scheduled for redelivery." }).waitFor();
    await snap(op.page, "console-redelivered");
    const l = await api("GET", `/v1/leads/${pushed}`, ADMIN);
    assert.ok(l.json.events.some((e) => e.kind === "redelivery_requested"), "the redelivery is on the lead's history");
    for (const [path, name] of [
      ["/console/submissions", "console-failed-submissions"],
      ["/console/config", "console-config"],
      ["/console/channels", "console-channels"],
    ]) {
      await op.page.goto(path);
      await snap(op.page, name);
    }
  });

  await step("the operator console on a phone, and the API docs page", async () => {
    await op.page.setViewportSize(PHONE);
    await op.page.goto("/console");
    await snap(op.page, "console-dashboard-phone");
    await op.page.setViewportSize(DESKTOP);
    await op.page.goto("/docs/");
    await op.page.locator(".swagger-ui .information-container").waitFor();
    await snap(op.page, "api-docs");
  });

  // The race's loser is answered 409 on purpose (with its friendly page).
  const own = problems.filter((p) => !p.includes("status of 409 (Conflict)"));
  assert.deepEqual(own, [], "no console errors (CSP violations included)");
  console.log("browser scenarios passed");
} finally {
  for (const who of [a, b, op]) await who.context.close().catch(() => {});
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
}
