// The host API of one sandboxed run (console, fetch and neo), evaluated in a fresh context
// before the function's source. It evaluates to a factory that the child calls with the
// sources of prelude_console.js, prelude_fetch.js and prelude_neo.js; the factory returns the
// function through which the child drives the run ($sandbox_host), never stored where the
// function's code can reach it.
//
// No host code is called from here: console lines, requests (fetch, neo.call) and actions
// (neo.invoke) wait in queues until the child drains them.
//
// The function's code runs in this same realm and may replace any global, any built-in and
// any prototype method (Array.prototype.push, JSON, Promise, Object, Reflect,
// Function.prototype.call...) before or while the host API runs. So:
// * every built-in used here is captured below, before any of the function's code runs, and
//   methods are called through the captured Reflect.apply: nothing is looked up again;
// * the run's state and queues live in this closure only. The queues are strings of JSON
//   (primitives: no prototype is consulted to append to them or to read them), and the
//   parts (console, fetch, neo) get only functions that append one item, never the queues;
// * objects kept here have no prototype, and nothing iterates with for..of or spread.
// The function can still break its own console or fetch (by replacing them, or with values
// whose getters throw); it cannot make the prelude hand the child anything but what the
// prelude built. The child checks everything again in Python anyway.
//
// Compiling costs about 0.4 µs per operation, on every run, so this part holds only what a
// trivial run needs: `console`, `fetch` and `neo` are accessors that compile their part on
// first use (each part comes with its own limits, see child.py). Frames of functions named
// $sandbox_* are left out of the stacks a function sees.
(function (MAX_RESULT_CHARS, MAX_ERROR_CHARS, MAX_LINES, MAX_CHARS) {
  "use strict";
  const apply = Reflect.apply;
  const freeze = Object.freeze;
  // Built-ins the host API uses, captured before the function's code can replace them.
  const P = freeze({
    __proto__: null,
    apply,
    freeze,
    stringify: JSON.stringify,
    parse: JSON.parse,
    now: Date.now,
    define: Object.defineProperty,
    keys: Object.keys,
    create: Object.create,
    hasOwn: Object.hasOwn,
    isArray: Array.isArray,
    isSafeInteger: Number.isSafeInteger,
    then: Promise.prototype.then,
    resolve: Promise.resolve,
    slice: String.prototype.slice,
    indexOf: String.prototype.indexOf,
    toLowerCase: String.prototype.toLowerCase,
    toUpperCase: String.prototype.toUpperCase,
    exec: RegExp.prototype.exec,
    Promise,
    Error,
    TypeError,
    String,
    eval,
  });
  const stringify = P.stringify;
  const define = P.define;

  // The run, in this closure only.
  // state: 0 while main runs; 1 returned (payload: its JSON); 2 threw (payload: the error).
  let state = 0;
  let payload = null;
  // Queued console lines ("level",ms,"text",... : JSON without its brackets), requests and
  // actions ({...},{...}); the child takes them with each drain.
  let logs = "";
  let requests = "";
  let actions = "";
  let lines = 0;
  let chars = 0;
  let truncatedAt = 0;
  // Ids of requests (fetch and neo.call share them), and what to call with each answer.
  let lastId = 0;
  const waiting = P.create(null);
  // How many neo.call and neo.invoke this run may make (set at start).
  let neoCalls = 0;
  let neoActions = 0;

  // All the parts may do to the run: append one item each time.
  const host = freeze({
    __proto__: null,
    // One console line, within MAX_LINES and MAX_CHARS (then one truncated mark, kept by
    // the child).
    log(level, text) {
      if (truncatedAt) return;
      if (lines >= MAX_LINES) {
        truncatedAt = P.now();
        return;
      }
      if (chars + text.length > MAX_CHARS) {
        text = apply(P.slice, text, [0, MAX_CHARS - chars]);
        truncatedAt = P.now();
        if (!text) return;
      }
      logs += (logs ? "," : "") + stringify(level) + "," + P.now() + "," + stringify(text);
      lines++;
      chars += text.length;
    },
    // A request: its fields but the id, as JSON ('"url":...,...'), and what to call with
    // the answer ({id, error} or the response's fields).
    request(fields, callback) {
      const id = ++lastId;
      waiting[id] = callback;
      requests += (requests ? "," : "") + '{"id":' + id + "," + fields + "}";
    },
    // A neo.invoke action, as JSON ('{"contract":...}').
    action(json) {
      actions += (actions ? "," : "") + json;
    },
    neoCalls: () => neoCalls,
    neoActions: () => neoActions,
  });

  // answers: [{id, ...}] as JSON; each goes to the callback its request left.
  function settle(answers) {
    const list = P.parse(answers);
    for (let i = 0; i < list.length; i++) {
      const answer = list[i];
      const id = answer.id;
      const callback = waiting[id];
      if (callback === undefined) continue;
      delete waiting[id];
      callback(answer);
    }
  }

  return function (consoleSource, fetchSource, neoSource) {
    const parts = { __proto__: null, console: consoleSource, fetch: fetchSource, neo: neoSource };
    const part = (name) =>
      typeof parts[name] === "string" ? (parts[name] = P.eval(parts[name])(P, host)) : parts[name];
    const lazy = (name) => ({
      __proto__: null,
      get: () => part(name)[name],
      set: (value) => define(globalThis, name, { __proto__: null, value, writable: true, configurable: true }),
      configurable: true,
    });
    define(globalThis, "console", lazy("console"));
    define(globalThis, "fetch", lazy("fetch"));
    define(globalThis, "neo", lazy("neo"));

    function $sandbox_settle(ok, value) {
      if (state) return;
      let json = value;
      try {
        if (ok) json = value === undefined ? "null" : stringify(value);
      } catch (e) {
        json = e;
      }
      if (ok && typeof json === "string" && json.length <= MAX_RESULT_CHARS) {
        state = 1;
        payload = json;
        return;
      }
      state = 2;
      let error = part("console").failure(ok, json, value);
      if (typeof error !== "string") error = "main failed";
      // One character more than allowed tells the child to cut it and say so.
      payload = error.length > MAX_ERROR_CHARS ? apply(P.slice, error, [0, MAX_ERROR_CHARS + 1]) : error;
    }
    const $sandbox_returned = (value) => $sandbox_settle(true, value);
    const $sandbox_threw = (error) => $sandbox_settle(false, error);

    return function $sandbox_host(op, a, b, calls, actionsAllowed) {
      if (op === "start") {
        neoCalls = calls;
        neoActions = actionsAllowed;
        // Even a plain value settles through a promise job: one path for sync and async.
        try {
          const result = apply(P.resolve, P.Promise, [main(P.parse(a), P.parse(b))]);
          apply(P.then, result, [$sandbox_returned, $sandbox_threw]);
        } catch (e) {
          $sandbox_threw(e);
        }
        return state;
      }
      if (op === "settle") settle(a);
      if (op !== "drain") return state;
      const out =
        "[" + state + "," + stringify(payload) + "," + truncatedAt +
        ",[" + logs + "],[" + requests + "],[" + actions + "]]";
      logs = "";
      requests = "";
      actions = "";
      // A flat copy: the engine keeps a long concatenation as a rope, which the binding
      // cannot hand to Python.
      return apply(P.slice, out, [0]);
    };
  };
})
