// What a function sees in the Neo N3 Service Layer's sandbox (QuickJS-ng), for editors:
// the `main(input, ctx)` every function defines, the host API the service adds (`console`,
// `fetch`, `neo`) and the few globals the engine adds to ECMAScript (`atob`, `btoa`,
// `queueMicrotask`, `performance`, `DOMException`, `InternalError`).
//
// The language itself (Promise, JSON, BigInt, Map, ...) is declared by TypeScript's own
// library: jsconfig.json asks for "esnext" and nothing else (no DOM, no Node), so an editor
// flags what the sandbox lacks. The engine has no `Intl`, although that library declares it.
// There is nothing else: no timers (setTimeout), no modules (import, require), no URL, no
// TextEncoder, no filesystem, no process.
//
// A function is a script, not a module: its source defines `function main(input, ctx)` or
// `async function main(input, ctx)` at its top level. Type main with JSDoc to have it
// checked:
//
//   /**
//    * @param {{ name?: string } | null} input
//    * @param {NeoSL.Context} ctx
//    */
//   function main(input, ctx) { ... }
//
// tests/functions/test_runtime_types.py compares the names declared here with those the
// sandbox provides.

declare namespace NeoSL {
  /** Any JSON value. */
  type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

  /**
   * The function's entry point: `function main(input, ctx)` or `async function main(input,
   * ctx)`, defined at the top level of its source.
   *
   * - `input`: the JSON given at invocation (at most 256 KB), or what a trigger passes: the
   *   event's cause for cron, price and blockchain triggers (`CronCause`, `PriceCause`,
   *   `BlockchainCause`), the delivery's JSON body for a webhook, the `input` given to
   *   `POST /v1/triggers/{id}/fire`.
   * - The value main returns (or its promise resolves to) is the execution's `result`: JSON,
   *   at most 256 KB and 64 levels deep (`undefined` becomes `null`); anything else fails
   *   the execution.
   * - A thrown error or a rejected promise fails the execution; its message and stack, cut
   *   to 64 KB, are the execution's `error`.
   * - The execution is stopped at its timeout (1-300 s, default 30) and fails when it uses
   *   more memory than its limit (16-512 MB, default 128). A promise that nothing can settle
   *   any more (no fetch or neo.call pending) ends it at once, as `timeout`.
   * - The actions it asked for (`neo.invoke`) are queued only if the execution succeeds.
   */
  type Main = (input: any, ctx: Context) => unknown;

  /** What a function's `main` receives as `ctx`. */
  interface Context {
    /** The execution's id (`GET /v1/executions/{id}`); null in `neosl functions run`. */
    executionId: number | null;
    /** The function's id; null in `neosl functions run`. */
    functionId: number | null;
    /** The version of the function that runs; null in `neosl functions run`. */
    version: number | null;
    /** The trigger that started this execution; null when it was invoked directly. */
    trigger: Trigger | null;
    /**
     * The plaintext of each secret the function was granted that exists, by name (a granted
     * name without a secret is absent). A value written to the console or contained in an
     * error is stored as `***`.
     */
    secrets: { [name: string]: string | undefined };
  }

  /** `ctx.trigger`: the trigger that fired, and why. */
  interface Trigger {
    /** The trigger's id (`GET /v1/triggers/{id}`). */
    trigger_id: number;
    /** The event that started this execution (`GET /v1/triggers/{id}/events`). */
    event_id: number;
    /** The trigger's `trigger_type`. */
    type: "cron" | "webhook" | "price" | "blockchain";
    /** The trigger's name. */
    name: string;
    /** Why it fired: the event's `cause`. */
    cause: Cause;
  }

  /** An event's cause, told apart by `type`. */
  type Cause = CronCause | WebhookCause | PriceCause | BlockchainCause | ManualCause;

  /** A cron slot came (also the function's input). */
  interface CronCause {
    type: "cron";
    trigger_id: number;
    /** The trigger's schedule, e.g. "30 2 * * *". */
    schedule: string;
    /** The IANA time zone the schedule is read in, e.g. "Europe/Berlin". */
    timezone: string;
    /** The slot, in the trigger's time zone, ISO 8601 with its offset. */
    slot: string;
    /** Earlier slots missed while no clock ran (recorded as skipped events). */
    missed: number;
  }

