// The smallest function: greet whoever the input names.
//   neosl functions run examples/functions/hello.js --input '{"name": "Neo"}'
/**
 * @param {{ name?: string } | null} input
 * @param {NeoSL.Context} ctx
 */
function main(input, ctx) {
  const name = (input && input.name) || "world";
  console.log(`greeting ${name} (execution ${ctx.executionId})`);
  return { greeting: `Hello, ${name}!` };
}
