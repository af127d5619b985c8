"""The person's verification as a money form posts it (核验方式, 支付密码): the payment
password, or a face check where a face provider is configured. One reading for every
page that moves money or ends a link."""

from __future__ import annotations

from fastapi import Request

from qinqing.access.principal import Principal
from qinqing.auth.verification import (
    FaceVerification,
    PaymentPasswordVerification,
    face_provider,
    simulated_face_token,
)
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors
from qinqing.web.render import t
from qinqing.web.translations import N_

Posted = PaymentPasswordVerification | FaceVerification


def verification_from_form(
    request: Request, rt: Runtime, principal: Principal, form: dict[str, str], errors: Errors
) -> Posted | None:
    """The verification the form asks for, or None with the missing password added to
    ``errors`` (field ``payment_password``)."""
    if form.get("method", "payment_password") == "face" and face_provider(rt) is not None:
        assert principal.person_id is not None
        # Only the simulated provider exists; a real one would hand its token back here.
        return FaceVerification(method="face", face_token=simulated_face_token(principal.person_id))
    pin = form.get("payment_password", "").strip()[:16]
    if not pin:
        errors.add("payment_password", t(request, N_("请输入支付密码")))
        return None
    return PaymentPasswordVerification(method="payment_password", payment_password=pin)
