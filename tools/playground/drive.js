#!/usr/bin/env node
// Drives the Microsoft 365 Agents Playground web UI in headless Debian Chromium, like a person:
// opens a chat, types messages (picking @mentions from the Playground's own mention menu), fills
// and clicks Adaptive Cards, and records what the page shows.
//
//   node drive.js PLAYGROUND_URL OUT_DIR < steps.json
//
// steps.json is a JSON list; each step is one object with one action:
//   {"open": "Group Chat"}                   click a chat in the left column by its exact name:
//                                            "Personal Chat", "Group Chat", "My Team - General"
//   {"say": "@[Test Bot] /kudos @[Megan Bowen] thanks"}
//                                            type a message and press Enter; "@[Name]" is typed
//                                            as "@" plus the first word, then Name is picked from
//                                            the mention menu (a real Teams mention entity)
//   {"choose": "Holiday Special", "in": "Choose a badge"}
//                                            open the last combo box with this placeholder and
//                                            pick the option that contains this text
//   {"fill": "placeholder", "value": "..."}  fill the last input with this placeholder
//   {"click": "Give badge", "times": 2}      click the last button with this name (times > 1:
//                                            a double click, as an impatient person does) and
//                                            wait until the bot has answered every press
//   {"wait": "text", "count": 1}             wait until the text is visible at least count times
//   {"shot": "name"}                         screenshot OUT_DIR/name.png and record the texts
//
// stdout: one JSON line per step ({"step", "ms", ...}; a shot adds "png", "cards" (the innerText
// of every Adaptive Card in the open chat) and "text" (the page's visible text)), then
// {"done": true, "blocked": [...], "invokes": [...], "ms"}: the hosts whose requests were
// aborted and every card action the page sent with the bot's answer ({"title", "verb",
// "answer": {"type", "text"}}, see relayInvoke). On failure: {"error", "step", "png"} (a
// screenshot of the moment) and exit status 1.
//
// Only loopback is reachable: every request to any other host (the Playground's fonts and icons
// on a CDN, telemetry) is aborted before it leaves the browser.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");
const { CHROMIUM_ARGS } = require("../chromium.js");

const WAIT_MS = Number(process.env.PLAYGROUND_STEP_TIMEOUT_MS || 15000);
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function emit(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

async function say(page, text) {
  // In a channel the first editor starts a new post (the others reply in threads).
  const box = page.locator("[data-lexical-editor=true]").first();
  await box.click();
  // "@[Name]" becomes a mention picked from the menu; the rest is typed as is.
  for (const part of text.split(/(@\[[^\]]+\])/)) {
    const mention = /^@\[([^\]]+)\]$/.exec(part);
    if (!mention) {
      if (part) await box.pressSequentially(part);
      continue;
    }
    const name = mention[1];
    await box.pressSequentially("@" + name.split(" ")[0]);
    await page.getByRole("menuitem", { name }).click({ timeout: WAIT_MS });
  }
  await page.keyboard.press("Enter");
}

async function waitForText(page, text, count) {
  const matches = page.getByText(text, { exact: false });
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const visible = await matches.evaluateAll(
      (nodes) => nodes.filter((n) => n.offsetParent !== null).length,
    );
    if (visible >= count) return visible;
    if (Date.now() > deadline) {
      throw new Error(`"${text}" visible ${visible} time(s), wanted ${count}, after ${WAIT_MS} ms`);
    }
    await page.waitForTimeout(100);
  }
}

// A card action (`adaptiveCard/action` invoke) goes to the bot through the Playground's server;
// it is passed on unchanged, and the press and the bot's answer are recorded: {title, verb,
// answer: {type, text}} with type "card" (the texts of the card that replaces the pressed one),
// "message" (a sentence shown under the card) or "error".
async function relayInvoke(route, request, invokes, inflight) {
  const action = (JSON.parse(request.postData() || "{}").value || {}).action || {};
  const record = { title: action.title, verb: action.verb, answer: null };
  invokes.push(record);
  inflight.add(record);
  try {
    const response = await route.fetch();
    const body = await response.text();
    record.answer = summarise(body);
    await route.fulfill({ response, body });
  } finally {
    inflight.delete(record);
  }
}

