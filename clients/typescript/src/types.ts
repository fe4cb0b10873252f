/** Request and response bodies of the API (field names as on the wire). */

import type { Source, TurnResult } from "./events.js";

/** Everything a turn may carry besides the message. */
export interface TurnOptions {
  /** Your app's id for the end user; threads belong to your key and this id. */
  user_id: string;
  /** Continue this thread (a new one is created when omitted). */
  thread_id?: string;
  language?: "auto" | "az" | "en" | "ru";
  /** Kept in the thread; tailors answers and is the default weather place. */
  profile?: { region?: string; crops?: string[]; soil?: string; irrigation?: string };
  search_options?: {
    search_type?: "similarity" | "hybrid" | "mmr";
    k?: number;
    score_threshold?: number | null;
    fetch_k?: number;
    lambda_mult?: number;
  };
  /**
   * Search only this dataset of yours, or these (at most 20; `[]`: none of yours); omitted: the
   * assistant's default datasets, else all of yours. `bundled` names the shared base. Another
   * partner's dataset id is a `NotFoundError` (`dataset_not_found`).
   */
  dataset_id?: string | string[];
  /** Search the shared bundled knowledge base too (default: the assistant's setting, else true). */
  include_bundled?: boolean;
  /** Your own tags. */
  metadata?: Record<string, string>;
  /** `enqueue`: wait for the thread's current run instead of 409 `thread_busy`. */
  multitask_strategy?: "reject" | "enqueue";
  /** `cancel`: stop the run when the stream's connection drops (default: it goes on). */
  on_disconnect?: "continue" | "cancel";
}

export interface ThreadSummary {
  thread_id: string;
  /** The thread's first message (truncated). */
  title: string;
  created_at: string;
  updated_at: string;
  message_count: number;
  status: string;
}

export interface ThreadMessage {
  role: "user" | "assistant";
  content: string;
  created_at: string | null;
  sources: Source[] | null;
  /** Written by a human agronomist. */
  from_human: boolean;
}

export interface ThreadDetail {
  thread_id: string;
  title: string;
  created_at: string;
  updated_at: string;
  status: string;
  messages: ThreadMessage[];
}

export interface Feedback {
  user_id: string;
  run_id: string;
  /** 1–5. */
  score: number;
  comment?: string | null;
}

export interface FeedbackRecord {
  id: string;
  run_id: string;
  score: number;
  created_at: string;
}

export interface Escalation {
  id: string;
  thread_id: string;
  user_id: string;
  question: string;
  reason: string;
  confidence: number | null;
  sources: Source[];
  status: string;
  created_at: string;
  resolved_at: string | null;
  answer: string | null;
  agent_id: string | null;
  followups?: string[];
  claimed_by?: string | null;
  claimed_at?: string | null;
}

export interface NewArticle {
  title: string;
  content: string;
  language: "az" | "en" | "ru";
  tags?: string[];
  topic?: string;
  /** One of your datasets; omitted: your default dataset (created on first use). */
  dataset_id?: string;
  /** Your own id for the article: adding it again replaces the article. */
  external_id?: string;
}

export interface Article {
  id: string;
  title: string;
  language: string;
  topic: string;
  tags: string[];
  source: "bundled" | "ingested";
  content: string | null;
  indexed: boolean;
  /** `bundled`: the shared knowledge base. */
  dataset_id?: string;
  external_id?: string | null;
  /** False when the dataset already held the same content (that one is returned). */
  created?: boolean;
}

export interface NewDataset {
  name: string;
  description?: string;
  /** The language of its documents, if one (informative). */
  language?: "az" | "en" | "ru" | null;
}

export interface Dataset {
  id: string;
  name: string;
  description: string;
  language: string | null;
  /** The bundled base: shared by every partner, read-only. */
  read_only: boolean;
  /** Where articles added without a `dataset_id` go. */
  is_default: boolean;
  /** Documents it holds. */
  documents: number;
  created_at: string | null;
  updated_at: string | null;
}

/** A document as a dataset's listing shows it. */
export interface DocumentSummary {
  id: string;
  title: string;
  language: string;
  external_id: string | null;
  filename: string | null;
  chunks: number;
  created_at: string;
}

export interface Document {
  id: string;
  dataset_id: string;
  title: string;
  filename: string | null;
  /** The extracted text (`documents.get` only). */
  content: string | null;
  created_at: string;
  /** False when the dataset already held the same content (that one is returned). */
  created: boolean;
  metadata: {
    filename: string | null;
    /** markdown, text, pdf, docx or html (null for articles sent as JSON). */
    file_type: string | null;
    /** PDFs: their pages. */
    page_count: number | null;
    total_chunks: number;
    external_id: string | null;
    language: string;
    topic: string;
    tags: string[];
  };
}

/** One chunk of a document, as retrieval saw it (a citation's `chunk_index`). */
export interface Chunk {
  document_id: string;
  chunk_index: number;
  content: string;
  metadata: {
    filename: string | null;
    document_id: string;
    dataset_id: string;
    chunk_index: number;
    /** PDFs: the chunk's page, from 1. */
    page_number: number | null;
    total_chunks: number;
  };
}

export interface ArticlePage {
  articles: Article[];
  total: number;
}

/** Your assistant's settings as `assistant.replace` takes them: each one left out goes back to
 * its default. */
export interface AssistantSettings {
  /** 1–100 characters (default "ALİM"). */
  display_name?: string;
  /** Appended to the system prompt of hosted models (at most 4,000 characters; default ""). */
  instructions?: string;
  /** "" (default): the server's; else `groq` | `openai` | `offline`, optionally `:<model>`. */
  model?: string;
  /** 0–1; below it an agronomy answer goes to an agronomist (null, default: the server's). */
  escalation_threshold?: number | null;
  default_language?: "auto" | "az" | "en" | "ru";
  /** The weather place when a question names none (null, default: the server's). */
  default_region?: string | null;
  /**
   * The datasets of yours a chat searches when its request names none (at most 20; `[]`: none
   * of yours); null (default): all of yours. A dataset deleted later is skipped. Another
   * partner's dataset id is a `NotFoundError` (`dataset_not_found`).
   */
  dataset_ids?: string[] | null;
  /** Whether a chat that does not say searches the shared bundled base (default true). */
  include_bundled?: boolean;
}

/** Your assistant's settings as the server keeps them. */
export interface Assistant {
  display_name: string;
  instructions: string;
  model: string;
  escalation_threshold: number | null;
  default_language: "auto" | "az" | "en" | "ru";
  default_region: string | null;
  dataset_ids: string[] | null;
  include_bundled: boolean;
  /** null until first saved. */
  updated_at: string | null;
}

export interface Run {
  run_id: string;
  thread_id: string;
  status: "pending" | "running" | "success" | "error" | "cancelled" | "interrupted";
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  result: TurnResult | null;
  error: { code: string; detail: string } | null;
}
