"""Prometheus metrics (prometheus-client), one registry per app so tests can build many apps.

HTTP latency by route template and status; runs by route and outcome; node durations; time to
first token; streamed answer chunks and reported tokens; escalations by reason; active streams;
rate-limit refusals. No partner or user labels (cardinality and privacy).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "alim_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.runs = Counter("alim_runs_total", "Turns run", ["route", "outcome"], registry=r)
        self.node_duration = Histogram(
            "alim_node_duration_seconds",
            "Graph node duration",
            ["node"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "alim_time_to_first_token_seconds",
            "Time from run start to the first answer chunk",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.chunks = Counter("alim_answer_chunks_total", "Answer chunks streamed", registry=r)
        self.tokens = Counter(
            "alim_llm_tokens_total", "Tokens reported by the model provider", ["kind"], registry=r
        )
        self.escalations = Counter(
            "alim_escalations_total", "Turns handed to a human", ["reason"], registry=r
        )
        self.active_streams = Gauge("alim_active_streams", "Open SSE streams", registry=r)
        self.rate_limited = Counter(
            "alim_rate_limited_total", "Requests refused by rate limits", ["limit"], registry=r
        )
