// chatd's web page: a client like any other. REST (docs/http.md) for login, the room lists, members,
// history and files; the events dialect (docs/protocols/events.md) over the WebSocket at /ws for live events.
// Everything a user wrote (messages, names, file names) is put on the page with textContent, never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const TYPING_REPEAT_MS = 3000;   // the server forgets typing after 6 s unless repeated
  const TYPING_IDLE_MS = 4000;     // stop typing after this long without a key
  const TYPING_FORGET_MS = 8000;   // if a STOP_TYPING never comes
  const HISTORY_LIMIT = 50;
  const PUBLIC_REFRESH_MS = 60000; // member counts of rooms one is not in change without an event
  const BACK_NOTICE_MS = 5000;     // how long "connected again" stays
  const INLINE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
  const INLINE_MAX_BYTES = 8 * 1024 * 1024;
  const STATES = { sent: ["✓", "sent"], delivered: ["✓✓", "delivered"], read: ["✓✓", "read"] };
  const WIDE = window.matchMedia("(min-width: 64rem)");
  // tempIds are client message ids: the server answers a resend of one with the original (exactly once), so
  // they must not repeat across page loads.
  const PAGE_ID = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

  const state = {
    token: "", user: "", ws: null, retry: 0, retryTimer: null, loggedOut: true, everConnected: false, lost: false,
    cid: "", conversations: new Map(), publicRooms: [], members: new Map(),
    messages: new Map(), typing: new Map(), typingSent: 0, typingTimer: null, nextTemp: 1,
    readUpto: 0, readTimer: null, files: new Map(), publicTimer: null, backTimer: null,
  };

  // -- small helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text) { $("status").textContent = text; }
  function showError(id, text) { $(id).textContent = text || ""; }

  function sizeOf(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
    return (bytes / 1024 / 1024).toFixed(1) + " MiB";
  }

  async function api(method, path, body, raw) {
    const headers = {};
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    if (body !== undefined && !raw) headers["Content-Type"] = "application/json";
    if (raw) headers["Content-Type"] = "application/octet-stream";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : raw ? body : JSON.stringify(body), cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.message) || ("HTTP " + response.status));
      error.status = response.status;
      error.code = data && data.code;
      throw error;
    }
    return data;
  }

  function send(event, data) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ event, data: data || {} }));
      return true;
    }
    showError("chat-error", "not connected; trying again");
    return false;
  }

  function join(cid) {
    showError("chat-error", "");
    return send("CLIENT_CHAT_JOIN", { cid, follow: false });  // follow none: every room's messages, for unread counts
  }

  function expired() {
    logout();
    showError("login-error", "Please log in again.");
  }

  // -- logging in

  async function login(event) {
    event.preventDefault();
    await enter(false);
  }

  async function register() {
    await enter(true);
  }

  async function enter(registerFirst) {
    const username = $("username").value.trim();
    const password = $("password").value;
    showError("login-error", "");
    if (!username || !password) {
      showError("login-error", "Enter a name and a password.");
      (username ? $("password") : $("username")).focus();
      return;
    }
    try {
      if (registerFirst) await api("POST", "/register", { username, password });
      const result = await api("POST", "/login", { username, password });
      $("password").value = "";
      start(result.token, result.username);
    } catch (e) {
      showError("login-error", e.message);
    }
  }

  async function resume() {
    const token = sessionStorage.getItem("chatd-token");
    if (!token) return;
    try {
      const result = await api("POST", "/login", { token });
      start(result.token, result.username);
    } catch (e) {
      sessionStorage.removeItem("chatd-token");
    }
  }

  function start(token, user) {
    state.token = token;
    state.user = user;
    state.loggedOut = false;
    sessionStorage.setItem("chatd-token", token);
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("logout").hidden = false;
    $("rooms-toggle").hidden = false;
    showPane(sessionStorage.getItem("chatd-room") ? "chat" : "rooms");
    setStatus("connecting as " + user + "…");
    connect();
    state.publicTimer = setInterval(() => { if (document.visibilityState !== "hidden") loadPublicRooms(); },
      PUBLIC_REFRESH_MS);
  }

  function logout() {
    state.loggedOut = true;
    send("CLIENT_LOGOUT");
    if (state.ws) state.ws.close(1000);
    clearTimeout(state.retryTimer);
    clearInterval(state.publicTimer);
    sessionStorage.removeItem("chatd-token");
    sessionStorage.removeItem("chatd-room");
    state.token = state.user = "";
    closeConversation();
    state.conversations.clear();
    state.publicRooms = [];
    state.everConnected = state.lost = false;
    $("rooms").replaceChildren();
    $("public-rooms").replaceChildren();
    showConnection("", "");
    $("chat-view").hidden = true;
    $("logout").hidden = true;
    $("rooms-toggle").hidden = true;
    $("login-view").hidden = false;
    setStatus("not logged in");
    $("username").focus();
  }

  // -- the WebSocket, and a notice when it drops and comes back

  function showConnection(text, kind) {
    const banner = $("connection");
    clearTimeout(state.backTimer);
    banner.textContent = text;
    banner.dataset.state = kind;
    banner.hidden = !text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/ws?dialect=events&token=" + encodeURIComponent(state.token);
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onmessage = (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch (e) { return; }
      if (frame && typeof frame.event === "string") handle(frame.event, frame.data || {});
    };
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onclose = async () => {
      if (state.ws !== ws) return;
      state.ws = null;
      enableSending(false);
      $("chat-view").dataset.connected = "false";
      if (state.loggedOut) return;
      if (!opened) {  // refused at the handshake: is the session key still good?
        try { await api("POST", "/login", { token: state.token }); } catch (e) {
          if (e.status === 401) { expired(); return; }
        }
      }
      const delay = Math.min(30000, 500 * 2 ** state.retry++);
      const seconds = Math.max(1, Math.round(delay / 1000));
      setStatus("disconnected; reconnecting in " + seconds + " s");
      if (state.everConnected) {
        state.lost = true;
        showConnection("Connection lost. Reconnecting in " + seconds + " s…", "lost");
      }
      state.retryTimer = setTimeout(connect, delay);
    };
  }

  const handlers = {
    SERVER_AUTH_OK(d) {
      state.retry = 0;
      state.user = d.username;
      setStatus("connected as " + d.username);
      $("chat-view").dataset.connected = "true";
      if (state.lost) {
        state.lost = false;
        showConnection("Connected again.", "back");
        state.backTimer = setTimeout(() => showConnection("", ""), BACK_NOTICE_MS);
      }
      state.everConnected = true;
      loadConversations();
      loadPublicRooms();
      const cid = state.cid || sessionStorage.getItem("chatd-room");  // after a reconnect, or a reload
      if (cid) join(cid);
    },
    SERVER_CHAT_JOINED(d) { openConversation(d.conversation); },
    SERVER_CHAT_RECEIVE(d) {
      const m = d.message;
      if (m.cid === state.cid) {
        showMessage(m);
        forgetTyping(m.sender);
        if (m.sender !== state.user && document.visibilityState !== "hidden") markRead(m.id);
        const c = state.conversations.get(m.cid);
        if (c) c.last_message = m;
      } else if (!d.offline) {  // what was missed is counted by GET /conversations (after SERVER_MISSED)
        const c = state.conversations.get(m.cid);
        if (!c) { loadConversations(); return; }
        if (m.sender !== state.user) c.unread = (c.unread || 0) + 1;
        c.last_message = m;
        renderRooms();
      }
    },
    SERVER_CHAT_MESSAGE_STATUS(d) {
      const m = state.messages.get(d.id);
      if (!m) return;
      if (d.status === "edited") Object.assign(m, d.message);
      else if (d.status === "deleted") { m.deleted = true; m.text = ""; m.file = null; }
      else if (d.status === "read" && d.user !== state.user) m.state = "read";
      else if (d.status === "delivered" && m.state !== "read") m.state = "delivered";
      else if (d.status === "sent" && !m.state) m.state = "sent";
      showMessage(m);
    },
    SERVER_CHAT_TYPING(d) { if (d.cid === state.cid && d.user !== state.user) setTyping(d.user); },
    SERVER_CHAT_STOP_TYPING(d) { if (d.cid === state.cid) forgetTyping(d.user); },
    SERVER_CHAT_MEMBER_JOINED(d) {
      if (d.cid !== state.cid) return;
      loadMembers(d.cid);
      if (d.user !== state.user) note(d.user + " joined");
    },
    SERVER_CHAT_MEMBER_LEFT(d) {
      if (d.cid !== state.cid) return;
      state.members.delete(d.user);
      forgetTyping(d.user);
      renderMembers();
      note(d.user + " left");
    },
    SERVER_CHAT_CONVERSATION_UPDATED(d) {
      if (d.deleted && d.cid === state.cid) {
        closeConversation();
        showError("chat-error", "this room was deleted");
        showPane("rooms");
      }
      loadConversations();
      loadPublicRooms();
    },
    SERVER_CHAT_REACTION_ADD(d) { react(d, true); },
    SERVER_CHAT_REACTION_REMOVE(d) { react(d, false); },
    SERVER_USER_ONLINE(d) { setPresence(d.user, true, d.status); },
    SERVER_USER_OFFLINE(d) { setPresence(d.user, false, ""); },
    SERVER_MISSED(d) { if (d.messages) loadConversations(); },
    SERVER_NOTICE(d) { setStatus(d.message); note(d.message); },
    SERVER_LOGGED_OUT() {},
    SERVER_ERROR(d) {
      if (d.code === 7021 || d.code === 2001 || d.code === 2003) { expired(); return; }
      if (d.event === "CLIENT_CHAT_JOIN" && !state.cid) {  // the room to reopen is gone, or not ours any more
        sessionStorage.removeItem("chatd-room");
        showPane("rooms");
      }
      showError("chat-error", d.message + " (" + d.code + ")");
    },
  };

  function handle(event, data) {
    const handler = handlers[event];
    if (handler) handler(data);
  }

  // -- the two panes of a phone (rooms, conversation); side by side on wide screens

  function showPane(pane) {
    $("chat-view").dataset.pane = pane;
    $("rooms-toggle").setAttribute("aria-expanded", String(pane === "rooms"));
  }

  function togglePane() {
    const pane = $("chat-view").dataset.pane === "rooms" && state.cid ? "chat" : "rooms";
    showPane(pane);
    if (pane === "rooms") { loadPublicRooms(); $("room-name").focus(); } else $("message-input").focus();
  }

  // -- rooms: one's own (with unread counts) and the public ones to browse

  async function loadConversations() {
    try {
      const data = await api("GET", "/conversations");
      state.conversations = new Map(data.conversations.map((c) => [c.cid, c]));
      const open = state.conversations.get(state.cid);
      if (open) open.unread = 0;
      renderRooms();
    } catch (e) {
      if (e.status === 401) expired();
      else showError("chat-error", "could not list rooms: " + e.message);
    }
  }

  function title(c) {
    return (c.kind === "direct" ? "@" : "#") + c.name;
  }

  function renderRooms() {
    const items = [];
    for (const c of state.conversations.values()) {
      const button = el("button", "room");
      button.type = "button";
      button.dataset.cid = c.cid;
      button.append(el("span", "name", title(c)));
      if (c.cid === state.cid) button.setAttribute("aria-current", "true");
      if (c.unread && c.cid !== state.cid) {
        const badge = el("span", "unread", String(c.unread));
        badge.setAttribute("aria-label", c.unread + " unread");
        button.append(badge);
      }
      button.addEventListener("click", () => join(c.cid));
      const li = el("li");
      li.append(button);
      items.push(li);
    }
    if (!items.length) items.push(el("li", "hint", "None yet: join one below."));
    $("rooms").replaceChildren(...items);
  }

  async function loadPublicRooms() {
    try {
      const data = await api("GET", "/rooms");
      state.publicRooms = data.rooms.filter((r) => r.kind === "public");
      renderPublicRooms();
    } catch (e) {
      if (e.status === 401) expired();
    }
  }

  function renderPublicRooms() {
    const items = state.publicRooms.map((r) => {
      const li = el("li", "public");
      li.dataset.cid = r.cid;
      const text = el("span");
      text.append(el("span", "name", "#" + r.name));
      text.append(el("span", "counts", r.members + (r.members === 1 ? " member" : " members") + " · " + r.online + " online"));
      li.append(text);
      if (r.joined) {
        li.append(el("span", "joined", "joined"));
      } else {
        const button = el("button", "", "Join");
        button.type = "button";
        button.setAttribute("aria-label", "Join #" + r.name);
        button.addEventListener("click", () => join(r.cid));
        li.append(button);
      }
      return li;
    });
    if (!items.length) items.push(el("li", "hint", "No public rooms yet: name one above to make it."));
    $("public-rooms").replaceChildren(...items);
  }

  function joinRoom(event) {
    event.preventDefault();
    const name = $("room-name").value.trim();
    if (!name) return;
    if (join(name)) $("room-name").value = "";
  }

  async function openConversation(c) {
    const changed = c.cid !== state.cid;
    state.cid = c.cid;
    sessionStorage.setItem("chatd-room", c.cid);
    showPane("chat");
    if (changed) {
      state.readUpto = 0;
      state.messages.clear();
      state.typing.forEach((t) => clearTimeout(t));
      state.typing.clear();
      renderTyping();
      forgetFiles();
      state.members = new Map((c.members || []).map((u) => [u, { online: u === state.user, status: "" }]));
      renderMembers();
      $("messages").replaceChildren();
      delete $("messages").dataset.loaded;
    }
    $("room-title").textContent = title(c);
    $("conversation").dataset.cid = c.cid;
    enableSending(true);
    if (changed) $("message-input").focus();
    const known = state.conversations.get(c.cid);
    if (known) known.unread = 0;
    else state.conversations.set(c.cid, Object.assign({ unread: 0 }, c));
    renderRooms();
    loadMembers(c.cid);
    if (c.kind === "public" && !state.publicRooms.some((r) => r.cid === c.cid && r.joined)) loadPublicRooms();
    try {
      const page = await api("GET", "/messages?cid=" + encodeURIComponent(c.cid) + "&limit=" + HISTORY_LIMIT);
      if (state.cid !== c.cid) return;
      for (const m of page.messages) {
        if (m.sender === state.user && !state.messages.has(m.id)) m.state = m.read_by && m.read_by.length ? "read" : "sent";
        showMessage(m);
      }
      const last = page.messages[page.messages.length - 1];
      if (last && last.id > (page.read_upto || 0)) markRead(last.id);
      $("messages").dataset.loaded = c.cid;
    } catch (e) {
      showError("chat-error", "could not read the history: " + e.message);
    }
  }

  // One read mark a second at most, for the newest message seen (a busy room sends no flood).
  function markRead(id) {
    state.readUpto = Math.max(state.readUpto || 0, id);
    if (state.readTimer) return;
    state.readTimer = setTimeout(() => {
      state.readTimer = null;
      if (state.cid && state.readUpto) send("CLIENT_CHAT_READ", { id: state.readUpto });
    }, 1000);
  }

  function closeConversation() {
    state.cid = "";
    sessionStorage.removeItem("chatd-room");
    state.messages.clear();
    state.members.clear();
    forgetFiles();
    $("messages").replaceChildren();
    $("members").replaceChildren();
    $("people-title").textContent = "People here";
    $("room-title").textContent = "Pick or join a room";
    delete $("conversation").dataset.cid;
    enableSending(false);
  }

  function enableSending(on) {
    const off = !on || !state.cid;
    for (const id of ["message-input", "send-button", "attach-button"]) $(id).disabled = off;
  }

  // -- people: the room's members, and who of them is connected now (room presence)

  async function loadMembers(cid) {
    try {
      const data = await api("GET", "/members?cid=" + encodeURIComponent(cid));
      if (cid !== state.cid) return;
      state.members = new Map(data.members.map((m) => [m.user, { online: m.online, status: m.status }]));
      renderMembers();
    } catch (e) {
      if (e.status === 401) expired();
    }
  }

  function setPresence(user, online, status) {
    const member = state.members.get(user);
    if (!member || user === state.user || member.online === online) return;
    member.online = online;
    member.status = status || "";
    renderMembers();
    note(user + (online ? " is online" : " went offline"));
  }

  function renderMembers() {
    const users = [...state.members.keys()].sort();
    let online = 0;
    const items = users.map((user) => {
      const member = state.members.get(user);
      const here = user === state.user || member.online;
      if (here) online++;
      const li = el("li", "member");
      li.dataset.user = user;
      li.dataset.presence = here ? "online" : "offline";
      li.append(el("span", "name", user === state.user ? user + " (you)" : user));
      const presence = el("span", "presence", here ? "online" : "offline");
      if (here && member.status && member.status !== "online") presence.title = member.status;
      li.append(presence);
      return li;
    });
    $("members").replaceChildren(...items);
    $("people-title").textContent = users.length ? "People here (" + users.length + ", " + online + " online)" : "People here";
  }

  // -- messages

  function timeOf(ts) {
    const d = new Date(ts);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function showMessage(m) {
    const old = state.messages.get(m.id);
    if (old && old !== m) m = Object.assign(old, m, { state: old.state || m.state });
    state.messages.set(m.id, m);
    const li = el("li", "message");
    li.dataset.id = m.id;
    li.dataset.sender = m.sender;
    const mine = m.sender === state.user;
    if (mine) li.classList.add("mine");
    const head = el("span", "head");
    head.append(el("span", "sender", m.sender));
    const time = el("time", "", timeOf(m.ts));
    if (m.ts) time.dateTime = new Date(m.ts).toISOString();
    head.append(time);
    if (mine && STATES[m.state]) {  // delivery, compactly: ✓ sent, ✓✓ delivered, ✓✓ (coloured) read
      const [mark, label] = STATES[m.state];
      const badge = el("span", "state", mark);
      badge.dataset.state = m.state;
      badge.title = label;
      badge.setAttribute("role", "img");
      badge.setAttribute("aria-label", label);
      head.append(badge);
    }
    li.append(head);
    if (m.deleted) li.append(el("span", "text deleted", "(deleted)"));
    else if (m.file) li.append(fileView(m.file));
    else li.append(el("span", "text", m.text));
    if (m.edited && !m.deleted) li.append(el("span", "edited", "(edited)"));
    const reactions = Object.entries(m.reactions || {}).filter(([, users]) => users.length);
    if (reactions.length) {
      li.append(el("span", "reactions", reactions.map(([emoji, users]) => emoji + " " + users.length).join("  ")));
    }
    const list = $("messages");
    const current = list.querySelector('li.message[data-id="' + m.id + '"]');
    if (current) { current.replaceWith(li); return; }
    let after = null;  // keep id order: live messages may come before the history does
    for (const item of list.querySelectorAll("li.message")) {
      if (Number(item.dataset.id) > m.id) { after = item; break; }
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.insertBefore(li, after);
    if (atBottom || mine) list.scrollTop = list.scrollHeight;
  }

  // A list scrolled to its end stays at its end when the window changes size (a phone's keyboard, a rotation).
  let stuck = true;
  function watchScroll() {
    const list = $("messages");
    list.addEventListener("scroll", () => { stuck = list.scrollHeight - list.scrollTop - list.clientHeight < 40; });
    new ResizeObserver(() => { if (stuck) list.scrollTop = list.scrollHeight; }).observe(list);
  }

  // -- files: images inline, others as download links; fetched with the session key, shown from blob: URLs

  function fileBlob(file) {
    let url = state.files.get(file.id);
    if (!url) {
      url = fetch("/files/" + encodeURIComponent(file.id), {
        headers: { Authorization: "Bearer " + state.token }, cache: "no-store",
      }).then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.blob();
      }).then((blob) => URL.createObjectURL(blob));
      url.catch(() => state.files.delete(file.id));
      state.files.set(file.id, url);
    }
    return url;
  }

  function forgetFiles() {
    for (const url of state.files.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
    state.files.clear();
  }

  function fileView(file) {
    const box = el("span", "text file");
    const link = el("a", "file-link", file.name + " (" + sizeOf(file.size) + ")");
    link.href = "/files/" + encodeURIComponent(file.id);
    link.download = file.name;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      fileBlob(file).then((url) => {
        const save = el("a");
        save.href = url;
        save.download = file.name;
        save.click();
      }, (e) => showError("chat-error", "could not fetch " + file.name + ": " + e.message));
    });
    if (INLINE_IMAGES.has(file.mime) && file.size <= INLINE_MAX_BYTES) {
      const img = el("img", "image");
      img.alt = file.name;
      box.append(img);
      const list = $("messages");
      fileBlob(file).then((url) => {
        const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
        img.addEventListener("load", () => { if (atBottom) list.scrollTop = list.scrollHeight; }, { once: true });
        img.src = url;
      }, () => { img.alt = file.name + " (could not be loaded)"; });
    }
    box.append(link);
    return box;
  }

  async function upload(file) {
    const cid = state.cid;
    if (!cid) return;
    const row = el("li", "upload", "Sending " + file.name + "…");
    row.setAttribute("role", "status");
    $("messages").append(row);
    $("messages").scrollTop = $("messages").scrollHeight;
    try {
      const started = await api("POST", "/uploads", {
        cid, name: file.name, mime: file.type || "application/octet-stream", size: file.size,
      });
      const step = started.chunk_bytes;
      let done = started.chunks - started.missing.length;
      for (const index of started.missing) {
        const data = await file.slice((index - 1) * step, index * step).arrayBuffer();
        await api("PUT", "/uploads/" + encodeURIComponent(started.key) + "/" + index, data, true);
        done++;
        row.textContent = "Sending " + file.name + "… " + Math.floor((100 * done) / started.chunks) + "%";
      }
      row.remove();  // the message itself arrives over the WebSocket
    } catch (e) {
      row.remove();
      if (e.status === 401) { expired(); return; }
      showError("chat-error", "could not send " + file.name + ": " + e.message);
    }
  }

  async function uploadAll(files) {
    showError("chat-error", "");
    for (const file of files) await upload(file);
  }

  function onDrag(event) {
    if (!state.cid || !event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    $("conversation").dataset.dragging = String(event.type !== "dragleave");
  }

  function onDrop(event) {
    $("conversation").dataset.dragging = "false";
    if (!state.cid || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    uploadAll([...event.dataTransfer.files]);
  }

  function react(d, added) {
    const m = state.messages.get(d.id);
    if (!m) return;
    const users = new Set((m.reactions || {})[d.emoji] || []);
    if (added) users.add(d.user); else users.delete(d.user);
    m.reactions = Object.assign({}, m.reactions, { [d.emoji]: [...users] });
    showMessage(m);
  }

  function note(text) {
    const li = el("li", "note", text);
    const list = $("messages");
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  function sendMessage(event) {
    event.preventDefault();
    const input = $("message-input");
    const text = input.value.trim();
    if (!text || !state.cid) return;
    showError("chat-error", "");
    if (send("CLIENT_CHAT_SEND", { cid: state.cid, text, tempId: PAGE_ID + "-" + state.nextTemp++ })) {
      input.value = "";
      fitInput();
      stopTyping();
    }
    input.focus();
  }

  function onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  }

  // -- typing

  function fitInput() {  // the input grows with its text, up to the CSS max-height, then scrolls
    const input = $("message-input");
    input.style.height = "auto";
    input.style.height = input.scrollHeight + 2 + "px";
  }

  function onInput() {
    fitInput();
    if (!state.cid) return;
    const now = Date.now();
    if ($("message-input").value === "") { stopTyping(); return; }
    if (now - state.typingSent > TYPING_REPEAT_MS) {
      state.typingSent = now;
      send("CLIENT_CHAT_TYPING", { cid: state.cid });
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent && state.cid) send("CLIENT_CHAT_STOP_TYPING", { cid: state.cid });
    state.typingSent = 0;
  }

  function setTyping(user) {
    clearTimeout(state.typing.get(user));
    state.typing.set(user, setTimeout(() => forgetTyping(user), TYPING_FORGET_MS));
    renderTyping();
  }

  function forgetTyping(user) {
    if (!state.typing.has(user)) return;
    clearTimeout(state.typing.get(user));
    state.typing.delete(user);
    renderTyping();
  }

  function renderTyping() {
    const users = [...state.typing.keys()].sort();
    $("typing").textContent = users.length === 0 ? "" :
      users.join(", ") + (users.length === 1 ? " is typing…" : " are typing…");
  }

  // -- wiring

  function fitPeople() { $("people").open = WIDE.matches; }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("register-button").addEventListener("click", register);
    $("logout").addEventListener("click", logout);
    $("rooms-toggle").addEventListener("click", togglePane);
    $("join-form").addEventListener("submit", joinRoom);
    $("send-form").addEventListener("submit", sendMessage);
    $("message-input").addEventListener("keydown", onKey);
    $("message-input").addEventListener("input", onInput);
    $("attach-button").addEventListener("click", () => $("file-input").click());
    $("file-input").addEventListener("change", () => {
      const files = [...$("file-input").files];
      $("file-input").value = "";
      uploadAll(files);
    });
    for (const kind of ["dragenter", "dragover", "dragleave"]) $("conversation").addEventListener(kind, onDrag);
    $("conversation").addEventListener("drop", onDrop);
    document.addEventListener("visibilitychange", () => {
      const last = Math.max(0, ...state.messages.keys());
      if (document.visibilityState === "visible" && state.cid && last) markRead(last);
    });
    fitPeople();
    WIDE.addEventListener("change", fitPeople);
    watchScroll();
    document.body.dataset.ready = "true";
    resume();
  });
})();
