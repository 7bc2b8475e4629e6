// Types of the `kettle` module (kettle.js), following Kettle's WIT world kettle:node@0.1.0
// (wit/*.wit): record fields in camelCase, enums as string unions, as componentize-js maps them.

/** What the host tells the node about this execution (WIT `node-context`, config parsed). */
export interface Context {
  /** Identifier of the run. */
  readonly runId: string;
  /** The node's name in the agent's YAML. */
  readonly nodeName: string;
  /** 1 for the first attempt, incremented on every retry. */
  readonly attempt: number;
  /** The node's `config:` block from the YAML (`{}` when absent). */
  readonly config: Record<string, unknown>;
}

/** The agent's state, a JSON object; a node returns the keys it replaces. */
export type State = Record<string, unknown>;

/** Wraps `fn(ctx, state) => update` (sync or async) as the node's `run` export. */
export function node(
  fn: (ctx: Context, state: State) => State | void | Promise<State | void>,
): (ctx: unknown, state: string) => Promise<string>;

/** WIT `node-error` cases. */
export type NodeErrorKind = "invalid-input" | "llm" | "failed";

/** Thrown by a node to give up (`node-error.failed` unless `kind` says otherwise). */
export class NodeError extends Error {
  constructor(message: string, kind?: NodeErrorKind);
  readonly kind: NodeErrorKind;
}

/** The state or config is not what the node needs (`node-error.invalid-input`). */
export class InvalidInput extends NodeError {
  constructor(message: string);
}

/** WIT `llm.llm-error` cases. */
export type LlmErrorKind = "denied" | "invalid-request" | "rate-limited" | "timeout" | "provider";

/** An LLM call failed; uncaught, it fails the node with `node-error.llm`. */
export class LlmError extends Error {
  constructor(kind: LlmErrorKind, message: string);
  readonly kind: LlmErrorKind;
  readonly detail: string;
}

/** WIT `llm.role`. */
export type Role = "system" | "user" | "assistant" | "tool";

/** WIT `llm.message`. */
export interface Message {
  role: Role;
  content: string;
}

/** The optional fields of WIT `llm.request`; absent ones take the agent's defaults. */
export interface CallOptions {
  /** A system message put first. */
  system?: string;
  model?: string;
  temperature?: number;
  maxTokens?: number;
  stop?: string[];
  /** Provider options the request does not name, merged into the provider's request body. */
  extra?: Record<string, unknown>;
}

/** WIT `llm.usage`. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** WIT `llm.response`. */
export interface Response {
  content: string;
  model: string;
  finishReason: string;
  usage: Usage;
}

export const llm: {
  /** Performs one chat completion through the host; throws LlmError. */
  call(prompt: string | Message[], options?: CallOptions): Response;
  /** Asks one question and returns the answer's text. */
  ask(prompt: string): string;
};

/** WIT `trace.value`: numbers that are integers become `integer`, others `float`. */
export type AttributeValue = string | number | bigint | boolean;

/** A span this node opened (WIT `trace.span`). */
export interface Span {
  setAttribute(key: string, value: AttributeValue): void;
  addEvent(name: string): void;
  /** Marks the span as failed. */
  setError(message: string): void;
  /** Ends the span; later calls do nothing. */
  end(): void;
  [Symbol.dispose](): void;
}

export const trace: {
  /** Opens a child span of this node's innermost open span. */
  span(name: string): Span;
  /** Runs `fn(span)` inside a span and ends it, even when `fn` throws. */
  withSpan<T>(name: string, fn: (span: Span) => T | Promise<T>): Promise<T>;
  /** Sets an attribute on the node's own span. */
  setAttribute(key: string, value: AttributeValue): void;
  /** Records an event on the node's own span. */
  addEvent(name: string): void;
};

/** WIT `log`: lines go to the host's log and become events of the innermost open span. */
export const log: {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/**
 * WIT `interrupt`: asks a person `payload` and returns their answer (JSON). In a run with no
 * answer yet it does not return: the run stops, checkpointed, until `kettle resume`.
 */
export function interrupt(payload: unknown): unknown;
