// The call page: the browser as a phone on the node network. The recorder's /api/call socket
// makes this page a node named after the user (and lets it answer the "web" doorbell); the page
// does the media itself with WebCodecs: the microphone → Opus (20 ms frames) and the camera →
// H.264 (Annex B, realtime) go out as "XM" media packets; the parties' packets come in, their
// Opus is decoded and played through a small jitter buffer, and their H.264 is decoded onto
// a canvas per party (a lost picture asks its sender for a keyframe, as the nodes do).
// Wire format: docs/PROTOCOL.md, "Calls"; the socket's messages: Sources/XTCall/Web/WebCallBridge.swift.
"use strict";

const KIND_AUDIO = 1, KIND_VIDEO = 2, KIND_KEYFRAME_REQUEST = 3;
const FLAG_KEYFRAME = 2;

/** The figures a test (or a curious user) can read: window.callStats. */
const stats = window.callStats = {
  ready: false, state: "idle", parties: [], path: {}, audioSent: 0, videoSent: 0, keyframesSent: 0,
  audioReceived: 0, audioPlayed: 0, videoReceived: 0, videoDecoded: 0, videoDecodedBy: {}, keyframeRequests: 0, errors: [],
};

let socket, media = null, ringing = null, wantVideo = true;
/** Glass-to-glass (ms) of the pictures drawn, where the sender draws its capture time
 *  (synthetic cameras): window.callLatency.summary(). */
const latencies = window.callLatency = new LatencySamples();
const scratch = document.createElement("canvas");

function setStatus(text) { document.getElementById("status").textContent = text; }
function showError(text) { document.getElementById("error").textContent = text; stats.errors.push(text); }

/** Wall-clock microseconds now. */
function wallMicros() { return Math.round((performance.timeOrigin + performance.now()) * 1000); }

/** A chunk's capture time on the wall clock: its timestamp (µs on the capture clock) moved by
 *  the offset the stream's first chunk showed, so the spacing is the camera's or microphone's. */
function captureTime(kind, timestamp) {
  media.origin ??= {};
  media.origin[kind] ??= wallMicros() - timestamp;
  return media.origin[kind] + timestamp;
}

/** An "XM" packet: 25-byte header (PROTOCOL.md) and the payload. */
function packet(kind, flags, sequence, payload, micros = wallMicros()) {
  const bytes = new Uint8Array(25 + payload.byteLength);
  const view = new DataView(bytes.buffer);
  bytes.set([0x58, 0x4d, 1, kind, flags]);
  view.setBigUint64(5, 1n);  // the call id: the recorder sets the call's
  view.setUint32(13, sequence >>> 0);
  view.setBigUint64(17, BigInt(micros));
  bytes.set(new Uint8Array(payload), 25);
  return bytes;
}

function parse(buffer) {
  const bytes = new Uint8Array(buffer);
  const nameLength = bytes[0];
  const party = new TextDecoder().decode(bytes.subarray(1, 1 + nameLength));
  const body = bytes.subarray(1 + nameLength);
  if (body.length < 25 || body[0] !== 0x58 || body[1] !== 0x4d) return null;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { party, kind: body[3], flags: body[4], sequence: view.getUint32(13), payload: body.subarray(25) };
}

function send(bytes) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(bytes); }

// --- Sending: microphone and camera ---------------------------------------------------------

async function startSending(video) {
  if (media) return;
  media = { sequence: 0, videoSequence: 0, keyframe: true, closed: false };
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 }, video: video ? { width: 640, height: 360, frameRate: 15 } : false });
  media.stream = stream;
  document.getElementById("local").srcObject = stream;
  const [audioTrack] = stream.getAudioTracks();
  if (audioTrack) {
    const encoder = new AudioEncoder({
      output: (chunk) => {
        const data = new Uint8Array(chunk.byteLength);
        chunk.copyTo(data);
        send(packet(KIND_AUDIO, 0, media.sequence++, data, captureTime("audio", chunk.timestamp)));
        stats.audioSent++;
      },
      error: (e) => showError(`microphone encoder: ${e.message}`),
    });
    const settings = audioTrack.getSettings();
    encoder.configure({ codec: "opus", sampleRate: settings.sampleRate || 48000, numberOfChannels: 1, bitrate: 32000, opus: { frameDuration: 20000 } });
    media.audioEncoder = encoder;
    pump(new MediaStreamTrackProcessor({ track: audioTrack }).readable, (data) => {
      if (encoder.state === "configured") encoder.encode(data);
      data.close();
    });
  }
  const [videoTrack] = stream.getVideoTracks();
  if (videoTrack) {
    const encoder = new VideoEncoder({
      output: (chunk) => {
        const data = new Uint8Array(chunk.byteLength);
        chunk.copyTo(data);
        const key = chunk.type === "key";
        send(packet(KIND_VIDEO, key ? FLAG_KEYFRAME : 0, media.videoSequence++, data, captureTime("video", chunk.timestamp)));
        stats.videoSent++;
        if (key) stats.keyframesSent++;
      },
      error: (e) => showError(`camera encoder: ${e.message}`),
    });
    encoder.configure({ codec: "avc1.42e01f", width: 640, height: 360, bitrate: 600000, framerate: 15, latencyMode: "realtime", avc: { format: "annexb" } });
    media.videoEncoder = encoder;
    pump(new MediaStreamTrackProcessor({ track: videoTrack }).readable, (frame) => {
      if (encoder.state === "configured" && encoder.encodeQueueSize < 3) {
        encoder.encode(frame, { keyFrame: media.keyframe });
        media.keyframe = false;
      }
      frame.close();
    });
  }
}

