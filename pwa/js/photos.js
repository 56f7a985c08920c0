// Photos are made small on the phone (longest side at most 1600 px, JPEG) and kept as bytes.

import { sha256Hex } from "./canonical.js";
import { STORES, putOne } from "./db.js";

export const PHOTO_MAX_SIDE = 1600;
export const PHOTO_QUALITY = 0.82;

export function fittedSize(width, height, limit = PHOTO_MAX_SIDE) {
  const scale = Math.min(1, limit / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

async function toJpeg(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const size = fittedSize(bitmap.width, bitmap.height);
  const canvas = document.createElement("canvas");
  canvas.width = size.width;
  canvas.height = size.height;
  const context = canvas.getContext("2d");
  // JPEG has no transparency: paint white under it rather than black.
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, size.width, size.height);
  context.drawImage(bitmap, 0, 0, size.width, size.height);
  bitmap.close();
  const blob = await new Promise((resolve, reject) => {
    canvas.toBlob((made) => (made ? resolve(made) : reject(new Error("no JPEG"))), "image/jpeg", PHOTO_QUALITY);
  });
  return { bytes: await blob.arrayBuffer(), ...size };
}

// Resize, name by SHA-256 and keep the photo; returns its hash.
export async function keepPhoto(file) {
  const jpeg = await toJpeg(file);
  const sha256 = await sha256Hex(jpeg.bytes);
  await putOne(STORES.blobs, {
    sha256, bytes: jpeg.bytes, type: "image/jpeg", width: jpeg.width, height: jpeg.height, uploaded: false, kept_at: Date.now(),
  });
  return sha256;
}
