// Evaluated before a node's own code when the node is built without the `http` grant: the
// component then has no wasi:http, and fetch fails with an error a person can act on instead
// of crashing the node.
const refuse = async (resource) => {
  throw new TypeError(
    `fetch(${JSON.stringify(String(resource?.url ?? resource))}) is disabled: this node is not granted \`http\` in the agent file`,
  );
};
globalThis.fetch = refuse;
