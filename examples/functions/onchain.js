// Reads a value from a Consumer contract (contracts/consumer.py) and asks to write it back
// with one more "!". Input: {"contract": "0x…", "key": "greeting"}. The contract must be
// owned by your signer (GET /v1/neo/signer), e.g. `neosl devnet deploy consumer --owner N…`.
/**
 * @param {{ contract: string, key: string }} input
 * @param {NeoSL.Context} ctx
 */
async function main(input, ctx) {
  const current = await neo.call(input.contract, "get", [input.key]);
  // Recorded now; sent by the relay only because this execution succeeds.
  const position = neo.invoke(input.contract, "set", [input.key, `${current}!`]);
  console.log(`${input.key} was "${current}"; action ${position} asks for "${current}!"`);
  return { current, position };
}
