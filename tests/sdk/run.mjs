// Drives a running Steward with Mistral's and OpenAI's official TypeScript
// SDKs, as a team pointing them at Steward would: the base URL and a
// Workspace key are all that change. cmd/steward's TestOfficialSDKs starts
// Steward in front of a fake Mistral upstream and runs this script; it
// prints one line a step ("ok NAME" or "FAIL NAME: why") and exits 1 when
// a step failed.
//
// Environment: STEWARD_URL (Steward's base URL, without /v1), STEWARD_KEY
// (a Workspace key), STEWARD_OTHER_KEY (a key of another Workspace of the
// same Organization), STEWARD_MODEL (a chat, embeddings, moderations and
// OCR model).
import { Mistral } from "@mistralai/mistralai";
import OpenAI from "openai";

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.log(`FAIL environment: ${name} is not set`);
    process.exit(1);
  }
  return v;
};
const url = env("STEWARD_URL");
const model = env("STEWARD_MODEL");
// No retries: a refusal must show, not be hidden by a second try.
const options = { serverURL: url, retryConfig: { strategy: "none" } };
const mistral = new Mistral({ apiKey: env("STEWARD_KEY"), ...options });
const other = new Mistral({ apiKey: env("STEWARD_OTHER_KEY"), ...options });
const openai = new OpenAI({ apiKey: env("STEWARD_KEY"), baseURL: `${url}/v1`, maxRetries: 0 });

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

// notFound expects call to fail as Mistral answers an unknown id: 404.
async function notFound(what, call) {
  try {
    await call();
  } catch (e) {
    expect(e.statusCode === 404 || e.status === 404, `${what}: got ${e.statusCode ?? e.status ?? e}, want 404`);
    return;
  }
  throw new Error(`${what}: answered, want 404`);
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exitCode = 1;
  }
}

const hello = [{ role: "user", content: "hello" }];

await step("mistral models.list", async () => {
  const list = await mistral.models.list();
  expect(list.data.some((m) => m.id === model), `${model} not in ${JSON.stringify(list.data.map((m) => m.id))}`);
});

await step("mistral chat.complete", async () => {
  const r = await mistral.chat.complete({ model, messages: hello });
  expect(r.choices[0].message.content, "no content");
  expect(r.usage.totalTokens > 0, "no usage");
});

await step("mistral chat.stream", async () => {
  const stream = await mistral.chat.stream({ model, messages: hello });
  let text = "";
  for await (const event of stream) {
    text += event.data.choices[0]?.delta?.content ?? "";
  }
  expect(text.length > 0, "no streamed text");
});

await step("mistral embeddings.create", async () => {
  const r = await mistral.embeddings.create({ model, inputs: ["hello", "world"] });
  expect(r.data.length === 2, `${r.data.length} embeddings, want 2`);
});

await step("mistral ocr.process", async () => {
  const r = await mistral.ocr.process({ model, document: { type: "document_url", documentUrl: "https://example.com/a.pdf" } });
  expect(r.pages.length > 0, "no page");
});

await step("mistral classifiers.moderate", async () => {
  const r = await mistral.classifiers.moderate({ model, inputs: ["hello"] });
  expect(r.results.length === 1, `${r.results.length} results, want 1`);
});

let fileId;
await step("mistral files.upload and list, not another Workspace's", async () => {
  const line = JSON.stringify({ custom_id: "1", body: { messages: hello } });
  const f = await mistral.files.upload({ file: { fileName: "batch.jsonl", content: new TextEncoder().encode(line + "\n") }, purpose: "batch" });
  fileId = f.id;
  const mine = await mistral.files.list();
  expect(mine.data.some((x) => x.id === fileId), "the uploaded file is not in its Workspace's list");
  const theirs = await other.files.list();
  expect(!theirs.data.some((x) => x.id === fileId), "another Workspace's list shows the file");
  await notFound("another Workspace's files.retrieve", () => other.files.retrieve({ fileId }));
});

await step("mistral batch.jobs.create and list, not another Workspace's", async () => {
  const job = await mistral.batch.jobs.create({ inputFiles: [fileId], endpoint: "/v1/chat/completions", model });
  const mine = await mistral.batch.jobs.list();
  expect(mine.data.some((j) => j.id === job.id), "the job is not in its Workspace's list");
  const theirs = await other.batch.jobs.list();
  expect(!theirs.data.some((j) => j.id === job.id), "another Workspace's list shows the job");
  await notFound("another Workspace's batch.jobs.get", () => other.batch.jobs.get({ jobId: job.id }));
  await notFound("a batch job of another Workspace's file", () =>
    other.batch.jobs.create({ inputFiles: [fileId], endpoint: "/v1/chat/completions", model }));
});

await step("mistral beta.agents.create and agents.complete, not another Workspace's", async () => {
  const agent = await mistral.beta.agents.create({ model, name: "sdk-test" });
  const r = await mistral.agents.complete({ agentId: agent.id, messages: hello });
  expect(r.choices[0].message.content, "no content");
  await notFound("another Workspace's beta.agents.get", () => other.beta.agents.get({ agentId: agent.id }));
  await notFound("another Workspace's agents.complete", () => other.agents.complete({ agentId: agent.id, messages: hello }));
});

await step("openai models.list", async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  expect(ids.includes(model), `${model} not in ${JSON.stringify(ids)}`);
});

await step("openai chat.completions.create", async () => {
  const r = await openai.chat.completions.create({ model, messages: hello });
  expect(r.choices[0].message.content, "no content");
  expect(r.usage.total_tokens > 0, "no usage");
});

await step("openai chat.completions.create, streamed", async () => {
  const stream = await openai.chat.completions.create({ model, messages: hello, stream: true });
  let text = "";
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  expect(text.length > 0, "no streamed text");
});

await step("openai embeddings.create", async () => {
  const r = await openai.embeddings.create({ model, input: ["hello"], encoding_format: "float" });
  expect(r.data.length === 1, `${r.data.length} embeddings, want 1`);
});
