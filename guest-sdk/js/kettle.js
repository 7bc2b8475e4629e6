// Kettle's JavaScript guest SDK: write a node as a plain (async) function.
//
//   import { node, llm, trace } from "kettle";
//   export const run = node(async (ctx, state) => {
//     const span = trace.span("draft");
//     try {
//       const answer = llm.call(`Write about ${state.topic}`);
//       return { draft: answer.content };
//     } finally {
//       span.end();
//     }
//   });
//
// `kettle build` (or `kettle run`) bundles this module with the node's own code and turns it
// into a WebAssembly component with componentize-js. The `kettle:node/*` imports below are the
// host's WIT interfaces (wit/ in the Kettle repository).
import * as witLlm from "kettle:node/llm@0.1.0";
import * as witTrace from "kettle:node/trace@0.1.0";
import * as witLog from "kettle:node/log@0.1.0";
import * as witInterrupt from "kettle:node/interrupt@0.1.0";

/** A failure of the node; `kind` is one of "invalid-input", "llm", "failed". */
export class NodeError extends Error {
  constructor(message, kind = "failed") {
    super(message);
    this.name = "NodeError";
    this.kind = kind;
  }
}

/** The state or config handed to the node is not what it needs. */
export class InvalidInput extends NodeError {
  constructor(message) {
    super(message, "invalid-input");
    this.name = "InvalidInput";
  }
}

/** An LLM call failed; `kind` is denied, invalid-request, rate-limited, timeout or provider. */
export class LlmError extends Error {
  constructor(kind, message) {
    super(`${kind.replace("-", " ")}: ${message}`);
    this.name = "LlmError";
    this.kind = kind;
    this.detail = message;
  }
}

function failure(kind, message) {
  // componentize-js turns a thrown object with a `payload` into the `err` of the export's result.
  const error = new Error(message);
  error.payload = { tag: kind, val: message };
  return error;
}

/** Wraps `fn(ctx, state) => update` (sync or async) as the node's `run` export. */
export function node(fn) {
  if (typeof fn !== "function") {
    throw new TypeError("node(fn): give the node's function, (ctx, state) => update");
  }
  return async function run(witCtx, stateJson) {
    let config;
    let state;
    try {
      config = witCtx.config.trim() === "" ? {} : JSON.parse(witCtx.config);
    } catch (e) {
      throw failure("invalid-input", `node config is not JSON: ${e.message}`);
    }
    try {
      state = JSON.parse(stateJson);
    } catch (e) {
      throw failure("invalid-input", `state is not JSON: ${e.message}`);
    }
    const ctx = Object.freeze({
      runId: witCtx.runId,
      nodeName: witCtx.nodeName,
      attempt: witCtx.attempt,
      config,
    });
    let update;
    try {
      update = await fn(ctx, state);
    } catch (e) {
      if (e instanceof NodeError) throw failure(e.kind, e.message);
      if (e instanceof LlmError) throw failure("llm", e.message);
      throw failure("failed", e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
    if (update === undefined || update === null) update = {};
    if (typeof update !== "object" || Array.isArray(update)) {
      throw failure("failed", `the node returned ${Array.isArray(update) ? "an array" : typeof update}, not an object (the state update)`);
    }
    return JSON.stringify(update);
  };
}

function attributeValue(value) {
  switch (typeof value) {
    case "boolean":
      return { tag: "boolean", val: value };
    case "bigint":
      return { tag: "integer", val: value };
    case "number":
      return Number.isInteger(value)
        ? { tag: "integer", val: BigInt(value) }
        : { tag: "float", val: value };
    default:
      return { tag: "text", val: String(value) };
  }
}

/** A span this node opened; call `end()` (or use `trace.withSpan`). */
class Span {
  #span;
  constructor(name) {
    this.#span = witTrace.startSpan(name);
  }
  setAttribute(key, value) {
    this.#span?.setAttribute(key, attributeValue(value));
  }
  addEvent(name) {
    this.#span?.addEvent(name, []);
  }
  /** Marks the span as failed. */
  setError(message) {
    this.#span?.setError(String(message));
  }
  /** Ends the span now; later calls do nothing. */
  end() {
    const span = this.#span;
    this.#span = undefined;
    span?.[Symbol.dispose]();
  }
  [Symbol.dispose]() {
    this.end();
  }
}

export const trace = Object.freeze({
  /** Opens a child span of this node's innermost open span. */
  span(name) {
    return new Span(name);
  },
  /** Runs `fn(span)` inside a span and ends it, even when `fn` throws. */
  async withSpan(name, fn) {
    const span = new Span(name);
    try {
      return await fn(span);
    } catch (e) {
      span.setError(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      throw e;
    } finally {
      span.end();
    }
  },
  /** Sets an attribute on the node's own span. */
  setAttribute(key, value) {
    witTrace.setAttribute(key, attributeValue(value));
  },
  /** Records an event on the node's own span. */
  addEvent(name) {
    witTrace.addEvent(name, []);
  },
});

const ROLES = ["system", "user", "assistant", "tool"];

export const llm = Object.freeze({
  /**
   * Performs one chat completion through the host. `prompt` is one user message or a list of
   * `{role, content}`; options: system, model, temperature, maxTokens, stop, extra.
   * Throws LlmError.
   */
  call(prompt, options = {}) {
    const messages = [];
    if (options.system !== undefined) messages.push({ role: "system", content: options.system });
    if (typeof prompt === "string") {
      messages.push({ role: "user", content: prompt });
    } else {
      for (const m of prompt) {
        if (!ROLES.includes(m.role)) {
          throw new LlmError("invalid-request", `unknown role ${JSON.stringify(m.role)}; use one of ${ROLES.join(", ")}`);
        }
        messages.push({ role: m.role, content: String(m.content) });
      }
    }
    let response;
    try {
      response = witLlm.call({
        messages,
        model: options.model,
        temperature: options.temperature,
        maxTokens: options.maxTokens,
        stop: options.stop ?? [],
        extra: options.extra === undefined ? undefined : JSON.stringify(options.extra),
      });
    } catch (e) {
      const payload = e?.payload;
      if (payload && typeof payload.tag === "string") throw new LlmError(payload.tag, payload.val);
      throw e;
    }
    return {
      content: response.content,
      model: response.model,
      finishReason: response.finishReason,
      usage: {
        inputTokens: response.usage.inputTokens,
        outputTokens: response.usage.outputTokens,
      },
    };
  },
  /** Asks one question and returns the answer's text. */
  ask(prompt) {
    return this.call(prompt).content;
  },
});

export const log = Object.freeze({
  debug: (message) => witLog.log("debug", String(message)),
  info: (message) => witLog.log("info", String(message)),
  warn: (message) => witLog.log("warn", String(message)),
  error: (message) => witLog.log("error", String(message)),
});

/**
 * Asks a person `payload` (shown to them as JSON) and returns their answer. In a run with no
 * answer yet it does not return: the run stops (checkpointed) until `kettle resume RUN_ID
 * --input '{"answer": ...}'`, and then the node runs again from its start.
 */
export function interrupt(payload) {
  const answer = witInterrupt.interrupt(JSON.stringify(payload));
  try {
    return JSON.parse(answer);
  } catch {
    return answer;
  }
}
