// The command-line flags every headless Debian Chromium we start gets (tools/cardrender and
// tools/playground): no first-run or sync work, no component or background downloads, no QUIC,
// no GPU, and no sandbox (the tests may run as root in a container). Each caller also gives it a
// fresh --user-data-dir (a persistent context on a temporary directory).
"use strict";

module.exports.CHROMIUM_ARGS = Object.freeze([
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]);
