"""The FastAPI shell: app factory, dependencies, schemas, SSE encoding and routes.

Route handlers translate HTTP to a call of `engine` and back; nothing else lives there.
"""
