// The channel packet size both of our SSH ends use, and the largest packet
// each accepts.
//
// ssh2 (like OpenSSH) offers 32 KiB as a channel's maximum packet, and each
// packet costs a cipher object, a buffer or two and a socket write at both
// ends, whatever its size: that per-packet cost, not AES, was most of the
// tunnel's CPU (README, "Rows marked so"). RFC 4254 §5.1 lets each side name
// the largest data packet it takes per channel, and RFC 4253 §6.1 lets an
// implementation accept packets longer than 35000 bytes; both of our ends
// (the plugin's client and the proxy's server) offer CHANNEL_PACKET and
// accept MAX_PACKET, so between them a channel moves 8 times fewer packets.
// ssh2 keeps both in module constants, set in the plugin's and the proxy's
// bundles by scripts/ssh2-constants.ts.
//
// A peer sends at most what we offer, so this stays compatible both ways:
// OpenSSH's ssh offers 32 KiB and gets 32 KiB packets from the proxy, and
// sends the proxy packets that fit OpenSSH's own 256 KiB limit; an older
// plugin or proxy (ssh2's 32 KiB) gets 32 KiB packets from a newer one.
// What it costs: a peer can make a receiver hold one packet of MAX_PACKET
// bytes before it is authenticated (ssh2 allocates the whole packet when
// its length arrives): 64 connections waiting to log in (the proxy's
// MAX_UNAUTHENTICATED) hold 17 MiB at most, where they held 2.

/** The maximum channel data packet (RFC 4254 §5.1) our ends offer each other. */
export const CHANNEL_PACKET = 256 * 1024;

/**
 * The longest packet our ends accept: CHANNEL_PACKET and the headroom ssh2
 * keeps over its own 32 KiB channel packet (35000 bytes: message header,
 * padding and MAC).
 */
export const MAX_PACKET = CHANNEL_PACKET + (35000 - 32 * 1024);
