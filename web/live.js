// The live view: a camera's fragmented MP4 over a WebSocket into Media Source Extensions.
// The recorder sends the stream's description (JSON), the MP4 header, then one fragment per
// video frame as it arrives; when the camera's stream changes shape, a new description and
// header follow on the same socket and the same source buffer. The player stays close to the newest frame: it speeds up a little
// when it falls behind and jumps when far behind. It reconnects by itself when the stream ends.
//
// The page picks the best path the browser has: MediaSource; else ManagedMediaSource (iPhone
// Safari since iOS 17.1), fed the same way; else the browser's own HLS player on the recorder's
// low-latency HLS (older iPhones). With `transport: "llhls"` the source buffer is fed from the
// LL-HLS parts instead of the WebSocket (to compare the two).
//
// Glass-to-glass latency: synthetic cameras draw their capture time (low 40 bits of the
// millisecond clock) as a bar code along the bottom edge; for each frame the page shows, the
// code is read off the picture and compared with the page's clock at the moment of display.
"use strict";

class LivePlayer {
  /** Seconds behind the newest frame before the player speeds up, and before it jumps. */
  static catchUpBehind = 0.1;
  static jumpBehind = 0.6;

  constructor(video, camera, { audio = false, onStatus = () => {}, transport = "ws" } = {}) {
    this.video = video;
    this.camera = camera;
    this.audio = audio;
    this.transport = transport;
    this.onStatus = onStatus;
    this.queue = [];
    this.stopped = false;
    this.samples = new LatencySamples();  // glass-to-glass (ms), from the bar code
    this.behind = null;        // newest buffered frame − playhead (s)
    this.info = null;
    this.canvas = document.createElement("canvas");
    this.watchFrames();
  }

  /** How this browser plays live video: "mse", "mms" (ManagedMediaSource), "hls" (its own player) or null. */
  static path() {
    if (window.MediaSource) return "mse";
    if (window.ManagedMediaSource) return "mms";
    if (document.createElement("video").canPlayType("application/vnd.apple.mpegurl")) return "hls";
    return null;
  }

  /** The Media Source class in use. */
  static sourceClass() { return window.MediaSource || window.ManagedMediaSource; }

  /** The folder of this camera's live HLS (with the session cookie). */
  hlsBase() { return `/api/hls/session/${this.audio ? "live" : "live-video"}/${encodeURIComponent(this.camera)}/`; }

