"""The evaluation pipeline: extraction, retrieval, the LLM chain and scoring.

Plain functions and frozen dataclasses only. Nothing in this package touches the
ORM, so every step can be tested and reused without a database; the one
exception is the PostgreSQL full-text retrieval backend, which borrows Django's
database connection to rank text.
"""
