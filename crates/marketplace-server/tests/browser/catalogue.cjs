// The catalogue in a real browser: headless Chromium driven by Playwright, with axe-core for
// accessibility. Run by tests/browser.rs against a seeded server:
//   node catalogue.cjs BASE_URL SCREENSHOT_DIR
// Prints one line per step and exits non-zero when anything fails.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [base, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const failures = [];
const dialogs = [];

function check(condition, what) {
  if (condition) {
    console.log("ok   " + what);
  } else {
    console.log("FAIL " + what);
    failures.push(what);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
}

// axe-core on the page: no serious or critical violation of WCAG 2 A/AA.
async function accessible(page, name) {
  // Through the DevTools protocol, which the page's CSP does not govern (it blocks inline scripts).
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "best-practice"] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result) {
    console.log("     axe " + name + ": " + v.impact + " " + v.id + " (" + v.nodes + "): " + v.help);
  }
  check(bad.length === 0, "axe: no serious or critical violations on " + name);
}

// Nothing from a package can run: one script (ours), no event handler attributes, no
// javascript: URLs, no frames.
async function inert(page, name) {
  const found = await page.evaluate(() => {
    const all = Array.from(document.querySelectorAll("*"));
    return {
      scripts: Array.from(document.scripts).map((s) => s.getAttribute("src")),
      handlers: all.filter((e) => Array.from(e.attributes).some((a) => a.name.toLowerCase().startsWith("on"))).length,
      jsLinks: all.filter((e) => ["href", "src", "action", "formaction"].some((a) => (e.getAttribute(a) || "").trim().toLowerCase().startsWith("javascript:"))).length,
      frames: document.querySelectorAll("iframe, object, embed, frame").length,
      pwned: window.__pwned === true,
    };
  });
  check(found.scripts.length === 1 && /^\/static\/search\.js\?v=/.test(found.scripts[0] || ""), name + ": the only script is the catalogue's own");
  check(found.handlers === 0, name + ": no event handler attributes");
  check(found.jsLinks === 0, name + ": no javascript: URLs");
  check(found.frames === 0, name + ": no frames or objects");
  check(!found.pwned, name + ": no package script ran");
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });

  // Home.
  let response = await page.goto(base + "/");
  check(response.status() === 200, "home answers 200");
  check((await page.title()) === "Packages · Marketplace", "home has its title");
  check(await page.locator("h2", { hasText: "Recently published" }).isVisible(), "home shows recently published");
  await shot(page, "home");
  await accessible(page, "home");

  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press("Tab");
  check((await page.evaluate(() => document.activeElement && document.activeElement.textContent)) === "Skip to content", "the first Tab focuses the skip link");

  // Search as you type fills the box's suggestions; Enter searches.
  const box = page.locator("#q");
  await box.click();
  await box.pressSequentially("web", { delay: 30 });
  await page.waitForFunction(() => document.querySelectorAll("#suggestions option").length > 0, null, { timeout: 5000 }).catch(() => {});
  const suggested = await page.$$eval("#suggestions option", (o) => o.map((x) => x.value));
  check(suggested.includes("web-router"), "search-as-you-type suggests web-router (got " + JSON.stringify(suggested) + ")");
  await box.fill("router");
  await Promise.all([page.waitForURL(/\/search\?q=router/), box.press("Enter")]);
  check(await page.locator("a.name", { hasText: "web-router" }).isVisible(), "search finds web-router");
  check((await page.locator("mark", { hasText: "router" }).count()) > 0, "the match is marked");
  await shot(page, "search");
  await accessible(page, "search");

  // Filter by category from the facets.
  await page.goto(base + "/search?q=");
  await Promise.all([page.waitForURL(/category=parsing/), page.locator("aside a", { hasText: "parsing" }).first().click()]);
  const names = await page.$$eval("a.name", (a) => a.map((x) => x.textContent));
  check(names.includes("json-tools") && !names.includes("web-router"), "the category filter keeps parsing packages only (" + names.join(", ") + ")");
  await Promise.all([page.waitForURL(/sort=name/), (async () => { await page.selectOption("#sort", "name"); await page.click("form.sort button"); })()]);
  check(page.url().includes("category=parsing"), "sorting keeps the filter");

  // Open a package, follow a dependency.
  await page.goto(base + "/search?q=router");
  await Promise.all([page.waitForURL(/\/packages\/web-router$/), page.locator("a.name", { hasText: "web-router" }).click()]);
  check(await page.locator("h1", { hasText: "web-router" }).first().isVisible(), "the package page opens");
  check(await page.locator("pre.install", { hasText: "install web-router@=2.0.0" }).isVisible(), "the install line is shown");
  check(await page.locator("svg.chart").isVisible(), "the download chart is drawn");
  await shot(page, "package");
  await accessible(page, "package");
  await Promise.all([page.waitForURL(/dependencies$/), page.locator("nav.tabs a", { hasText: "Dependencies" }).click()]);
  await accessible(page, "dependencies");
  await Promise.all([page.waitForURL(/acme%2Fhttp-core$/), page.locator("table a", { hasText: "acme/http-core" }).click()]);
  check(await page.locator("h1", { hasText: "acme/http-core" }).first().isVisible(), "the dependency link opens acme/http-core");

  // The yanked version shows its badge and reason.
  await Promise.all([page.waitForURL(/versions$/), page.locator("nav.tabs a", { hasText: "Versions" }).click()]);
  await accessible(page, "versions");
  await Promise.all([page.waitForURL(/\/1\.0\.0$/), page.locator("table a", { hasText: /^1\.0\.0$/ }).click()]);
  const badge = page.locator(".heading .badge.yanked");
  check(await badge.isVisible(), "the yanked version shows the yanked badge");
  check((await badge.textContent()).includes("security: CVE-2026-0001"), "the badge gives the reason");
  await shot(page, "yanked");
  await page.goto(base + "/packages/acme%2Fhttp-core/dependents");
  check(await page.locator("table a", { hasText: "web-router" }).first().isVisible(), "dependents list web-router");
  await accessible(page, "dependents");

  // Hostile content: nothing runs, no dialog opens.
  for (const p of ["/packages/hostile", "/search?q=txt", "/packages/huge-readme"]) {
    response = await page.goto(base + p);
    await page.waitForTimeout(300);
    await inert(page, p);
  }
  await page.goto(base + "/packages/hostile");
  check((await page.locator(".lead").textContent()).includes("<script>"), "the hostile description is shown as text");
  await shot(page, "hostile");
  await accessible(page, "hostile");
  await page.goto(base + "/packages/huge-readme");
  check(await page.locator(".notice", { hasText: "longer than this page shows" }).isVisible(), "a 5 MB readme is cut, and says so");
  const size = await page.evaluate(() => document.documentElement.outerHTML.length);
  check(size < 100 * 1024, "the huge readme's page stays under 100 KB (" + size + ")");

  // The 404 page suggests.
  response = await page.goto(base + "/packages/web-ruter");
  check(response.status() === 404, "an unknown package is 404");
  check(await page.locator("a", { hasText: "web-router" }).first().isVisible(), "the 404 page suggests web-router");
  await shot(page, "not-found");
  await accessible(page, "not-found");

  // A phone's width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  for (const p of ["/", "/packages/acme%2Fhttp-core", "/search?q=http"]) {
    await page.goto(base + p);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 376, p + " fits a 375 px screen (" + wide + " px)");
  }
  await page.goto(base + "/packages/acme%2Fhttp-core");
  await shot(page, "package-phone");

  check(dialogs.length === 0, "no dialog opened (" + JSON.stringify(dialogs) + ")");
  await browser.close();
}

main()
  .catch((e) => {
    console.log("FAIL " + (e && e.stack ? e.stack : e));
    failures.push(String(e));
  })
  .finally(() => {
    console.log(failures.length === 0 ? "all browser checks passed" : failures.length + " browser checks failed");
    process.exit(failures.length === 0 ? 0 : 1);
  });
