// The conversation page: joins snapshot + deltas by code-point offset, renders incrementally,
// shows the streaming indicator only while a reply streams, offers Stop and Retry.
(function () {
  "use strict";
  const root = document.getElementById("conversation");
  if (!root) return;
  const conversationId = root.dataset.conversationId;
  const list = document.getElementById("messages");
  const indicator = document.getElementById("indicator");
  const indicatorText = document.getElementById("indicator-text");
  const sendButton = document.getElementById("send");
  const connection = document.getElementById("connection");
  const announcer = document.getElementById("announcer");
  const composer = document.getElementById("composer");
  const input = document.getElementById("input");
  const composerError = document.getElementById("composer-error");
  const picker = document.getElementById("model");

  // The contract's close codes, the statuses that offer Retry and the providers' names, from the
  // server (chat/frames.py, providers/registry.py).
  const CONFIG = JSON.parse(root.dataset.config);
  const CLOSE = CONFIG.close;
  const RETRY_STATUSES = CONFIG.retry_statuses;
  const PROVIDERS = CONFIG.providers;
  const MODEL_NAMES = CONFIG.model_names;
  const ESTIMATE = CONFIG.estimate;
  const estimateLine = document.getElementById("estimate");

  // A finished reply's cost line, written as the server writes it after a reload (the
  // `reply_cost` template tag): model, tokens in and out, coins or the person's own key.
  function costLine(model, f) {
    const count = (n) => (n || 0).toLocaleString("en-US");
    const tokens = `${count(f.usage.input_tokens)} tokens in, ${count(f.usage.output_tokens)} out`;
    const paid = f.byok
      ? `paid with your own ${PROVIDERS[f.provider] || f.provider} key`
      : `${f.coins_charged} coin${f.coins_charged === 1 ? "" : "s"}`;
    return `${MODEL_NAMES[model] || model} · ${tokens} · ${paid}`;
  }

  // Offsets in the contract count Unicode code points, not UTF-16 units.
  const cpLength = (s) => { let n = 0; for (const _ of s) n++; return n; };
  const cpSlice = (s, start) => Array.from(s).slice(start).join("");

  const replies = new Map();  // message id -> {el, text, textLen, thinking, thinkingLen, status}
  // Sends not yet confirmed by the server's `user_message`, in order. They are (re)sent whenever
  // the socket opens; the `client_id` makes a resend start one reply, not two.
  const pending = new Map();  // client_id -> {el, frame}
  let socket = null;
  let attempts = 0;
  let renderQueued = new Set();
  let paintScheduled = false;

  function announce(text) { announcer.textContent = text; }

  function showBalance(balance) {
    const box = document.getElementById("balance");
    if (!box || typeof balance !== "number") return;
    document.getElementById("balance-value").textContent = String(balance);
    document.getElementById("balance-unit").textContent = balance === 1 ? "coin" : "coins";
    const low = balance < Number(box.dataset.low);
    box.classList.toggle("balance--low", low);
    document.getElementById("balance-warning").hidden = !low;
    document.getElementById("low-balance-help").hidden = !low;
    showEstimate();
  }

  // The text sent upstream with a new message: every message on the page (as the server
  // counts it, in code points; a reply's own text, not its rendering).
  function historyCharacters() {
    let total = 0;
    for (const li of list.children) {
      if (li.hidden) continue;  // another branch: not sent
      if (li.classList.contains("message--user")) {
        total += cpLength(li.querySelector(".body").textContent);
      } else {
        const r = replies.get(Number(li.dataset.messageId));
        total += r ? r.textLen : cpLength(li.dataset.content || "");
      }
    }
    return total;
  }

  // Under the composer, as a person types: what the message costs at most with the chosen
  // model (what the server will hold), and what a reply of that model typically costs here.
  function showEstimate() {
    const text = input.value.trim();
    const model = ESTIMATE.models[picker.value];
    if (!text || !model) { estimateLine.textContent = ""; return; }
    const name = MODEL_NAMES[picker.value] || picker.value;
    const balance = Number(document.getElementById("balance-value").textContent);
    const worst = window.ChatEstimate.worstCase(
      ESTIMATE, model, historyCharacters() + cpLength(text), balance);
    const coins = (n) => `${n.toLocaleString("en-US")} coin${n === 1 ? "" : "s"}`;
    const typical = model.typical === null || model.typical === undefined ? ""
      : ` A typical ${name} reply here costs about ${coins(model.typical)}.`;
    if (worst.ownKey) {
      estimateLine.textContent = `${name} is paid with your own key: no coins.`;
    } else if (worst.tooFew) {
      estimateLine.textContent =
        `Not enough coins for a reply from ${name} (your balance is ${coins(balance)}).`;
    } else {
      const limited = worst.tokens < model.max_tokens
        ? ` (your balance limits the reply to ${worst.tokens.toLocaleString("en-US")} tokens)` : "";
      estimateLine.textContent = `At most ${coins(worst.coins)} with ${name}${limited}.${typical}`;
    }
  }

  // A message that arrived while the page is open: a copy of the server's blank one
  // (templates/chat/_message.html), placed by id (the tree's order is the order of ids).
  function newMessage(role, id, parentId) {
    const el = document.getElementById(`blank-${role}`).content.firstElementChild.cloneNode(true);
    if (id) el.dataset.messageId = id;
    el.dataset.parentId = parentId === null || parentId === undefined ? "" : String(parentId);
    const later = id && [...list.children].find(
      (li) => li.dataset.messageId && Number(li.dataset.messageId) > Number(id));
    list.insertBefore(el, later || null);
    return el;
  }

  function replyFor(id, create, parentId) {
    let r = replies.get(id);
    if (r) return r;
    let el = list.querySelector(`li[data-message-id="${id}"]`);
    if (!el) {
      if (!create) return null;
      el = newMessage("assistant", id, parentId);
    }
    const text = el.dataset.content || "";
    const thinking = el.dataset.thinking || "";
    r = { el, text, textLen: cpLength(text), thinking, thinkingLen: cpLength(thinking),
          status: el.dataset.status || "streaming", tools: JSON.parse(el.dataset.tools || "[]") };
    replies.set(id, r);
    return r;
  }

  function render(r) {
    renderQueued.add(r);
    if (paintScheduled) return;
    paintScheduled = true;
    window.requestAnimationFrame(() => {
      paintScheduled = false;
      const queued = renderQueued;
      renderQueued = new Set();
      for (const q of queued) paint(q);
    });
  }

  // The reply's text was replaced rather than added to (a snapshot, a retry): painted anew.
  function replaced(r) { r.generation = (r.generation || 0) + 1; }

  function paint(r) {
    const body = r.el.querySelector(".body");
    if (r.tools.length) {
      paintWithTools(r, body);
    } else if (r.status === "streaming") {
      r.layout = null;
      paintStreaming(r, body, 0);
    } else {
      // Ended: rendered whole once, as the server renders it; its code highlighted, with
      // copy buttons.
      r.stream = null;
      r.layout = null;
      body.innerHTML = window.renderMarkdown(r.text);
      decorate(body);
    }
    const details = r.el.querySelector(".thinking");
    details.hidden = !r.thinking;
    details.querySelector(".thinking-body").textContent = r.thinking;
  }

  // While a reply streams it is painted block by block. A block that has ended (at a blank line
  // outside a code fence, and not followed by an indented continuation) is rendered once and
  // kept; only the block being written is rendered again at each frame. So a frame costs one
  // block, not the whole reply, and what is on screen stays put: a selection in it holds, and a
  // screen reader keeps its place.
  const FENCE = /^ {0,3}(`{3,}|~{3,})/;
  const CLOSING_FENCE = /^ {0,3}(`{3,}|~{3,})\s*$/;

  // `from`: where in the text (UTF-16 index) the part painted into `body` starts (after the
  // reply's last tool calls; 0 without).
  function paintStreaming(r, body, from) {
    let s = r.stream;
    if (!s || s.generation !== r.generation || body.firstElementChild !== s.done || s.from !== from) {
      body.innerHTML = '<div class="stream-done"></div><div class="stream-tail"></div>';
      s = r.stream = { generation: r.generation, done: body.firstElementChild, from,
                       tail: body.lastElementChild, cut: from, scan: from, fence: null };
    }
    const text = r.text;
    let cut = s.cut;
    let pos = s.scan;
    for (;;) {
      const end = text.indexOf("\n", pos);
      if (end === -1) break;  // a line still being written
      const line = text.slice(pos, end);
      if (s.fence) {
        const closing = CLOSING_FENCE.exec(line);
        if (closing && closing[1][0] === s.fence[0] && closing[1].length >= s.fence.length) {
          s.fence = null;
        }
      } else if (FENCE.test(line)) {
        s.fence = FENCE.exec(line)[1];
      } else if (line.trim() === "") {
        const next = text.charAt(end + 1);
        if (next === "") break;  // what follows decides: look again at the next frame
        if (next !== " " && next !== "\t" && next !== "\n") cut = end + 1;
      }
      pos = end + 1;
    }
    s.scan = pos;
    if (cut > s.cut) {
      const block = document.createElement("template");
      block.innerHTML = window.renderMarkdown(text.slice(s.cut, cut));
      s.done.append(block.content);
      s.cut = cut;
    }
    s.tail.innerHTML = window.renderMarkdown(text.slice(s.cut));
  }

  // --- tool calls: each a collapsed block where the text stood when the model asked ---------

  // The calls grouped by their offset (code points into the text), in order.
  function toolGroups(calls) {
    const groups = [];
    for (const call of calls) {
      const last = groups.at(-1);
      if (last && last.offset === call.offset) last.calls.push(call);
      else groups.push({ offset: call.offset, calls: [call] });
    }
    return groups;
  }

  // The UTF-16 index of the code point at `cp` (the contract counts code points).
  function cpIndex(text, cp) {
    let index = 0;
    let n = 0;
    for (const ch of text) {
      if (n === cp) return index;
      index += ch.length;
      n++;
    }
    return text.length;
  }

  // "running…", "failed · 1.2 s" or "3 ms", as the server writes it (`tool_status`).
  function toolStatus(call) {
    if (!call.result) return "running…";
    const ms = call.result.duration_ms || 0;
    const took = ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
    return call.result.is_error ? `failed · ${took}` : took;
  }

  function toolBlock(call) {
    const el = document.getElementById("blank-tool").content.firstElementChild.cloneNode(true);
    el.dataset.callId = call.call_id;
    el.querySelector(".tool-name").textContent = call.name;
    el.querySelector(".tool-input code").textContent = JSON.stringify(call.input || {}, null, 2);
    return el;
  }

  function fillTool(el, call) {
    const state = !call.result ? "running" : call.result.is_error ? "error" : "done";
    if (el.dataset.state === state) return;
    el.dataset.state = state;
    el.querySelector(".tool-status").textContent = toolStatus(call);
    const heading = el.querySelector(".tool-result-heading");
    const result = el.querySelector(".tool-result");
    heading.hidden = result.hidden = !call.result;
    if (!call.result) return;
    heading.textContent = call.result.is_error ? "Error" : "Result";
    result.querySelector("code").textContent = call.result.content;
  }

  // A reply with tool calls: its text cut where it called them, the blocks between the parts.
  // The parts before the last calls are finished (rendered once); the part after them streams
  // as a reply without tools does. The blocks are kept across repaints (an opened one stays
  // open).
  function paintWithTools(r, body) {
    const groups = toolGroups(r.tools);
    const key = `${r.generation || 0}|${groups.map((g) => `${g.offset}:${g.calls.length}`).join(",")}`;
    let layout = r.layout;
    if (!layout || layout.key !== key || !body.contains(layout.last)) {
      const blocks = layout ? layout.blocks : new Map();
      for (const old of body.querySelectorAll(".tool-call")) {
        if (!blocks.has(old.dataset.callId)) blocks.set(old.dataset.callId, old);
      }
      body.replaceChildren();
      let start = 0;
      for (const group of groups) {
        const offset = Math.min(Math.max(group.offset, start), r.textLen);
        const text = r.text.slice(cpIndex(r.text, start), cpIndex(r.text, offset));
        if (text) {
          const part = document.createElement("div");
          part.className = "segment";
          part.innerHTML = window.renderMarkdown(text);
          decorate(part);
          body.appendChild(part);
        }
        const box = document.createElement("div");
        box.className = "tool-calls";
        for (const call of group.calls) {
          if (!blocks.has(call.call_id)) blocks.set(call.call_id, toolBlock(call));
          box.appendChild(blocks.get(call.call_id));
        }
        body.appendChild(box);
        start = offset;
      }
      const last = document.createElement("div");
      last.className = "segment";
      body.appendChild(last);
      layout = r.layout = { key, last, blocks, from: cpIndex(r.text, start) };
      r.stream = null;
    }
    if (r.status === "streaming") {
      paintStreaming(r, layout.last, layout.from);
    } else {
      r.stream = null;
      layout.last.innerHTML = window.renderMarkdown(r.text.slice(layout.from));
      decorate(layout.last);
    }
    for (const call of r.tools) fillTool(layout.blocks.get(call.call_id), call);
  }

  // Syntax highlighting (highlight.js, served by the site) and a Copy button on each code block
  // of the reply's text (a tool call's input and result are shown as they are).
  function decorate(body) {
    for (const code of body.querySelectorAll("pre > code")) {
      if (code.closest(".tool-call")) continue;
      if (window.hljs && !code.classList.contains("hljs")) window.hljs.highlightElement(code);
      const pre = code.parentElement;
      if (pre.querySelector(".copy-code")) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy this code");
      pre.appendChild(button);
    }
  }

  // The clipboard, where the page may write to it (a secure origin), else a selection copied.
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      return done;
    }
  }

  async function copied(button, text) {
    const done = await copyText(text);
    // Its own label, kept from the first click (a second one within 1.5 s reads "Copied").
    const label = button.dataset.label || (button.dataset.label = button.textContent);
    button.textContent = done ? "Copied" : "Copy failed";
    announce(done ? "Copied." : "Copying failed.");
    window.setTimeout(() => { button.textContent = label; }, 1500);
  }

  function setStatus(r, status) {
    r.status = status;
    r.el.dataset.status = status;
    const streaming = status === "streaming";
    r.el.setAttribute("aria-busy", streaming ? "true" : "false");
    const note = r.el.querySelector(".message-note");
    note.hidden = status !== "stopped";
    if (status === "stopped") note.textContent = "Stopped.";
    if (!["error", "interrupted"].includes(status)) r.el.querySelector(".message-error").hidden = true;
    updateIndicator();
  }

  function isStreaming() {
    return [...replies.values()].some((r) => r.status === "streaming");
  }

  // While a reply streams, Send is Stop (Escape too); what is typed stays in the composer.
  // When it ends, an error that spoke of it (a send refused meanwhile) no longer applies.
  function updateIndicator() {
    const streaming = isStreaming();
    indicator.hidden = !streaming;
    if (streaming) indicatorText.textContent = "Writing…";
    sendButton.textContent = streaming ? "Stop" : "Send";
    sendButton.classList.toggle("stop", streaming);
    sendButton.setAttribute("aria-label", streaming ? "Stop the reply (Escape)" : "Send");
    if (!streaming && composerError.dataset.whileStreaming) showComposerError("");
    updateActions();
  }

  // --- the tree: every message is on the page, the current branch is shown -------------------

  const messageEls = () => [...list.children].filter((li) => li.dataset.messageId);
  const byId = (id) => list.querySelector(`li[data-message-id="${id}"]`);
  const parentOf = (li) => li.dataset.parentId || "";
  const childrenOf = (id) => messageEls().filter((li) => parentOf(li) === String(id));

  // The ids from the root to `id`, or null if the page lacks one of them.
  function pathTo(id) {
    const path = [];
    for (let li = byId(id); li; li = parentOf(li) ? byId(parentOf(li)) : null) {
      path.unshift(li.dataset.messageId);
      if (!parentOf(li)) return path;
    }
    return null;
  }

  // The end of the branch through `id`: its newest child at each step (as the server picks it).
  function leafUnder(id) {
    for (;;) {
      const newest = childrenOf(id).at(-1);
      if (!newest) return id;
      id = newest.dataset.messageId;
    }
  }

  // Show one branch (ids from the root); messages not yet confirmed stay where they are.
  function showBranch(path) {
    const shown = new Set(path.map(String));
    for (const li of messageEls()) li.hidden = !shown.has(li.dataset.messageId);
    updateVersions();
    updateActions();
  }

  // "‹ 2 / 3 ›" on every shown message that has other versions.
  function updateVersions() {
    for (const li of messageEls()) {
      if (li.hidden) continue;
      const versions = messageEls().filter((other) => parentOf(other) === parentOf(li));
      const box = li.querySelector(".versions");
      box.hidden = versions.length < 2;
      if (box.hidden) continue;
      const at = versions.indexOf(li);
      box.querySelector(".version-count").textContent = `${at + 1} / ${versions.length}`;
      box.setAttribute("aria-label", `Version ${at + 1} of ${versions.length}`);
      box.querySelector(".version-prev").disabled = at === 0;
      box.querySelector(".version-next").disabled = at === versions.length - 1;
    }
  }

  // Retry (in place) on a reply that failed or was stopped and that nothing follows yet;
  // Regenerate on any other finished reply; Edit on a person's messages; Copy on every message
  // but a reply being written. Edit and Regenerate wait while a reply is being written (one at
  // a time).
  function updateActions() {
    const streaming = isStreaming();
    for (const li of messageEls()) {
      const edit = li.querySelector(".edit");
      if (edit) { edit.hidden = false; edit.disabled = streaming; continue; }
      const status = li.dataset.status;
      // A reply's actions are for a reply that has ended (while it streams, Stop is the one).
      li.querySelector(".copy-message").hidden = status === "streaming";
      const retry = li.querySelector(".retry");
      retry.hidden = !RETRY_STATUSES.includes(status) || childrenOf(li.dataset.messageId).length > 0;
      const regenerate = li.querySelector(".regenerate");
      regenerate.hidden = status === "streaming" || !retry.hidden;
      regenerate.disabled = streaming;
    }
  }

  // Switch to another version of a message: shown here at once, then every tab follows the
  // server's `branch`. Focus stays on the same control of the version now shown.
  function selectVersion(li, step, control) {
    const versions = messageEls().filter((other) => parentOf(other) === parentOf(li));
    const target = versions[versions.indexOf(li) + step];
    if (!target) return;
    const path = pathTo(leafUnder(target.dataset.messageId));
    if (path) showBranch(path);
    transmit({ type: "select", message_id: Number(target.dataset.messageId) });
    const same = target.querySelector(control);
    (same.disabled ? target.querySelector(".version-count") : same).focus();
    announce(`Version ${versions.indexOf(target) + 1} of ${versions.length}.`);
  }

  // The page lacks messages of the branch to show (it missed them while away): its list is
  // read again from the server, and what this tab has not sent yet is kept.
  async function refreshMessages() {
    let page;
    try {
      const response = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (!response.ok) return;
      page = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch { return; }
    const fresh = page.getElementById("messages");
    if (!fresh) return;
    const unsent = [...list.children].filter((li) => !li.dataset.messageId);
    list.replaceChildren(...fresh.children, ...unsent);
    replies.clear();
    for (const el of list.querySelectorAll("li.message--assistant[data-message-id]")) {
      const r = replyFor(Number(el.dataset.messageId), false);
      if (r.status !== "streaming") decorate(el.querySelector(".body"));
      else render(r);
    }
    updateVersions();
    updateIndicator();
  }

  function followBranch(path) {
    if (path.every((id) => byId(id))) showBranch(path);
    else refreshMessages();
  }

  function join(r, field, text, offset) {
    const lenField = field + "Len";
    const have = r[lenField];
    if (offset > have) { resync(); return; }  // a gap: a fresh snapshot fills it
    const n = cpLength(text);
    if (offset + n <= have) return;          // already have it
    const skip = have - offset;
    r[field] += skip > 0 ? cpSlice(text, skip) : text;
    r[lenField] = offset + n;
    render(r);
  }

  function resync() {
    if (socket) socket.close(CLOSE.resync, "resync");
  }

  function addUserMessage(content, messageId, parentId) {
    const el = newMessage("user", messageId, parentId);
    el.querySelector(".body").textContent = content;
    el.scrollIntoView({ block: "end" });
    return el;
  }

  function transmit(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function showComposerError(text) {
    composerError.textContent = text;
    composerError.hidden = !text;
    // Shown while a reply streams: it goes when the reply ends.
    if (text && isStreaming()) composerError.dataset.whileStreaming = "1";
    else delete composerError.dataset.whileStreaming;
  }

  // --- the conversation's name, here and in the list -------------------------------------

  function sidebarLink(id) {
    return document.querySelector(`.conversation-list a[data-conversation-id="${id}"]`);
  }

  function showTitle(title) {
    document.getElementById("conversation-title").textContent = title;
    document.title = title;
    const link = sidebarLink(conversationId);
    if (link) link.textContent = title;
    for (const el of document.querySelectorAll(".delete-title")) el.textContent = title;
  }
  window.ChatPage = { showTitle };

  // A conversation is listed from its first message on: it goes to the top of the list.
  function listThisConversation() {
    if (sidebarLink(conversationId)) return;
    const list = document.getElementById("conversation-list");
    if (!list) return;
    const empty = document.getElementById("no-conversations");
    if (empty) empty.remove();
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = window.location.pathname;
    link.dir = "auto";
    link.dataset.conversationId = conversationId;
    link.setAttribute("aria-current", "page");
    link.textContent = document.getElementById("conversation-title").textContent;
    item.appendChild(link);
    list.prepend(item);
  }

  const handlers = {
    conversation_title(f) {
      // Named (by its first reply, or renamed by the person in any tab): the list follows.
      const link = sidebarLink(f.conversation_id);
      if (link) link.textContent = f.title;
      if (String(f.conversation_id) !== String(conversationId)) return;
      showTitle(f.title);
      if (f.coins_charged === undefined) return;
      // What naming the conversation cost, under the reply it followed.
      showBalance(f.balance);
      const r = replyFor(f.message_id, false);
      if (r) r.el.querySelector(".message-title-cost").textContent = "Title · " + costLine(f.model, f);
    },
    balance(f) { showBalance(f.balance); },
    conversation_deleted(f) {
      if (String(f.conversation_id) === String(conversationId)) {
        window.location.assign("/chat/?deleted=1");  // deleted in another tab: nothing to show
        return;
      }
      const link = sidebarLink(f.conversation_id);
      if (link) link.closest("li").remove();
    },
    user_message(f) {
      hideExamples();
      listThisConversation();
      const mine = f.client_id && pending.get(f.client_id);
      if (mine) pending.delete(f.client_id);
      if (mine && mine.editor) closeEditor(mine.editor, input);
      if (mine && mine.el) {
        mine.el.dataset.messageId = f.message_id;
        mine.el.dataset.parentId = f.parent_id === null ? "" : String(f.parent_id);
        mine.el.classList.remove("message--pending");
      } else if (!byId(f.message_id)) {
        addUserMessage(f.content, f.message_id, f.parent_id);
      } else {
        return;  // known already (a catch-up after a reconnect)
      }
      // A new message ends the current branch, in every tab.
      const path = pathTo(f.message_id);
      if (path) showBranch(path); else refreshMessages();
    },
    branch(f) {
      if (String(f.conversation_id) === String(conversationId)) followBranch(f.path);
    },
    message_start(f) {
      const r = replyFor(f.message_id, true, f.parent_id);
      const path = pathTo(f.message_id);
      if (path) showBranch(path); else refreshMessages();
      // A retry restarts the text at offset 0; the old text stays on screen until new text
      // arrives (the next paint replaces it).
      r.text = ""; r.textLen = 0; r.thinking = ""; r.thinkingLen = 0; r.tools = []; replaced(r);
      r.el.querySelector(".message-error").hidden = true;
      r.el.querySelector(".message-meta").textContent = "";
      r.el.dataset.model = f.model;
      r.el.querySelector(".message-author").textContent = MODEL_NAMES[f.model] || f.model;
      setStatus(r, "streaming");
      r.el.scrollIntoView({ block: "end" });
      announce("The reply has started.");
    },
    text_delta(f) { const r = replyFor(f.message_id, true); join(r, "text", f.text, f.offset); },
    thinking_delta(f) {
      const r = replyFor(f.message_id, true); join(r, "thinking", f.text, f.offset);
    },
    message_snapshot(f) {
      const r = replyFor(f.message_id, true);
      // The catch-up after a load or a reconnect repeats what the page shows of an ended reply:
      // it is left as it is, so a selection in it, or a screen reader's place, holds.
      if (f.status !== "streaming" && f.status === r.status && f.content === r.text &&
          (f.thinking || "") === r.thinking &&
          JSON.stringify(f.tools || []) === JSON.stringify(r.tools)) return;
      r.text = f.content; r.textLen = cpLength(f.content); replaced(r);
      r.thinking = f.thinking || ""; r.thinkingLen = cpLength(r.thinking);
      r.tools = (f.tools || []).map((call) => ({ ...call }));
      setStatus(r, f.status);
      render(r);
    },
    tool_call(f) {
      const r = replyFor(f.message_id, true);
      if (r.tools.some((call) => call.call_id === f.call_id)) return;  // had it (a snapshot)
      r.tools.push({ call_id: f.call_id, name: f.name, input: f.input, offset: f.offset,
                     result: null });
      render(r);
      indicatorText.textContent = `Using ${f.name}…`;
      announce(`The reply is using a tool: ${f.name}.`);
    },
    tool_result(f) {
      const r = replyFor(f.message_id, true);
      const call = r.tools.find((c) => c.call_id === f.call_id);
      if (!call || call.result) return;
      call.result = { is_error: f.is_error, content: f.content, duration_ms: f.duration_ms };
      render(r);
      if (r.tools.every((c) => c.result)) indicatorText.textContent = "Writing…";
    },
    conversation_tools(f) {
      if (String(f.conversation_id) !== String(conversationId) || !toolsSwitch) return;
      toolsSwitch.checked = f.enabled;
    },
    retrying(f) {
      indicatorText.textContent =
        `${f.message} Trying again (attempt ${f.attempt} of ${f.max_attempts})…`;
      announce("The provider failed; trying again.");
    },
    message_stop(f) {
      const r = replyFor(f.message_id, true);
      const stopped = f.stop_reason === "stopped";
      setStatus(r, stopped ? "stopped" : "complete");
      if (f.stop_reason === "tool_limit") {
        // The model still asked for tools in the loop's last round: the reply says why it ends.
        const note = r.el.querySelector(".message-note");
        note.textContent = CONFIG.tool_limit_ending;
        note.hidden = false;
      }
      render(r);
      showBalance(f.balance);
      const cost = costLine(r.el.dataset.model, f);
      r.el.querySelector(".message-meta").textContent = cost;
      // Once, at the end (not every token): how it ended, what it cost, the balance left.
      const left = typeof f.balance === "number" ? ` Your balance is ${f.balance} coin${f.balance === 1 ? "" : "s"}.` : "";
      announce(`${stopped ? "The reply was stopped." : "The reply is complete."} ${cost}.${left}`);
    },
    error(f) {
      if (f.message_id === undefined) {
        // Refused before any reply began. A refused send names itself: its text goes back into
        // the composer, so nothing typed is lost.
        const refused = f.client_id && pending.get(f.client_id);
        if (refused) pending.delete(f.client_id);
        if (refused && refused.editor) {
          // A refused edit stays open with its text, and says why.
          editorError(refused.editor, f.message);
          return;
        }
        if (refused) {
          refused.el.remove();
          if (!input.value) input.value = refused.frame.content;
        }
        showComposerError(f.message);
        return;
      }
      const r = replyFor(f.message_id, true);
      if (f.partial_content && cpLength(f.partial_content) > r.textLen) {
        r.text = f.partial_content; r.textLen = cpLength(r.text); replaced(r); render(r);
      }
      const box = r.el.querySelector(".message-error");
      box.textContent = f.message;
      box.hidden = false;
      setStatus(r, f.code === "interrupted" ? "interrupted" : "error");
      render(r);  // its code, if any, highlighted now that it has ended
      if (f.coins_charged !== undefined) {
        // It wrote text before it failed, and was billed for that.
        showBalance(f.balance);
        r.el.querySelector(".message-meta").textContent = costLine(r.el.dataset.model, f);
      }
      announce("The reply failed: " + f.message);
    },
  };

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${conversationId}/`);
    socket.addEventListener("open", () => {
      attempts = 0;
      connection.hidden = true;
      for (const p of pending.values()) transmit(p.frame);
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (event.code === CLOSE.signed_out) { window.location.assign("/accounts/login/"); return; }
      if (event.code === CLOSE.not_found) { connection.textContent = "This conversation is gone."; connection.hidden = false; return; }
      if (event.code === CLOSE.too_many_frames) {
        connection.textContent = "This tab sent too many messages at once. It reconnects in 10 s.";
        connection.hidden = false;
        window.setTimeout(connect, 10000);
        return;
      }
      if (event.code === CLOSE.too_many_sockets) {
        connection.textContent = "Too many open chat tabs. Close some; this one tries again in 30 s.";
        connection.hidden = false;
        window.setTimeout(connect, 30000);
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** attempts) * (0.75 + Math.random() / 2);
      attempts += 1;
      if (event.code !== CLOSE.resync) {
        connection.textContent = "Connection lost. Reconnecting…";
        connection.hidden = false;
      }
      window.setTimeout(connect, event.code === CLOSE.resync ? 0 : delay);
    });
  }

  // An empty conversation's examples: a click puts one in the message box; the first message
  // (from this tab or another) takes them away.
  const examples = document.getElementById("examples");
  if (examples) {
    examples.addEventListener("click", (event) => {
      const button = event.target.closest("button.example");
      if (!button) return;
      input.value = button.dataset.prompt;
      showEstimate();
      input.focus();
    });
  }
  function hideExamples() { if (examples) examples.remove(); }

  function send() {
    const content = input.value.trim();
    if (!content) return;
    hideExamples();
    showComposerError("");
    const clientId = window.crypto.randomUUID();
    const frame = { type: "send", content, model: picker.value, client_id: clientId };
    // It follows what this tab shows (the end of the branch on screen).
    const shown = [...list.children].filter((li) => !li.hidden);
    const last = shown.at(-1);
    if (last && last.dataset.messageId) frame.parent_id = Number(last.dataset.messageId);
    const el = addUserMessage(content);
    el.classList.add("message--pending");
    pending.set(clientId, { el, frame });
    transmit(frame);  // or, if the socket is not open yet, as soon as it opens
    input.value = "";
    showEstimate();
    input.focus();
  }

  // The picker: show the chosen model's description and price, and remember it for this
  // conversation (the server keeps it; a failed save is shown and the choice still applies).
  function showModelInfo() {
    const option = picker.selectedOptions[0];
    if (!option) return;
    const retires = option.dataset.retires ? ` Retires on ${option.dataset.retires}.` : "";
    document.getElementById("model-info").textContent =
      `${option.dataset.description} ${option.dataset.price}.${retires}`;
  }
  picker.addEventListener("change", async () => {
    showModelInfo();
    showEstimate();
    const error = document.getElementById("model-error");
    error.hidden = true;
    const token = document.querySelector('input[name="csrfmiddlewaretoken"]');
    const body = new URLSearchParams({ model: picker.value });
    try {
      const response = await fetch(picker.dataset.saveUrl, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": token ? token.value : "" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        const payload = await response.json().catch(() => ({}));
        error.textContent = payload.error || "The model choice could not be saved.";
        error.hidden = false;
      } else {
        document.getElementById("model-note").hidden = true;
      }
    } catch {
      error.textContent = "The model choice could not be saved (connection lost).";
      error.hidden = false;
    }
  });

  // The conversation's switch for tools: saved at once; every tab of the person follows
  // (`conversation_tools`). A failed save puts it back and says so.
  const toolsSwitch = document.getElementById("tools-enabled");
  if (toolsSwitch) {
    toolsSwitch.addEventListener("change", async () => {
      const error = document.getElementById("tools-error");
      error.hidden = true;
      const token = document.querySelector('input[name="csrfmiddlewaretoken"]');
      const body = new URLSearchParams({ enabled: toolsSwitch.checked ? "true" : "false" });
      let saved = false;
      try {
        const response = await fetch(toolsSwitch.dataset.saveUrl, {
          method: "POST",
          body,
          headers: { "X-CSRFToken": token ? token.value : "", Accept: "application/json" },
          credentials: "same-origin",
        });
        saved = response.ok;
      } catch { saved = false; }
      if (!saved) {
        toolsSwitch.checked = !toolsSwitch.checked;
        error.textContent = "The tools switch could not be saved. Try again.";
        error.hidden = false;
      }
    });
  }

  function stop() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "stop" }));
      indicatorText.textContent = "Stopping…";
    }
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    if (isStreaming()) { stop(); input.focus(); } else send();
  });
  input.addEventListener("input", showEstimate);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (!isStreaming()) { send(); return; }
      if (input.value.trim()) {
        showComposerError("A reply is being written: your message waits here. Press Escape to stop the reply.");
      }
    }
  });
  document.addEventListener("keydown", (event) => {
    // Escape in an open dialog closes it; it stops no reply.
    if (event.key === "Escape" && isStreaming() && !event.isComposing &&
        !document.querySelector("dialog[open]")) {
      event.preventDefault();
      stop();
    }
  });
  list.addEventListener("click", (event) => {
    const copyMessage = event.target.closest(".copy-message");
    if (copyMessage) {
      // A reply as its Markdown; a person's message as they typed it.
      const li = copyMessage.closest("li");
      const r = replies.get(Number(li.dataset.messageId));
      copied(copyMessage, r ? r.text : li.querySelector(".body").textContent);
      return;
    }
    const copyCode = event.target.closest(".copy-code");
    if (copyCode) {
      copied(copyCode, copyCode.parentElement.querySelector("code").textContent);
      return;
    }
    const version = event.target.closest(".version-prev, .version-next");
    if (version) {
      const next = version.classList.contains("version-next");
      selectVersion(version.closest("li"), next ? 1 : -1, next ? ".version-next" : ".version-prev");
      return;
    }
    const edit = event.target.closest(".edit");
    if (edit) { openEditor(edit.closest("li")); return; }
    const button = event.target.closest(".retry, .regenerate");
    if (!button || !socket || socket.readyState !== WebSocket.OPEN) return;
    const id = Number(button.closest("li").dataset.messageId);
    if (button.classList.contains("retry")) {
      socket.send(JSON.stringify({ type: "retry", message_id: id }));
      button.hidden = true;
    } else {
      // Another version of this reply, from the model picked now.
      socket.send(JSON.stringify({ type: "regenerate", message_id: id, model: picker.value }));
    }
  });

  // --- editing a message: a new version of it, and a reply to that --------------------------

  function openEditor(li) {
    if (li.querySelector(".editor")) return;
    const form = document.getElementById("editor").content.firstElementChild.cloneNode(true);
    const area = form.querySelector("textarea");
    area.id = `edit-${li.dataset.messageId}`;
    form.querySelector("label").htmlFor = area.id;
    area.value = li.querySelector(".body").textContent;
    li.querySelector(".body").hidden = true;
    li.querySelector(".message-actions").hidden = true;
    li.insertBefore(form, li.querySelector(".message-actions"));
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    form.addEventListener("submit", (event) => { event.preventDefault(); submitEdit(li, form); });
    form.querySelector(".editor-cancel").addEventListener("click", () => {
      closeEditor(form, li.querySelector(".edit"));
    });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();  // not the page's Escape, which stops a reply
        closeEditor(form, li.querySelector(".edit"));
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitEdit(li, form);
      }
    });
  }

  function closeEditor(form, focus) {
    const li = form.closest("li");
    li.querySelector(".body").hidden = false;
    li.querySelector(".message-actions").hidden = false;
    form.remove();
    if (focus) focus.focus();
  }

  function editorError(form, text) {
    const error = form.querySelector(".composer-error");
    error.textContent = text;
    error.hidden = !text;
    form.querySelector("button[type=submit]").disabled = false;
  }

  function submitEdit(li, form) {
    const content = form.querySelector("textarea").value.trim();
    if (!content) { editorError(form, "Write something first."); return; }
    if (isStreaming()) { editorError(form, "A reply is being written: wait for it, or stop it first."); return; }
    editorError(form, "");
    const clientId = window.crypto.randomUUID();
    const frame = { type: "edit", message_id: Number(li.dataset.messageId), content,
                    model: picker.value, client_id: clientId };
    pending.set(clientId, { editor: form, frame });
    form.querySelector("button[type=submit]").disabled = true;
    transmit(frame);  // or when the socket opens again
  }

  for (const el of list.querySelectorAll("li.message--assistant")) {
    const r = replyFor(Number(el.dataset.messageId), false);
    if (r.status !== "streaming") decorate(el.querySelector(".body"));
  }
  updateVersions();
  updateIndicator();
  connect();
  document.getElementById("send").disabled = false;
  root.dataset.ready = "true";
})();
