// fetch(url, {method, headers, body}). Compiled by prelude.js on first use, by an indirect
// eval that may run after the function's code: so it names no global and calls no method it
// did not get from prelude.js (P: built-ins captured before the function's code ran; host:
// queues a request with the callback for its answer).
//
// A request over a bound (URL, headers, method, body: the limits below, counted in
// characters) is refused here, before it is queued: the promise rejects with a TypeError and
// nothing of it leaves the function's heap. The child checks the same bounds again in bytes.
(function (P, host, limits) {
  "use strict";
  const apply = P.apply;
  const keys = P.keys;
  const create = P.create;
  const hasOwn = P.hasOwn;
  const define = P.define;
  const stringify = P.stringify;
  const toLowerCase = P.toLowerCase;
  const TypeError = P.TypeError;
  let sent = 0;

  const headersProto = create(null);
  define(headersProto, "get", {
    __proto__: null,
    value: function get(name) {
      const key = apply(toLowerCase, P.String(name), []);
      return hasOwn(this, key) ? this[key] : null;
    },
  });
  define(headersProto, "has", {
    __proto__: null,
    value: function has(name) {
      return hasOwn(this, apply(toLowerCase, P.String(name), []));
    },
  });

  // r: the child's answer, from JSON.parse (its fields are own properties).
  function response(r) {
    // Plain-object access (headers["content-type"]) and headers.get(name) both work.
    const headers = create(headersProto);
    const names = keys(r.headers);
    for (let i = 0; i < names.length; i++) {
      define(headers, apply(toLowerCase, names[i], []), {
        __proto__: null,
        value: r.headers[names[i]],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const body = r.body;
    const Promise = P.Promise;
    const parse = P.parse;
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      statusText: r.statusText,
      url: r.url,
      headers,
      text() {
        return new Promise((resolve) => resolve(body));
      },
      json() {
        return new Promise((resolve) => resolve(parse(body)));
      },
    };
  }

  function $sandbox_fetch(url, init) {
    return new P.Promise(function $sandbox_request(resolve, reject) {
      if (sent >= limits.MAX_REQUESTS) {
        throw new TypeError("fetch: at most " + limits.MAX_REQUESTS + " requests per execution");
      }
      if (typeof url !== "string") throw new TypeError("fetch: the URL must be a string");
      if (url.length > limits.MAX_URL_CHARS) throw new TypeError(limits.URL_TOO_LONG);
      const options = init === undefined || init === null ? {} : init;
      if (typeof options !== "object") throw new TypeError("fetch: init must be an object");
      const method = options.method === undefined ? "GET" : options.method;
      if (typeof method !== "string") throw new TypeError("fetch: method must be a string");
      if (method.length > limits.MAX_METHOD_CHARS) throw new TypeError(limits.METHOD_TOO_LONG);
      // The headers as JSON, counted as they go: a huge header is refused, never copied.
      let headers = "";
      let size = 0;
      const given = options.headers;
      if (given !== undefined && given !== null) {
        if (typeof given !== "object") {
          throw new TypeError("fetch: headers must be an object of strings");
        }
        const names = keys(given);
        for (let i = 0; i < names.length; i++) {
          const name = names[i];
          const value = given[name];
          if (typeof value !== "string") {
            throw new TypeError("fetch: header " + name + " must be a string");
          }
          size += name.length + value.length + 4;
          if (size > limits.MAX_HEADERS_CHARS) throw new TypeError(limits.HEADERS_TOO_LARGE);
          headers += (headers ? "," : "") + stringify(name) + ":" + stringify(value);
        }
      }
      const body = options.body === undefined || options.body === null ? null : options.body;
      if (body !== null && typeof body !== "string") {
        throw new TypeError("fetch: body must be a string");
      }
      if (body !== null && body.length > limits.MAX_BODY_CHARS) {
        throw new TypeError(limits.BODY_TOO_LARGE);
      }
      // Checked again: the getters read above may have called fetch themselves.
      if (sent >= limits.MAX_REQUESTS) {
        throw new TypeError("fetch: at most " + limits.MAX_REQUESTS + " requests per execution");
      }
      sent++;
      // The answer: {id, error} or {id, status, statusText, headers, body, url}.
      const answered = (a) =>
        hasOwn(a, "error") && typeof a.error === "string"
          ? reject(new TypeError(a.error))
          : resolve(response(a));
      const fields =
        '"url":' + stringify(url) +
        ',"method":' + stringify(apply(P.toUpperCase, method, [])) +
        ',"headers":{' + headers + '},"body":' + stringify(body);
      host.request(fields, answered);
    });
  }

  return P.freeze({ __proto__: null, fetch: $sandbox_fetch });
})
