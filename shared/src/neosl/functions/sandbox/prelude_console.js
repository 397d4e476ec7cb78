// Console lines, and showing values and errors as a console does. Compiled by prelude.js on
// first use, by an indirect eval that may run after the function's code: so it names no
// global and calls no method it did not get from prelude.js (P: built-ins captured before
// the function's code ran; host: appends a line to the run's queue).
(function (P, host, limits) {
  "use strict";
  const apply = P.apply;
  const slice = P.slice;
  const indexOf = P.indexOf;
  const MAX_ERROR_CHARS = limits.MAX_ERROR_CHARS;

  // At most one character more than an error may have: the child cuts it and says so.
  function bounded(text) {
    return text.length > MAX_ERROR_CHARS ? apply(slice, text, [0, MAX_ERROR_CHARS + 1]) : text;
  }

  // The stack without the host API's own frames ($sandbox_*).
  function frames(stack) {
    let kept = "";
    let start = 0;
    while (start < stack.length) {
      let end = apply(indexOf, stack, ["\n", start]);
      if (end < 0) end = stack.length;
      const frame = apply(slice, stack, [start, end]);
      if (frame && apply(indexOf, frame, [" at $sandbox_"]) < 0) kept += "\n" + frame;
      start = end + 1;
    }
    return kept;
  }

  function describe(e) {
    try {
      if (e instanceof P.Error) {
        const head = bounded(P.String(e));
        const stack = e.stack;
        if (typeof stack !== "string") return head;
        return head + frames(bounded(stack));
      }
      return "Uncaught " + bounded(show(e));
    } catch (_) {
      return "Uncaught exception (it cannot be shown)";
    }
  }

  function jsonish(_key, v) {
    if (typeof v === "bigint") return v + "n";
    if (typeof v === "function") return "[Function: " + (v.name || "anonymous") + "]";
    return v;
  }

  // One console argument, as a console shows it; always a string.
  function show(v) {
    switch (typeof v) {
      case "string":
        return v;
      case "bigint":
        return v + "n";
      case "function": {
        const name = v.name;
        return "[Function: " + (typeof name === "string" && name ? name : "anonymous") + "]";
      }
      case "object":
        if (v === null) return "null";
        if (v instanceof P.Error) return describe(v);
        try {
          const s = P.stringify(v, jsonish);
          if (typeof s === "string") return s;
        } catch (_) {
          // circular, or a toJSON that throws: String() below
        }
        try {
          return P.String(v);
        } catch (_) {
          return "[object]";
        }
      default:
        return P.String(v);
    }
  }

  function $sandbox_log(level, args) {
    let text = "";
    for (let i = 0; i < args.length; i++) text += (i ? " " : "") + show(args[i]);
    host.log(level, text);
  }

  // The function's own object (an ordinary one), filled without assignments: a setter the
  // function put on Object.prototype is never called.
  const console = {};
  const method = (level) => (...args) => $sandbox_log(level, args);
  const levels = ["log", "info", "warn", "error", "debug"];
  for (let i = 0; i < levels.length; i++) {
    P.define(console, levels[i], {
      __proto__: null,
      value: method(levels[i]),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }

  // Why main gave no result: it threw `value`; or its JSON is too long, JSON.stringify threw
  // `json`, or gave undefined (JSON has no such value).
  function failure(ok, json, value) {
    if (!ok) return describe(value);
    if (typeof json === "string") {
      return "the result of main is too large: " + json.length + " characters of JSON, at most " +
        limits.MAX_RESULT_BYTES + " bytes";
    }
    const why = json === undefined ? " (" + typeof value + ")" : ": " + describe(json);
    return "the result of main is not JSON-serialisable" + why;
  }

  return P.freeze({ __proto__: null, console, failure });
})
