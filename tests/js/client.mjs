// The real npm socket.io-client against chatd's Socket.IO server (tests/integration/test_socketio_protocol.py).
//
//   node client.mjs SCENARIO URL
//
// Runs one scenario against the echo application of the test, prints one JSON line with what it saw,
// and exits 0 once the client has let go; on a failed expectation, or after 15 s, it prints {"error": ...}
// and exits 1.
// Options are socket.io-client's defaults unless a scenario says otherwise.
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const [scenario, url] = process.argv.slice(2);
const TIMEOUT = 15000;

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const GOOD = { token: "good-key" };

const scenarios = {
  // Default transports: polling first, then the upgrade; events both ways, acks, binary.
  async default() {
    const socket = io(url, { auth: GOOD });
    const engine = socket.io.engine;
    let first = null;
    engine.once("handshake", () => (first = engine.transport.name)); // the transport the session opened on
    const upgraded = once(engine, "upgrade");
    const welcome = once(socket, "welcome");
    await connected(socket);
    const [transport] = await upgraded;
    const [hello] = await welcome;
    const echoed = once(socket, "echo");
    socket.emit("echo", "over", { the: ["websocket"] });
    const [echo1, echo2] = await echoed;
    const reply = await socket.emitWithAck("echo", 1, "two");
    socket.disconnect();
    return { first, upgradedTo: transport.name, hello, echo: [echo1, echo2], reply };
  },

  // transports: ["websocket"]: no polling at all.
  async websocket() {
    const socket = io(url, { auth: GOOD, transports: ["websocket"] });
    await connected(socket);
    const transport = socket.io.engine.transport.name;
    const reply = await socket.emitWithAck("echo", "ws");
    socket.disconnect();
    return { transport, reply };
  },

  // Auth by name and password.
  async password() {
    const socket = io(url, { auth: { username: "ann", password: "secret" } });
    const [hello] = await Promise.all([once(socket, "welcome"), connected(socket)]);
    socket.disconnect();
    return { hello: hello[0] };
  },

  // A refused auth is a connect_error with the server's message (and data).
  async refused() {
    const socket = io(url, { auth: { token: "bad-key" }, reconnection: false });
    try {
      await connected(socket);
    } catch (err) {
      socket.disconnect();
      return { message: err.message, data: err.data ?? null, active: socket.active };
    }
    throw new Error("connected with a bad key");
  },

  // Acknowledgements: a reply through the callback, an error as the callback's value, both styles.
  async acks() {
    const socket = io(url, { auth: GOOD });
    await connected(socket);
    const ok = await socket.emitWithAck("echo", { n: 1 });
    const failed = await socket.emitWithAck("fail", "why");
    const viaCallback = await new Promise((resolve) => socket.emit("fail", "cb", (value) => resolve(value)));
    const withTimeout = await socket.timeout(5000).emitWithAck("echo", "t");
    const raised = await socket.emitWithAck("raise");
    socket.disconnect();
    return { ok, failed, viaCallback, withTimeout, raised };
  },

  // Binary attachments both ways, over polling (base64 in the payload) and, after the upgrade, WebSocket.
  async binary() {
    const socket = io(url, { auth: GOOD, transports: [process.env.SIO_TRANSPORT || "polling"] });
    await connected(socket);
    const media = Buffer.from([0, 1, 2, 250, 255, 0x1e, 10]);
    const pushed = once(socket, "media");
    const reply = await socket.emitWithAck("binary", { name: "a.png", data: media }, Buffer.from("second"));
    const [event] = await pushed;
    socket.disconnect();
    return {
      transport: socket.io.engine?.transport?.name ?? null,
      reply: { name: reply.name, size: reply.size, reversed: [...reply.reversed] },
      event: { name: event.name, data: [...event.data], isBuffer: Buffer.isBuffer(event.data) },
    };
  },

  // The server ends the socket: "io server disconnect", and the client does not come back by itself.
  async kick() {
    const socket = io(url, { auth: GOOD, reconnectionDelay: 50 });
    await connected(socket);
    await sleep(100); // let the upgrade go on or finish: the disconnect must work either way
    const gone = once(socket, "disconnect");
    socket.emit("kick");
    const [reason] = await gone;
    await sleep(300);
    return { reason, connected: socket.connected, active: socket.active };
  },

  // Heartbeat: the server pings every pingInterval; the client answers; nothing drops over several intervals.
  async heartbeat() {
    const socket = io(url, { auth: GOOD });
    let pings = 0;
    let disconnects = 0;
    socket.io.on("ping", () => pings++);
    socket.on("disconnect", () => disconnects++);
    await connected(socket);
    const sid = socket.id;
    await sleep(Number(process.env.SIO_WAIT_MS || 1200));
    const reply = await socket.emitWithAck("echo", "still here");
    const result = { pings, disconnects, sameSid: socket.id === sid, reply, transport: socket.io.engine.transport.name };
    socket.disconnect();
    return result;
  },

  // The server drops the connection: the client reconnects by itself, with a new socket id.
  async reconnect() {
    const socket = io(url, { auth: GOOD, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const upgraded = once(socket.io.engine, "upgrade");
    await connected(socket);
    await upgraded;
    const first = socket.id;
    const gone = once(socket, "disconnect");
    socket.emit("drop");
    const [reason] = await gone;
    await once(socket, "connect");
    const reply = await socket.emitWithAck("echo", "back");
    const result = { reason, first, second: socket.id, reply };
    socket.disconnect();
    return result;
  },
};

// Unref'd: it ends a scenario that hangs, but does not keep a finished one alive.
setTimeout(() => {
  console.log(JSON.stringify({ error: `scenario ${scenario} timed out` }));
  process.exit(1);
}, TIMEOUT).unref();

try {
  assert.ok(scenarios[scenario], `no scenario ${scenario}`);
  const result = await scenarios[scenario]();
  console.log(JSON.stringify(result));
  // No process.exit(0): Node exits once the client's last packets (DISCONNECT, close) are written.
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.stack || err) }));
  process.exit(1);
}