function summarise(body) {
  let reply;
  try {
    reply = JSON.parse(body);
  } catch {
    return { type: "error", text: body.slice(0, 500) };
  }
  const kind = String(reply.type || "");
  if (kind.includes("card")) {
    const texts = [];
    JSON.stringify(reply.value, (key, value) => {
      if (key === "text" && typeof value === "string") texts.push(value);
      return value;
    });
    return { type: "card", text: texts.join(" | ") };
  }
  const text = typeof reply.value === "string" ? reply.value : JSON.stringify(reply.value);
  return { type: kind.includes("message") ? "message" : "error", text };
}

async function shot(page, outDir, name) {
  const png = path.join(outDir, name + ".png");
  await page.screenshot({ path: png });
  const cards = await page
    .locator(".ac-adaptiveCard")
    .evaluateAll((nodes) => nodes.filter((n) => n.offsetParent !== null).map((n) => n.innerText));
  const text = await page.evaluate(() => document.body.innerText);
  return { png, cards, text };
}

async function run(page, outDir, step, inflight) {
  if (step.open !== undefined) {
    await page.getByRole("treeitem", { name: step.open, exact: true }).click();
    return {};
  }
  if (step.say !== undefined) {
    await say(page, step.say);
    return {};
  }
  if (step.choose !== undefined) {
    await page.getByPlaceholder(step.in).last().click();
    await page.getByRole("option", { name: step.choose }).first().click({ timeout: WAIT_MS });
    return {};
  }
  if (step.fill !== undefined) {
    await page.getByPlaceholder(step.fill).last().fill(step.value);
    return {};
  }
  if (step.click !== undefined) {
    const button = page.getByRole("button", { name: step.click, exact: true }).last();
    await button.click({ clickCount: step.times || 1, delay: 0 });
    // Every press's answer is in before the next step looks at the page.
    await page.waitForTimeout(50);
    const deadline = Date.now() + WAIT_MS;
    while (inflight.size > 0) {
      if (Date.now() > deadline) throw new Error(`${inflight.size} card action(s) unanswered`);
      await page.waitForTimeout(50);
    }
    return {};
  }
  if (step.wait !== undefined) {
    return { visible: await waitForText(page, step.wait, step.count || 1) };
  }
  if (step.shot !== undefined) {
    return await shot(page, outDir, step.shot);
  }
  throw new Error("unknown step " + JSON.stringify(step));
}

async function main() {
  const [url, outDir] = process.argv.slice(2);
  if (!url || !outDir) {
    process.stderr.write("usage: node drive.js PLAYGROUND_URL OUT_DIR < steps.json\n");
    process.exit(2);
  }
  const steps = JSON.parse(fs.readFileSync(0, "utf8"));
  fs.mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const profile = fs.mkdtempSync(path.join(outDir, ".chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Narrower than 1280 px the Playground folds its chat list behind a menu button.
    viewport: { width: 1280, height: 900 },
    args: [...CHROMIUM_ARGS],
  });
  const blocked = new Set();
  const invokes = [];
  const inflight = new Set();
  let index = -1;
  let page;
  try {
    page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(WAIT_MS);
    await browser.route("**/*", (route) => {
      const request = route.request();
      const target = new URL(request.url());
      if (!LOOPBACK.has(target.hostname)) {
        blocked.add(target.hostname);
        return route.abort();
      }
      if (request.method() === "POST" && target.pathname.endsWith("/invoke")) {
        return relayInvoke(route, request, invokes, inflight);
      }
      return route.continue();
    });
    await page.goto(url);
    // The log panel repeats every message; closed, the page shows the conversation alone.
    await page.getByTitle("Hide log panel").click({ timeout: WAIT_MS });
    for (index = 0; index < steps.length; index++) {
      const begun = Date.now();
      const extra = await run(page, outDir, steps[index], inflight);
      emit({ step: steps[index], ms: Date.now() - begun, ...extra });
    }
    emit({ done: true, blocked: [...blocked].sort(), invokes, ms: Date.now() - started });
  } catch (error) {
    let png = null;
    if (page) {
      png = path.join(outDir, "failure.png");
      await page.screenshot({ path: png }).catch(() => (png = null));
    }
    emit({ error: String(error && error.message ? error.message : error), step: index, png });
    process.exitCode = 1;
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((error) => {
  emit({ error: String(error && error.stack ? error.stack : error), step: null, png: null });
  process.exit(1);
});
