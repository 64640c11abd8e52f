/*
 * Chatbot's web client: one classic script, no framework and no build step.
 *
 * The server serves index.html at every client route (/, /login, /c/{id}, /settings,
 * /verify, /reset) and this script reads the address itself (history API). Everything
 * it shows comes from the JSON API under /api, with the session cookie; replies stream
 * over server-sent events read with fetch(), and every tab and device stays in sync
 * through the WebSocket at /api/ws.
 *
 * Sections, in order: DOM helpers, API client, server-sent events, Markdown, connection
 * banner, session and conversation list, real time, router, shell (header and
 * navigation), forms, views (sign in, mailed links, home, conversation, settings).
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- DOM helpers

  /**
   * Creates an element. `attrs` keys: `class`, `onX` (event listener for "x"), `value`
   * (the property, so textareas work too), anything else as an attribute (`true` gives
   * an empty attribute, `null`/`false` none). Children: nodes or strings.
   */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "value") el.value = value;
      else if (/^on[A-Z]/.test(key)) el.addEventListener(key.slice(2).toLowerCase(), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    el.append(...children.flat().filter((child) => child != null && child !== false));
    return el;
  }

  const ICON_PATHS = {
    menu: "M4 6h16M4 12h16M4 18h16",
    plus: "M12 5v14M5 12h14",
    edit: "M16.5 3.5a2.1 2.1 0 0 1 3 3L8 18l-4 1 1-4Z",
    trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
    send: "M12 19V5M6 11l6-6 6 6",
    stop: "M7 7h10v10H7Z",
    retry: "M4 12a8 8 0 1 0 2.3-5.6M4 4v5h5",
  };

  /** An inline SVG icon (decorative: the control around it carries the label). */
  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", `icon icon-${name}`);
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICON_PATHS[name]);
    svg.append(path);
    return svg;
  }

  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const formatDate = (iso) => dateFormat.format(new Date(iso));

  let uniqueId = 0;
  const nextId = (prefix) => `${prefix}-${++uniqueId}`;

  const escapeHtml = (text) =>
    String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  // ---------------------------------------------------------------- API client

  /** An error answer of the API ({"error", "code"}), or status 0 for no answer at all. */
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  /** How often a 503 ("the database cannot be reached", "hashing queue full") is retried. */
  const BUSY_RETRIES = 3;

  /**
   * Sends a request and returns the Response when it is 2xx. Retries 503 a few times
   * (the server says it recovers by itself), honouring Retry-After. Throws ApiError
   * otherwise; a 401 outside `publicCall` requests means the session ended.
   */
  async function request(method, path, { body, headers, signal, publicCall } = {}) {
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch(path, {
          method,
          headers: {
            Accept: "application/json",
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if (signal?.aborted) throw error;
        connection.unreachable();
        throw new ApiError(0, "network", "Cannot reach the server: check your connection.");
      }
      connection.reached();
      if (response.status === 503 && attempt < BUSY_RETRIES) {
        connection.busy(true);
        await sleep(retryDelay(response, attempt), signal);
        if (signal?.aborted) throw new DOMException("Aborted", "AbortError");
        continue;
      }
      connection.busy(false);
      if (response.ok) return response;
      const error = await errorOf(response);
      if (error.status === 401 && !publicCall) session.ended();
      throw error;
    }
  }

  /** request() for a JSON answer (null for 204). */
  async function api(method, path, options) {
    const response = await request(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  function retryDelay(response, attempt) {
    const seconds = Number(response.headers.get("Retry-After"));
    return seconds > 0 ? seconds * 1000 : 1000 * 2 ** attempt;
  }

  async function errorOf(response) {
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    try {
      const body = await response.json();
      return new ApiError(response.status, body.code, body.error, retryAfter);
    } catch {
      return new ApiError(response.status, "internal", `The server answered ${response.status}.`, retryAfter);
    }
  }

  /**
   * The sentence to show for an error. The API's sentences name fields as they are
   * spelled in JSON ("Display_name must not be empty."): written as words here.
   */
  function describe(error) {
    if (!(error instanceof ApiError)) return "Something went wrong. Reload the page and try again.";
    let text = error.message.replace(/^[a-z]+(_[a-z]+)+\b/i, (field) => field.replace(/_/g, " "));
    text = text.charAt(0).toUpperCase() + text.slice(1);
    if (error.status === 429 && error.retryAfter && !/try again in/i.test(text)) text += ` Try again in ${error.retryAfter} s.`;
    if (error.status === 503) text = "The service is busy: try again in a moment.";
    return text;
  }

  // ------------------------------------------------------- server-sent events

  /**
   * Reads a text/event-stream body, calling onEvent({type, data, id}) per event.
   * (EventSource cannot POST, so the send's stream is read with fetch and parsed here.)
   * Resolves when the server ends the stream; rejects when the connection breaks.
   */
  async function readEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A line ends at \n, \r\n or \r; a \r at the very end may be half of a \r\n.
      const complete = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, complete).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(complete);
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) onEvent({ type: event.type, data: event.data.join("\n"), id: event.id });
          event = { type: "message", data: [], id: event.id };
          continue;
        }
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  }

  // ------------------------------------------------------------------ Markdown

  // Markdown's output goes through DOMPurify all the same: tags that would load
  // something (an image at /api/logout would log the user out), submit something or
  // restyle the page may not come from a model, whatever the renderer below lets by.
  const SANITIZE = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["img", "picture", "source", "video", "audio", "track", "style", "form", "input", "button", "select", "textarea"],
    FORBID_ATTR: ["style"],
  };

  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName !== "A" || !node.hasAttribute("href")) return;
    // A link into this server's API would act with the user's cookie (GET /api/logout);
    // one that is not a URL at all leads nowhere.
    const url = URL.parse(node.getAttribute("href"), location.href);
    if (!url || (url.origin === location.origin && url.pathname.startsWith("/api"))) {
      node.removeAttribute("href");
      return;
    }
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  });

  marked.use({
    gfm: true,
    breaks: true,
    renderer: {
      // HTML in a reply is shown as the text it is: no markup from a model reaches the
      // page (nor DOMPurify's parser, which the page's CSP reports for every handler).
      html({ text, block }) {
        return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
      },
      // A Markdown image becomes a link to it: the page loads nothing a reply names.
      image({ href, text }) {
        return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
      },
      // A reply's headings sit under the conversation's title (h2): from h3 down.
      heading({ tokens, depth }) {
        const level = Math.min(depth + 2, 6);
        return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`;
      },
      // Task list boxes as characters: form controls are not let through.
      checkbox({ checked }) {
        return checked ? "☑ " : "☐ ";
      },
    },
  });

  /** A reply's Markdown as sanitised HTML: no script, handler or loaded resource. */
  function markdownToHtml(text) {
    try {
      return DOMPurify.sanitize(marked.parse(text), SANITIZE);
    } catch {
      return `<p>${escapeHtml(text)}</p>`;
    }
  }

  // --------------------------------------------------------- connection banner

  /**
   * One banner under the header for the state of the connection: offline (with a
   * Retry button) or the service busy. Offline wins over busy.
   */
  const connection = {
    offline: false,
    retrying: false,

    unreachable() {
      this.offline = true;
      this.show();
    },
    reached() {
      if (!this.offline) return;
      this.offline = false;
      this.show();
    },
    busy(retrying) {
      if (this.retrying === retrying) return;
      this.retrying = retrying;
      this.show();
    },
    show() {
      const banner = document.getElementById("banner");
      if (this.offline) {
        const text = navigator.onLine ? "Cannot reach the server." : "You are offline.";
        banner.replaceChildren(
          h("span", {}, text),
          h("button", { type: "button", class: "button small", "data-testid": "banner-retry", onClick: () => resync() }, "Retry"),
        );
      } else if (this.retrying) {
        banner.replaceChildren(h("span", {}, "Service busy, retrying…"));
      }
      banner.hidden = !this.offline && !this.retrying;
    },
  };

  window.addEventListener("offline", () => connection.unreachable());
  window.addEventListener("online", () => resync());

  /**
   * After a drop (offline, WebSocket reconnect): reload what may have changed meanwhile,
   * the conversation list and the open conversation.
   */
  async function resync() {
    if (!state.started) {
      start();
      return;
    }
    try {
      if (!state.me) {
        await api("GET", "/api/health", { publicCall: true });
        return;
      }
      state.me = await api("GET", "/api/me");
      renderHeader();
      await conversations.reload();
      await currentView?.resync?.();
      realtime.connect();
    } catch {
      // request() has shown why (banner, or the login page when the session ended).
    }
  }

  // -------------------------------------------- session and conversation list

  const state = {
    started: false, // whether the server has said who is logged in: until then, no page
    me: null, // GET /api/me's profile; null when logged out
    returnTo: null, // where to go after logging in
    notice: null, // a sentence for the next view to show ("Your session ended: log in again.")
  };

  const session = {
    /** Logged in: profile known, list loading, live updates on. */
    begin(profile) {
      state.me = profile;
      conversations.reset();
      conversations.loadMore().catch(() => {}); // a failure shows in the banner; resync retries
      realtime.connect();
    },

    /** Forgets the user on this page (after logout, deletion, or a reset). */
    clear() {
      state.me = null;
      realtime.disconnect();
      conversations.reset();
    },

    /** The server no longer knows this session: back to the sign-in page. */
    ended() {
      if (!state.me) return;
      session.clear();
      state.notice = "Your session ended: log in again.";
      state.returnTo = location.pathname + location.search;
      navigate("/login", { replace: true });
    },

    async logout() {
      try {
        await api("POST", "/api/logout", { publicCall: true });
      } catch {
        return; // offline: the banner says so, and the user is still logged in
      }
      session.clear();
      state.notice = "You are logged out.";
      navigate("/login");
    },
  };

  const PAGE_SIZE = 20;

  /** Most recently active first, ties by the newer id, as the server orders them. */
  const byActivity = (a, b) =>
    a.updated_at === b.updated_at ? b.id - a.id : a.updated_at < b.updated_at ? 1 : -1;

  /**
   * The user's conversations as far as loaded, most recently active first, page by
   * page with the cursor (`next`: undefined before the first page, null after the last).
   */
  const conversations = {
    items: [],
    next: undefined,
    loading: null,

    reset() {
      this.items = [];
      this.next = undefined;
      this.loading = null;
      renderConversationList();
    },

    find(id) {
      return this.items.find((c) => c.id === id);
    },

    /** Loads the next page (once at a time); resolves when it is in. */
    loadMore() {
      if (this.next === null) return Promise.resolve();
      if (this.loading) return this.loading;
      const query = new URLSearchParams({ limit: PAGE_SIZE });
      if (this.next) query.set("before", this.next);
      const loading = api("GET", `/api/conversations?${query}`)
        .then((page) => {
          if (this.loading !== loading) return;
          for (const conversation of page.conversations) this.upsert(conversation, { fromPage: true });
          this.next = page.next;
        })
        .finally(() => {
          if (this.loading === loading) this.loading = null;
          renderConversationList();
        });
      this.loading = loading;
      renderConversationList();
      return loading;
    },

    /**
     * Starts again from the first page (after a reconnect, or a disconnect for reading
     * too slowly): what changed meanwhile shows, rows still there keep their focus.
     */
    async reload() {
      const page = await api("GET", `/api/conversations?limit=${PAGE_SIZE}`);
      this.items = page.conversations;
      this.next = page.next;
      this.loading = null;
      renderConversationList();
      currentView?.renamed?.();
    },

    /**
     * Adds or updates one conversation and keeps the order. One that sorts after the
     * last loaded while more pages remain is left for its page, so paging shows no
     * conversation twice and skips none.
     */
    upsert(conversation, { fromPage = false } = {}) {
      const index = this.items.findIndex((c) => c.id === conversation.id);
      if (index >= 0) {
        this.items[index] = { ...this.items[index], ...conversation };
      } else {
        const last = this.items[this.items.length - 1];
        const beyondLoaded = this.next !== null && last && byActivity(conversation, last) > 0;
        if (beyondLoaded && !fromPage) return;
        this.items.push(conversation);
      }
      this.items.sort(byActivity);
      if (!fromPage) renderConversationList();
      if (conversation.id === currentView?.conversationId) currentView.renamed?.();
    },

    /** A message moved a conversation to the top; one not loaded yet comes with page one. */
    touch(id, when) {
      const conversation = this.find(id);
      if (conversation) this.upsert({ ...conversation, updated_at: when });
      else this.refreshFirstPage();
    },

    remove(id) {
      this.items = this.items.filter((c) => c.id !== id);
      renderConversationList();
    },

    async refreshFirstPage() {
      try {
        const page = await api("GET", `/api/conversations?limit=${PAGE_SIZE}`);
        for (const conversation of page.conversations) this.upsert(conversation);
      } catch {
        // The list stays as it was; the next resync reloads it.
      }
    },

    async create() {
      const conversation = await api("POST", "/api/conversations", { body: {} });
      this.upsert(conversation);
      return conversation;
    },

    async rename(id, name) {
      this.upsert(await api("PUT", `/api/conversations/${id}`, { body: { name } }));
    },

    async delete(id) {
      await api("DELETE", `/api/conversations/${id}`);
      this.removed(id);
    },

    /** Deleted here or elsewhere: off the list, and out of its page if it is open. */
    removed(id) {
      this.remove(id);
      if (currentView?.conversationId === id) {
        state.notice = "That conversation was deleted.";
        navigate("/", { replace: true });
      }
    },

    /** Finds a conversation's name, loading further pages when it is not loaded yet. */
    async lookup(id) {
      for (let pages = 0; !this.find(id) && this.next !== null && pages < 5; pages += 1) {
        await this.loadMore();
      }
      return this.find(id);
    },
  };

  // ------------------------------------------------------------------ real time

  /**
   * The WebSocket to /api/ws: every change to the user's data, made anywhere, arrives
   * here. Reconnects with backoff after a drop, then resyncs (events sent while it was
   * down are not replayed). Close codes: 4001 the session ended, 4008 too slow (reload
   * through REST), 1008 too many sockets for this user.
   */
  const realtime = {
    socket: null,
    attempt: 0,
    timer: null,
    dropped: false,

    connect() {
      if (!state.me || this.socket) return;
      clearTimeout(this.timer);
      const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/ws`;
      const socket = new WebSocket(url);
      this.socket = socket;
      socket.addEventListener("open", () => {
        this.attempt = 0;
        if (this.dropped) {
          this.dropped = false;
          resync();
        }
      });
      socket.addEventListener("message", (event) => this.receive(event.data));
      socket.addEventListener("close", (event) => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.dropped = true;
        this.closed(event.code);
      });
    },

    disconnect() {
      clearTimeout(this.timer);
      const socket = this.socket;
      this.socket = null;
      this.dropped = false;
      socket?.close(1000);
    },

    async closed(code) {
      if (!state.me) return;
      if (code === 4001) {
        // After a password change this tab holds a new session key: only a 401 from
        // the API means this session really ended (request() then shows the login).
        try {
          state.me = await api("GET", "/api/me");
        } catch {
          return;
        }
        this.connect();
        return;
      }
      if (code === 4008) {
        this.connect();
        return;
      }
      const base = code === 1008 ? 30000 : Math.min(30000, 1000 * 2 ** this.attempt);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), base * (0.5 + Math.random() / 2));
    },

    receive(text) {
      let event;
      try {
        event = JSON.parse(text);
      } catch {
        return;
      }
      const chat = currentView?.conversationId === event.conversation_id ? currentView : null;
      switch (event.type) {
        case "conversation.created":
        case "conversation.updated":
          conversations.upsert(event.conversation);
          break;
        case "conversation.deleted":
          conversations.removed(event.conversation_id);
          break;
        case "message.created":
          conversations.touch(event.conversation_id, event.message.created_at);
          chat?.live.created(event.message);
          break;
        case "message.delta":
          chat?.live.delta(event.message_id, event.seq, event.text);
          break;
        case "message.updated":
          chat?.live.finished(event.message);
          break;
      }
    },
  };

  // --------------------------------------------------------------------- router

  /** Client routes; `auth`: needs a session; `guest`: only without one; `nav`: shows the list. */
  const routes = [
    { path: /^\/$/, view: homeView, auth: true, nav: true },
    { path: /^\/c\/([1-9][0-9]{0,17})$/, view: chatView, auth: true, nav: true },
    { path: /^\/settings$/, view: settingsView, auth: true, nav: true },
    { path: /^\/login$/, view: loginView, guest: true },
    { path: /^\/verify$/, view: verifyView },
    { path: /^\/reset$/, view: resetView },
  ];

  /** The view on screen: { title, focus, conversationId?, cleanup?, resync?, renamed?, live? }. */
  let currentView = null;

  function navigate(path, { replace = false } = {}) {
    history[replace ? "replaceState" : "pushState"](null, "", path);
    render();
  }

  window.addEventListener("popstate", () => render());

  // Same-origin links navigate inside the page (a modified click opens a tab as usual).
  document.addEventListener("click", (event) => {
    const link = event.target.closest?.("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api")) return;
    if (url.hash && url.pathname === location.pathname) return; // the skip link
    event.preventDefault();
    navigate(url.pathname + url.search);
  });

  function render() {
    if (!state.started) return;
    const url = new URL(location.href);
    let match = null;
    const route = routes.find((r) => (match = r.path.exec(url.pathname)));
    if (route?.auth && !state.me) {
      state.returnTo = url.pathname + url.search;
      navigate("/login", { replace: true });
      return;
    }
    if (route?.guest && state.me) {
      navigate("/", { replace: true });
      return;
    }
    currentView?.cleanup?.();
    closeNavigation();
    const main = document.getElementById("main");
    main.replaceChildren();
    renderShell(Boolean(route?.nav && state.me));
    currentView = route ? route.view(main, { match, url }) : notFoundView(main);
    document.title = currentView.title ? `${currentView.title} – Chatbot` : "Chatbot";
    renderConversationList();
    (currentView.focus || main).focus();
  }

  // --------------------------------------------------------------------- shell

  /** The header (brand, the list toggle, the user's links) and whether the list shows. */
  function renderShell(withNav) {
    document.getElementById("app").classList.toggle("with-nav", withNav);
    document.getElementById("sidebar").hidden = !withNav;
    renderHeader(withNav);
  }

  function renderHeader(withNav = !document.getElementById("sidebar").hidden) {
    const header = document.getElementById("topbar");
    const me = state.me;
    const parts = [
      withNav &&
        h(
          "button",
          {
            type: "button",
            class: "icon-button nav-toggle",
            "aria-controls": "sidebar",
            "aria-expanded": "false",
            "aria-label": "Conversations",
            "data-testid": "nav-toggle",
            onClick: toggleNavigation,
          },
          icon("menu"),
        ),
      h("h1", { class: "brand" }, h("a", { href: "/" }, "Chatbot")),
      me &&
        h(
          "div",
          { class: "account" },
          h("span", { class: "account-name", "data-testid": "account-name" }, me.display_name),
          h("a", { href: "/settings", class: "button subtle", "data-testid": "settings-link" }, "Settings"),
          h("button", { type: "button", class: "button subtle", "data-testid": "logout", onClick: () => session.logout() }, "Log out"),
        ),
    ];
    header.replaceChildren(...parts.filter(Boolean));
  }

  // At narrow widths the list is a drawer behind the toggle button.
  function toggleNavigation() {
    const open = !document.getElementById("app").classList.contains("nav-open");
    setNavigation(open);
    if (open) document.querySelector("#sidebar .new-chat")?.focus();
  }

  function setNavigation(open) {
    document.getElementById("app").classList.toggle("nav-open", open);
    document.querySelector(".nav-toggle")?.setAttribute("aria-expanded", String(open));
  }

  function closeNavigation() {
    setNavigation(false);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !document.getElementById("app").classList.contains("nav-open")) return;
    closeNavigation();
    document.querySelector(".nav-toggle")?.focus();
  });

  /** Rows of the list by conversation id, reused so that focus and inline edits survive updates. */
  const listRows = new Map();
  let listObserver = null;

  function renderConversationList() {
    const sidebar = document.getElementById("sidebar");
    if (sidebar.hidden || !state.me) {
      listObserver?.disconnect();
      sidebar.replaceChildren();
      listRows.clear();
      return;
    }
    let list = sidebar.querySelector(".conversation-list");
    if (!list) {
      list = h("ul", { class: "conversation-list", "data-testid": "conversation-list" });
      const more = h("button", { type: "button", class: "button subtle load-more", "data-testid": "load-more-conversations", onClick: () => conversations.loadMore().catch(() => {}) }, "Load more");
      sidebar.replaceChildren(
        h("div", { class: "sidebar-head" },
          h("h2", { class: "sidebar-title" }, "Conversations"),
          h("button", { type: "button", class: "button primary new-chat", "data-testid": "new-chat", onClick: startChat }, icon("plus"), "New chat"),
        ),
        list,
        h("p", { class: "list-status", role: "status" }),
        more,
      );
      listObserver = autoLoad(more, sidebar, () => conversations.loadMore().catch(() => {}));
    }
    const seen = new Set();
    let position = list.firstElementChild;
    for (const conversation of conversations.items) {
      seen.add(conversation.id);
      let row = listRows.get(conversation.id);
      if (!row) {
        row = conversationRow(conversation);
        listRows.set(conversation.id, row);
      }
      row.update(conversation, currentView?.conversationId === conversation.id);
      if (row.el !== position) list.insertBefore(row.el, position);
      else position = position.nextElementSibling;
    }
    for (const [id, row] of listRows) {
      if (!seen.has(id)) {
        row.el.remove();
        listRows.delete(id);
      }
    }
    const status = sidebar.querySelector(".list-status");
    status.textContent = conversations.loading
      ? "Loading…"
      : conversations.next === null && conversations.items.length === 0
        ? "No conversations yet."
        : "";
    sidebar.querySelector(".load-more").hidden = !conversations.next || Boolean(conversations.loading);
  }

  /** One row of the list: a link, and buttons to rename (inline) and delete (confirmed). */
  function conversationRow(initial) {
    let conversation = initial;
    let editing = false;
    const link = h("a", { class: "conversation-link", "data-testid": "conversation-link" });
    const renameButton = h("button", { type: "button", class: "icon-button", "data-testid": "rename-conversation", onClick: () => startRename() }, icon("edit"));
    const deleteButton = h("button", { type: "button", class: "icon-button", "data-testid": "delete-conversation", onClick: () => confirmDelete() }, icon("trash"));
    const el = h("li", { class: "conversation", "data-testid": "conversation-item" }, link, h("div", { class: "conversation-actions" }, renameButton, deleteButton));
    link.addEventListener("click", closeNavigation);

    function update(next, current) {
      conversation = next;
      el.dataset.conversationId = next.id;
      el.classList.toggle("current", current);
      link.href = `/c/${next.id}`;
      link.textContent = next.name;
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
      renameButton.setAttribute("aria-label", `Rename “${next.name}”`);
      deleteButton.setAttribute("aria-label", `Delete “${next.name}”`);
    }

    // Enter saves, Escape cancels, leaving the field saves.
    function startRename() {
      if (editing) return;
      editing = true;
      const errorId = nextId("rename-error");
      const input = h("input", { class: "rename-input", "data-testid": "rename-input", "aria-label": `New name for “${conversation.name}”`, "aria-describedby": errorId, maxlength: 100, value: conversation.name });
      const error = h("p", { class: "field-error", id: errorId, role: "alert", "data-testid": "rename-error" });
      const editor = h("div", { class: "rename" }, input, error);
      let settled = false;
      const finish = () => {
        settled = true;
        editing = false;
        editor.replaceWith(link);
        renameButton.hidden = false;
        deleteButton.hidden = false;
      };
      // `refocus`: saved with Enter, so the keyboard stays on this row.
      const save = async (refocus) => {
        if (settled) return;
        const name = input.value.trim();
        settled = true;
        input.disabled = true;
        try {
          if (name !== conversation.name) await conversations.rename(conversation.id, name);
          finish();
          if (refocus) link.focus();
        } catch (failure) {
          settled = false;
          input.disabled = false;
          error.textContent = describe(failure);
          input.setAttribute("aria-invalid", "true");
          input.focus();
        }
      };
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          save(true);
        } else if (event.key === "Escape") {
          event.preventDefault();
          event.stopPropagation();
          finish();
          renameButton.focus();
        }
      });
      input.addEventListener("blur", () => save(false));
      link.replaceWith(editor);
      renameButton.hidden = true;
      deleteButton.hidden = true;
      input.focus();
      input.select();
    }

    async function confirmDelete() {
      const confirmed = await confirmDialog({
        title: "Delete this conversation?",
        text: `“${conversation.name}” and all its messages will be deleted.`,
        confirm: "Delete",
      });
      if (!confirmed) {
        deleteButton.focus();
        return;
      }
      const neighbour = el.nextElementSibling || el.previousElementSibling;
      try {
        await conversations.delete(conversation.id);
        (neighbour?.querySelector("a") || document.querySelector("#sidebar .new-chat"))?.focus();
      } catch (failure) {
        alertDialog(describe(failure));
      }
    }

    return { el, update };
  }

  async function startChat() {
    try {
      const conversation = await conversations.create();
      closeNavigation();
      navigate(`/c/${conversation.id}`);
    } catch (failure) {
      alertDialog(describe(failure));
    }
  }

  /**
   * Clicks `button` whenever it scrolls into view inside `root` (infinite scroll);
   * the button itself stays for the keyboard.
   */
  function autoLoad(button, root, load) {
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting) && !button.hidden && !button.disabled) load();
    }, { root });
    observer.observe(button);
    return observer;
  }

  // ------------------------------------------------------------------ dialogs

  /** A modal confirmation; resolves true when confirmed. Escape cancels. */
  function confirmDialog({ title, text, confirm }) {
    return new Promise((resolve) => {
      const titleId = nextId("dialog-title");
      const dialog = h(
        "dialog",
        { class: "dialog", "aria-labelledby": titleId, "data-testid": "confirm-dialog" },
        h("h2", { id: titleId }, title),
        h("p", {}, text),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { type: "button", class: "button", "data-testid": "confirm-cancel", autofocus: true, onClick: () => dialog.close("cancel") }, "Cancel"),
          h("button", { type: "button", class: "button danger", "data-testid": "confirm-ok", onClick: () => dialog.close("confirm") }, confirm),
        ),
      );
      dialog.addEventListener("close", () => {
        dialog.remove();
        resolve(dialog.returnValue === "confirm");
      });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  /** A modal message with an OK button, for failures of actions that have no form. */
  function alertDialog(text) {
    const dialog = h(
      "dialog",
      { class: "dialog", role: "alertdialog", "aria-label": "Error", "data-testid": "alert-dialog" },
      h("p", {}, text),
      h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "button", autofocus: true, onClick: () => dialog.close() }, "OK")),
    );
    const opener = document.activeElement;
    dialog.addEventListener("close", () => {
      dialog.remove();
      opener?.focus?.();
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  // --------------------------------------------------------------------- forms

  /**
   * A form of labelled fields whose submit shows the API's errors: next to the field
   * the sentence names (the API's sentences start with, or mention, the JSON field), or
   * above the submit button. `onSubmit(values)` may return a sentence to show as done.
   */
  function apiForm({ testid, fields, submit, onSubmit }) {
    const errorId = nextId("form-error");
    const inputs = {};
    const errors = {};
    const rows = fields.map((field) => {
      const id = nextId(field.name);
      const fieldErrorId = `${id}-error`;
      const hintId = field.hint ? `${id}-hint` : null;
      inputs[field.name] = h("input", {
        id,
        name: field.name,
        type: field.type || "text",
        autocomplete: field.autocomplete || "off",
        required: field.required,
        value: field.value,
        "data-testid": field.testid,
        "aria-describedby": [hintId, fieldErrorId].filter(Boolean).join(" "),
      });
      errors[field.name] = h("p", { class: "field-error", id: fieldErrorId, "data-testid": `${field.testid}-error` });
      return h(
        "div",
        { class: "field" },
        h("label", { for: id }, field.label, field.required ? null : h("span", { class: "optional" }, " (optional)")),
        inputs[field.name],
        hintId && h("p", { class: "field-hint", id: hintId }, field.hint),
        errors[field.name],
      );
    });
    const formError = h("p", { class: "form-error", id: errorId, role: "alert", "data-testid": "form-error" });
    const formDone = h("p", { class: "form-done", role: "status", "data-testid": `${testid}-done` });
    const button = h("button", { type: "submit", class: "button primary", "data-testid": `${testid}-submit` }, submit);
    const form = h("form", { class: "form", novalidate: true, "data-testid": testid }, rows, formError, h("div", { class: "form-actions" }, button), formDone);

    function clear() {
      formError.textContent = "";
      formDone.textContent = "";
      for (const name of Object.keys(inputs)) {
        errors[name].textContent = "";
        inputs[name].removeAttribute("aria-invalid");
      }
    }

    function fieldOf(error) {
      if (!["validation_failed", "conflict", "bad_request"].includes(error.code)) return null;
      const sentence = error.message.toLowerCase();
      const names = Object.keys(inputs);
      const first = /^[a-z_]+/.exec(sentence)?.[0];
      if (names.includes(first)) return first;
      return names.find((name) => new RegExp(`\\b${name.replace(/_/g, "[ _]")}\\b`).test(sentence)) || null;
    }

    function showError(failure) {
      const text = describe(failure);
      const name = failure instanceof ApiError ? fieldOf(failure) : null;
      if (name) {
        errors[name].textContent = text;
        inputs[name].setAttribute("aria-invalid", "true");
        inputs[name].focus();
      } else {
        formError.textContent = text;
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (button.disabled) return;
      clear();
      const values = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value]));
      button.disabled = true;
      try {
        const done = await onSubmit(values);
        if (done) formDone.textContent = done;
      } catch (failure) {
        showError(failure);
      } finally {
        button.disabled = false;
      }
    });

    return { form, inputs };
  }

  /** A view's heading, focusable so that route changes can move focus to it. */
  const heading = (text, testid) => h("h2", { class: "view-title", tabindex: "-1", "data-testid": testid }, text);

  /** The one-off notice left for the next view ("You are logged out."), if any. */
  function takeNotice() {
    const text = state.notice;
    state.notice = null;
    return text && h("p", { class: "notice", role: "status", "data-testid": "notice" }, text);
  }

  // ------------------------------------------------------------- sign-in views

  /** /login: log in, sign up or ask for a reset link, one form at a time. */
  function loginView(main) {
    const card = h("section", { class: "card auth" });
    let notice = takeNotice(); // shown with the first form only
    main.append(card);
    const modes = { login: loginForm, signup: signupForm, forgot: forgotForm };
    const show = (mode) => {
      const { title, form, links } = modes[mode]();
      card.replaceChildren(heading(title, "auth-title"), notice || "", form, h("div", { class: "auth-links" }, links));
      notice = null;
      form.querySelector("input").focus();
    };
    const switchTo = (mode, label, testid) => h("button", { type: "button", class: "link-button", "data-testid": testid, onClick: () => show(mode) }, label);

    function loginForm() {
      const { form } = apiForm({
        testid: "login-form",
        submit: "Log in",
        fields: [
          { name: "username", label: "Username", autocomplete: "username", required: true, testid: "login-username" },
          { name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true, testid: "login-password" },
        ],
        onSubmit: (values) => logIn(values.username, values.password),
      });
      return { title: "Log in", form, links: [switchTo("signup", "Create an account", "show-signup"), switchTo("forgot", "Forgot your password?", "show-forgot")] };
    }

    function signupForm() {
      const { form } = apiForm({
        testid: "signup-form",
        submit: "Sign up",
        fields: [
          { name: "username", label: "Username", autocomplete: "username", required: true, testid: "signup-username", hint: "3 to 32 letters, digits, _ . or -" },
          { name: "password", label: "Password", type: "password", autocomplete: "new-password", required: true, testid: "signup-password", hint: "At least 8 characters" },
          { name: "email", label: "Email", type: "email", autocomplete: "email", testid: "signup-email", hint: "To reset a forgotten password" },
        ],
        onSubmit: async (values) => {
          const email = values.email.trim();
          await api("POST", "/api/signup", {
            body: { username: values.username, password: values.password, ...(email ? { email } : {}) },
            publicCall: true,
          });
          // Signing up does not log in (the API's rule); the page does it next.
          await logIn(values.username, values.password);
        },
      });
      return { title: "Create an account", form, links: [switchTo("login", "I have an account: log in", "show-login")] };
    }

    function forgotForm() {
      const { form } = apiForm({
        testid: "forgot-form",
        submit: "Send me a link",
        fields: [{ name: "email", label: "Email", type: "email", autocomplete: "email", required: true, testid: "forgot-email" }],
        onSubmit: async (values) => (await api("POST", "/api/password/forgot", { body: { email: values.email }, publicCall: true })).message,
      });
      return { title: "Reset your password", form, links: [switchTo("login", "Back to log in", "show-login")] };
    }

    show("login");
    return { title: "Log in", focus: card.querySelector("input") };
  }

  async function logIn(username, password) {
    await api("POST", "/api/login", { body: { username, password }, publicCall: true });
    session.begin(await api("GET", "/api/me"));
    const target = state.returnTo || "/";
    state.returnTo = null;
    navigate(target, { replace: true });
  }

  /** /verify?token=: confirms the address of a mailed link as soon as the page opens. */
  function verifyView(main, { url }) {
    const result = h("p", { role: "status", "data-testid": "verify-result" }, "Checking the link…");
    const next = h("p", {}, h("a", { href: state.me ? "/settings" : "/login" }, state.me ? "Go to your settings" : "Go to log in"));
    const title = heading("Verify your email address", "verify-title");
    main.append(h("section", { class: "card" }, title, result, next));
    const token = url.searchParams.get("token");
    if (!token) {
      result.textContent = "This link has no token: open the link from the mail again.";
    } else {
      api("POST", "/api/email/verify", { body: { token }, publicCall: true }).then(
        () => {
          result.textContent = "Your email address is verified.";
          if (state.me) state.me = { ...state.me, email_verified: true };
        },
        (failure) => {
          result.textContent = describe(failure);
          result.classList.add("error-text");
        },
      );
    }
    return { title: "Verify your email address", focus: title };
  }

  /** /reset?token=: sets a new password; every session of the account ends. */
  function resetView(main, { url }) {
    const token = url.searchParams.get("token");
    const title = heading("Choose a new password", "reset-title");
    const card = h("section", { class: "card auth" }, title);
    main.append(card);
    if (!token) {
      card.append(h("p", {}, "This link has no token: open the link from the mail again, or ", h("a", { href: "/login" }, "ask for a new one"), "."));
      return { title: "Reset your password", focus: title };
    }
    const { form } = apiForm({
      testid: "reset-form",
      submit: "Set the password",
      fields: [{ name: "new_password", label: "New password", type: "password", autocomplete: "new-password", required: true, testid: "reset-password", hint: "At least 8 characters" }],
      onSubmit: async (values) => {
        await api("POST", "/api/password/reset", { body: { token, new_password: values.new_password }, publicCall: true });
        if (state.me) session.clear();
        form.replaceWith(h("p", { role: "status", "data-testid": "reset-done" }, "Your password is changed. ", h("a", { href: "/login" }, "Log in with it"), "."));
      },
    });
    card.append(form);
    return { title: "Reset your password", focus: title };
  }

  function notFoundView(main) {
    const title = heading("Page not found");
    main.append(h("section", { class: "card" }, title, h("p", {}, h("a", { href: "/" }, "Go to your conversations"))));
    return { title: "Page not found", focus: title };
  }

  // ------------------------------------------------------------------ home view

  function homeView(main) {
    const title = heading("Start a conversation", "home-title");
    main.append(
      h("section", { class: "card home" },
        title,
        takeNotice(),
        h("p", {}, "Pick a conversation from the list, or start a new one."),
        h("button", { type: "button", class: "button primary", "data-testid": "start-chat", onClick: startChat }, icon("plus"), "New chat"),
      ),
    );
    return { title: null, focus: title };
  }

  // ---------------------------------------------------------- conversation view

  const MESSAGE_PAGE = 30;
  const RESUME_MAX_DELAY = 30000;

  /**
   * /c/{id}: the messages, page by page upwards, and the composer. A reply streams into
   * its message from one of three sources, whichever is there: the send's own event
   * stream, a follower of GET …/events (after a reload, a drop, or a gap), or the
   * WebSocket's deltas (a reply another tab asked for). Each delta has a number, and a
   * message applies only the next one it lacks, so no text shows twice.
   */
  function chatView(main, { match }) {
    const conversationId = Number(match[1]);
    const entries = new Map(); // message id → entry (see entryFor)
    const followers = new Map(); // message id → AbortController of the stream that feeds it
    const controller = new AbortController(); // everything this view started ends with it
    let olderCursor;
    let sending = false;

    const title = h("h2", { id: "chat-title", class: "view-title chat-title", tabindex: "-1", "data-testid": "conversation-title" }, conversations.find(conversationId)?.name || "Conversation");
    const list = h("ol", { class: "messages", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Messages", "data-testid": "message-list" });
    const olderButton = h("button", { type: "button", class: "button subtle load-older", "data-testid": "load-older", hidden: true, onClick: () => loadOlder() }, "Load older messages");
    const loadStatus = h("p", { class: "list-status", role: "status" });
    const scroller = h("div", { class: "chat-scroll", tabindex: "0", role: "region", "aria-label": "Conversation" }, olderButton, loadStatus, list);

    const textarea = h("textarea", { class: "composer-input", rows: 1, "aria-label": "Message", placeholder: "Write a message", "data-testid": "composer", "aria-describedby": "composer-error composer-hint" });
    const sendButton = h("button", { type: "submit", class: "button primary", "data-testid": "send" }, icon("send"), "Send");
    const stopButton = h("button", { type: "button", class: "button danger", "data-testid": "stop", hidden: true, onClick: () => stop() }, icon("stop"), "Stop");
    const composerError = h("p", { class: "form-error", id: "composer-error", role: "alert", "data-testid": "composer-error" });
    const composer = h(
      "form",
      { class: "composer", "data-testid": "composer-form" },
      composerError,
      h("div", { class: "composer-row" }, textarea, sendButton, stopButton),
      h("p", { class: "composer-hint", id: "composer-hint" }, "Enter sends, Shift+Enter starts a new line."),
    );

    main.append(h("section", { class: "chat", "aria-labelledby": "chat-title" }, title, scroller, composer));
    const olderObserver = autoLoad(olderButton, scroller, () => loadOlder());

    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      send(textarea.value);
    });

    // ---- rendering

    /** What the view keeps per message: the data, its element, and the last delta applied (null: unknown). */
    function entryFor(message, lastSeq) {
      const el = h("li", { class: `message message-${message.sender}`, "data-testid": "message", "data-message-id": message.id, "data-sender": message.sender });
      const entry = { message, el, lastSeq, error: null, painted: null, noted: null, frame: 0 };
      entries.set(message.id, entry);
      paint(entry);
      return entry;
    }

    /**
     * Draws a message. While a reply streams its text is hidden from screen readers
     * (the list is a live region: each delta would be read out); when it ends, a new
     * body replaces it and that addition is what gets announced, once.
     */
    function paint(entry) {
      const { message, el } = entry;
      const streaming = message.status === "streaming";
      const key = `${message.status}\u0000${message.text}\u0000${entry.error}`;
      if (entry.painted === key) return;
      entry.painted = key;
      el.dataset.status = message.status;
      const body = h("div", { class: "message-body" }, h("span", { class: "visually-hidden" }, message.sender === "user" ? "You said: " : "Bot said: "));
      if (message.sender === "user") {
        body.append(h("p", { class: "user-text" }, message.text));
      } else {
        const content = h("div", { class: "markdown" });
        content.innerHTML = markdownToHtml(message.text);
        body.append(content);
      }
      if (streaming) {
        body.setAttribute("aria-hidden", "true");
        body.classList.add("streaming");
      }
      const old = el.querySelector(".message-body");
      if (old && streaming && old.classList.contains("streaming")) old.replaceWith(body);
      else {
        el.replaceChildren(body);
        entry.noted = null;
      }
      paintNote(entry);
    }

    /** Redraws a streaming reply at most once a frame, however fast the deltas come. */
    function schedulePaint(entry) {
      if (entry.frame) return;
      entry.frame = requestAnimationFrame(() => {
        entry.frame = 0;
        const stick = nearBottom();
        paint(entry);
        if (stick) scrollToBottom();
      });
    }

    /**
     * The note under a reply that did not end well, with "Try again" on the last
     * message. Redrawn only when it changes: the list is a live region.
     */
    function paintNote(entry, lastId = ids().at(-1)) {
      const { status } = entry.message;
      const ended = status === "failed" || status === "interrupted";
      const retryText = ended && lastId === entry.message.id ? userTextBefore(entry) : null;
      const key = ended ? `${status}\u0000${entry.error}\u0000${retryText !== null}` : "";
      if (entry.noted === key) return;
      entry.noted = key;
      entry.el.querySelector(".message-note")?.remove();
      if (!ended) return;
      const text = status === "interrupted" ? "Stopped before the end." : `The reply failed${entry.error ? `: ${entry.error}` : "."}`;
      const note = h("p", { class: "message-note", "data-testid": "message-note" }, text);
      if (retryText !== null) {
        note.append(" ", h("button", { type: "button", class: "button small", "data-testid": "retry", onClick: () => send(retryText, { retry: true }) }, icon("retry"), "Try again"));
      }
      entry.el.append(note);
    }

    const ids = () => [...entries.keys()].sort((a, b) => a - b);

    function userTextBefore(entry) {
      const before = ids().filter((id) => id < entry.message.id).reverse();
      const user = before.map((id) => entries.get(id).message).find((m) => m.sender === "user");
      return user?.text || null;
    }

    /** Puts an entry's element in id order (ids grow with time in a conversation). */
    function place(entry) {
      const later = ids().find((id) => id > entry.message.id);
      list.insertBefore(entry.el, later ? entries.get(later).el : null);
    }

    function refreshNotes() {
      const lastId = ids().at(-1);
      for (const entry of entries.values()) paintNote(entry, lastId);
      updateComposer();
    }

    const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const scrollToBottom = () => {
      scroller.scrollTop = scroller.scrollHeight;
    };

    function streamingReply() {
      return [...entries.values()].find((e) => e.message.status === "streaming") || null;
    }

    function updateComposer() {
      const streaming = streamingReply();
      stopButton.hidden = !streaming;
      sendButton.hidden = Boolean(streaming);
      sendButton.disabled = sending;
      for (const button of list.querySelectorAll("[data-testid=retry]")) button.disabled = sending || Boolean(streaming);
    }

    // ---- the store: every source of messages goes through these

    /**
     * A message from a page, an event or the socket: added once, in order. A reply
     * still streaming that no stream feeds (the socket was down) gets a follower.
     */
    function merge(message, { lastSeq = null } = {}) {
      const known = entries.get(message.id);
      if (known) {
        if (message.status !== "streaming") finish(message);
        else if (known.message.status === "streaming") follow(message.id);
        return known;
      }
      const stick = nearBottom();
      const entry = entryFor(message, message.status === "streaming" ? lastSeq : null);
      place(entry);
      if (stick) scrollToBottom();
      if (message.status === "streaming" && lastSeq === null) follow(message.id);
      refreshNotes();
      return entry;
    }

    /** A reply starts (`reply` event): from here on deltas count from 1. */
    function begin(message) {
      const known = entries.get(message.id);
      if (known && known.lastSeq !== null) return known;
      if (known) {
        known.message = { ...known.message, text: "" };
        known.lastSeq = 0;
        schedulePaint(known);
        return known;
      }
      return merge(message, { lastSeq: 0 });
    }

    function applyDelta(id, seq, text) {
      const entry = entries.get(id);
      if (!entry || entry.message.status !== "streaming" || entry.lastSeq === null || seq <= entry.lastSeq) return;
      if (seq > entry.lastSeq + 1) {
        follow(id); // a delta went missing (the socket dropped some): the event stream resends them
        return;
      }
      entry.message = { ...entry.message, text: entry.message.text + text };
      entry.lastSeq = seq;
      schedulePaint(entry);
    }

    /** The stored message as it ended (`done`, `message.updated`, the stop's answer). */
    function finish(message) {
      const entry = entries.get(message.id);
      if (!entry) {
        merge(message);
        return;
      }
      if (message.status === "streaming") return;
      entry.message = message;
      cancelAnimationFrame(entry.frame);
      entry.frame = 0;
      const stick = nearBottom();
      paint(entry);
      if (stick) scrollToBottom();
      followers.get(message.id)?.abort();
      refreshNotes();
    }

    /** An `error` event: the reply is failed (if no text came the server has dropped it). */
    function fail(id, error) {
      const text = describe(new ApiError(502, error.code, error.error));
      const entry = entries.get(id);
      if (!entry) {
        composerError.textContent = text;
        return;
      }
      entry.error = text;
      finish({ ...entry.message, status: "failed" });
    }

    // ---- streams

    /**
     * Applies the events of a reply's stream; resolves to true when the reply ended
     * (done or error), false when the stream stopped before.
     */
    async function consume(response, replyId, onReply) {
      let ended = false;
      let reply = replyId;
      await readEvents(response, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        if (event.type === "message") merge(data);
        else if (event.type === "reply") {
          reply = data.id;
          begin(data);
          onReply?.(data.id);
        } else if (event.type === "delta") applyDelta(data.message_id, Number(event.id), data.text);
        else if (event.type === "done") {
          ended = true;
          finish(data);
        } else if (event.type === "error") {
          ended = true;
          fail(reply, data);
        }
      });
      return ended;
    }

    /**
     * Follows a reply through GET …/events until it ends, resuming after the last delta
     * applied whenever the connection drops (retrying with backoff).
     */
    async function follow(id) {
      if (followers.has(id) || controller.signal.aborted) return;
      const stream = new AbortController();
      const signal = AbortSignal.any([controller.signal, stream.signal]);
      followers.set(id, stream);
      let delay = 1000;
      try {
        while (!signal.aborted) {
          const entry = entries.get(id);
          if (!entry || entry.message.status !== "streaming") return;
          const headers = { Accept: "text/event-stream" };
          if (entry.lastSeq !== null) headers["Last-Event-ID"] = String(entry.lastSeq);
          try {
            const response = await request("GET", `/api/conversations/${conversationId}/messages/${id}/events`, { headers, signal });
            if (await consume(response, id)) return;
            delay = 1000;
          } catch (error) {
            if (signal.aborted) return;
            if (error instanceof ApiError && error.status !== 0 && error.status !== 503) {
              // The reply is gone (its conversation deleted, or failed before any text):
              // the page as the server has it now says what became of it.
              reloadLatest();
              return;
            }
          }
          await sleep(delay, signal);
          delay = Math.min(delay * 2, RESUME_MAX_DELAY);
        }
      } finally {
        if (followers.get(id) === stream) followers.delete(id);
      }
    }

    /** Sends a message and streams the reply into the list. */
    async function send(text, { retry = false } = {}) {
      if (!text || !text.trim() || sending || streamingReply()) return;
      sending = true;
      composerError.textContent = "";
      updateComposer();
      // Aborted when the reply ends through another source (the socket, the stop's answer).
      const stream = new AbortController();
      const newestBefore = ids().at(-1) ?? 0;
      let response;
      try {
        response = await request("POST", `/api/conversations/${conversationId}/messages`, {
          body: { text },
          headers: { Accept: "text/event-stream" },
          signal: AbortSignal.any([controller.signal, stream.signal]),
        });
      } catch (failure) {
        sending = false;
        updateComposer();
        if (controller.signal.aborted) return;
        composerError.textContent = describe(failure);
        // 409: a reply is being written (perhaps asked for in another tab): show it.
        // No answer: the message may have been stored all the same; if so, it shows
        // (its reply followed) and leaves the composer, so it is not sent twice.
        if (failure.status === 409) reloadLatest();
        if (failure.status === 0) {
          await reloadLatest();
          const stored = [...entries.values()].some((e) => e.message.id > newestBefore && e.message.sender === "user" && e.message.text === text.trim());
          if (stored && textarea.value === text) {
            textarea.value = "";
            composerError.textContent = "";
          }
        }
        return;
      }
      if (!retry && textarea.value === text) textarea.value = "";
      scrollToBottom();
      let replyId = null;
      let ended = false;
      try {
        ended = await consume(response, null, (id) => {
          replyId = id;
          followers.set(id, stream); // this stream feeds the reply: no follower needed
          sending = false;
          updateComposer();
        });
      } catch {
        // The connection broke mid-reply: resumed below.
      } finally {
        sending = false;
        if (replyId !== null && followers.get(replyId) === stream) followers.delete(replyId);
        updateComposer();
      }
      if (ended || controller.signal.aborted) return;
      if (replyId !== null) follow(replyId); // does nothing if the reply ended meanwhile
      else reloadLatest();
    }

    async function stop() {
      const entry = streamingReply();
      if (!entry) return;
      stopButton.disabled = true;
      try {
        finish(await api("POST", `/api/conversations/${conversationId}/messages/${entry.message.id}/stop`));
      } catch (failure) {
        composerError.textContent = describe(failure);
      } finally {
        stopButton.disabled = false;
        textarea.focus();
      }
    }

    // ---- pages

    /**
     * Loads the latest page and merges it: new messages in, finished ones updated, and
     * ones the server no longer has (a reply that failed before any text) out. When the
     * page does not reach back to what is shown, the view starts again from it.
     */
    async function reloadLatest() {
      let page;
      try {
        page = await api("GET", `/api/conversations/${conversationId}/messages?limit=${MESSAGE_PAGE}`, { signal: controller.signal });
      } catch (failure) {
        if (!controller.signal.aborted) showLoadError(failure);
        return;
      }
      const newest = ids().at(-1);
      const oldestInPage = page.messages[0]?.id;
      const gap = newest !== undefined && page.next !== null && oldestInPage > newest;
      list.setAttribute("aria-busy", "true");
      if (entries.size === 0 || gap) {
        for (const stream of followers.values()) stream.abort();
        entries.clear();
        list.replaceChildren();
        olderCursor = page.next;
      }
      // Within the page's span, what it lacks is gone; later ones may have come over
      // the socket since the page was read.
      const inPage = new Set(page.messages.map((m) => m.id));
      const from = page.next === null ? 0 : oldestInPage;
      const to = page.messages.at(-1)?.id ?? Infinity;
      for (const id of ids()) {
        if (id >= from && id <= to && !inPage.has(id)) {
          entries.get(id).el.remove();
          entries.delete(id);
        }
      }
      for (const message of page.messages) merge(message);
      list.removeAttribute("aria-busy");
      olderButton.hidden = !olderCursor;
      refreshNotes();
    }

    async function loadOlder() {
      if (!olderCursor || olderButton.disabled) return;
      olderButton.disabled = true;
      loadStatus.textContent = "Loading older messages…";
      try {
        const page = await api("GET", `/api/conversations/${conversationId}/messages?limit=${MESSAGE_PAGE}&before=${olderCursor}`, { signal: controller.signal });
        const height = scroller.scrollHeight;
        list.setAttribute("aria-busy", "true");
        for (const message of page.messages) if (!entries.has(message.id)) place(entryFor(message, null));
        for (const message of page.messages) if (message.status === "streaming") follow(message.id);
        list.removeAttribute("aria-busy");
        scroller.scrollTop += scroller.scrollHeight - height; // keep what was on screen in place
        olderCursor = page.next;
        loadStatus.textContent = "";
      } catch (failure) {
        if (!controller.signal.aborted) loadStatus.textContent = describe(failure);
      } finally {
        olderButton.disabled = false;
        olderButton.hidden = !olderCursor;
        refreshNotes();
      }
    }

    function showLoadError(failure) {
      if (failure.status === 404) {
        main.replaceChildren(h("section", { class: "card" }, heading("Conversation not found", "conversation-title"), h("p", {}, "It may have been deleted. ", h("a", { href: "/" }, "Go to your conversations"), ".")));
        main.querySelector("h2").focus();
        return;
      }
      loadStatus.textContent = describe(failure);
    }

    async function open() {
      loadStatus.textContent = "Loading…";
      await reloadLatest();
      if (loadStatus.textContent === "Loading…") loadStatus.textContent = "";
      scrollToBottom();
      const conversation = await conversations.lookup(conversationId).catch(() => null);
      if (conversation) renamed();
    }

    function renamed() {
      const name = conversations.find(conversationId)?.name;
      if (!name || title.textContent === name) return;
      title.textContent = name;
      document.title = `${name} – Chatbot`;
    }

    open();

    return {
      conversationId,
      title: conversations.find(conversationId)?.name || "Conversation",
      focus: textarea,
      renamed,
      resync: reloadLatest,
      // The socket's events for this conversation.
      live: {
        created: (message) => merge(message, { lastSeq: 0 }),
        delta: applyDelta,
        finished: finish,
      },
      cleanup() {
        controller.abort();
        olderObserver.disconnect();
        for (const entry of entries.values()) cancelAnimationFrame(entry.frame);
      },
    };
  }

  // -------------------------------------------------------------- settings view

  /** /settings: profile, password, sessions, and deleting the account. */
  function settingsView(main) {
    const controller = new AbortController();
    const title = heading("Settings", "settings-title");
    const section = (testid, label, ...content) => {
      const id = nextId("section");
      return h("section", { class: "card settings-section", "aria-labelledby": id, "data-testid": testid }, h("h3", { id }, label), ...content);
    };

    // Profile: display name and email (an empty email removes it).
    const emailStatus = h("div", { class: "email-status", "data-testid": "email-status" });
    const profile = apiForm({
      testid: "profile-form",
      submit: "Save",
      fields: [
        { name: "display_name", label: "Display name", autocomplete: "nickname", required: true, value: state.me.display_name, testid: "profile-display-name" },
        { name: "email", label: "Email", type: "email", autocomplete: "email", value: state.me.email || "", testid: "profile-email" },
      ],
      onSubmit: async (values) => {
        const change = {};
        if (values.display_name !== state.me.display_name) change.display_name = values.display_name;
        const email = values.email.trim() || null;
        if (email !== state.me.email) change.email = email;
        if (Object.keys(change).length === 0) return "Nothing changed.";
        state.me = await api("PATCH", "/api/me", { body: change });
        profile.inputs.display_name.value = state.me.display_name; // as the server trimmed it
        profile.inputs.email.value = state.me.email || "";
        renderHeader();
        paintEmailStatus();
        return change.email ? "Saved. A link to verify the new address is on its way." : "Saved.";
      },
    });

    function paintEmailStatus() {
      const me = state.me;
      if (!me.email) {
        emailStatus.replaceChildren(h("p", {}, "No email address: add one to be able to reset a forgotten password."));
        return;
      }
      if (me.email_verified) {
        emailStatus.replaceChildren(h("p", {}, h("span", { class: "badge ok" }, "Verified"), ` ${me.email}`));
        return;
      }
      const result = h("p", { role: "status", "data-testid": "verification-result" });
      const button = h("button", { type: "button", class: "button small", "data-testid": "send-verification" }, "Send verification mail");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          result.textContent = (await api("POST", "/api/me/email/verify")).message;
        } catch (failure) {
          result.textContent = describe(failure);
        } finally {
          button.disabled = false;
        }
      });
      emailStatus.replaceChildren(h("p", {}, h("span", { class: "badge warn" }, "Not verified"), ` ${me.email} `, button), result);
    }

    // Password: other sessions end, this one continues with a new key.
    const password = apiForm({
      testid: "password-form",
      submit: "Change password",
      fields: [
        { name: "current_password", label: "Current password", type: "password", autocomplete: "current-password", required: true, testid: "password-current" },
        { name: "new_password", label: "New password", type: "password", autocomplete: "new-password", required: true, testid: "password-new", hint: "At least 8 characters" },
      ],
      onSubmit: async (values) => {
        await api("POST", "/api/me/password", { body: values });
        password.inputs.current_password.value = "";
        password.inputs.new_password.value = "";
        loadSessions();
        return "Password changed. Your other sessions are logged out.";
      },
    });

    // Sessions: where this account is logged in.
    const sessionList = h("ul", { class: "session-list", "data-testid": "session-list" });
    const sessionStatus = h("p", { role: "status", "data-testid": "sessions-status" });
    const revokeOthers = h("button", { type: "button", class: "button", "data-testid": "revoke-other-sessions" }, "Log out everywhere else");
    revokeOthers.addEventListener("click", async () => {
      revokeOthers.disabled = true;
      try {
        await api("DELETE", "/api/me/sessions");
        sessionStatus.textContent = "Every other session is logged out.";
        await loadSessions();
      } catch (failure) {
        sessionStatus.textContent = describe(failure);
      } finally {
        revokeOthers.disabled = false;
      }
    });

    async function loadSessions() {
      try {
        const sessions = await api("GET", "/api/me/sessions", { signal: controller.signal });
        sessionList.replaceChildren(...sessions.map(sessionRow));
        revokeOthers.hidden = sessions.every((s) => s.current);
      } catch (failure) {
        if (!controller.signal.aborted) sessionStatus.textContent = describe(failure);
      }
    }

    function sessionRow(s) {
      const client = s.user_agent || "Unknown client";
      const row = h(
        "li",
        { class: "session", "data-testid": "session-item", "data-session-id": s.id, "data-current": String(s.current) },
        h("div", { class: "session-info" },
          h("p", { class: "session-agent" }, client, s.current && h("span", { class: "badge ok", "data-testid": "this-device" }, "This device")),
          h("p", { class: "session-times" }, `Logged in ${formatDate(s.created_at)} · last active ${formatDate(s.last_seen_at)}`),
        ),
      );
      if (!s.current) {
        const button = h("button", { type: "button", class: "button small", "data-testid": "revoke-session", "aria-label": `Log out ${client}, logged in ${formatDate(s.created_at)}` }, "Log out");
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            await api("DELETE", `/api/me/sessions/${s.id}`);
            const next = row.nextElementSibling || row.previousElementSibling;
            row.remove();
            sessionStatus.textContent = "That session is logged out.";
            (next?.querySelector("button") || revokeOthers).focus();
            revokeOthers.hidden = !sessionList.querySelector("[data-current=false]");
          } catch (failure) {
            button.disabled = false;
            sessionStatus.textContent = describe(failure);
          }
        });
        row.append(button);
      }
      return row;
    }

    // Deleting the account: the password, then a confirmation.
    const removal = apiForm({
      testid: "delete-account-form",
      submit: "Delete my account",
      fields: [{ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true, testid: "delete-password" }],
      onSubmit: async (values) => {
        const confirmed = await confirmDialog({
          title: "Delete your account?",
          text: "Your conversations, messages and sessions are deleted for good.",
          confirm: "Delete my account",
        });
        if (!confirmed) return null;
        await api("DELETE", "/api/me", { body: { password: values.password } });
        session.clear();
        state.notice = "Your account is deleted.";
        navigate("/login", { replace: true });
        return null;
      },
    });
    removal.form.querySelector("[type=submit]").classList.replace("primary", "danger");

    main.append(
      h("div", { class: "settings" },
        title,
        section("settings-profile", "Profile", h("p", { class: "muted" }, `Username: ${state.me.username}`), profile.form, emailStatus),
        section("settings-password", "Password", password.form),
        section("settings-sessions", "Sessions", sessionStatus, sessionList, revokeOthers),
        section("settings-delete", "Delete the account", h("p", {}, "This deletes your conversations and messages too. It cannot be undone."), removal.form),
      ),
    );
    paintEmailStatus();
    loadSessions();
    return { title: "Settings", focus: title, cleanup: () => controller.abort(), resync: loadSessions };
  }

  // ------------------------------------------------------------------- start-up

  /** Asks the server who is logged in, then shows the page for the address. */
  async function start() {
    const main = document.getElementById("main");
    if (!navigator.onLine) connection.unreachable();
    try {
      session.begin(await api("GET", "/api/me", { publicCall: true }));
    } catch (failure) {
      if (failure.status !== 401) {
        const title = heading("Chatbot cannot start");
        main.replaceChildren(
          h("section", { class: "card" }, title, h("p", {}, describe(failure)), h("button", { type: "button", class: "button primary", onClick: () => start() }, "Try again")),
        );
        title.focus();
        return;
      }
    }
    state.started = true;
    render();
  }

  start();
})();
