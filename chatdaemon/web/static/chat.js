// chatd's web page: a client like any other. REST (docs/http.md) for login, the room list and
// history; the events dialect (docs/protocols/events.md) over the WebSocket at /ws for live events.
// Everything a user wrote is put on the page with textContent, never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const TYPING_REPEAT_MS = 3000;   // the server forgets typing after 6 s unless repeated
  const TYPING_IDLE_MS = 4000;     // stop typing after this long without a key
  const TYPING_FORGET_MS = 8000;   // if a STOP_TYPING never comes
  const HISTORY_LIMIT = 50;
  // tempIds are client message ids: the server answers a resend of one with the original (exactly once), so
  // they must not repeat across page loads.
  const PAGE_ID = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

  const state = {
    token: "", user: "", ws: null, retry: 0, retryTimer: null, loggedOut: true,
    cid: "", conversations: new Map(), members: new Set(), presence: new Map(),
    messages: new Map(), typing: new Map(), typingSent: 0, typingTimer: null, nextTemp: 1,
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

  async function api(method, path, body) {
    const headers = {};
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
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
    setStatus("connecting as " + user + "…");
    connect();
    $("room-name").focus();
  }

  function logout() {
    state.loggedOut = true;
    send("CLIENT_LOGOUT");
    if (state.ws) state.ws.close(1000);
    clearTimeout(state.retryTimer);
    sessionStorage.removeItem("chatd-token");
    state.token = state.user = state.cid = "";
    state.conversations.clear();
    state.messages.clear();
    $("rooms").replaceChildren();
    $("messages").replaceChildren();
    $("members").replaceChildren();
    $("room-title").textContent = "Pick or join a room";
    enableSending(false);
    $("chat-view").hidden = true;
    $("logout").hidden = true;
    $("login-view").hidden = false;
    setStatus("not logged in");
    $("username").focus();
  }

  // -- the WebSocket

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
      if (state.loggedOut) return;
      if (!opened) {  // refused at the handshake: is the session key still good?
        try { await api("POST", "/login", { token: state.token }); } catch (e) {
          if (e.status === 401) { logout(); showError("login-error", "Please log in again."); return; }
        }
      }
      const delay = Math.min(30000, 500 * 2 ** state.retry++);
      setStatus("disconnected; reconnecting in " + Math.round(delay / 1000) + " s");
      state.retryTimer = setTimeout(connect, delay);
    };
  }

  const handlers = {
    SERVER_AUTH_OK(d) {
      state.retry = 0;
      state.user = d.username;
      setStatus("connected as " + d.username);
      $("chat-view").dataset.connected = "true";
      loadConversations();
      if (state.cid) send("CLIENT_CHAT_JOIN", { cid: state.cid });  // after a reconnect
    },
    SERVER_CHAT_JOINED(d) { openConversation(d.conversation); },
    SERVER_CHAT_RECEIVE(d) {
      const m = d.message;
      if (m.cid === state.cid) {
        showMessage(m);
        forgetTyping(m.sender);
        if (m.sender !== state.user && document.visibilityState !== "hidden") markRead(m.id);
      } else {
        const c = state.conversations.get(m.cid);
        if (c) { c.unread = (c.unread || 0) + 1; c.last_message = m; renderRooms(); } else loadConversations();
      }
    },
    SERVER_CHAT_MESSAGE_STATUS(d) {
      const m = state.messages.get(d.id);
      if (!m) return;
      if (d.status === "edited") Object.assign(m, d.message);
      else if (d.status === "deleted") { m.deleted = true; m.text = ""; }
      else if (d.status === "read" && d.user !== state.user) m.state = "read";
      else if (d.status === "delivered" && m.state !== "read") m.state = "delivered";
      else if (d.status === "sent" && !m.state) m.state = "sent";
      showMessage(m);
    },
    SERVER_CHAT_TYPING(d) { if (d.cid === state.cid && d.user !== state.user) setTyping(d.user); },
    SERVER_CHAT_STOP_TYPING(d) { if (d.cid === state.cid) forgetTyping(d.user); },
    SERVER_CHAT_MEMBER_JOINED(d) {
      if (d.cid !== state.cid) return;
      state.members.add(d.user);
      renderMembers();
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
      if (d.deleted && d.cid === state.cid) { note("this room was deleted"); closeConversation(); }
      loadConversations();
    },
    SERVER_CHAT_REACTION_ADD(d) { react(d, true); },
    SERVER_CHAT_REACTION_REMOVE(d) { react(d, false); },
    SERVER_USER_ONLINE(d) { setPresence(d.user, true); },
    SERVER_USER_OFFLINE(d) { setPresence(d.user, false); },
    SERVER_MISSED(d) { if (d.messages) loadConversations(); },
    SERVER_NOTICE(d) { setStatus(d.message); },
    SERVER_LOGGED_OUT() {},
    SERVER_ERROR(d) {
      if (d.code === 7021 || d.code === 2001 || d.code === 2003) { logout(); showError("login-error", "Please log in again."); return; }
      showError("chat-error", d.message + " (" + d.code + ")");
    },
  };

  function handle(event, data) {
    const handler = handlers[event];
    if (handler) handler(data);
  }

  // -- rooms

  async function loadConversations() {
    try {
      const data = await api("GET", "/conversations");
      state.conversations = new Map(data.conversations.map((c) => [c.cid, c]));
      renderRooms();
    } catch (e) {
      if (e.status === 401) { logout(); showError("login-error", "Please log in again."); }
      else showError("chat-error", "could not list rooms: " + e.message);
    }
  }

  function renderRooms() {
    const items = [];
    for (const c of state.conversations.values()) {
      const button = el("button", "room");
      button.type = "button";
      button.dataset.cid = c.cid;
      button.append(el("span", "name", (c.kind === "direct" ? "@" : "#") + c.name));
      if (c.cid === state.cid) button.setAttribute("aria-current", "true");
      if (c.unread && c.cid !== state.cid) {
        const badge = el("span", "unread", String(c.unread));
        badge.setAttribute("aria-label", c.unread + " unread");
        button.append(badge);
      }
      button.addEventListener("click", () => send("CLIENT_CHAT_JOIN", { cid: c.cid }));
      const li = el("li");
      li.append(button);
      items.push(li);
    }
    $("rooms").replaceChildren(...items);
  }

  function joinRoom(event) {
    event.preventDefault();
    const name = $("room-name").value.trim();
    if (!name) return;
    showError("chat-error", "");
    if (send("CLIENT_CHAT_JOIN", { cid: name })) $("room-name").value = "";
  }

  async function openConversation(c) {
    const changed = c.cid !== state.cid;
    state.cid = c.cid;
    state.members = new Set(c.members || []);
    if (changed) {
      state.readUpto = 0;
      state.messages.clear();
      state.typing.forEach((t) => clearTimeout(t));
      state.typing.clear();
      renderTyping();
      $("messages").replaceChildren();
    }
    $("room-title").textContent = (c.kind === "direct" ? "@" : "#") + c.name;
    $("conversation").dataset.cid = c.cid;
    renderMembers();
    enableSending(true);
    if (changed) $("message-input").focus();
    const known = state.conversations.get(c.cid);
    if (known) known.unread = 0;
    else state.conversations.set(c.cid, Object.assign({ unread: 0 }, c));
    renderRooms();
    try {
      const page = await api("GET", "/messages?cid=" + encodeURIComponent(c.cid) + "&limit=" + HISTORY_LIMIT);
      if (state.cid !== c.cid) return;
      for (const m of page.messages) showMessage(m);
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
    state.messages.clear();
    $("messages").replaceChildren();
    $("members").replaceChildren();
    $("room-title").textContent = "Pick or join a room";
    enableSending(false);
  }

  function enableSending(on) {
    $("message-input").disabled = !on || !state.cid;
    $("send-button").disabled = !on || !state.cid;
  }

  // -- people and presence (chatd tells presence to friends only)

  function setPresence(user, online) {
    state.presence.set(user, online);
    renderMembers();
    if (state.members.has(user) && user !== state.user) note(user + (online ? " is online" : " went offline"));
  }

  function renderMembers() {
    const items = [...state.members].sort().map((user) => {
      const li = el("li", "member");
      li.dataset.user = user;
      li.append(el("span", "name", user === state.user ? user + " (you)" : user));
      const online = user === state.user ? true : state.presence.get(user);
      if (online !== undefined) {
        li.dataset.presence = online ? "online" : "offline";
        li.append(el("span", "presence", online ? "online" : "offline"));
      }
      return li;
    });
    $("members").replaceChildren(...items);
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
    if (m.sender === state.user) li.classList.add("mine");
    const head = el("span", "head");
    head.append(el("span", "sender", m.sender));
    const time = el("time", "", timeOf(m.ts));
    if (m.ts) time.dateTime = new Date(m.ts).toISOString();
    head.append(time);
    li.append(head);
    let body;
    if (m.deleted) body = el("span", "text deleted", "(deleted)");
    else if (m.file) body = el("span", "text file", "[" + m.kind + ": " + m.file.name + "]");
    else body = el("span", "text", m.text);
    li.append(body);
    if (m.edited && !m.deleted) li.append(el("span", "edited", "(edited)"));
    const reactions = Object.entries(m.reactions || {}).filter(([, users]) => users.length);
    if (reactions.length) {
      li.append(el("span", "reactions", reactions.map(([emoji, users]) => emoji + " " + users.length).join("  ")));
    }
    if (m.sender === state.user && m.state) li.append(el("span", "state", m.state));
    const list = $("messages");
    const current = list.querySelector('li[data-id="' + m.id + '"]');
    if (current) { current.replaceWith(li); return; }
    let after = null;  // keep id order: live messages may come before the history does
    for (const item of list.children) {
      if (Number(item.dataset.id) > m.id) { after = item; break; }
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.insertBefore(li, after);
    if (atBottom || m.sender === state.user) list.scrollTop = list.scrollHeight;
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

  function onInput() {
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

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("register-button").addEventListener("click", register);
    $("logout").addEventListener("click", logout);
    $("join-form").addEventListener("submit", joinRoom);
    $("send-form").addEventListener("submit", sendMessage);
    $("message-input").addEventListener("keydown", onKey);
    $("message-input").addEventListener("input", onInput);
    document.body.dataset.ready = "true";
    resume();
  });
})();
