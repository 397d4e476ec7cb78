// Fetch a JSON document with an API key from the function's secrets, and return a value
// from it. Several fetches may run at once: Promise.all really runs them concurrently.
//   neosl functions run examples/functions/quote.js \
//       --input '{"urls": ["https://api.example.com/price/NEO"]}' --secret API_KEY=…
/**
 * @param {{ urls: string[] }} input
 * @param {NeoSL.Context} ctx
 */
async function main(input, ctx) {
  const headers = { "X-Api-Key": ctx.secrets.API_KEY || "" };
  const answers = await Promise.all(
    input.urls.map((url) => fetch(url, { headers }))
  );
  const prices = [];
  for (const answer of answers) {
    if (!answer.ok) throw new Error(`${answer.url} answered ${answer.status}`);
    const body = await answer.json();
    prices.push(Number(body.price));
  }
  console.info(`got ${prices.length} price(s)`);
  return { average: prices.reduce((a, b) => a + b, 0) / prices.length, prices };
}
