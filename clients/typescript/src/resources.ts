/** The partner resources besides turns: each a thin, typed wrapper of its endpoints. */

import type { Http, RequestOptions } from "./http.js";
import type {
  Article,
  Assistant,
  AssistantSettings,
  ArticlePage,
  Chunk,
  Dataset,
  Document,
  DocumentSummary,
  Escalation,
  Feedback,
  FeedbackRecord,
  NewArticle,
  NewDataset,
  Run,
  ThreadDetail,
  ThreadMessage,
  ThreadSummary,
} from "./types.js";

const id = encodeURIComponent;

export interface Page {
  limit?: number;
  offset?: number;
}

/** A user's conversations (scope `chat`). */
export class Threads {
  constructor(private readonly http: Http) {}

  /** Newest first. */
  async list(user_id: string, page: Page = {}, options?: RequestOptions): Promise<ThreadSummary[]> {
    const query = { user_id, limit: page.limit ?? 50, offset: page.offset ?? 0 };
    const body = await this.http.call<{ threads: ThreadSummary[] }>(
      { method: "GET", path: "/threads", query },
      options,
    );
    return body.threads;
  }

  get(thread_id: string, user_id: string, options?: RequestOptions): Promise<ThreadDetail> {
    return this.http.call(
      { method: "GET", path: `/threads/${id(thread_id)}`, query: { user_id } },
      options,
    );
  }

  /** The thread's messages, oldest first. */
  async history(
    thread_id: string,
    user_id: string,
    options?: RequestOptions,
  ): Promise<ThreadMessage[]> {
    return (await this.get(thread_id, user_id, options)).messages;
  }

  /** Removes the thread and every checkpoint of it. */
  async delete(thread_id: string, user_id: string, options?: RequestOptions): Promise<void> {
    await this.http.call(
      { method: "DELETE", path: `/threads/${id(thread_id)}`, query: { user_id } },
      options,
    );
  }

  /** Rate one answer (score 1–5). */
  feedback(
    thread_id: string,
    feedback: Feedback,
    options?: RequestOptions,
  ): Promise<FeedbackRecord> {
    return this.http.call(
      { method: "POST", path: `/threads/${id(thread_id)}/feedback`, json: feedback },
      options,
    );
  }
}

/** A run's status, and stopping it (scope `chat`). */
export class Runs {
  constructor(private readonly http: Http) {}

  get(run_id: string, user_id: string, options?: RequestOptions): Promise<Run> {
    return this.http.call(
      { method: "GET", path: `/runs/${id(run_id)}`, query: { user_id } },
      options,
    );
  }

  cancel(run_id: string, user_id: string, options?: RequestOptions): Promise<Run> {
    return this.http.call(
      { method: "POST", path: `/runs/${id(run_id)}/cancel`, query: { user_id } },
      options,
    );
  }
}

/** The agronomists' queue (scope `agent`). */
export class Escalations {
  constructor(private readonly http: Http) {}

  /** `status`: "open" (default), "resolved", or null for all. */
  async list(
    status: "open" | "resolved" | null = "open",
    page: Page = {},
    options?: RequestOptions,
  ): Promise<Escalation[]> {
    const query = { status: status ?? undefined, limit: page.limit, offset: page.offset };
    const body = await this.http.call<{ escalations: Escalation[] }>(
      { method: "GET", path: "/escalations", query },
      options,
    );
    return body.escalations;
  }

  /** Answer the farmer; the answer becomes the thread's assistant message. */
  reply(
    escalation_id: string,
    answer: string,
    agent_id: string,
    options?: RequestOptions,
  ): Promise<Escalation> {
    return this.http.call(
      {
        method: "POST",
        path: `/escalations/${id(escalation_id)}/reply`,
        json: { answer, agent_id },
      },
      options,
    );
  }

  claim(escalation_id: string, agent_id: string, options?: RequestOptions): Promise<Escalation> {
    return this.http.call(
      { method: "POST", path: `/escalations/${id(escalation_id)}/claim`, json: { agent_id } },
      options,
    );
  }

  release(escalation_id: string, agent_id: string, options?: RequestOptions): Promise<Escalation> {
    return this.http.call(
      { method: "POST", path: `/escalations/${id(escalation_id)}/release`, json: { agent_id } },
      options,
    );
  }
}

export interface Upload {
  /** The file's name; its extension (.md, .txt, .pdf) says how to read it. */
  filename: string;
  title?: string;
  language?: "az" | "en" | "ru";
}

/** The knowledge base (scope `admin`): articles are searchable as soon as they are added. */
export class Knowledge {
  constructor(private readonly http: Http) {}

  add(article: NewArticle, options?: RequestOptions): Promise<Article> {
    const json = { tags: [], topic: "", ...article };
    return this.http.call({ method: "POST", path: "/knowledge", json }, options);
  }

