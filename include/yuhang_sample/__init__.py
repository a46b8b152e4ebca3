"""The sample inbox generator: realistic site submissions (with the mess and fraud patterns the
pipeline must catch) for the demo, the tests and the benchmarks. Not part of the runtime package."""
