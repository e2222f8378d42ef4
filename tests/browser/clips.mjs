// Saving clips and exporting timelines in the web UI, headless Chromium (playwright-core)
// against a live `vidseek serve`. Run by tests/it/clips.rs:
//
//   node tests/browser/clips.mjs URL QUERY OUT_DIR
//
// Types QUERY; the first card's "save clip" link downloads the moment (saved as
// OUT_DIR/card-clip.mp4); clicking the card opens the player, whose clip bar starts a
// second earlier after a click on its handle and, as webm, downloads OUT_DIR/player-clip.webm;
// "Export EDL" downloads the result list (OUT_DIR/hits.edl). Then links: the address
// holds the query and the moment playing; reload, back and forward restore them; a
// card's "copy link" opened in another browser shows the same. Prints each span as
// "span START END" for the Rust side to check the files against. Exits non-zero on the
// first failed check.
import { chromium } from "playwright-core";

const [url, query, outDir] = process.argv.slice(2);

function check(cond, msg) {
  if (!cond) {
    console.error("FAIL: " + msg);
    process.exitCode = 1;
    throw new Error(msg);
  }
  console.log("ok: " + msg);
}

// Clicks `selector` and saves what it downloads to OUT_DIR/name.
async function download(page, selector, name) {
  const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 60000 }), page.click(selector)]);
  await dl.saveAs(outDir + "/" + name);
  return dl.suggestedFilename();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.click("#q");
  await page.keyboard.type(query, { delay: 10 });
  await page.waitForFunction((q) => {
    const r = document.querySelector("#results");
    return r.dataset.state === "done" && r.dataset.query === q && document.querySelector(".card");
  }, query, { timeout: 20000 });

  const seg = await page.$eval(".card .hit", (e) => ({ start: Number(e.dataset.start), end: Number(e.dataset.end) }));
  check(seg.start >= 1, `the first moment starts after 1 s, so that a handle can widen it (${seg.start})`);
  const name = await download(page, ".card .save-clip", "card-clip.mp4");
  check(/\.mp4$/.test(name), `the card's "save clip" downloads an MP4 (${name})`);
  console.log(`span card ${seg.start} ${seg.end}`);

  await page.click(".card .hit");
  await page.waitForSelector("#clip-bar #save-clip", { timeout: 10000 });
  // The timeline's answer redraws the bar with the video's length: wait for it, then widen.
  await page.waitForSelector("#timeline .bar", { timeout: 10000 });
  await page.click("#clip-widen-start");
  await page.selectOption("#clip-format", "webm");
  const href = await page.$eval("#save-clip", (a) => a.getAttribute("href"));
  const wantStart = Math.max(0, seg.start - 1).toFixed(2);
  check(href.includes("start=" + wantStart) && href.includes("format=webm"), `the player's handle widens the span to start at ${wantStart} (${href})`);
  const pname = await download(page, "#save-clip", "player-clip.webm");
  check(/\.webm$/.test(pname), `the player's "Save clip" downloads a WebM (${pname})`);
  console.log(`span player ${wantStart} ${seg.end}`);

  const edl = await page.$eval("#export-edl", (a) => a.getAttribute("href"));
  check(edl.startsWith("/api/timeline?format=edl&") && !/token/i.test(edl), `the result list exports as an EDL (${edl})`);
  await download(page, "#export-edl", "hits.edl");
  await page.screenshot({ path: outDir + "/clips.png" });

  // Links: the address holds the search and the moment playing.
  const near = (a, b) => Math.abs(Number(a) - b) < 0.01;
  let addr = new URL(page.url()).searchParams;
  check(addr.get("q") === query && addr.get("v") && near(addr.get("t"), seg.start) && near(addr.get("e"), seg.end),
    `the address holds the query and the moment playing (${page.url()})`);
  const showsMoment = async (p, what) => {
    await p.waitForFunction((q) => {
      const r = document.querySelector("#results");
      return r.dataset.state === "done" && r.dataset.query === q && !document.querySelector("#player-box").hidden;
    }, query, { timeout: 20000 });
    const shown = await p.evaluate(() => ({ q: document.querySelector("#q").value, title: document.querySelector("#player-title").textContent,
      src: document.querySelector("#player").getAttribute("src") }));
    const at = String(Math.floor(seg.start / 60)).padStart(2, "0") + ":" + (seg.start % 60).toFixed(1).padStart(4, "0");
    check(shown.q === query && shown.src === "/media/" + addr.get("v") && shown.title.includes(at),
      `${what} shows the same search and opens the player at the moment (${JSON.stringify(shown)})`);
  };
  await page.reload({ waitUntil: "domcontentloaded" });
  await showsMoment(page, "a reload");
  await page.goBack({ waitUntil: "commit" });
  await page.waitForFunction(() => document.querySelector("#player-box").hidden && !new URL(location.href).searchParams.get("v"), null, { timeout: 10000 });
  check(new URL(page.url()).searchParams.get("q") === query, `back goes to the search without the moment (${page.url()})`);
  await page.goForward({ waitUntil: "commit" });
  await showsMoment(page, "forward");

  // "copy link" of a card, pasted into another browser (a fresh context: no cookies, no history).
  const link = await page.$eval(".card .moment-link", (a) => a.href);
  check(!/token/i.test(link), `a moment's link carries no token (${link})`);
  const other = await browser.newContext();
  const p2 = await other.newPage();
  p2.on("pageerror", (e) => errors.push(String(e)));
  await p2.goto(link, { waitUntil: "domcontentloaded" });
  await showsMoment(p2, "the pasted link");
  await other.close();
  check(errors.length === 0, "no script errors (" + errors.join("; ") + ")");
} finally {
  await browser.close();
}
