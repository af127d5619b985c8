"""Mount the web app on the API's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from qinqing.web import errors
from qinqing.web.pages_account import router as account
from qinqing.web.pages_banks import router as banks
from qinqing.web.pages_counter import router as counter
from qinqing.web.pages_counter_proof import router as counter_proof
from qinqing.web.pages_family import router as family
from qinqing.web.pages_help import router as help_
from qinqing.web.pages_me import router as me
from qinqing.web.pages_proof import router as proof
from qinqing.web.pages_proof_review import router as proof_review
from qinqing.web.pages_quota import router as quota
from qinqing.web.pages_recovery import router as recovery
from qinqing.web.pages_register import router as register
from qinqing.web.pages_resident import router as resident
from qinqing.web.pages_review import router as review
from qinqing.web.pages_security import router as security
from qinqing.web.pages_unbind import router as unbind
from qinqing.web.pages_voucher import router as voucher

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the pages at ``/`` and the assets at ``/static`` (the API stays at /api/v1)."""
    for router in (
        account,
        register,
        recovery,
        me,
        security,
        banks,
        family,
        proof,
        unbind,
        resident,
        quota,
        voucher,
        review,
        proof_review,
        counter,
        counter_proof,
        help_,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app)
