// Returns its input state under `echo`: the JavaScript twin of tests/nodes/echo, for overhead
// measurements.
import { node } from "kettle";

export const run = node((ctx, state) => ({ echo: state }));
