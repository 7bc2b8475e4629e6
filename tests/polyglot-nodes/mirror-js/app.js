// The "mirror" logic in JavaScript; see tests/nodes/mirror/src/lib.rs for the Rust original.
import { InvalidInput, llm, log, node, trace } from "kettle";

export const run = node((ctx, state) => {
  if (typeof state.topic !== "string") throw new InvalidInput("state.topic is missing");
  const topic = state.topic;
  const items = (state.items ?? []).filter((item) => typeof item === "string");
  const style = ctx.config.style ?? "plain";
  trace.setAttribute("mirror.topic", topic);

  const outlineSpan = trace.span("outline");
  outlineSpan.setAttribute("mirror.items", items.length);
  const outline = llm.call(`Outline ${topic} (${style})`, { system: "Be brief." });
  outlineSpan.end();

  const reviewSpan = trace.span("review");
  const reviews = [];
  let tokens = outline.usage.outputTokens;
  for (const item of items) {
    const itemSpan = trace.span("item");
    itemSpan.setAttribute("mirror.item", item);
    const review = llm.call(`Review ${item}`);
    tokens += review.usage.outputTokens;
    reviews.push(review.content);
    itemSpan.end();
  }
  reviewSpan.end();
  log.info(`reviewed ${items.length} items`);

  return {
    outline: outline.content,
    reviews,
    output_tokens: tokens,
    node: ctx.nodeName,
    attempt: ctx.attempt,
  };
});
