// Writes a paragraph from the outline, then a title for it: two LLM calls in a `write` span.
import { InvalidInput, llm, node, trace } from "kettle";

export const run = node(async (ctx, state) => {
  if (typeof state.outline !== "string") {
    throw new InvalidInput("state.outline is missing: run `outline` first");
  }
  const tone = ctx.config.tone ?? "neutral";
  return trace.withSpan("write", (span) => {
    span.setAttribute("draft.tone", tone);
    const paragraph = llm.call(`Write one ${tone} paragraph from this outline: ${state.outline}`, {
      maxTokens: 300,
    });
    const title = llm.call(`Give a five-word title for: ${paragraph.content}`, { maxTokens: 20 });
    return { draft: paragraph.content, title: title.content };
  });
});
