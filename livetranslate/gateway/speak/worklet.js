// The microphone at 16 kHz, 16-bit: each output sample is the mean of the input samples of
// its interval (a box filter against aliasing, then decimation), from whatever rate the
// browser's audio runs at. Posts 100 ms chunks (1600 samples) with their RMS level.
const OUT_RATE = 16000;
const CHUNK = 1600;

class Pcm16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / OUT_RATE; // input samples per output sample (3 at 48 kHz)
    this.t = 0;
    this.sum = 0;
    this.n = 0;
    this.sumsq = 0;
    this.out = new Int16Array(CHUNK);
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let x = 0;
      for (let c = 0; c < channels; c++) x += input[c][i];
      x /= channels;
      this.sum += x;
      this.n += 1;
      this.t += 1;
      if (this.t >= this.ratio) {
        this.t -= this.ratio;
        const y = Math.max(-1, Math.min(1, this.sum / this.n));
        this.sum = 0;
        this.n = 0;
        this.sumsq += y * y;
        this.out[this.fill++] = y < 0 ? Math.round(y * 32768) : Math.round(y * 32767);
        if (this.fill === CHUNK) {
          const rms = Math.sqrt(this.sumsq / CHUNK);
          this.port.postMessage({ pcm: this.out, rms }, [this.out.buffer]);
          this.out = new Int16Array(CHUNK);
          this.fill = 0;
          this.sumsq = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);
