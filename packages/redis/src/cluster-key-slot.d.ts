declare module 'cluster-key-slot' {
  /** The Redis Cluster slot of a key (its hash tag's when it has one). */
  export default function clusterKeySlot(key: string): number;
}
