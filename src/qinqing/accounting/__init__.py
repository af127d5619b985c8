"""Accounting over the personal-account ledger: what a person reads of their account
(the balance on ``GET /me``, the statement), clearing settled payments and
contributions to the institutions' and regions' accounts, and reconciliation.
Above ``ledger`` (the double-entry books), ``payments`` and ``contributions``,
whose rows it reads together."""
