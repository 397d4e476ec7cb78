// The host API of one sandboxed run (console, fetch and neo), evaluated in a fresh context
// before the function's source. It evaluates to a factory that the child calls with the
// sources of prelude_console.js, prelude_fetch.js and prelude_neo.js; the factory returns the function through which
// the child drives the run ($sandbox_host), never stored where the function's code can reach
// it.
//
// No host code is called from here: console lines, requests (fetch, neo.call) and actions
// (neo.invoke) wait in arrays until the child drains them. Everything read back is checked again in Python, since the
// function's code can replace any built-in once it runs.
//
// Compiling costs about 0.4 µs per operation, on every run, so this part holds only what a
// trivial run needs: `console`, `fetch` and `neo` are accessors that compile their part on
// first use. Frames of functions named $sandbox_* are left out of the stacks a function sees.
(function (MAX_RESULT_CHARS, limits) {
  "use strict";
  // Built-ins the host API uses, captured before the function's code can replace them.
  const P = {
    stringify: JSON.stringify,
    parse: JSON.parse,
    now: Date.now,
    define: Object.defineProperty,
    apply: Reflect.apply,
    then: Promise.prototype.then,
    resolve: Promise.resolve,
    Promise,
    Object,
    Array,
    Map,
    Error,
    TypeError,
    String,
    Number,
    eval,
  };
  // state: 0 while main runs; 1 returned (payload: its JSON); 2 threw (payload: the error).
  const run = {
    state: 0,
    payload: null,
    logs: [],
    requests: [],
    // Requests' ids (fetch and neo.call share them) and what to call with each answer (a Map
    // made by the first part that sends one).
    lastId: 0,
    waiting: null,
    // neo.invoke's actions, and how many calls and actions this run may make.
    actions: [],
    neoCalls: 0,
    neoActions: 0,
    lines: 0,
    chars: 0,
    truncatedAt: 0,
  };

  // answers: [{id, ...}] as JSON; each goes to the callback its request left.
  function settle(answers) {
    for (const a of P.parse(answers)) {
      const callback = run.waiting === null ? undefined : run.waiting.get(a.id);
      if (callback === undefined) continue;
      run.waiting.delete(a.id);
      callback(a);
    }
  }

  return function (consoleSource, fetchSource, neoSource) {
    const parts = { console: consoleSource, fetch: fetchSource, neo: neoSource };
    const part = (name) =>
      typeof parts[name] === "string" ? (parts[name] = P.eval(parts[name])(P, run, limits)) : parts[name];
    const lazy = (name) => ({
      get: () => part(name)[name],
      set: (value) => P.define(globalThis, name, { value, writable: true, configurable: true }),
      configurable: true,
    });
    P.define(globalThis, "console", lazy("console"));
    P.define(globalThis, "fetch", lazy("fetch"));
    P.define(globalThis, "neo", lazy("neo"));

    function $sandbox_settle(ok, value) {
      if (run.state) return;
      let json = value;
      try {
        if (ok) json = value === undefined ? "null" : P.stringify(value);
      } catch (e) {
        json = e;
      }
      run.state = ok && typeof json === "string" && json.length <= MAX_RESULT_CHARS ? 1 : 2;
      run.payload = run.state === 1 ? json : part("console").failure(ok, json, value);
    }
    const $sandbox_returned = (value) => $sandbox_settle(true, value);
    const $sandbox_threw = (error) => $sandbox_settle(false, error);

    return function $sandbox_host(op, a, b, neoCalls, neoActions) {
      if (op === "start") {
        run.neoCalls = neoCalls;
        run.neoActions = neoActions;
        // Even a plain value settles through a promise job: one path for sync and async.
        try {
          const result = P.apply(P.resolve, P.Promise, [main(P.parse(a), P.parse(b))]);
          P.apply(P.then, result, [$sandbox_returned, $sandbox_threw]);
        } catch (e) {
          $sandbox_threw(e);
        }
        return run.state;
      }
      if (op === "settle") settle(a);
      if (op !== "drain") return run.state;
      const out = P.stringify([
        run.state,
        run.payload,
        run.truncatedAt,
        run.logs,
        run.requests,
        run.actions,
      ]);
      run.logs = [];
      run.requests = [];
      run.actions = [];
      return out;
    };
  };
})
