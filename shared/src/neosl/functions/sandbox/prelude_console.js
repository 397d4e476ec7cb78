// Console lines, and showing values and errors as a console does. Compiled by prelude.js on
// first use, by an indirect eval that may run after the function's code: so it names no
// global, only what prelude.js captured (P) and the run's queues (run).
(function (P, run, limits) {
  "use strict";

  function describe(e) {
    try {
      if (e instanceof P.Error) {
        const head = P.String(e);
        const stack = e.stack;
        if (typeof stack !== "string") return head;
        const frames = stack.split("\n").filter((f) => f && !f.includes(" at $sandbox_"));
        return frames.length ? head + "\n" + frames.join("\n") : head;
      }
      return "Uncaught " + show(e);
    } catch (_) {
      return "Uncaught exception (it cannot be shown)";
    }
  }

  function jsonish(_key, v) {
    if (typeof v === "bigint") return v + "n";
    if (typeof v === "function") return "[Function: " + (v.name || "anonymous") + "]";
    return v;
  }

  // One console argument, as a console shows it.
  function show(v) {
    switch (typeof v) {
      case "string":
        return v;
      case "bigint":
        return v + "n";
      case "function":
        return "[Function: " + (v.name || "anonymous") + "]";
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
    if (run.truncatedAt) return;
    if (run.lines >= limits.MAX_LINES) {
      run.truncatedAt = P.now();
      return;
    }
    let text = "";
    for (let i = 0; i < args.length; i++) text += (i ? " " : "") + show(args[i]);
    if (run.chars + text.length > limits.MAX_CHARS) {
      text = text.slice(0, limits.MAX_CHARS - run.chars);
      run.truncatedAt = P.now();
      if (!text) return;
    }
    run.logs.push(level, P.now(), text);
    run.lines++;
    run.chars += text.length;
  }

  const console = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    console[level] = (...args) => $sandbox_log(level, args);
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

  return { console, failure };
})
