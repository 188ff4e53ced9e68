"""Writes of the governance app: `erasure` (forget a person) and `retention` (remove old rows).
Import the submodule you need. Both call the other apps' services, never their models."""
