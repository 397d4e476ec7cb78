// neo: read Neo N3 contracts (neo.call) and ask for transactions (neo.invoke). Compiled by
// prelude.js on first use, like prelude_fetch.js: it names no global and calls no method it
// did not get from prelude.js (P: built-ins captured before the function's code ran; host:
// queues a request or an action, and tells how many of each this run may make).
//
// neo.call waits in the request queue like a fetch; the executor test-invokes the contract
// and answers with the decoded result stack. neo.invoke only records the action: nothing is
// sent while the function runs, and the actions of a run that does not succeed are dropped.
// Arguments cross as JSON; the typed helpers below tag values that plain JSON cannot say
// ({"$neo": type, "value": ...}). Everything is checked again outside.
(function (P, host, limits) {
  "use strict";
  const apply = P.apply;
  const exec = P.exec;
  const freeze = P.freeze;
  const stringify = P.stringify;
  const CONTRACT = /^0x[0-9a-fA-F]{40}$/;
  const METHOD = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
  const ADDRESS = /^(N[1-9A-HJ-NP-Za-km-z]{33}|0x[0-9a-fA-F]{40})$/;
  const HASH256 = /^0x[0-9a-fA-F]{64}$/;
  const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;
  const DECIMAL = /^-?[0-9]{1,78}$/;
  const PUBLIC_KEY = /^0[23][0-9a-fA-F]{64}$/;
  let callsMade = 0;
  let actionsMade = 0;

  // The captured exec: RegExp.prototype.test would look up the function's own `exec`.
  function matches(re, text) {
    return typeof text === "string" && apply(exec, re, [text]) !== null;
  }
  function tag(type, value) {
    return freeze({ $neo: type, value });
  }
  function fail(where, message) {
    throw new P.TypeError(where + ": " + message);
  }

  function hash160(value) {
    if (!matches(ADDRESS, value)) {
      fail("neo.hash160", "expects an address (N...) or a 0x script hash of 40 hex digits");
    }
    return tag("Hash160", value);
  }
  function hash256(value) {
    if (!matches(HASH256, value)) fail("neo.hash256", "expects a 0x hash of 64 hex digits");
    return tag("Hash256", value);
  }
  function bytes(value) {
    if (!matches(HEX, value)) fail("neo.bytes", "expects hex digits (an even number, 0x optional)");
    return tag("ByteArray", value);
  }
  function integer(value) {
    let text = value;
    if (typeof value === "bigint") text = P.String(value);
    else if (typeof value === "number" && P.isSafeInteger(value)) text = P.String(value);
    if (!matches(DECIMAL, text)) {
      fail("neo.integer", "expects a whole number, as a string of decimal digits or a BigInt");
    }
    return tag("Integer", text);
  }
  function publicKey(value) {
    if (!matches(PUBLIC_KEY, value)) {
      fail("neo.publicKey", "expects a compressed public key of 66 hex digits");
    }
    return tag("PublicKey", value);
  }
  function string(value) {
    if (typeof value !== "string") fail("neo.string", "expects a string");
    return tag("String", value);
  }

  // Why the JSON of some arguments is refused (too deep, too many values), or null. A scan,
  // like the child's: nothing recurses.
  function complexity(json) {
    let depth = 0;
    let deepest = 0;
    let items = 0;
    let inString = false;
    for (let i = 0; i < json.length; i++) {
      const c = json[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') {
        inString = true;
      } else if (c === "[" || c === "{") {
        items++;
        if (++depth > deepest) deepest = depth;
      } else if (c === "]" || c === "}") {
        depth--;
      } else if (c === ",") {
        items++;
      }
    }
    if (deepest > limits.MAX_ARGS_DEPTH) return limits.ARGS_TOO_DEEP;
    if (items > limits.MAX_ARGS_ITEMS) return limits.ARGS_TOO_MANY;
    return null;
  }

  // The checked target of a call, as JSON fields ('"contract":...,"method":...,"args":...').
  function target(where, contract, method, args) {
    if (!matches(CONTRACT, contract)) {
      fail(where, "the contract must be a 0x script hash of 40 hex digits");
    }
    if (!matches(METHOD, method)) fail(where, "the method must be a name of letters, digits and _");
    let json = "[]";
    if (args !== undefined && args !== null) {
      if (!P.isArray(args)) fail(where, "the arguments must be an array");
      try {
        json = stringify(args);
      } catch (e) {
        fail(where, "the arguments cannot be written as JSON (" + e + ")");
      }
      // The function's own toJSON may have said anything.
      if (typeof json !== "string") fail(where, "the arguments cannot be written as JSON");
    }
    if (json.length > limits.MAX_ARGS_CHARS) fail(where, limits.ARGS_TOO_LONG);
    const refused = complexity(json);
    if (refused !== null) fail(where, refused);
    return (
      '"contract":' + stringify(apply(P.toLowerCase, contract, [])) +
      ',"method":' + stringify(method) +
      ',"args":' + stringify(json)
    );
  }

  function $sandbox_neo_call(contract, method, args) {
    return new P.Promise(function $sandbox_neo_request(resolve, reject) {
      const allowed = host.neoCalls();
      if (callsMade >= allowed) fail("neo.call", "at most " + allowed + " calls per execution");
      const fields = target("neo.call", contract, method, args);
      // Checked again: toJSON, run by target, may have called neo.call itself.
      if (callsMade >= allowed) fail("neo.call", "at most " + allowed + " calls per execution");
      callsMade++;
      // The answer: {id, error} or {id, value} (the decoded result as JSON).
      const answered = (a) =>
        P.hasOwn(a, "error") && typeof a.error === "string"
          ? reject(new P.Error(a.error))
          : resolve(P.parse(a.value));
      host.request('"kind":"neo.call",' + fields, answered);
    });
  }

  function $sandbox_neo_invoke(contract, method, args) {
    const allowed = host.neoActions();
    if (actionsMade >= allowed) fail("neo.invoke", "at most " + allowed + " actions per execution");
    const fields = target("neo.invoke", contract, method, args);
    if (actionsMade >= allowed) fail("neo.invoke", "at most " + allowed + " actions per execution");
    const index = actionsMade++;
    host.action("{" + fields + "}");
    return index;
  }

  return freeze({
    __proto__: null,
    neo: freeze({
      call: $sandbox_neo_call,
      invoke: $sandbox_neo_invoke,
      hash160,
      hash256,
      bytes,
      integer,
      publicKey,
      string,
    }),
  });
})
