// The page to speak from: the microphone (worklet.js: 16 kHz, 16-bit) over a WebSocket to the
// gateway, the server's events back, shown live. While the socket is away the audio waits
// here (up to 30 s, the oldest dropped past that, as `livetranslate stream` does) and goes
// out after; audio the gateway had not acknowledged is sent again. Text is set with
// textContent only.
"use strict";
(() => {
  const RATE = 16000;
  const MAX_BUFFER = 30 * RATE; // samples held while disconnected
  const MAX_BUFFERED_BYTES = 256 * 1024; // what may wait in the socket itself
  const FINAL_CODES = new Set([1003, 1008, 1009, 4401, 4403]); // refusals: reconnecting changes nothing
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  const el = {
    form: $("setup"), session: $("session"), language: $("language"), target: $("target"), key: $("key"),
    start: $("start"), mute: $("mute"), meter: $("meter"), level: $("level"), state: $("state"),
    link: $("share-link"), copy: $("copy"), note: $("share-note"), status: $("status"), lines: $("lines"),
    interim: $("interim"),
  };
  const S = {
    running: false, muted: false, stopping: false, ws: null, ready: false, session: params.get("session") || "",
    pending: [], pendingSamples: 0, unacked: [], sent: 0, base: 0, retries: 0, dropped: 0,
    firstAudioAt: null, finals: [], lines: new Map(), ctx: null, stream: null, lastFinal: -1, lastTranslated: -1,
  };
  window.__speak = S; // tests and the bench read it

  el.session.value = S.session;
  if (token) {
    el.session.readOnly = true;
    $("key-row").hidden = true;
  }
  if (hash.get("key")) {
    el.key.value = hash.get("key");
    history.replaceState(null, "", location.pathname + location.search); // the key leaves the address bar
  }

  function say(text) { el.status.textContent = text; }
  function state(text) { el.state.textContent = text; }

  async function languages() {
    let names = { de: "German", en: "English" };
    try {
      const answer = await fetch("/speak/languages.json");
      if (answer.ok) names = await answer.json();
    } catch (e) { /* the two above */ }
    const fill = (select, chosen, auto) => {
      if (auto) select.append(new Option("detect", "auto"));
      for (const [code, name] of Object.entries(names)) select.append(new Option(`${name} (${code})`, code));
      select.value = chosen in names || (auto && chosen === "auto") ? chosen : select.options[auto ? 1 : 0].value;
    };
    fill(el.language, params.get("lang") || "de", true);
    fill(el.target, params.get("target") || "en", false);
  }

  // --- the lines ---------------------------------------------------------------------------
  function line(seg) {
    let entry = S.lines.get(seg);
    if (entry) return entry;
    const row = document.createElement("div");
    row.className = "line";
    row.dataset.segment = String(seg);
    const src = document.createElement("p");
    src.className = "src";
    const tr = document.createElement("p");
    tr.className = "tr";
    row.append(src, tr);
    let next = null; // in segment order: an old stream's last line may come after newer ones
    for (const [other, e] of S.lines) if (other > seg && (next === null || other < next.seg)) next = { seg: other, row: e.row };
    el.lines.insertBefore(row, next ? next.row : el.interim);
    entry = { row, src, tr };
    S.lines.set(seg, entry);
    return entry;
  }

  function show(ev) {
    const target = el.target.value;
    const interimSrc = el.interim.querySelector(".src"), interimTr = el.interim.querySelector(".tr");
    switch (ev.kind) {
      // interim text of a segment already final is late: left out
      case "partial": if (ev.segment_id > S.lastFinal) interimSrc.textContent = ev.text; break;
      case "partial_translation":
        if (ev.language === target && ev.segment_id > S.lastTranslated) interimTr.textContent = ev.text;
        break;
      case "transcript":
        line(ev.segment_id).src.textContent = ev.text;
        S.lastFinal = Math.max(S.lastFinal, ev.segment_id);
        interimSrc.textContent = "";
        S.finals.push({ segment_id: ev.segment_id, end_s: ev.end_s, at: Date.now(), text: ev.text });
        break;
      case "translation":
        if (ev.language !== target) break;
        {
          const tr = line(ev.segment_id).tr;
          S.lastTranslated = Math.max(S.lastTranslated, ev.segment_id);
          interimTr.textContent = "";
          tr.textContent = ev.error ? `(translation failed: ${ev.error})` : ev.text;
          tr.classList.toggle("failed", Boolean(ev.error));
        }
        break;
      case "correction":
        if (ev.language === target) line(ev.segment_id).tr.textContent = ev.text;
        else line(ev.segment_id).src.textContent = ev.text;
        break;
      case "error": say(ev.error || ev.text); break;
      case "end":
        if (ev.error) say(ev.error);
        interimSrc.textContent = "";
        interimTr.textContent = "";
        break;
      default: break;
    }
    if (ev.kind !== "partial" && ev.kind !== "partial_translation") window.scrollTo(0, document.body.scrollHeight);
  }

  // --- the socket --------------------------------------------------------------------------
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/speak/socket`);
    ws.binaryType = "arraybuffer";
    S.ws = ws;
    S.ready = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "start", session: S.session || null, language: el.language.value, target: el.target.value,
        key: token ? null : el.key.value || null, token: token || null, time_base_s: S.base,
      }));
    };
    ws.onmessage = (msg) => {
      let m;
      try { m = JSON.parse(msg.data); } catch (e) { return; }
      if (m.type === "ready") {
        S.ready = true;
        S.retries = 0;
        S.session = m.session;
        el.session.value = m.session;
        state(S.stopping ? "finishing" : "live");
        showLink(m.share_link, m.note);
        pump();
      } else if (m.type === "ack") {
        while (S.unacked.length && S.unacked[0].end <= m.samples) S.unacked.shift();
        pump();
      } else if (m.type === "event") show(m);
      else if (m.type === "status") { if (!m.text.startsWith("connected to")) say(m.text); }
      else if (m.type === "end") {
        S.ended = true;
        if (m.error) say(`the stream failed: ${m.error}`);
      }
    };
    ws.onclose = (e) => closed(ws, e);
  }

  function closed(ws, e) {
    if (ws !== S.ws) return;
    const had = S.sent;
    S.ws = null;
    S.ready = false;
    // what the gateway did not acknowledge goes again, first; the session's clock goes on
    const acked = had - S.unacked.reduce((n, u) => n + u.pcm.length, 0);
    S.base += acked / RATE;
    S.pending = S.unacked.map((u) => u.pcm).concat(S.pending);
    S.pendingSamples = S.pending.reduce((n, p) => n + p.length, 0);
    S.unacked = [];
    S.sent = 0;
    if (S.ended || FINAL_CODES.has(e.code) || !S.running) {
      if (e.reason && e.code !== 1000) say(`closed: ${e.reason}`);
      finish();
      return;
    }
    const wait = Math.min(8000, 500 * 2 ** S.retries++);
    state(`reconnecting in ${(wait / 1000).toFixed(1)} s; audio is buffered`);
    setTimeout(() => { if (S.running) connect(); }, wait);
  }

  function pump() {
    const ws = S.ws;
    if (!ws || !S.ready || ws.readyState !== WebSocket.OPEN) return;
    while (S.pending.length && ws.bufferedAmount < MAX_BUFFERED_BYTES) {
      const pcm = S.pending.shift();
      S.pendingSamples -= pcm.length;
      ws.send(pcm.buffer);
      S.sent += pcm.length;
      S.unacked.push({ pcm, end: S.sent });
    }
    if (S.stopping && !S.pending.length && !S.stopSent) {
      S.stopSent = true;
      ws.send(JSON.stringify({ type: "stop" }));
    }
  }

  function audio(pcm, rms) {
    if (S.stopping) return;
    if (S.firstAudioAt === null) S.firstAudioAt = Date.now();
    if (S.muted) pcm.fill(0); // silence keeps the stream open
    const db = S.muted ? -60 : Math.max(-60, 20 * Math.log10(Math.max(rms, 1e-6)));
    el.level.style.width = `${((db + 60) / 60) * 100}%`;
    el.meter.setAttribute("aria-valuenow", db.toFixed(0));
    S.pending.push(pcm);
    S.pendingSamples += pcm.length;
    while (S.pendingSamples > MAX_BUFFER) {
      const old = S.pending.shift();
      S.pendingSamples -= old.length;
      S.dropped += old.length / RATE;
      say(`buffer full: ${S.dropped.toFixed(1)} s of audio dropped so far`);
    }
    pump();
  }

  function showLink(link, note) {
    el.link.textContent = link || "";
    if (link) el.link.href = link; else el.link.removeAttribute("href");
    el.copy.hidden = !link;
    el.note.textContent = note ? ` (${note})` : "";
  }

  // --- start, mute, stop -------------------------------------------------------------------
  async function start() {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      say("the microphone needs a secure page: https://, or http://localhost / 127.0.0.1");
      return;
    }
    el.start.disabled = true;
    try {
      S.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      S.ctx = new AudioContext();
      await S.ctx.audioWorklet.addModule("/speak/worklet.js");
      const node = new AudioWorkletNode(S.ctx, "pcm16k");
      node.port.onmessage = (m) => audio(m.data.pcm, m.data.rms);
      const mute = S.ctx.createGain();
      mute.gain.value = 0; // pulled by the destination, heard by nobody
      S.ctx.createMediaStreamSource(S.stream).connect(node);
      node.connect(mute).connect(S.ctx.destination);
    } catch (e) {
      say(`no microphone: ${e.message || e}`);
      el.start.disabled = false;
      return;
    }
    Object.assign(S, { running: true, stopping: false, stopSent: false, ended: false, base: 0, sent: 0 });
    S.session = el.session.value.trim();
    for (const input of [el.session, el.language, el.target, el.key]) input.disabled = true;
    el.start.textContent = "Stop";
    el.start.disabled = false;
    el.mute.disabled = false;
    say("");
    state("connecting");
    connect();
  }

  function stop() {
    S.stopping = true;
    el.start.disabled = true;
    state("finishing the last sentence");
    if (S.stream) S.stream.getTracks().forEach((t) => t.stop());
    if (S.ws && S.ready) pump();
    else if (!S.ws) { S.running = false; finish(); }
  }

  function finish() {
    S.running = false;
    if (S.stream) S.stream.getTracks().forEach((t) => t.stop());
    if (S.ctx) S.ctx.close().catch(() => {});
    S.ctx = S.stream = null;
    state(S.ended ? "ended" : "stopped");
    el.start.textContent = "Start";
    el.start.disabled = false;
    el.mute.disabled = true;
    for (const input of [el.language, el.target, el.key]) input.disabled = false;
    el.session.disabled = false;
    el.level.style.width = "0";
  }

  el.form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (S.running) stop(); else start();
  });
  el.mute.addEventListener("click", () => {
    S.muted = !S.muted;
    el.mute.setAttribute("aria-pressed", String(S.muted));
    el.mute.textContent = S.muted ? "Unmute" : "Mute";
    el.meter.classList.toggle("muted", S.muted);
  });
  el.copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(el.link.textContent));
  // a test's way to cut the connection as a network drop would
  S.drop = () => { if (S.ws) S.ws.close(4000, "dropped"); };
  setInterval(pump, 100);
  languages();
})();
