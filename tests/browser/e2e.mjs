// End-to-end test of the web UI in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core). Run by tests/it/browser.rs against a live `vidseek serve`:
//
//   node tests/browser/e2e.mjs URL QUERY FILE_NAME START END OUT_DIR TRUTH_FILE DISTRACTOR
//
// Types QUERY, expects FILE_NAME's group first with a segment overlapping [START, END]
// (DISTRACTOR, a video that sorts first by name and id, listed after it with a credible
// near-match; the group's weaker, earlier moment after the strong one), clicks it, and checks that the <video> element's currentTime lands inside the
// segment. Then keyboard navigation, the no-match state with "show weaker matches", the
// filters bar, "more like this", a picture dropped on the search box, tag facets and
// chips, picking moments for "more like these", the library view with the label editor
// and phone width. Screenshots go
// to OUT_DIR. Exits non-zero with a message on the first failed check.
import { chromium } from "playwright-core";

const [url, query, fileName, startS, endS, outDir, truthFile, distractor] = process.argv.slice(2);
const want = { start: Number(startS), end: Number(endS) };

function check(cond, msg) {
  if (!cond) {
    console.error("FAIL: " + msg);
    process.exitCode = 1;
    throw new Error(msg);
  }
  console.log("ok: " + msg);
}

// Waits until the result list shows the answer to `q` (and `picture`): the page marks
// what it rendered, so a stale list from an earlier keystroke never passes.
async function settled(page, q, picture = "") {
  await page.waitForFunction(([q, picture]) => {
    const r = document.querySelector("#results");
    return r.dataset.state === "done" && r.dataset.query === q && (r.dataset.picture || "") === picture;
  }, [q, picture], { timeout: 20000 });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(url, { waitUntil: "domcontentloaded" });

  // Search as you type (no Enter).
  await page.click("#q");
  await page.keyboard.type(query, { delay: 15 });
  await settled(page, query);
  const firstName = await page.$eval(".group .name", (e) => e.textContent);
  check(firstName === fileName, `first result group is ${fileName} (got ${firstName})`);
  const seg = await page.$eval(".group .hit", (e) => ({ start: Number(e.dataset.start), end: Number(e.dataset.end) }));
  const overlap = Math.min(seg.end, want.end) - Math.max(seg.start, want.start);
  check(overlap >= 0.5 * Math.min(seg.end - seg.start, want.end - want.start), `first segment ${seg.start}-${seg.end} matches the scene ${want.start}-${want.end}`);
  // The order was earned: the distractor (first by name and id) is there with a
  // credible hit, below; the first group's hits are in score order, not time order.
  const names = await page.$$eval(".group .name", (els) => els.map((e) => e.textContent));
  check(names.indexOf(distractor) > 0, `the distractor ${distractor} is listed with a credible match, after ${fileName} (${names.join(", ")})`);
  const starts = await page.$eval(".group", (g) => Array.from(g.querySelectorAll(".hit")).map((e) => Number(e.dataset.start)));
  check(starts.length > 1 && starts.slice(1).some((s) => s < starts[0]), `the first hit is the strongest moment, not the earliest (hits start at ${starts.join(", ")})`);

  // Click: the page plays the video from the segment start.
  await page.click(".group .hit");
  await page.waitForFunction(() => {
    const v = document.querySelector("#player");
    return v && v.readyState >= 1 && v.currentTime > 0;
  }, null, { timeout: 20000 });
  const t = await page.$eval("#player", (v) => v.currentTime);
  check(t >= seg.start - 0.05 && t <= seg.end + 0.05, `video currentTime ${t.toFixed(2)} lies inside the segment ${seg.start}-${seg.end}`);
  await page.waitForSelector("#timeline .segment", { timeout: 10000 });
  check((await page.$$("#timeline .bar")).length > 0, "the score timeline is drawn with the segment outlined");
  await page.screenshot({ path: outDir + "/search.png", fullPage: true });

  // Keyboard: "/" focuses the search box, arrows move between hits, Enter plays. The
  // library shows a red circle twice, so the shorter query has two credible hits.
  await page.fill("#q", "a red circle");
  await settled(page, "a red circle");
  await page.click("body", { position: { x: 5, y: 600 } });
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement && document.activeElement.id === "q"), "'/' focuses the search box");
  const hits = (await page.$$(".hit")).length;
  check(hits > 1, `more than one hit to move between (${hits})`);
  await page.keyboard.press("ArrowDown");
  const sel = await page.$eval(".hit.selected", (e) => Number(e.dataset.index));
  check(sel === 1, "ArrowDown selects the next hit");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => { const p = document.querySelector(".hit.playing"); return p && p.dataset.index === "1"; }, null, { timeout: 10000 });
  check(true, "Enter plays the selected hit");

  // The no-match state: an absent pair is held back by the cut-off, with a way to see
  // the weaker matches.
  await page.fill("#q", "a purple triangle");
  await settled(page, "a purple triangle");
  check(/No good match/.test(await page.$eval("#no-match", (e) => e.textContent)), "an absent pair shows 'No good match'");
  check((await page.$$(".hit")).length === 0, "no hits are shown for an absent pair");
  await page.click("#show-weaker");
  await page.waitForFunction(() => document.querySelector("#results").dataset.state === "done" && document.querySelector(".group .hit"), null, { timeout: 10000 });
  check(/weaker matches shown/.test(await page.$eval("#status", (e) => e.textContent)), "'show weaker matches' lists them, labelled");

  // Filters compose the query: a type no file has empties the page; the right one keeps it.
  await page.fill("#q", query);
  await settled(page, query);
  await page.fill("#f-ext", "mkv");
  await settled(page, query + " ext:mkv");
  check((await page.$$("#no-match")).length === 1 && (await page.$$(".hit")).length === 0, "the type filter ext:mkv leaves no match");
  const ext = fileName.split(".").pop();
  await page.fill("#f-ext", ext);
  await settled(page, query + " ext:" + ext);
  check((await page.$eval(".group .name", (e) => e.textContent)) === fileName, "the matching type filter keeps the result");
  await page.fill("#f-ext", "");
  await settled(page, query);

  // More like this: the hit's frame becomes the query; its own moment is left out.
  const firstHit = await page.$eval(".group .hit", (e) => ({ start: Number(e.dataset.start), end: Number(e.dataset.end) }));
  await page.click(".card .more");
  await page.waitForFunction(() => !document.querySelector("#picture").hidden && /like frame/.test(document.querySelector("#picture").textContent), null, { timeout: 10000 });
  await page.waitForFunction(() => { const r = document.querySelector("#results"); return r.dataset.state === "done" && r.dataset.picture.startsWith("frame:"); }, null, { timeout: 10000 });
  const similar = await page.$$eval(".group .hit", (els) => els.map((e) => ({ start: Number(e.dataset.start), end: Number(e.dataset.end) })));
  check(similar.length > 0, "'more like this' finds similar moments");
  check(!similar.some((h) => h.start === firstHit.start && h.end === firstHit.end), "the frame's own moment is not among them");
  await page.screenshot({ path: outDir + "/more-like-this.png", fullPage: true });

  // A picture dropped on the search box is searched by: a thumbnail of the library.
  await page.click("#picture-clear");
  await page.fill("#q", query);
  await settled(page, query);
  const src = await page.$eval(".hit img", (e) => e.getAttribute("src"));
  await page.fill("#q", "");
  await settled(page, "");
  await page.evaluate(async (src) => {
    const blob = await (await fetch(src)).blob();
    const dt = new DataTransfer();
    dt.items.add(new File([blob], "dropped.jpg", { type: "image/jpeg" }));
    const target = document.querySelector("#q");
    for (const type of ["dragenter", "dragover", "drop"]) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, src);
  await page.waitForFunction(() => /picture: dropped.jpg/.test(document.querySelector("#picture").textContent), null, { timeout: 10000 });
  await settled(page, "", "image:dropped.jpg");
  check((await page.$eval(".group .name", (e) => e.textContent)) === fileName, "a dropped picture finds the video it came from");
  check(await page.evaluate(() => document.querySelector("#tab-search").classList.contains("active")), "a dropped picture searches (it is not uploaded as a video)");
  await page.click("#picture-clear");

  // Tags: the facet list names the tags in use; a facet shows only its moments, each
  // with the tag as a chip; clicking it again lifts the filter.
  await page.fill("#q", "");
  await settled(page, "");
  await page.waitForSelector("#facets .facet", { timeout: 10000 });
  const facets = await page.$$eval("#facets .facet", (els) => els.map((e) => e.dataset.label));
  check(facets.includes("a red circle"), `the facet list shows the tags in use (${facets.join(", ")})`);
  await page.click('#facets .facet[data-label="a red circle"]');
  await settled(page, 'tag:"a red circle"');
  const chips = await page.$$eval(".hit", (els) => els.map((e) => Array.from(e.querySelectorAll(".chip")).map((c) => c.textContent)));
  check(chips.length > 0 && chips.every((c) => c.includes("a red circle")), `a facet shows only its moments, chips included (${JSON.stringify(chips)})`);
  await page.click('#facets .facet[data-label="a red circle"]');
  await settled(page, "");

  // Few-shot: pick a moment, then "More like these": moments like it, not itself.
  await page.fill("#q", "a white star");
  await settled(page, "a white star");
  const picked = await page.$eval(".card[data-frame]", (e) => Number(e.dataset.frame));
  await page.check(".card[data-frame] .pick-hit input");
  check(!(await page.$eval("#selection", (e) => e.hidden)), "picking a moment shows the selection bar");
  await page.fill("#q", "");
  await page.click("#like-these");
  await page.waitForFunction((id) => { const r = document.querySelector("#results"); return r.dataset.state === "done" && r.dataset.picture === "like:" + id; }, picked, { timeout: 20000 });
  const liked = await page.$$eval(".card[data-frame]", (els) => els.map((e) => Number(e.dataset.frame)));
  check(!liked.includes(picked), `'more like these' leaves the picked moment out (${liked.join(",")})`);
  check(/like 1 picked moment/.test(await page.$eval("#picture", (e) => e.textContent)), "the search box says it searches like the picked moment");
  await page.click("#picture-clear");

  // Library view lists the video with its status.
  await page.click("#tab-library");
  await page.waitForSelector("#videos tbody tr", { timeout: 10000 });
  const rows = await page.$$eval("#videos tbody tr", (els) => els.map((e) => e.textContent));
  check(rows.some((r) => r.includes(fileName) && r.includes("indexed")), "the library view lists the video as indexed");
  // An uploaded truth file gives the eval report: QUERY at [START, END] of FILE_NAME is
  // found first, so R@1 is 100%.
  await page.click("#eval-panel summary");
  await page.setInputFiles("#eval-input", truthFile);
  await page.waitForSelector("#eval-r1", { timeout: 20000 });
  const r1 = await page.$eval("#eval-r1", (e) => e.textContent);
  check(r1 === "100.0%", `the eval report of the uploaded truth file shows R@1 100.0% (got ${r1})`);
  // The model panel names the active model; a bad package to switch to is refused with the reason.
  await page.waitForFunction(() => document.querySelector("#model-name").textContent === "tiny-clip-synthetic", null, { timeout: 10000 });
  check(true, "the library view names the active model");
  await page.fill("#switch-dir", "/no/such/model");
  await page.click("#switch-form button");
  await page.waitForFunction(() => !document.querySelector("#error").hidden && /no such folder/.test(document.querySelector("#error").textContent), null, { timeout: 10000 });
  check(true, "switching to a folder that does not exist shows why");

  // The label editor: a new vocabulary retags the library; the facets follow.
  await page.click("#labels-panel summary");
  await page.waitForFunction(() => document.querySelector("#labels-text").value.length > 0, null, { timeout: 10000 });
  await page.fill("#labels-text", "a red circle\na white star\n");
  await page.click("#labels-save");
  await page.waitForFunction(() => /Saved: 2 labels/.test(document.querySelector("#labels-status").textContent), null, { timeout: 20000 });
  await page.click("#tab-search");
  await page.waitForFunction(() => { const f = document.querySelectorAll("#facets .facet"); return f.length > 0 && Array.from(f).every((e) => ["a red circle", "a white star"].includes(e.dataset.label)); }, null, { timeout: 10000 });
  check(true, "a vocabulary saved in the editor retags the library and the facets follow");

  // Phone width: nothing overflows sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#tab-search");
  await page.fill("#q", query);
  await settled(page, query);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  // Name the widest element that sticks out, so a failure says what to fix.
  const culprit = await page.evaluate(() => {
    let worst = null;
    for (const e of document.querySelectorAll("body *")) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.right > window.innerWidth + 1 && !e.closest(".strip")) {
        if (!worst || r.right > worst.right) worst = { right: r.right, what: `${e.tagName.toLowerCase()}#${e.id}.${[...e.classList].join(".")}` };
      }
    }
    return worst ? `${worst.what} ends at ${Math.round(worst.right)}px` : "none";
  });
  check(overflow <= 1, `no horizontal overflow at phone width (${overflow}px; widest: ${culprit})`);
  await page.screenshot({ path: outDir + "/phone.png", fullPage: true });
  check(consoleErrors.length === 0, "no script errors: " + consoleErrors.join("; "));
} catch (e) {
  if (!process.exitCode) { console.error("FAIL: " + e.message); process.exitCode = 1; }
} finally {
  await browser.close();
}
