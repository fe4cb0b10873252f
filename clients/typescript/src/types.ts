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
}

export interface ArticlePage {
  articles: Article[];
  total: number;
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
