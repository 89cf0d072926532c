import { createHash } from 'node:crypto';

/** The namespace string v3's GuidManager hashes with every name. */
const NAMESPACE = '9e952958-5e33-4daf-827f-2fa12937b875';

/**
 * `context.df.newGuid(instanceId)` as v3 computes it, so the same instance, time and counter give
 * the same GUID here and there: the name `<instanceId>_<epoch ms>_<counter>` is hashed (SHA-1, its
 * first 16 bytes) and that hash is the namespace of a version 5 UUID of v3's namespace string (v3
 * passes uuid v3.x's `v5(namespaceString, hashBytes)`).
 */
export function deterministicGuid(name: string): string {
  const ns = createHash('sha1').update(name, 'utf8').digest().subarray(0, 16);
  const b = createHash('sha1').update(ns).update(NAMESPACE, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
