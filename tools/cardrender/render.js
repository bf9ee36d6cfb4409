#!/usr/bin/env node
// Renders Adaptive Card JSON files with the OFFICIAL Adaptive Cards JS renderer (npm `adaptivecards`)
// and the Microsoft Teams light host config (from npm `adaptivecards-designer`,
// lib/hostConfigs/microsoft-teams-light.json, plus its Teams container CSS for the button look),
// with markdown-it for the markdown subset Teams draws, inside headless Debian Chromium driven by
// playwright-core (no browser download: executablePath /usr/bin/chromium). Chromium is launched
// once for all cards, offline, with a fresh throwaway --user-data-dir.
//
//   node render.js CARD_DIR [OUT_DIR] [--png] [--width 480] [--scale 2] [--texts 60]
//
// For every CARD_DIR/<name>.json (sorted by name) it prints one JSON line on stdout:
//   {"name": ..., "warnings": [...], "errors": [...], "texts": [...], "buttons": [...], "inputs": [...],
//    "png": "OUT_DIR/<name>.png" | null, "ms": <render time>}
// warnings: the parse events of the SerializationContext (context.eventCount / getEventAt), the
//   results of card.validateProperties(), and properties the renderer does not know (a misspelt
//   property is otherwise silently dropped), each {"event", "message", "source"}.
// errors: the card could not be rendered at all (invalid JSON, exception, render() returned nothing).
// hints: things that render but probably not as meant (e.g. "4." drawn as a markdown list item);
//   advisory, callers print them but need not fail.
// With --png it writes an element screenshot of the card (a Teams-like frame, --width CSS px wide,
// device scale factor --scale) to OUT_DIR/<name>.png.
//
// The exit code is non-zero only for infrastructure failures (bad arguments, Chromium does not start,
// the renderer cannot be loaded); card warnings and errors are data, the caller decides.
// Environment: CHROMIUM=/path/to/chromium (default /usr/bin/chromium).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { CHROMIUM_ARGS } = require("../chromium.js");

function usage(msg) {
    if (msg) process.stderr.write(`render.js: ${msg}\n`);
    process.stderr.write(
        "usage: node render.js CARD_DIR [OUT_DIR] [--png] [--width PX] [--scale N] [--texts N]\n",
    );
    process.exit(2);
}

function parseArgs(argv) {
    const opts = { png: false, width: 480, scale: 2, texts: 60, positional: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const num = () => {
            const v = Number(argv[++i]);
            if (!Number.isFinite(v) || v <= 0) usage(`${a} needs a positive number`);
            return v;
        };
        if (a === "--png") opts.png = true;
        else if (a === "--width") opts.width = num();
        else if (a === "--scale") opts.scale = num();
        else if (a === "--texts") opts.texts = num();
        else if (a === "-h" || a === "--help") usage();
        else if (a.startsWith("--")) usage(`unknown option ${a}`);
        else opts.positional.push(a);
    }
    if (opts.positional.length < 1 || opts.positional.length > 2) usage();
    [opts.cardDir, opts.outDir] = opts.positional;
    if (opts.png && !opts.outDir) usage("--png needs OUT_DIR");
    return opts;
}

