"""The web app: server-rendered pages for insured persons, reviewers and clerks.

Pages are another door to the same house: every route here calls the
services the API routes call (``family.service``, ``unbind.service``, ...)
and shows what they return; no rule is decided in this package.
"""