  /** Upload a document (a File, or a Blob with its name). */
  upload(file: Blob, upload: Upload, options?: RequestOptions): Promise<Article> {
    const form = new FormData();
    form.set("file", file, upload.filename);
    if (upload.title) form.set("title", upload.title);
    if (upload.language) form.set("language", upload.language);
    return this.http.call({ method: "POST", path: "/knowledge", form }, options);
  }

  list(page: Page = {}, options?: RequestOptions): Promise<ArticlePage> {
    const query = { limit: page.limit ?? 50, offset: page.offset ?? 0 };
    return this.http.call({ method: "GET", path: "/knowledge", query }, options);
  }

  get(article_id: string, options?: RequestOptions): Promise<Article> {
    return this.http.call({ method: "GET", path: `/knowledge/${id(article_id)}` }, options);
  }

  async delete(article_id: string, options?: RequestOptions): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/knowledge/${id(article_id)}` }, options);
  }
}

/** Your datasets (scope `admin`); `bundled`, the shared base, is listed first and read-only. */
export class Datasets {
  constructor(private readonly http: Http) {}

  create(dataset: NewDataset, options?: RequestOptions): Promise<Dataset> {
    const json = { description: "", ...dataset };
    return this.http.call({ method: "POST", path: "/datasets", json }, options);
  }

  /** The bundled base, then yours (oldest first). */
  async list(options?: RequestOptions): Promise<Dataset[]> {
    const body = await this.http.call<{ datasets: Dataset[] }>(
      { method: "GET", path: "/datasets" },
      options,
    );
    return body.datasets;
  }

  /** Another partner's dataset is a `NotFoundError`, as one that never existed. */
  get(dataset_id: string, options?: RequestOptions): Promise<Dataset> {
    return this.http.call({ method: "GET", path: `/datasets/${id(dataset_id)}` }, options);
  }

  async documents(dataset_id: string, options?: RequestOptions): Promise<DocumentSummary[]> {
    const body = await this.http.call<{ documents: DocumentSummary[] }>(
      { method: "GET", path: `/datasets/${id(dataset_id)}/documents` },
      options,
    );
    return body.documents;
  }

  /** Deletes the dataset with all its documents; they leave retrieval at once. */
  async delete(dataset_id: string, options?: RequestOptions): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/datasets/${id(dataset_id)}` }, options);
  }
}

export interface DocumentUpload {
  /** The file's name; its extension (.md, .txt, .pdf, .docx, .html) says how to read it. */
  filename: string;
  /** One of your datasets; omitted: your default dataset. */
  dataset_id?: string;
  /** Your id for the document: uploading it again replaces it. */
  external_id?: string;
  title?: string;
  language?: "az" | "en" | "ru";
  tags?: string[];
}

/** Files in your datasets (scope `admin`), searchable as soon as they are uploaded. */
export class Documents {
  constructor(private readonly http: Http) {}

  /** Upload a file (a File, or a Blob with its name) into a dataset. */
  upload(file: Blob, upload: DocumentUpload, options?: RequestOptions): Promise<Document> {
    const form = new FormData();
    form.set("file", file, upload.filename);
    for (const field of ["dataset_id", "external_id", "title", "language"] as const) {
      const value = upload[field];
      if (value) form.set(field, value);
    }
    if (upload.tags?.length) form.set("tags", upload.tags.join(","));
    return this.http.call({ method: "POST", path: "/documents", form }, options);
  }

  /** Its metadata and extracted text. */
  get(document_id: string, options?: RequestOptions): Promise<Document> {
    return this.http.call({ method: "GET", path: `/documents/${id(document_id)}` }, options);
  }

  /** One chunk, as a citation's `document_id` and `chunk_index` name it. */
  chunk(document_id: string, chunk_index: number, options?: RequestOptions): Promise<Chunk> {
    const path = `/documents/${id(document_id)}/chunks/${chunk_index}`;
    return this.http.call({ method: "GET", path }, options);
  }

  /** Deletes the document; it leaves retrieval at once. */
  async delete(document_id: string, options?: RequestOptions): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/documents/${id(document_id)}` }, options);
  }
}

/** Your assistant's settings (scope `admin`): what a chat searches when its request names no
 * dataset, its name, instructions, model, escalation threshold, language and region. They apply
 * from your next turn. */
export class AssistantResource {
  constructor(private readonly http: Http) {}

  /** The settings (the defaults until first saved). */
  get(options?: RequestOptions): Promise<Assistant> {
    return this.http.call({ method: "GET", path: "/assistant" }, options);
  }

  /** Replace the settings: each one left out goes back to its default. An unknown model or
   * region is an `InvalidRequestError`; another partner's dataset, a `NotFoundError`. */
  replace(settings: AssistantSettings, options?: RequestOptions): Promise<Assistant> {
    return this.http.call({ method: "PUT", path: "/assistant", json: settings }, options);
  }
}
