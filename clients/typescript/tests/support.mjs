// The server the tests talk to: a real `alim serve`, started by the test harness
// (tests/integration/test_typescript_client.py), which passes its URL and an admin key.
import { randomUUID } from "node:crypto";

export const ALIM_URL = process.env.ALIM_URL;
export const ALIM_KEY = process.env.ALIM_KEY;
/** A key of another partner (scopes chat and admin): it must see none of the first's data. */
export const ALIM_OTHER_KEY = process.env.ALIM_OTHER_KEY;
if (!ALIM_URL || !ALIM_KEY || !ALIM_OTHER_KEY) {
  throw new Error(
    "these tests need a running `alim serve`: set ALIM_URL, ALIM_KEY (a key with every scope) " +
      "and ALIM_OTHER_KEY (another partner's, scopes chat and admin)",
  );
}

export const DROUGHT_AZ = "Quraqlıq zamanı pomidoru necə suvarım?";
export const FROST_EN = "How do I protect wheat from frost?";
export const HUMAN = "I want to talk to an agronomist";

export const newId = (prefix) => `${prefix}-${randomUUID().slice(0, 12)}`;

/** A fetch that records each request (method, URL, headers) before sending it. */
export function recordingFetch(requests, inner = fetch) {
  return (input, init = {}) => {
    requests.push({
      method: init.method ?? "GET",
      url: String(input),
      headers: new Headers(init.headers),
    });
    return inner(input, init);
  };
}

/** The events of a stream, collected. */
export async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** The seq numbers of events' ids (`<run_id>:<seq>`). */
export const seqs = (events) => events.map((e) => Number(e.event_id.split(":").pop()));