async function pump(readable, each) {
  const reader = readable.getReader();
  while (media && !media.closed) {
    const { value, done } = await reader.read();
    if (done) break;
    each(value);
  }
  reader.cancel().catch(() => {});
}

function stopSending() {
  if (!media) return;
  media.closed = true;
  for (const track of media.stream ? media.stream.getTracks() : []) track.stop();
  for (const codec of [media.audioEncoder, media.videoEncoder]) if (codec && codec.state !== "closed") codec.close();
  document.getElementById("local").srcObject = null;
  media = null;
}

// --- Receiving: each party's sound and picture ------------------------------------------------

const parties = new Map();
let audioContext = null, player = null;

/** Plays what the decoders give, mixed, with about 60 ms in hand (a late frame plays silence). */
async function ensurePlayer() {
  if (player) return player;
  audioContext = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
  const source = `
    class Player extends AudioWorkletProcessor {
      constructor() { super(); this.queue = []; this.offset = 0; this.port.onmessage = (e) => {
        this.queue.push(e.data); let held = 0; for (const b of this.queue) held += b.length;
        while (held > 0.3 * sampleRate && this.queue.length > 1) held -= this.queue.shift().length; }; }
      process(_, outputs) {
        const out = outputs[0][0];
        for (let i = 0; i < out.length; i++) {
          if (!this.queue.length) { out[i] = 0; continue; }
          const block = this.queue[0]; out[i] = block[this.offset++];
          if (this.offset >= block.length) { this.queue.shift(); this.offset = 0; }
        }
        return true;
      }
    }
    registerProcessor("xt-player", Player);`;
  await audioContext.audioWorklet.addModule(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  player = new AudioWorkletNode(audioContext, "xt-player");
  player.connect(audioContext.destination);
  await audioContext.resume().catch(() => {});
  return player;
}

function party(name) {
  let state = parties.get(name);
  if (state) return state;
  state = { name, expected: null, waitingForKeyframe: true, lastRequest: 0 };
  state.audio = new AudioDecoder({
    output: (data) => {
      const samples = new Float32Array(data.numberOfFrames);
      data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
      data.close();
      stats.audioPlayed++;
      if (player) player.port.postMessage(samples, [samples.buffer]);
    },
    error: (e) => showError(`sound from ${name}: ${e.message}`),
  });
  state.audio.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
  // Each party has its own picture (a group call shows everyone).
  const remotes = document.getElementById("remotes");
  remotes.querySelector(".waiting")?.remove();
  const figure = document.createElement("figure");
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 360;
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  figure.append(canvas, caption);
  remotes.append(figure);
  state.figure = figure;
  state.video = new VideoDecoder({
    output: (frame) => {
      if (canvas.width !== frame.displayWidth) { canvas.width = frame.displayWidth; canvas.height = frame.displayHeight; }
      canvas.getContext("2d").drawImage(frame, 0, 0, canvas.width, canvas.height);
      // Glass to glass: a synthetic camera's capture-time bar code, against the moment the
      // canvas reaches the screen (the next animation frame after the draw).
      const captured = readCaptureBarcode(frame, frame.displayWidth, frame.displayHeight, scratch);
      frame.close();
      if (captured !== null) requestAnimationFrame(() => latencies.add(captured, performance.timeOrigin + performance.now()));
      stats.videoDecoded++;
      stats.videoDecodedBy[name] = (stats.videoDecodedBy[name] || 0) + 1;
    },
    error: (e) => { showError(`picture from ${name}: ${e.message}`); state.waitingForKeyframe = true; },
  });
  state.video.configure({ codec: "avc1.42e01f", optimizeForLatency: true });
  parties.set(name, state);
  return state;
}

function requestKeyframe(state) {
  const now = performance.now();
  if (now - state.lastRequest < 300) return;
  state.lastRequest = now;
  stats.keyframeRequests++;
  send(packet(KIND_KEYFRAME_REQUEST, 0, 0, new TextEncoder().encode(state.name)));
}

function receive(buffer) {
  const p = parse(buffer);
  if (!p) return;
  if (p.kind === KIND_KEYFRAME_REQUEST) { if (media) media.keyframe = true; return; }
  const state = party(p.party);
  const timestamp = p.sequence * 20000;
  if (p.kind === KIND_AUDIO) {
    stats.audioReceived++;
    if (p.payload.length <= 2) return;  // a DTX keep-alive: silence
    if (state.audio.state === "configured") state.audio.decode(new EncodedAudioChunk({ type: "key", timestamp, data: p.payload }));
    return;
  }
  if (p.kind !== KIND_VIDEO) return;
  stats.videoReceived++;
  const key = (p.flags & FLAG_KEYFRAME) !== 0;
  if (state.expected !== null && p.sequence !== state.expected) state.waitingForKeyframe = true;  // a picture was lost
  state.expected = (p.sequence + 1) >>> 0;
  if (key) state.waitingForKeyframe = false;
  if (state.waitingForKeyframe) { requestKeyframe(state); return; }
  if (state.video.state === "configured") state.video.decode(new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: p.sequence * 66666, data: p.payload }));
}

