"""Benchmarks (DESIGN.md §11): figures for notes, never assertions in the test suite."""
