// ssh2 ships no types for its internal protocol helpers; internals.ts uses one.
declare module 'ssh2/lib/protocol/utils.js' {
  const utils: { sendPacket(proto: unknown, packet: Buffer, bypass?: boolean): void };
  export default utils;
}
