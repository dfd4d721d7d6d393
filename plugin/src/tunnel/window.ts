// The SSH channel window the plugin offers the proxy: how many bytes the
// proxy may send on one channel before the plugin tops the window up.
//
// One window per round trip is the most a channel can carry, so a window
// caps throughput at window / RTT. ssh2 (like OpenSSH) opens every channel
// with 2 MiB and tops it up when half is used: about 1–2 MiB per round
// trip, 106 Mbit/s measured at 80 ms (README, "Over a link like a real
// one"). The window is a module constant in ssh2 (lib/Channel.js
// MAX_WINDOW); scripts/ssh2-constants.ts sets it to this value in the plugin's
// bundle only, and fails the build if ssh2 no longer spells it as expected.
//
// Only the plugin's side grows: it governs pod → laptop (what a developer
// downloads, and requests routed to the laptop). The proxy keeps ssh2's
// 2 MiB, since a window is also what a receiver may have to hold for a
// reader that does not read, and the proxy runs under a 256 MiB limit with
// up to 1024 channels; a laptop holds a few channels' worth easily.
export const PLUGIN_SSH_WINDOW = 16 * 2 ** 20;
