// The captions page: a Streamlit component (dashboard/app.py declares it) in plain JS.
//
// Streamlit's component protocol: we post `streamlit:componentReady` (apiVersion 1) to the
// page around us; it posts `streamlit:render` with the arguments livetranslate/present/
// captions.py's PageFeed made: the lines that changed since the version named `base`, the
// interim text, the state. A page that missed a version asks for everything again with
// `streamlit:setComponentValue` ({resync}). The iframe stays across Streamlit's reruns, so
// the lines, the scroll position and the reader's choices stay too.
//
// Every text from speech, the LLM or an organiser is set with textContent, never as markup.
(() => {
  "use strict";

  const STORE = { size: "livetranslate.captions.size", both: "livetranslate.captions.both", names: "livetranslate.captions.names" };
  const STEPS = [50, 60, 70, 80, 90, 100, 115, 130, 150, 175, 200, 250, 300];
  const SYMBOLS = { corrected: "✎", improved: "↻", draft: "≈" };
  const NEAR_END_PX = 4; // this close to the end counts as at the end

  const $ = (selector) => document.querySelector(selector);
  const ui = {
    root: document.documentElement,
    status: $(".lt-status"),
    smaller: $(".lt-smaller"),
    larger: $(".lt-larger"),
    both: $(".lt-both"),
    names: $(".lt-names"),
    scroller: $(".lt-scroller"),
    dropped: $(".lt-dropped"),
    lines: $(".lt-lines"),
    message: $(".lt-message"),
    interimSource: $(".lt-interim .lt-source"),
    interim: $(".lt-interim .lt-text"),
    note: $(".lt-note"),
    legend: $(".lt-legend"),
    explain: $(".lt-explain"),
    live: $(".lt-live"),
  };
  const page = {
    epoch: null,
    version: null,
    byKey: new Map(), // line key -> its element
    following: true, // the newest line is kept in view; false while the reader scrolls back
    size: 100,
    sizeNote: "", // why the size kept on this device was not used as it was
    fromDevice: false, // the size is the one kept on this device (the link's note does not apply)
    noteSeen: false, // the reader changed the size: the notes have been answered
    both: false,
    names: true, // who speaks, above the first line of each new speaker
    asked: 0, // when everything was last asked for again
    args: {},
    marks: {},
    obs: false,
    heard: false, // a render came: Streamlit knows the component is ready
  };

  // --- Streamlit's protocol ---------------------------------------------------------------
  function send(type, data) {
    if (window.parent !== window) window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
  }
  function askForEverything() {
    const now = Date.now();
    if (now - page.asked < 3000) return; // once: the answer is on its way
    page.asked = now;
    send("streamlit:setComponentValue", { value: { resync: `${now}-${Math.random().toString(36).slice(2)}` }, dataType: "json" });
  }
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return; // only the page around us
    const message = event.data;
    if (message && message.type === "streamlit:render" && message.args && typeof message.args === "object") {
      page.heard = true;
      render(message.args);
    }
  });

  // --- the device's choices (localStorage; a browser without it forgets them) ---------------
  function stored(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }
  function store(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, String(value));
    } catch (e) {
      /* private mode: the choice lasts as long as the page */
    }
  }
  function range() {
    const sizes = Array.isArray(page.args.sizes) ? page.args.sizes.map(Number) : [];
    return sizes.length === 2 && sizes.every(Number.isFinite) ? sizes : [STEPS[0], STEPS[STEPS.length - 1]];
  }
  function clamp(size) {
    const [low, high] = range();
    return Math.min(Math.max(size, low), high);
  }
  function chooseSize() {
    // the size chosen on this device wins; else the link's; else the usual one
    const kept = stored(STORE.size);
    const [low, high] = range();
    page.sizeNote = "";
    page.fromDevice = kept !== null;
    if (kept !== null) {
      const size = Number(kept);
      if (kept.trim() === "" || !Number.isFinite(size)) {
        page.sizeNote = `The text size kept on this device (“${kept.slice(0, 20)}”) is not a number: it was forgotten.`;
        page.fromDevice = false;
        store(STORE.size, null);
      } else if (size !== clamp(size)) {
        page.sizeNote = `The text size kept on this device (${kept.slice(0, 20)} %) is outside ${low}–${high} %: ${clamp(size)} % is used.`;
        store(STORE.size, clamp(size));
        return clamp(size);
      } else {
        return size;
      }
    }
    const linked = Number(page.args.size);
    if (page.args.size !== null && page.args.size !== undefined && Number.isFinite(linked)) return clamp(linked);
    return 100;
  }
  function applySize(size) {
    page.size = clamp(size);
    ui.root.style.setProperty("--scale", String(page.size / 100));
    const [low, high] = range();
    ui.smaller.disabled = page.size <= low;
    ui.larger.disabled = page.size >= high;
    ui.smaller.title = `Smaller text (now ${page.size} %)`;
    ui.larger.title = `Larger text (now ${page.size} %)`;
    afterLayout();
  }
  function step(direction) {
    const next =
      direction > 0 ? STEPS.find((s) => s > page.size) ?? range()[1] : [...STEPS].reverse().find((s) => s < page.size) ?? range()[0];
    page.noteSeen = true;
    store(STORE.size, clamp(next));
    applySize(next);
    showNotes();
  }
  ui.smaller.addEventListener("click", () => step(-1));
  ui.larger.addEventListener("click", () => step(+1));
  ui.both.addEventListener("click", () => {
    page.both = !page.both;
    store(STORE.both, page.both ? "1" : "0");
    showBoth();
  });
  function showBoth() {
    const on = page.both && !page.obs;
    ui.root.classList.toggle("lt-bilingual", on);
    ui.both.setAttribute("aria-pressed", on ? "true" : "false");
    const spoken = String(page.args.spoken || ""), lang = String(page.args.lang || "");
    ui.both.hidden = Boolean(spoken && spoken === lang); // the reader reads the spoken language
    if (spoken && lang) ui.both.textContent = `${spoken.toUpperCase()} + ${lang.toUpperCase()}`;
    afterLayout();
  }
  ui.names.addEventListener("click", () => {
    page.names = !page.names;
    store(STORE.names, page.names ? "1" : "0");
    showNames();
  });
  function showNames() {
    // a line says who speaks when its speaker is not the one of the line before it
    let before = null, any = false;
    for (const element of ui.lines.children) {
      const who = element.dataset.who || "";
      any = any || Boolean(who);
      element.classList.toggle("lt-new-speaker", Boolean(who) && who !== before);
      before = who;
    }
    ui.names.hidden = !any;
    ui.names.setAttribute("aria-pressed", page.names ? "true" : "false");
    ui.root.classList.toggle("lt-names-on", page.names && any);
    afterLayout();
  }
  function showNotes() {
    const notes = [];
    if (page.sizeNote) notes.push(page.sizeNote);
    if (!page.fromDevice && page.args.size_note) notes.push(String(page.args.size_note));
    const text = page.noteSeen ? "" : notes.join(" ");
    ui.note.textContent = text;
    ui.note.hidden = !text;
  }

  // --- following the newest line, or reading back -----------------------------------------
  function atEnd() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_END_PX;
  }
  function toEnd() {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
  }
  function afterLayout() {
    if (page.following) toEnd();
  }
  function follow(on) {
    page.following = on;
    ui.live.hidden = on || page.obs;
    ui.scroller.classList.toggle("lt-following", on);
    if (on) toEnd();
  }
  ui.scroller.addEventListener("scroll", () => {
    const end = atEnd();
    if (end !== page.following) follow(end);
  });
  ui.live.addEventListener("click", () => follow(true));
  new ResizeObserver(afterLayout).observe(ui.scroller);

  // --- the lines ----------------------------------------------------------------------------
  function markButton(mark) {
    const [name, explained] = page.marks[mark] || [mark, ""];
    const button = document.createElement("button");
    button.type = "button";
    button.className = "lt-mark";
    button.dataset.mark = mark;
    button.textContent = SYMBOLS[mark] || "•";
    button.title = `${name}: ${explained}`;
    button.setAttribute("aria-label", `${name}: ${explained}`);
    button.addEventListener("click", () => explain(true));
    return button;
  }
  function fill(element, row, isNew, replacing = false) {
    // replacing: a new line in the place of others (the translation in context of several)
    const [, , last, text, source, mark, who] = row;
    const words = element.querySelector(".lt-words");
    const changed = isNew
      ? replacing && Boolean(mark)
      : words.textContent !== String(text) || element.dataset.mark !== String(mark || "");
    element.dataset.last = String(last);
    words.textContent = String(text);
    element.querySelector(".lt-source").textContent = String(source || "");
    element.dataset.who = String(who || "");
    element.querySelector(".lt-who").textContent = String(who || "");
    const old = element.querySelector(".lt-mark");
    if (old) old.remove();
    element.dataset.mark = String(mark || "");
    if (mark) element.querySelector(".lt-text").append(markButton(String(mark)));
    if (changed) {
      element.classList.remove("lt-changed");
      void element.offsetWidth; // restarts the fade
      element.classList.add("lt-changed");
      window.setTimeout(() => element.classList.remove("lt-changed"), 2500);
    }
  }
  function makeLine(row, replacing) {
    const element = document.createElement("div");
    element.className = "lt-line";
    element.dataset.key = String(row[0]);
    const who = document.createElement("div");
    who.className = "lt-who";
    const source = document.createElement("div");
    source.className = "lt-source";
    const text = document.createElement("div");
    text.className = "lt-text";
    const words = document.createElement("span");
    words.className = "lt-words";
    text.append(words);
    element.append(who, source, text);
    fill(element, row, true, replacing);
    return element;
  }
  function place(element, last) {
    // in segment order: nearly always at the end
    let after = ui.lines.lastElementChild;
    while (after && Number(after.dataset.last) > last) after = after.previousElementSibling;
    if (after) after.after(element);
    else ui.lines.prepend(element);
  }
  function applyLines(args) {
    const full = Boolean(args.full);
    if (full) {
      ui.lines.replaceChildren();
      page.byKey.clear();
    } else if (args.epoch !== page.epoch || args.base !== page.version) {
      if (args.epoch === page.epoch && args.version === page.version) return true; // had it already
      askForEverything();
      return false;
    }
    const removed = !full && Array.isArray(args.remove) && args.remove.length > 0;
    for (const key of Array.isArray(args.remove) ? args.remove : []) {
      const element = page.byKey.get(String(key));
      if (element) element.remove();
      page.byKey.delete(String(key));
    }
    for (const row of Array.isArray(args.upsert) ? args.upsert : []) {
      if (!Array.isArray(row) || row.length < 6) continue;
      const key = String(row[0]);
      let element = page.byKey.get(key);
      if (element) {
        fill(element, row, false);
      } else {
        element = makeLine(row, removed);
        page.byKey.set(key, element);
      }
      if (!element.isConnected || full) place(element, Number(row[2]));
      else if (Number(element.dataset.last) !== Number(row[2])) place(element, Number(row[2]));
    }
    page.epoch = args.epoch;
    page.version = args.version;
    page.asked = 0;
    ui.root.dataset.version = String(args.version); // (what a test waits for)
    return true;
  }
  function showObsLines() {
    // OBS: only the newest few, the newest largest
    for (const element of ui.lines.querySelectorAll(".lt-shown, .lt-newest")) element.classList.remove("lt-shown", "lt-newest");
    const n = Math.max(1, Number(page.args.obs_lines) || 4);
    let element = ui.lines.lastElementChild;
    if (element) element.classList.add("lt-newest");
    for (let i = 0; element && i < n; i++, element = element.previousElementSibling) element.classList.add("lt-shown");
  }
  function explain(open) {
    ui.legend.setAttribute("aria-expanded", open ? "true" : "false");
    ui.explain.hidden = !open || ui.legend.hidden;
    afterLayout();
  }
  ui.legend.addEventListener("click", () => explain(ui.legend.getAttribute("aria-expanded") !== "true"));
  function showLegend() {
    // the marks in use, named; a tap explains them
    const used = Object.keys(page.marks).filter((mark) => ui.lines.querySelector(`.lt-line[data-mark="${CSS.escape(mark)}"]`));
    ui.legend.hidden = used.length === 0 || page.obs;
    const names = used.map((mark) => `${SYMBOLS[mark] || "•"} ${(page.marks[mark] || [mark])[0]}`);
    ui.legend.textContent = used.length ? `${names.join("   ")}  ·  what the marks mean` : "";
    ui.explain.replaceChildren(
      ...used.map((mark) => {
        const [name, explained] = page.marks[mark] || [mark, ""];
        const item = document.createElement("div");
        item.textContent = `${SYMBOLS[mark] || "•"} ${name}: ${explained}`;
        return item;
      }),
    );
    explain(ui.legend.getAttribute("aria-expanded") === "true");
  }

  // --- one render -------------------------------------------------------------------------
  function render(args) {
    const first = page.epoch === null;
    page.args = args;
    page.marks = args.marks && typeof args.marks === "object" ? args.marks : {};
    const obs = args.style === "transparent";
    if (obs !== page.obs || first) {
      page.obs = obs;
      ui.root.classList.toggle("lt-obs", obs);
      follow(true);
    }
    if (first) {
      page.both = stored(STORE.both) === "1";
      page.names = stored(STORE.names) !== "0";
      applySize(chooseSize());
    }
    ui.status.textContent = String(args.status || "");
    ui.status.dataset.state = String(args.state || "");
    applyLines(args);
    const dropped = Number(args.dropped) || 0;
    ui.dropped.hidden = dropped <= 0;
    ui.dropped.textContent = dropped > 0 ? `${dropped} earlier lines are no longer kept on this page.` : "";
    const message = String(args.message || "");
    ui.message.textContent = message;
    ui.message.hidden = !message || ui.lines.childElementCount > 0 || Boolean(args.interim);
    ui.interim.textContent = String(args.interim || "");
    ui.interimSource.textContent = String(args.interim_source || "");
    if (page.obs) showObsLines();
    showBoth();
    showNames();
    showNotes();
    showLegend();
    afterLayout();
  }

  // ready; said again until the first render comes (in case the page was not listening yet)
  send("streamlit:componentReady", { apiVersion: 1 });
  const again = window.setInterval(() => {
    if (page.heard) window.clearInterval(again);
    else send("streamlit:componentReady", { apiVersion: 1 });
  }, 1000);
  const height = () => send("streamlit:setFrameHeight", { height: window.innerHeight });
  window.addEventListener("resize", height);
  height();
})();
