"""The FastAPI shell: app factory, dependencies, schemas, SSE encoding and routes.

Route handlers translate HTTP to a call of `alim.engine` and back; nothing else lives there.
"""
