"""Reruns of the official-code parity fixtures (``../shared/parity``) with this project's models, one module a
model (RAM++, RAM, Tag2Text); ``python -m tagging.verify`` is their command line."""
