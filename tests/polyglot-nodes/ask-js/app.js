// Drafts with one LLM call, then asks a person whether to publish: the JavaScript twin of
// tests/nodes/ask-person, for the durable-runs interrupt tests.
import { interrupt, llm, node } from "kettle";

export const run = node((ctx, state) => {
  const draft = llm.call(`Draft about ${state.topic ?? "tea"}`).content;
  const answer = interrupt({ question: "Publish this draft?", draft });
  return { draft, decision: answer };
});
