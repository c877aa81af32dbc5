// A person at a browser: Debian's Chromium (through playwright-core, never a downloaded
// browser) opens the demo app through Envoy, is sent to the Portcullis login page, signs in with
// the password and then the one-time code, sees the app name them, and signs out.
//
// Input (environment): APP_URL, USERNAME, PASSWORD, OTP (a code valid now), SCREENSHOTS (a
// directory), CHROMIUM (the executable). Output: one JSON line on stdout with what it saw,
// including the status the app answers the browser's signed-in cookies with (Envoy's, which
// hold the access token sealed) while signed in (`app_before`) and, replayed, after signing out
// (`app_after`, polled until it changes, for at most 5 s: revocation reaches Envoy with the
// next bundle).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
const seen = { pages: [] };
let current = null;
const replay = async (cookie) =>
  (await fetch(env("APP_URL"), { headers: { cookie }, redirect: "manual" })).status;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  current = page;
  page.setDefaultTimeout(15000);
  const step = async (name) => {
    seen.pages.push({ name, url: page.url(), title: await page.title() });
    await page.screenshot({ path: join(shots, `${seen.pages.length}-${name}.png`), fullPage: true });
  };

  await page.goto(env("APP_URL"));
  await page.waitForSelector("#password");
  await step("login");
  await page.fill("#username", env("USERNAME"));
  await page.fill("#password", env("PASSWORD"));
  await Promise.all([page.waitForSelector("#otp"), page.click("button[type=submit]")]);
  await step("code");
  await page.fill("#otp", env("OTP"));
  await Promise.all([page.waitForSelector("#sub"), page.click("button[type=submit]")]);
  await step("app");
  seen.sub = await page.textContent("#sub");
  seen.client = await page.textContent("#client");
  const cookies = await context.cookies();
  const held = cookies
    .filter((c) => c.path.startsWith("/app"))
    .map((c) => `${c.name}=${c.value}`)
    .join("; ");
  seen.bearer_cookie = cookies.some((c) => c.name === "BearerToken");
  seen.cookies = cookies.map((c) => ({ name: c.name, domain: c.domain, path: c.path, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite }));

  seen.app_before = await replay(held);

  await Promise.all([page.waitForSelector("#signed-out"), page.click("#signout")]);
  const until = Date.now() + 5000;
  do {
    seen.app_after = await replay(held);
    if (seen.app_after !== seen.app_before) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (Date.now() < until);
  await step("signed-out");
  await page.goto(env("APP_URL"));
  await page.waitForSelector("#password");
  await step("login-again");
} catch (error) {
  seen.error = String(error && error.stack ? error.stack : error);
  if (current) {
    seen.error_page = { url: current.url(), text: (await current.textContent("body").catch(() => "")) || "" };
    await current.screenshot({ path: join(shots, "error.png"), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
