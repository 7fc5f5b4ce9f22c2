"""Durable jobs: heavy work (requantifying, comparisons) answered 202 and run after the request.

``service.submit`` records a job (keyed by its inputs: the same inputs while one is queued or
running return that job) and hands it to the dispatcher in the same transaction;
``runner.execute`` runs it, committing each step, wherever it runs: a procrastinate worker
(``osteolux worker``, PostgreSQL) or the poller thread of ``osteolux serve`` (SQLite).
"""
