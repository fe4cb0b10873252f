import { AlimClient, ApiError } from "@alim/client";

const alim = new AlimClient({ baseUrl: "http://127.0.0.1:8000", apiKey: process.env.ALIM_KEY! });
try {
  const turn = { user_id: "farmer-1", language: "az" } as const;
  for await (const event of alim.stream("Sabah Qubada yağış olacaq?", turn)) {
    if (event.type === "token") process.stdout.write(event.text);
    if (event.type === "sources") console.log("\n", event.sources.map((s) => s.title));
    if (event.type === "error") console.error(event.code, event.detail);
  }
  console.log((await alim.threads.list("farmer-1")).map((t) => t.title));
} catch (error) {
  if (!(error instanceof ApiError)) throw error;
  console.error(error.status, error.code, error.request_id); // e.g. 401 invalid_api_key
}
