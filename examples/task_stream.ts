// Table task 3: a 1,000-chunk `more` stream, reassembled by the server.
//   deno run --allow-net=127.0.0.1 examples/task_stream.ts
// deno-lint-ignore-file no-console
import { connect, serve } from "../mod.ts";

await using server = await serve("tcp|127.0.0.1|0", async (req, ch) => {
  let text = "";
  for await (using chunk of ch.chunks(req)) text += chunk.body.text();
  return `${text.split(";").length - 1} chunks, ${text.length} bytes`;
});
await using ch = await connect(server.address);
const chunks = Array.from({ length: 1000 }, (_, i) => `chunk ${i};`);
using reply = await ch.request(chunks); // an iterable is sent as one stream
console.log(reply.body.text()); // 1000 chunks, 9890 bytes