  /** A signed webhook delivery (the function's input is the delivery's JSON body). */
  interface WebhookCause {
    type: "webhook";
    trigger_id: number;
    /** The delivery's signature timestamp, in Unix seconds. */
    timestamp: number;
  }

  /** A price held above or below a threshold for the trigger's duration (also the input). */
  interface PriceCause {
    type: "price";
    trigger_id: number;
    /** The price feed that was read. */
    feed_id: number;
    /** The asset pair, e.g. "NEO/USD". */
    pair: string;
    /** The price, as an exact decimal string, e.g. "52.00000000". */
    price: string;
    /** When that price was taken, ISO 8601. */
    price_at: string;
    /** The trigger's threshold, as an exact decimal string. */
    threshold: string;
    condition: "above" | "below";
    /** How long the condition had to hold, in seconds. */
    duration: number;
    /** Since when it held, ISO 8601. */
    since: string;
  }

  /** A contract emitted an event in a HALT execution (also the function's input). */
  interface BlockchainCause {
    type: "blockchain";
    trigger_id: number;
    /** The transaction's hash, "0x" + 64 hex digits. */
    txid: string;
    block_index: number;
    /** The block's time, in Unix milliseconds. */
    block_time: number;
    /** The notification's position in the transaction. */
    notification_index: number;
    /** The contract's script hash, "0x" + 40 lowercase hex digits. */
    contract: string;
    event_name: string;
    /** The event's arguments, decoded as `neo.call` results are. */
    args: StackValue[];
  }

  /** `POST /v1/triggers/{id}/fire` (the input is the one given there). */
  interface ManualCause {
    type: "manual";
    trigger_id: number;
    trigger_type: "cron" | "webhook" | "price" | "blockchain";
  }

  /**
   * The execution's logs. Each call is one line at its level, with the time. The arguments
   * are joined by spaces: a string as it is, an Error as its message and stack, another
   * object as JSON (a BigInt as `12n`, a function as `[Function: name]`), anything else as
   * `String()` shows it. There are no format specifiers (`%s`) and no other methods.
   * At most 1,000 lines and 1 MB per execution; past that, one `warn` line says the output
   * was truncated and the rest is dropped.
   */
  interface Console {
    /** A line at level `log`. */
    log(...data: unknown[]): void;
    /** A line at level `info`. */
    info(...data: unknown[]): void;
    /** A line at level `warn`. */
    warn(...data: unknown[]): void;
    /** A line at level `error`. */
    error(...data: unknown[]): void;
    /** A line at level `debug`. */
    debug(...data: unknown[]): void;
  }

  /** The second argument of `fetch`; other fields are ignored. */
  interface RequestInit {
    /**
     * GET (the default), POST, PUT, PATCH, DELETE, HEAD or OPTIONS, in any case. GET and
     * HEAD requests cannot have a body.
     */
    method?: string;
    /**
     * Header names and values, all strings (values in Latin-1); at most 32 KB in all (names,
     * values and 4 bytes per header). Headers the transport controls (Host, Connection,
     * Content-Length, Accept-Encoding, Transfer-Encoding, Proxy-*, ...) are dropped;
     * Authorization and Cookie go to the origin asked only, never on to another origin a
     * redirect points to. Unless given, Accept (any type), User-Agent (`neosl-fetch`) and a
     * body's Content-Type (`text/plain;charset=UTF-8`) are set.
     */
    headers?: { [name: string]: string } | null;
    /** The request's body, a string (sent as UTF-8), at most 2 MB. */
    body?: string | null;
  }

  /** What a `fetch` resolves to: the whole response, already read. */
  interface Response {
    /** `status` is 200-299. */
    ok: boolean;
    /** The HTTP status code. */
    status: number;
    /** The standard reason phrase of `status` ("Not Found"), or "" for an unknown code. */
    statusText: string;
    /** The URL that answered, after redirects. */
    url: string;
    /**
     * The response's headers, by lower-case name (several with one name joined by ", "):
     * `headers["content-type"]`, or `headers.get("Content-Type")` in any case.
     */
    headers: ResponseHeaders;
    /** The body as text (decoded as UTF-8); may be called more than once. */
    text(): Promise<string>;
    /** The body parsed as JSON; rejects with a SyntaxError if it is not JSON. */
    json(): Promise<any>;
  }

