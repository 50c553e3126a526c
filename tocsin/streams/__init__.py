"""Live delivery: the per-node hub, SSE framing, and the stream endpoint."""
