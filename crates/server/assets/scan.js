// Reads QR codes in the browser with jsQR (vendored): from the device camera, frame by
// frame, or from an image file. Used by the till (the customer's code) and the wallet
// (a merchant's code, a friend's receive code).
'use strict';

const Scanner = (() => {
  let stream = null;
  let running = false;

  function decode(canvas, ctx, source, w, h) {
    canvas.width = w;
    canvas.height = h;
    ctx.drawImage(source, 0, 0, w, h);
    const image = ctx.getImageData(0, 0, w, h);
    const found = jsQR(image.data, w, h, { inversionAttempts: 'attemptBoth' });
    return found ? found.data : null;
  }

  /** Starts the camera into `video`; calls `onCode(text)` once with the first code read. */
  async function start(video, onCode) {
    stop(video);
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    running = true;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const tick = () => {
      if (!running) return;
      if (video.readyState >= 2 && video.videoWidth) {
        const text = decode(canvas, ctx, video, video.videoWidth, video.videoHeight);
        if (text) {
          stop(video);
          onCode(text);
          return;
        }
      }
      window.requestAnimationFrame(tick);
    };
    window.requestAnimationFrame(tick);
  }

  /** Stops the camera. */
  function stop(video) {
    running = false;
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null;
    if (video) {
      video.srcObject = null;
      video.hidden = true;
    }
  }

  /** The text of the QR code in an image file, or null. */
  async function fromFile(file) {
    const bitmap = await createImageBitmap(file);
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    return decode(canvas, ctx, bitmap, bitmap.width, bitmap.height);
  }

  return { start, stop, fromFile, active: () => running };
})();