function forgetParties(keep) {
  for (const [name, state] of parties) {
    if (keep.includes(name)) continue;
    for (const codec of [state.audio, state.video]) if (codec.state !== "closed") codec.close();
    state.figure.remove();
    parties.delete(name);
  }
}

// --- Signalling -------------------------------------------------------------------------------

function control(message) {
  switch (message.type) {
    case "ready":
      stats.ready = true;
      setStatus(`ready: you are ${message.name} on the network (and the doorbell, web)`);
      break;
    case "incoming":
      ringing = message;
      stats.state = "ringing";
      document.getElementById("caller").textContent = message.from + (message.via === "web" ? " (doorbell)" : "");
      document.getElementById("ring-media").textContent = `(${message.media})`;
      document.getElementById("ringing").hidden = false;
      break;
    case "stopRinging":
      if (ringing && (!message.via || message.via === ringing.via)) { ringing = null; document.getElementById("ringing").hidden = true; }
      break;
    case "parties":
      stats.parties = message.parties;
      forgetParties(message.parties);
      if (message.parties.length) {
        stats.state = "active";
        setStatus(`in a call with ${message.parties.join(", ")}`);
        document.getElementById("hangup").disabled = false;
        ensurePlayer().then(() => startSending(wantVideo)).catch((e) => showError(`cannot use the microphone or camera: ${e.message}`));
      }
      break;
    case "path":
      stats.path[message.party] = message.path;
      setStatus(`in a call with ${stats.parties.map((p) => `${p}${stats.path[p] ? ` (${stats.path[p]})` : ""}`).join(", ")}`);
      break;
    case "ended":
      stats.state = "ended";
      stats.lastEnd = message.reason;
      setStatus(`call ended: ${message.reason}`);
      document.getElementById("ringing").hidden = true;
      document.getElementById("hangup").disabled = true;
      ringing = null;
      stopSending();
      forgetParties([]);
      break;
    case "error":
      showError(message.message);
      break;
  }
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/call`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    if (typeof event.data === "string") control(JSON.parse(event.data));
    else receive(event.data);
  };
  socket.onclose = () => { stats.ready = false; setStatus("disconnected; reconnecting…"); stopSending(); setTimeout(connect, 2000); };
}

document.getElementById("dial").onsubmit = (event) => {
  event.preventDefault();
  const names = document.getElementById("names").value.split(/[\s,]+/).filter(Boolean);
  if (!names.length) return;
  wantVideo = document.getElementById("video").checked;
  stats.state = "calling";
  setStatus(`calling ${names.join(", ")}…`);
  socket.send(JSON.stringify({ type: "call", names, video: wantVideo }));
};
document.getElementById("answer").onclick = () => {
  wantVideo = document.getElementById("answer-video").checked;
  document.getElementById("ringing").hidden = true;
  ensurePlayer().catch(() => {});
  socket.send(JSON.stringify({ type: "answer" }));
};
document.getElementById("decline").onclick = () => { document.getElementById("ringing").hidden = true; socket.send(JSON.stringify({ type: "decline" })); };
document.getElementById("hangup").onclick = () => socket.send(JSON.stringify({ type: "hangup" }));

page("call.html").then(() => {
  if (!("AudioEncoder" in window) || !("VideoDecoder" in window) || !("MediaStreamTrackProcessor" in window)) {
    showError("this browser lacks WebCodecs (AudioEncoder, VideoDecoder, MediaStreamTrackProcessor): use a current Chromium, Chrome or Edge");
  }
  connect();
}).catch(() => {});
