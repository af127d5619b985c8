"""What the benchmarks share, and the tools that are not about one of them."""
