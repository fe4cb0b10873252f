"""Graph nodes: small async functions `(state, runtime) -> partial state`, built over GraphDeps."""
