"""The reference collector: the central endpoint that enrols devices and stores their events.

A bank can run it as is for a branch or a pilot (`teller-guard collector`), and it is the contract
(docs/PROTOCOL.md) that a bank's own endpoint can implement. Modules:

- `signing` — the batch signature both sides compute (no server dependencies: the shipper can
  import it)
- `store` — SQLAlchemy Core storage (SQLite by default, PostgreSQL by URL, shared by processes)
- `app` — the Starlette ASGI application and its endpoints
- `dashboard`, `openapi` — the compliance page and the served API description
- `siem` — syslog (RFC 5424, CEF payload) forwarding to the bank's SIEM
- `serve`, `embedded` — running it under uvicorn, as a process or inside the agent

Nothing is imported here so that `guard.collector.signing` stays light for the agent.
"""