// This function runs inside the page: window.AdaptiveCards and window.TEAMS_LIGHT are set there.
function renderInPage({ name, text, maxTexts }) {
    const AC = window.AdaptiveCards;
    const result = { name, warnings: [], errors: [], hints: [], texts: [], buttons: [], inputs: [] };
    const host = document.getElementById("card");
    host.innerHTML = "";
    host.removeAttribute("data-card");

    let json;
    try {
        json = JSON.parse(text);
    } catch (e) {
        result.errors.push({ event: "InvalidJson", message: String(e.message || e), source: null });
        return result;
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
        result.errors.push({ event: "InvalidJson", message: "top level is not a JSON object", source: null });
        return result;
    }

    const describe = (obj) => {
        if (!obj) return null;
        let type = null;
        try {
            type = obj.getJsonTypeName ? obj.getJsonTypeName() : null;
        } catch (e) {
            type = null;
        }
        const id = obj.id || null;
        return id ? `${type}#${id}` : type;
    };
    const eventName = (ev) => AC.ValidationEvent[ev] || String(ev);
    const seen = new Set();
    const addWarning = (w) => {
        const key = JSON.stringify(w);
        if (!seen.has(key)) {
            seen.add(key);
            result.warnings.push(w);
        }
    };

    // Properties the renderer does not know about: compare each parsed element's/action's source
    // JSON with its schema. "$schema" (root) and templating keys ("$data", "$when") are allowed.
    // Collections are parsed by hand-written code rather than schema properties: allow them per type.
    // "fallback" is read by the element parser itself (parseElement), not a schema property.
    const allowedExtra = new Set(["$schema", "$data", "$when", "type", "fallback"]);
    const collections = {
        AdaptiveCard: ["body", "actions"],
        Container: ["items"],
        Column: ["items"],
        ColumnSet: ["columns"],
        ActionSet: ["actions"],
        FactSet: ["facts"],
        ImageSet: ["images"],
        "Input.ChoiceSet": ["choices"],
        RichTextBlock: ["inlines"],
        Table: ["columns", "rows"],
        TableRow: ["cells"],
        TableCell: ["items"],
        Media: ["sources", "captionSources"],
        Carousel: ["pages"],
        CarouselPage: ["items"],
    };
    const schemaNames = (obj) => {
        const schema = obj.getSchema();
        const known = new Set();
        for (let i = 0; i < schema.getCount(); i++) known.add(schema.getItemAt(i).name);
        return known;
    };
    const checkKeys = (known, source, what) => {
        if (!source || typeof source !== "object" || Array.isArray(source)) return;
        for (const key of Object.keys(source)) {
            if (!known.has(key) && !allowedExtra.has(key)) {
                addWarning({
                    event: "UnknownProperty",
                    message: `property "${key}" is not known to ${what} and is ignored`,
                    source: what,
                });
            }
        }
    };
    const checkUnknown = (obj, source) => {
        if (!obj || !source || typeof source !== "object" || !obj.getSchema) return;
        const type = obj.getJsonTypeName ? obj.getJsonTypeName() : "";
        const known = schemaNames(obj);
        for (const k of collections[type] || []) known.add(k);
        checkKeys(known, source, describe(obj));
        // Facts and choices are plain serializable objects, not reported by onParseElement.
        if (type === "FactSet" && Array.isArray(source.facts)) {
            const factKeys = schemaNames(new AC.Fact());
            source.facts.forEach((f) => checkKeys(factKeys, f, `${describe(obj)} fact`));
        }
        if (type === "Input.ChoiceSet" && Array.isArray(source.choices)) {
            const choiceKeys = schemaNames(new AC.Choice());
            source.choices.forEach((c) => checkKeys(choiceKeys, c, `${describe(obj)} choice`));
        }
    };

    try {
        const card = new AC.AdaptiveCard();
        card.hostConfig = new AC.HostConfig(window.TEAMS_LIGHT);
        // Teams renders Adaptive Cards up to 1.5 (the designer's Teams container targets v1_5).
        const context = new AC.SerializationContext(AC.Versions.v1_5);
        context.onParseElement = (element, source) => checkUnknown(element, source);
        context.onParseAction = (action, source) => checkUnknown(action, source);
        card.parse(json, context);
        checkUnknown(card, json);

        for (let i = 0; i < context.eventCount; i++) {
            const ev = context.getEventAt(i);
            addWarning({ event: eventName(ev.event), message: ev.message, source: describe(ev.source) });
        }
        const validation = card.validateProperties();
        for (const ev of validation.validationEvents) {
            addWarning({ event: eventName(ev.event), message: ev.message, source: describe(ev.source) });
        }

        const rendered = card.render();
        if (!rendered) {
            result.errors.push({ event: "NotRendered", message: "card.render() returned nothing", source: null });
            return result;
        }
        host.appendChild(rendered);
        host.setAttribute("data-card", name);

        const clean = (s) => (s || "").replace(/\s+/g, " ").trim();
        for (const el of host.querySelectorAll(".ac-textBlock, .ac-richTextBlock")) {
            const t = clean(el.innerText);
            if (t && result.texts.length < maxTexts) result.texts.push(t);
        }
        // Markdown surprises the parser cannot see: a TextBlock like "4." becomes an empty numbered
        // list item (Teams draws markdown too), which indents and misaligns the text.
        for (const li of host.querySelectorAll(".ac-textBlock li")) {
            if (!clean(li.innerText)) {
                const block = li.closest(".ac-columnSet") || li.closest(".ac-container") || li.closest(".ac-textBlock");
                result.hints.push({
                    event: "MarkdownEmptyListItem",
                    message: `text drawn as an empty markdown list item (e.g. "4." alone; write "#4" or "4\\.") near: ${clean(block.innerText) || "(empty)"}`,
                    source: "TextBlock",
                });
            }
        }
        for (const el of host.querySelectorAll(".ac-pushButton")) {
            const t = clean(el.innerText) || el.getAttribute("aria-label") || "";
            result.buttons.push(t);
        }
        for (const el of host.querySelectorAll(".ac-input")) {
            const inner = el.querySelector("input, textarea, select") || el;
            result.inputs.push({
                cls: el.className,
                placeholder: inner.getAttribute("placeholder") || inner.getAttribute("aria-label") || null,
            });
        }
    } catch (e) {
        result.errors.push({ event: "Exception", message: String((e && e.stack) || e), source: null });
    }
    return result;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const cardDir = path.resolve(opts.cardDir);
    if (!fs.existsSync(cardDir) || !fs.statSync(cardDir).isDirectory()) {
        usage(`not a directory: ${cardDir}`);
    }
    const files = fs
        .readdirSync(cardDir)
        .filter((f) => f.endsWith(".json"))
        .sort();
    if (opts.outDir) fs.mkdirSync(opts.outDir, { recursive: true });

    const acDir = path.dirname(require.resolve("adaptivecards/package.json"));
    const designerDir = path.dirname(require.resolve("adaptivecards-designer/package.json"));
    const acScript = path.join(acDir, "dist", "adaptivecards.min.js");
    const mdScript = path.join(
        path.dirname(require.resolve("markdown-it/package.json")),
        "dist",
        "markdown-it.min.js",
    );
    const acCss = fs.readFileSync(path.join(acDir, "dist", "adaptivecards.css"), "utf8");
    const teamsCss = fs.readFileSync(
        path.join(designerDir, "dist", "containers", "teams-container-light.css"),
        "utf8",
    );
    const teamsLight = JSON.parse(
        fs.readFileSync(path.join(designerDir, "lib", "hostConfigs", "microsoft-teams-light.json"), "utf8"),
    );

    const { chromium } = require("playwright-core");
    const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
    if (!fs.existsSync(executablePath)) {
        throw new Error(`Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
    }
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "cardrender-profile-"));
    const t0 = Date.now();
    // A persistent context is the only way to give Chromium our own fresh --user-data-dir.
    const context = await chromium.launchPersistentContext(profile, {
        executablePath,
        headless: true,
        args: [...CHROMIUM_ARGS, "--hide-scrollbars", "--font-render-hinting=none"],
        viewport: { width: opts.width + 80, height: 800 },
        deviceScaleFactor: opts.scale,
        offline: true,
    });
    let exitCode = 0;
    try {
        const page = context.pages()[0] || (await context.newPage());
        // Nothing leaves the machine: images with remote URLs simply do not load.
        await page.route("**/*", (route) => route.abort());
        await page.setContent(
            `<!doctype html><html><head><meta charset="utf-8"><style>${acCss}</style><style>${teamsCss}</style>
<style>
  html, body { margin: 0; padding: 0; background: #f5f5f5; }
  body { padding: 16px; }
  #card { width: ${opts.width}px; background: #ffffff; box-sizing: border-box; }
</style></head><body><div id="card" class="teams-card"></div></body></html>`,
        );
        // Teams draws TextBlock/FactSet text as markdown; the renderer uses window.markdownit when present.
        await page.addScriptTag({ path: mdScript });
        await page.addScriptTag({ path: acScript });
        await page.evaluate((hc) => {
            window.TEAMS_LIGHT = hc;
        }, teamsLight);
        const ok = await page.evaluate(
            () => !!(window.AdaptiveCards && window.AdaptiveCards.AdaptiveCard && window.markdownit),
        );
        if (!ok) throw new Error("adaptivecards or markdown-it did not load in the page");
        process.stderr.write(`render.js: Chromium up in ${Date.now() - t0} ms, ${files.length} card(s)\n`);

        for (const file of files) {
            const name = file.replace(/\.json$/, "");
            const started = Date.now();
            const text = fs.readFileSync(path.join(cardDir, file), "utf8");
            const result = await page.evaluate(renderInPage, { name, text, maxTexts: opts.texts });
            result.png = null;
            if (opts.png && result.errors.length === 0) {
                const out = path.join(opts.outDir, `${name}.png`);
                // Let fonts (emoji) settle before the screenshot.
                await page.evaluate(() => document.fonts.ready.then(() => true));
                await page.locator("#card").screenshot({ path: out, animations: "disabled" });
                result.png = out;
            }
            result.ms = Date.now() - started;
            process.stdout.write(JSON.stringify(result) + "\n");
        }
    } catch (e) {
        process.stderr.write(`render.js: ${e && e.stack ? e.stack : e}\n`);
        exitCode = 1;
    } finally {
        await context.close().catch(() => {});
        fs.rmSync(profile, { recursive: true, force: true });
    }
    process.exitCode = exitCode;
}

main().catch((e) => {
    process.stderr.write(`render.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
