// fetch(url, {method, headers, body}). Compiled by prelude.js on first use, by an indirect
// eval that may run after the function's code: so it names no global, only what prelude.js
// captured (P) and the run's queues (run). Requests wait in run.requests until the child
// drains them; prelude.js hands each answer to the callback left in run.waiting.
(function (P, run, limits) {
  "use strict";
  const keys = P.Object.keys;
  const create = P.Object.create;
  const hasOwn = P.Object.hasOwn;
  const define = P.define;
  let sent = 0;

  const headersProto = create(null);
  define(headersProto, "get", {
    value: function get(name) {
      const key = P.String(name).toLowerCase();
      return hasOwn(this, key) ? this[key] : null;
    },
  });
  define(headersProto, "has", {
    value: function has(name) {
      return hasOwn(this, P.String(name).toLowerCase());
    },
  });

  function response(r) {
    // Plain-object access (headers["content-type"]) and headers.get(name) both work.
    const headers = create(headersProto);
    for (const name of keys(r.headers)) {
      define(headers, name.toLowerCase(), {
        value: r.headers[name],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const body = r.body;
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      statusText: r.statusText,
      url: r.url,
      headers,
      text() {
        return new P.Promise((resolve) => resolve(body));
      },
      json() {
        return new P.Promise((resolve) => resolve(P.parse(body)));
      },
    };
  }

  function $sandbox_fetch(url, init) {
    return new P.Promise(function $sandbox_request(resolve, reject) {
      if (sent >= limits.MAX_REQUESTS) {
        throw new P.TypeError("fetch: at most " + limits.MAX_REQUESTS + " requests per execution");
      }
      if (typeof url !== "string") throw new P.TypeError("fetch: the URL must be a string");
      const options = init === undefined || init === null ? {} : init;
      if (typeof options !== "object") throw new P.TypeError("fetch: init must be an object");
      const method = options.method === undefined ? "GET" : options.method;
      if (typeof method !== "string") throw new P.TypeError("fetch: method must be a string");
      const headers = {};
      if (options.headers !== undefined && options.headers !== null) {
        if (typeof options.headers !== "object") {
          throw new P.TypeError("fetch: headers must be an object of strings");
        }
        for (const name of keys(options.headers)) {
          const value = options.headers[name];
          if (typeof value !== "string") {
            throw new P.TypeError("fetch: header " + name + " must be a string");
          }
          define(headers, name, { value, enumerable: true });
        }
      }
      const body = options.body === undefined || options.body === null ? null : options.body;
      if (body !== null && typeof body !== "string") {
        throw new P.TypeError("fetch: body must be a string");
      }
      sent++;
      const id = ++run.lastId;
      // The answer: {id, error} or {id, status, statusText, headers, body, url}.
      if (run.waiting === null) run.waiting = new P.Map();
      run.waiting.set(id, (a) =>
        typeof a.error === "string" ? reject(new P.TypeError(a.error)) : resolve(response(a)),
      );
      run.requests.push({ id, url, method: method.toUpperCase(), headers, body });
    });
  }

  return { fetch: $sandbox_fetch };
})