  /** The methods of `Response.headers`, besides its plain lower-case properties. */
  interface Headers {
    /** The value of the header `name` (any case), or null. */
    get(name: string): string | null;
    /** Whether the response has the header `name` (any case). */
    has(name: string): boolean;
  }

  /** `Response.headers`: one property per header, by lower-case name, and `Headers`. */
  type ResponseHeaders = Headers & { readonly [name: string]: string | undefined };

  /** The Neo N3 parameter types the typed helpers tag values with. */
  type NeoType = "Hash160" | "Hash256" | "ByteArray" | "Integer" | "PublicKey" | "String";

  /**
   * A value tagged with its Neo N3 type, as the `neo.*` helpers make it (frozen); the same
   * form `POST /v1/neo/actions` takes, e.g. `{"$neo": "Hash160", "value": "N..."}`.
   */
  interface Tagged<T extends NeoType = NeoType> {
    readonly $neo: T;
    readonly value: string;
  }

  /**
   * An argument of `neo.call` or `neo.invoke`: a whole number within ±(2^53 - 1) is an
   * Integer (any other number is refused: 1.5, 1e300), a string a String, true/false a
   * Boolean, null Any, an array an Array of its items; other Neo types come from the
   * helpers (`Tagged`).
   */
  type NeoArgument = null | boolean | number | string | Tagged | readonly NeoArgument[];

  /** A 20-byte stack item, decoded: a script hash and its address. */
  interface ScriptHash {
    /** The Neo N3 address, "N...". */
    address: string;
    /** The script hash, "0x" + 40 hex digits, big-endian as Neo shows it. */
    hash: string;
  }

  /**
   * A Neo stack item as JSON: Integer → a number within ±(2^53 - 1), else a string of
   * digits; Boolean → true/false; Any → null; ByteString and Buffer → the text when the
   * bytes are UTF-8 without control characters, else a `ScriptHash` when they are 20 bytes,
   * else lowercase hex; Array and Struct → arrays; Map → an object with string keys.
   */
  type StackValue =
    | null
    | boolean
    | number
    | string
    | ScriptHash
    | StackValue[]
    | { [key: string]: StackValue };

  /**
   * Reading Neo N3 contracts and asking for transactions.
   *
   * `contract` is a script hash, "0x" + 40 hex digits; `method` a name of letters, digits
   * and `_` (at most 100). `args` (an array; omitted or null is none) is checked in the
   * sandbox (at most 256K characters of JSON, 64 levels, 8,192 values), then mapped to Neo
   * parameters: at most 16 arguments, 1,024 values, 8 levels of nesting and 64 KB of
   * strings and bytes. A value that cannot be mapped rejects a `neo.call` and fails the
   * execution of a `neo.invoke`, with a message naming its place
   * (`neo.invoke #0 (set): args[1]: 1.5 is not an integer`).
   */
  interface Neo {
    /**
     * Test-invokes `contract.method(...args)` on the service's node and resolves to the
     * decoded result: one stack item is the value, several an array, none null (see
     * `StackValue`). Nothing is sent to the chain. Rejects with a TypeError when the
     * sandbox refuses the call: a bad contract, method or arguments, or one call more than
     * allowed (`NSL_NEO_CALLS_PER_EXECUTION`, 10 per execution; none in `neosl functions
     * run`); with an Error when the service does: arguments that cannot be mapped, no node
     * answering, or a call that does not HALT (the message carries the VM's exception).
     */
    call<T = StackValue>(
      contract: string,
      method: string,
      args?: readonly NeoArgument[] | null,
    ): Promise<T>;
    /**
     * Records a transaction calling `contract.method(...args)`, signed by the tenant's
     * signer (`GET /v1/neo/signer`), and returns its position among this execution's
     * actions (0, 1, ...). Nothing is sent while the function runs: the actions of an
     * execution that succeeds are queued when it finishes, those of one that fails or times
     * out never are. Throws a TypeError for a bad contract, method or arguments, or beyond
     * the actions allowed: `NSL_NEO_ACTIONS_PER_EXECUTION` (10) per execution, and none in
     * `neosl functions run`.
     */
    invoke(contract: string, method: string, args?: readonly NeoArgument[] | null): number;
    /**
     * A Hash160: an address "N..." or "0x" + 40 hex digits (a script hash, big-endian).
     * Throws a TypeError for anything else.
     */
    hash160(value: string): Tagged<"Hash160">;
    /** A Hash256: "0x" + 64 hex digits. Throws a TypeError for anything else. */
    hash256(value: string): Tagged<"Hash256">;
    /**
     * A ByteArray: hex digits, an even number of them, "0x" optional (may be empty).
     * Throws a TypeError for anything else.
     */
    bytes(value: string): Tagged<"ByteArray">;
    /**
     * An Integer of any size within Neo's 256 bits: a string of decimal digits ("-"
     * allowed), a BigInt, or a safe integer number. Throws a TypeError for anything else.
     */
    integer(value: string | bigint | number): Tagged<"Integer">;
    /**
     * A PublicKey: a compressed secp256r1 key, 66 hex digits starting 02 or 03. Throws a
     * TypeError for anything else.
     */
    publicKey(value: string): Tagged<"PublicKey">;
    /** A String (a plain string already is one). Throws a TypeError for a non-string. */
    string(value: string): Tagged<"String">;
  }

