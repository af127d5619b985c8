"""Operator work that crosses domains (key rotation, a first keyed start): above the
domains, below the entrypoints."""
