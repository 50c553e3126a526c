"""The HTTP surface: the gate, the plain-ASGI hot routes and the FastAPI routers."""