  /** The engine's clock for measuring durations. */
  interface Performance {
    /**
     * Milliseconds, with a fraction, on a clock that starts when the execution's context is
     * made (it may be made well before the execution starts): only differences mean
     * something.
     */
    now(): number;
    /** When the context was made, in milliseconds of a monotonic clock (not a date). */
    readonly timeOrigin: number;
  }
}

/** The execution's logs (the service's; see `NeoSL.Console`). */
declare const console: NeoSL.Console;

/**
 * An HTTP request, performed by the service, outside the sandbox. http and https only. The
 * address a name resolves to is checked and then connected to: internal addresses
 * (loopback, private, link-local, metadata, ...) are refused, on every redirect too (at most
 * 5 are followed), unless the operator allows them (`NSL_FETCH_ALLOW`). At most 10
 * requests per execution, a URL of at most 8 KB, request and response bodies of at most
 * 2 MB, a timeout per request (`NSL_FETCH_TIMEOUT_MS`); no cookies are kept. Requests made
 * together (`Promise.all`) run concurrently.
 *
 * Rejects with a TypeError when the request is refused (a bound above, a bad argument, the
 * guard) or fails (timeout, connection, a body too large); an HTTP error status resolves
 * (check `ok`).
 */
declare function fetch(url: string, init?: NeoSL.RequestInit | null): Promise<NeoSL.Response>;

/** Neo N3 contracts: read them (`neo.call`) and ask for transactions (`neo.invoke`). */
declare const neo: NeoSL.Neo;

/**
 * The Base64 of a binary string (each character U+0000-U+00FF is one byte). Throws a
 * DOMException (InvalidCharacterError) for another character. From the engine.
 */
declare function btoa(data: string): string;

/**
 * The binary string (one character per byte) that Base64 `data` encodes. Throws a
 * DOMException (InvalidCharacterError) if it is not Base64. From the engine.
 */
declare function atob(data: string): string;

/**
 * Runs `callback` as a promise job once the current code has run, like
 * `Promise.resolve().then(callback)`. There are no timers. From the engine.
 */
declare function queueMicrotask(callback: () => void): void;

/** The engine's clock for measuring durations (`Date.now()` tells the time). */
declare const performance: NeoSL.Performance;

/** The error `atob` and `btoa` throw. From the engine. */
declare class DOMException extends Error {
  constructor(message?: string, name?: string);
  /** The legacy numeric code of `name` (e.g. 5 for InvalidCharacterError), else 0. */
  readonly code: number;
}

/**
 * QuickJS's error for the engine's own failures (out of memory, an interrupted run); those
 * end the execution anyway.
 */
declare const InternalError: ErrorConstructor;
