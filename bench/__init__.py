"""Tocsin benchmark harness: Tocsin against its Python peers and this machine's floor."""
