// The real npm socket.io-client as a chat app, driven line by line (tests/integration/test_socketio_chat.py).
//
//   node chat.mjs URL OPTIONS_JSON
//
// OPTIONS_JSON is passed to io() (auth, transports, ...). Every line on stdout is one JSON object:
//   {"open": "polling"|"websocket"}                        an Engine.IO session opened (again, after a reconnect)
//   {"upgrade": "websocket"}                               the polling session moved to a WebSocket
//   {"connect": {"transport": ...}}                        the namespace is connected (the login was accepted)
//   {"connect_error": {"message", "data"}}                 a refused connection
//   {"event": NAME, "data": DATA}                          an event from the server
//   {"ack": ID, "value": VALUE}                            the acknowledgement of command ID
//   {"disconnect": REASON}
// Every line on stdin is one command:
//   {"emit": NAME, "data": DATA, "ack": ID?, "binary": true?}   binary: DATA.data (base64) goes as bytes
//   {"disconnect": true}      {"connect": true}      {"exit": true}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, options] = [process.argv[2], JSON.parse(process.argv[3] || "{}")];
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(url, { reconnectionDelay: 100, reconnectionDelayMax: 200, ...options });
socket.io.on("open", () => {
  out({ open: socket.io.engine.transport.name });
  socket.io.engine.once("upgrade", (transport) => out({ upgrade: transport.name }));
});
socket.on("connect", () => out({ connect: { transport: socket.io.engine.transport.name } }));
socket.on("connect_error", (err) => out({ connect_error: { message: err.message, data: err.data ?? null } }));
socket.on("disconnect", (reason) => out({ disconnect: reason }));
socket.onAny((event, data) => out({ event, data }));

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.exit) {
    socket.close();
    process.exit(0);
  } else if (command.disconnect) {
    socket.disconnect();
  } else if (command.connect) {
    socket.connect();
  } else if (command.emit) {
    let data = command.data;
    if (command.binary) data = { ...data, data: Buffer.from(data.data, "base64") };
    if (command.ack === undefined) socket.emit(command.emit, data);
    else socket.emit(command.emit, data, (value) => out({ ack: command.ack, value }));
  }
});