  start() {
    this.stopped = false;
    this.path = LivePlayer.path();
    if (!this.path) { this.onStatus("this browser plays neither Media Source Extensions nor HLS: try another browser", true); return; }
    if (this.path === "hls") { this.startNativeHLS(); return; }
    if (this.transport === "llhls") { this.startParts(); return; }
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/cameras/${encodeURIComponent(this.camera)}/live${this.audio ? "?audio=1" : ""}`;
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.queue = [];
    this.sourceBuffer = null;
    this.mediaSource = null;
    socket.onmessage = (message) => {
      if (typeof message.data === "string") {
        const data = JSON.parse(message.data);
        if (data.error) { this.onStatus(data.error, true); return; }
        // A second description: the camera changed shape. The same source buffer takes the new
        // header that follows (after a changeType when the codec string changed).
        if (this.mediaSource) this.change(data); else this.setUp(data);
      } else {
        this.queue.push(new Uint8Array(message.data));
        this.pump();
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.stopped) return;
      this.onStatus("reconnecting…");
      setTimeout(() => { if (!this.stopped && this.socket === socket) this.start(); }, 1000);
    };
  }

  stop() {
    this.stopped = true;
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  setAudio(on) {
    this.audio = on;
    this.video.muted = !on;
    this.stop();
    this.start();
  }

  /** The browser's own HLS player (no Media Source at all): it handles the playlist itself. */
  startNativeHLS() {
    const video = this.video;
    const stream = { close: () => { video.removeAttribute("src"); video.load(); } };
    this.socket = stream;
    video.onerror = () => {
      if (this.stopped || this.socket !== stream) return;
      this.onStatus("reconnecting…");
      setTimeout(() => { if (!this.stopped && this.socket === stream) this.start(); }, 2000);
    };
    video.onloadedmetadata = () => this.onStatus(`${video.videoWidth}×${video.videoHeight} (HLS)`);
    video.src = this.hlsBase() + "index.m3u8";
    video.play().catch(() => {});
  }

  /** Feeds the source buffer from the LL-HLS parts: from the newest independent part on, each
   *  next part asked for before it exists (the recorder answers when it is complete). */
  async startParts() {
    const stream = { stopped: false, close() { this.stopped = true; } };
    this.socket = stream;
    this.queue = [];
    this.sourceBuffer = null;
    this.mediaSource = null;
    const base = this.hlsBase();
    const get = async (path) => {
      const response = await fetch(base + path, { cache: "no-store" });
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      return response;
    };
    try {
      let playlist = parsePlaylist(await (await get("index.m3u8")).text());
      this.setUp(await (await get("info.json")).json());
      let start = playlist.parts.filter((part) => part.independent).pop();
      if (!start) throw new Error("no independent part yet");
      let map = playlist.maps[start.msn];
      this.queue.push(new Uint8Array(await (await get(map)).arrayBuffer()));
      let msn = start.msn, part = start.part;
      while (!stream.stopped && this.socket === stream) {
        const response = await get(`part-${msn}.${part}.m4s`);
        if (response) {
          this.queue.push(new Uint8Array(await response.arrayBuffer()));
          this.pump();
          part += 1;
          continue;
        }
        // The segment ended: the next one's first part (after a new header if the stream changed).
        playlist = parsePlaylist(await (await get(`index.m3u8?_HLS_msn=${msn + 1}&_HLS_part=0`)).text());
        msn += 1;
        part = 0;
        const next = playlist.maps[msn];
        if (next && next !== map) {
          map = next;
          this.queue.push(new Uint8Array(await (await get(map)).arrayBuffer()));
        }
      }
    } catch (error) {
      if (stream.stopped || this.socket !== stream) return;
      this.onStatus(`reconnecting… (${error.message})`);
      setTimeout(() => { if (!this.stopped && this.socket === stream) this.start(); }, 1000);
    }
  }

  setUp(info) {
    this.info = info;
    const Source = LivePlayer.sourceClass();
    if (!Source || !Source.isTypeSupported(info.mime)) {
      this.onStatus(`this browser cannot play ${info.mime}`, true);
      return;
    }
    const source = new Source();
    this.mediaSource = source;
    // ManagedMediaSource plays only with AirPlay off (or an AirPlay alternative source).
    if (window.ManagedMediaSource && source instanceof window.ManagedMediaSource) this.video.disableRemotePlayback = true;
    this.video.src = URL.createObjectURL(source);
    source.addEventListener("sourceopen", () => {
      if (this.mediaSource !== source) return;
      this.sourceBuffer = source.addSourceBuffer(info.mime);
      this.sourceBuffer.addEventListener("updateend", () => { this.keepUp(); this.pump(); });
      this.pump();
    }, { once: true });
    this.onStatus(`${info.width}×${info.height}${info.audio ? " with sound" : ""}`);
  }

  /** The camera's stream changed (size, profile): re-initialises the decoder in place. */
  change(info) {
    const previous = this.info;
    this.info = info;
    this.changes = (this.changes || 0) + 1;
    if (previous && previous.mime !== info.mime) this.queue.push({ mime: info.mime });
    this.onStatus(`${info.width}×${info.height}${info.audio ? " with sound" : ""}`);
    this.pump();
  }

  pump() {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || this.queue.length === 0) return;
    // A codec change first switches the buffer's type (MSE changeType), then bytes follow.
    while (this.queue.length > 0 && !(this.queue[0] instanceof Uint8Array)) {
      const { mime } = this.queue.shift();
      if (typeof buffer.changeType === "function" && LivePlayer.sourceClass().isTypeSupported(mime)) buffer.changeType(mime);
    }
    const end = this.queue.findIndex((part) => !(part instanceof Uint8Array));
    const parts = end < 0 ? this.queue : this.queue.slice(0, end);
    if (parts.length === 0) return;
    this.queue = end < 0 ? [] : this.queue.slice(end);
    const total = parts.reduce((n, part) => n + part.length, 0);
    const joined = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) { joined.set(part, offset); offset += part.length; }
    try {
      buffer.appendBuffer(joined);
    } catch (error) {
      this.onStatus(`playback failed (${error.name}): reconnecting`, true);
      this.stop();
      setTimeout(() => this.start(), 1000);
    }
  }

  /** Stays near the newest frame, and keeps only the last half minute buffered. */
  keepUp() {
    const video = this.video, buffered = video.buffered;
    if (buffered.length === 0) return;
    const end = buffered.end(buffered.length - 1);
    const start = buffered.start(buffered.length - 1);
    if (video.currentTime < start || end - video.currentTime > LivePlayer.jumpBehind) video.currentTime = Math.max(start, end - 0.02);
    const behind = end - video.currentTime;
    this.behind = behind;
    this.behindSamples = (this.behindSamples || []).concat([behind]).slice(-600);
    video.playbackRate = behind > LivePlayer.catchUpBehind ? 1.1 : 1.0;
    if (video.paused) video.play().catch(() => {});
    if (!this.sourceBuffer.updating && video.currentTime - buffered.start(0) > 40) {
      this.sourceBuffer.remove(0, video.currentTime - 20);
    }
  }

  /** Reads the capture-time bar code of each frame shown. */
  watchFrames() {
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = (now, metadata) => {
      const shownAt = Date.now() + (metadata.expectedDisplayTime - performance.now());
      this.samples.add(readCaptureBarcode(this.video, this.video.videoWidth, this.video.videoHeight, this.canvas), shownAt);
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  /** Glass-to-glass percentiles so far. */
  latency() { return this.samples.summary(); }

}

/** The parts, maps and segments of an LL-HLS media playlist: parts as {msn, part, independent},
 *  maps by media sequence number (the EXT-X-MAP URI in force for that segment). */
function parsePlaylist(text) {
  const result = { parts: [], maps: {}, segments: [] };
  let map = null;
  let sequence = 0;
  let msn = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) sequence = Number(line.slice(22));
    else if (line.startsWith("#EXT-X-MAP:")) map = /URI="([^"]+)"/.exec(line)[1];
    else if (line.startsWith("#EXT-X-PART:")) {
      const [, m, p] = /URI="part-(\d+)\.(\d+)\.m4s"/.exec(line);
      msn = Number(m);
      result.maps[msn] = map;
      result.parts.push({ msn, part: Number(p), independent: line.includes("INDEPENDENT=YES") });
    } else if (line.startsWith("seg-")) {
      const number = Number(line.slice(4, -4));
      result.maps[number] = map;
      result.segments.push(number);
    } else if (line.startsWith("#EXT-X-PRELOAD-HINT:")) {
      const found = /URI="part-(\d+)\./.exec(line);
      if (found) result.maps[Number(found[1])] = result.maps[Number(found[1])] || map;
    }
  }
  result.sequence = sequence;
  return result;
}
