"""The delivery trail (docs/trail.md): for each notification and recipient, what
happened to it and why. ``recorder.py`` listens to the kernel's observations and the
hub's live writes and writes them in background batches; ``view.py`` puts a
notification's stored row and its recorded steps together for the routes."""

from tocsin.trail.recorder import TrailRecorder
from tocsin.trail.view import TrailView

__all__ = ["TrailRecorder", "TrailView"]
