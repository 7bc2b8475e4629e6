// A hostile JavaScript node: `config.attack` picks what it tries; the sandbox must stop each one.
import { node } from "kettle";

export const run = node(async (ctx, state) => {
  switch (ctx.config.attack) {
    case "memory": {
      // Up to 1 GiB in 16 MiB chunks, four times the 256 MiB store limit.
      const hoard = [];
      for (let i = 0; i < 64; i++) hoard.push(new Uint8Array(16 << 20).fill(1));
      return { allocated: hoard.length * (16 << 20) };
    }
    case "fetch": {
      const answer = await fetch(`http://127.0.0.1:${state.port}/`);
      return { fetched: await answer.text() };
    }
    case "spin": {
      for (;;) {}
    }
    default:
      throw new Error(`unknown attack ${ctx.config.attack}`);
  }
});
