// On-screen text in the web UI, headless Chromium (playwright-core) against a live
// `vidseek serve` whose library was indexed with OCR. Run by tests/it/ocr_search.rs:
//
//   node tests/browser/ocr.mjs URL QUERY TEXT X0 Y0 X1 Y1 OUT_DIR
//
// Types QUERY; the first card must show TEXT (the recognised line) with a box drawn
// over its thumbnail where the words are (X0..Y1: the phrase's bounds as fractions of
// the frame; IoU >= 0.5); clicking it plays the video with the box drawn over the
// picture at that moment (IoU >= 0.5 against the displayed video). Screenshot in
// OUT_DIR/ocr.png. Exits non-zero with a message on the first failed check.
import { chromium } from "playwright-core";

const [url, query, text, ...rest] = process.argv.slice(2);
const want = rest.slice(0, 4).map(Number);
const outDir = rest[4];

function check(cond, msg) {
  if (!cond) {
    console.error("FAIL: " + msg);
    process.exitCode = 1;
    throw new Error(msg);
  }
  console.log("ok: " + msg);
}

// IoU of two [x0, y0, x1, y1] boxes.
function iou(a, b) {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih;
  return u > 0 ? (iw * ih) / u : 0;
}

// `box`'s rectangle as fractions of the `frame` rectangle.
const within = (box, frame) => [
  (box.x - frame.x) / frame.width, (box.y - frame.y) / frame.height,
  (box.x + box.width - frame.x) / frame.width, (box.y + box.height - frame.y) / frame.height,
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.click("#q");
  await page.keyboard.type(query, { delay: 10 });
  await page.waitForFunction((q) => {
    const r = document.querySelector("#results");
    return r.dataset.state === "done" && r.dataset.query === q;
  }, query, { timeout: 20000 });
  const cue = await page.$eval(".group .hit .cue", (e) => e.textContent);
  check(cue === text, `the first card shows the recognised line ${JSON.stringify(text)} (got ${JSON.stringify(cue)})`);
  await page.waitForSelector(".group .hit .ocrbox.placed", { timeout: 10000 });
  const thumb = await (await page.$(".group .hit img")).boundingBox();
  const onThumb = await (await page.$(".group .hit .ocrbox")).boundingBox();
  const t = iou(within(onThumb, thumb), want);
  check(t >= 0.5, `the box on the thumbnail is over the words (IoU ${t.toFixed(2)})`);

  await page.click(".group .hit");
  await page.waitForFunction(() => {
    const b = document.querySelector("#player-ocr");
    return b && !b.hidden && b.offsetWidth > 0;
  }, null, { timeout: 20000 });
  const v = await page.$("#player");
  const shown = await v.evaluate((v) => {
    const r = v.getBoundingClientRect();
    const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    const [w, h] = [v.videoWidth * s, v.videoHeight * s];
    return { x: r.x + (r.width - w) / 2, y: r.y + (r.height - h) / 2, width: w, height: h, t: v.currentTime };
  });
  const overPlayer = await (await page.$("#player-ocr")).boundingBox();
  const p = iou(within(overPlayer, shown), want);
  check(p >= 0.5, `the box over the player at ${shown.t.toFixed(2)} s is over the words (IoU ${p.toFixed(2)})`);
  const label = await page.$eval("#player-ocr", (e) => e.dataset.text);
  check(label === text, "the player's box carries the recognised line");
  await page.screenshot({ path: outDir + "/ocr.png" });
  check(errors.length === 0, "no page errors: " + errors.join("; "));
} finally {
  await browser.close();
}
