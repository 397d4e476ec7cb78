// neo: read Neo N3 contracts (neo.call) and ask for transactions (neo.invoke). Compiled by
// prelude.js on first use, like prelude_fetch.js: it names no global, only what prelude.js
// captured (P) and the run's state (run).
//
// neo.call waits in run.requests like a fetch; the executor test-invokes the contract and
// answers with the decoded result stack. neo.invoke only records the action in run.actions:
// nothing is sent while the function runs, and the actions of a run that does not succeed
// are dropped. Arguments cross as JSON; the typed helpers below tag values that plain JSON
// cannot say ({"$neo": type, "value": ...}). Everything is checked again outside.
(function (P, run) {
  "use strict";
  const freeze = P.Object.freeze;
  const isArray = P.Array.isArray;
  const CONTRACT = /^0x[0-9a-fA-F]{40}$/;
  const METHOD = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
  let callsMade = 0;
  let actionsMade = 0;

  function tag(type, value) {
    return freeze({ $neo: type, value });
  }
  function fail(where, message) {
    throw new P.TypeError(where + ": " + message);
  }

  function hash160(value) {
    if (typeof value !== "string" || !/^(N[1-9A-HJ-NP-Za-km-z]{33}|0x[0-9a-fA-F]{40})$/.test(value)) {
      fail("neo.hash160", "expects an address (N...) or a 0x script hash of 40 hex digits");
    }
    return tag("Hash160", value);
  }
  function hash256(value) {
    if (typeof value !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
      fail("neo.hash256", "expects a 0x hash of 64 hex digits");
    }
    return tag("Hash256", value);
  }
  function bytes(value) {
    if (typeof value !== "string" || !/^(0x)?([0-9a-fA-F]{2})*$/.test(value)) {
      fail("neo.bytes", "expects hex digits (an even number, 0x optional)");
    }
    return tag("ByteArray", value);
  }
  function integer(value) {
    let text = value;
    if (typeof value === "bigint") text = P.String(value);
    else if (typeof value === "number" && P.Number.isSafeInteger(value)) text = P.String(value);
    if (typeof text !== "string" || !/^-?[0-9]{1,78}$/.test(text)) {
      fail("neo.integer", "expects a whole number, as a string of decimal digits or a BigInt");
    }
    return tag("Integer", text);
  }
  function publicKey(value) {
    if (typeof value !== "string" || !/^0[23][0-9a-fA-F]{64}$/.test(value)) {
      fail("neo.publicKey", "expects a compressed public key of 66 hex digits");
    }
    return tag("PublicKey", value);
  }
  function string(value) {
    if (typeof value !== "string") fail("neo.string", "expects a string");
    return tag("String", value);
  }

  function target(where, contract, method, args) {
    if (typeof contract !== "string" || !CONTRACT.test(contract)) {
      fail(where, "the contract must be a 0x script hash of 40 hex digits");
    }
    if (typeof method !== "string" || !METHOD.test(method)) {
      fail(where, "the method must be a name of letters, digits and _");
    }
    const list = args === undefined || args === null ? [] : args;
    if (!isArray(list)) fail(where, "the arguments must be an array");
    let json;
    try {
      json = P.stringify(list);
    } catch (e) {
      fail(where, "the arguments cannot be written as JSON (" + e + ")");
    }
    return { contract: contract.toLowerCase(), method, args: json };
  }

  function $sandbox_neo_call(contract, method, args) {
    return new P.Promise(function $sandbox_neo_request(resolve, reject) {
      if (callsMade >= run.neoCalls) {
        fail("neo.call", "at most " + run.neoCalls + " calls per execution");
      }
      const call = target("neo.call", contract, method, args);
      callsMade++;
      const id = ++run.lastId;
      if (run.waiting === null) run.waiting = new P.Map();
      // The answer: {id, error} or {id, value} (the decoded result as JSON).
      run.waiting.set(id, (a) =>
        typeof a.error === "string" ? reject(new P.Error(a.error)) : resolve(P.parse(a.value)),
      );
      run.requests.push({ id, kind: "neo.call", contract: call.contract, method, args: call.args });
    });
  }

  function $sandbox_neo_invoke(contract, method, args) {
    if (actionsMade >= run.neoActions) {
      fail("neo.invoke", "at most " + run.neoActions + " actions per execution");
    }
    const action = target("neo.invoke", contract, method, args);
    const index = actionsMade++;
    run.actions.push(action);
    return index;
  }

  return {
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
  };
})
