"""Words for codes: statuses, relations, schemes, notices, and the help text for each
unbind blocker. Marked with ``N_`` for extraction and translated where shown."""

from __future__ import annotations

from qinqing.family.proof_rules import DOCUMENT_NAMES
from qinqing.family.relations import RELATION_NAMES
from qinqing.web.translations import N_

INSURANCE_STATUS = {
    "active": N_("正常参保"),
    "arrears": N_("欠费"),
    "suspended": N_("暂停参保"),
    "terminated": N_("参保终止"),
    "deceased": N_("已身故"),
}

SCHEME = {
    "employee": N_("职工医保"),
    "resident": N_("居民医保"),
    "flexible": N_("灵活就业人员医保"),
}

LINK_STATUS = {
    "pending_consent": N_("待家人确认"),
    "pending_proof": N_("待提交监护证明"),
    "active": N_("已生效"),
    "unbinding": N_("解除审核中"),
    "ended": N_("已解除"),
}

# A ``pending_proof`` link whose uploaded proof waits for a reviewer.
PROOF_UNDER_REVIEW = N_("监护证明审核中")

RELATION = RELATION_NAMES

# The guardianship documents (出生医学证明, 户口本, 监护证明), named once in family.proof_rules.
PROOF_DOCUMENT = DOCUMENT_NAMES

PROOF_STATUS = {
    "pending": N_("审核中"),
    "approved": N_("已通过"),
    "rejected": N_("未通过"),
}

REQUEST_STATUS = {
    "completed": N_("解除成功"),
    "pending_review": N_("审核中"),
    "approved": N_("审核通过，已解除"),
    "rejected": N_("未通过审核"),
    "closed": N_("已结束（亲情关系已按参保登记信息解除）"),
}

ROLE = {"holder": N_("绑定人"), "member": N_("被绑定的家庭成员")}

CHANNEL = {
    "app": N_("网上办理"),
    "wechat": N_("微信"),
    "counter": N_("经办机构窗口"),
    "bank": N_("合作银行"),
    "review": N_("审核"),
    "admin": N_("管理"),
    "registry": N_("参保登记信息变更"),
}

SCOPE = {
    "region": N_("本统筹区内"),
    "province": N_("本省内"),
    "nation": N_("全国范围"),
}

# One line per notice kind; %(name)s is the other party of the link (for
# ``link.guardian_notice``: the holder's masked name from the notice itself).
NOTICE = {
    "link.requested": N_("%(name)s 请求将您绑定为家庭成员，请确认或拒绝。"),
    "link.bound": N_("您与 %(name)s 的亲情关系已生效。"),
    "link.consented": N_("%(name)s 已确认绑定，亲情关系已生效。"),
    "link.declined": N_("%(name)s 拒绝了您的绑定申请。"),
    "link.withdrawn": N_("%(name)s 撤回了绑定申请。"),
    "link.ended_by_registry": N_(
        "根据参保登记信息的变更（参保地变更、参保终止或身故），您与 %(name)s 的亲情关系已解除。"
    ),
    "unbind.pending_review": N_("与 %(name)s 的解除绑定申请已提交，正在审核中。"),
    "unbind.completed": N_("与 %(name)s 的亲情关系已解除。"),
    "account.new_login": N_(
        "您的账号刚刚在另一台设备上登录。如果不是您本人，请立即在“账户与安全”中退出所有设备并修改登录密码。"
    ),
    "account.password_reset": N_(
        "您的登录密码已通过短信验证码重置，所有设备上的登录已退出。如果不是您本人操作，请立即联系 12333。"
    ),
    "account.phone_changed": N_("您的登录手机号已更换。如果不是您本人操作，请立即联系 12333。"),
    "account.payment_password_reset": N_(
        "您的支付密码已重新设置。如果不是您本人操作，请立即修改登录密码并联系 12333。"
    ),
    "account.password_changed": N_(
        "您的登录密码已修改，其他设备上的登录已退出。如果不是您本人操作，请立即联系 12333。"
    ),
    "unbind.approved": N_("与 %(name)s 的解除绑定申请已审核通过，亲情关系已解除。"),
    "unbind.rejected": N_("与 %(name)s 的解除绑定申请未通过审核，亲情关系继续有效。"),
    "contribution.arrears_cleared": N_("欠费已补缴，参保状态已恢复正常。"),
    "link.proof_required": N_(
        "绑定 %(name)s 还需要证明您是孩子的监护人：请上传出生医学证明、户口本或监护证明，"
        "或带原件到孩子参保地的医保经办机构窗口办理。证明通过前，这条绑定不能使用。"
    ),
    "link.guardian_notice": N_(
        "%(name)s 申请将您监护的孩子 %(child)s 绑定为家庭成员（医保亲情账户）。如果您不同意，"
        "请携带户口本到孩子参保地的医保经办机构窗口申请解除，或拨打 12333 咨询。"
    ),
    "link.proof_approved": N_("监护证明已通过，您与 %(name)s 的亲情关系已生效。"),
    "link.proof_rejected": N_("监护证明未通过审核，绑定 %(name)s 的申请已结束。点击查看原因。"),
    "resident.paid": N_(
        "您已为 %(name)s 缴纳 %(year)s 年度居民医保 %(amount)s，%(cover)s 起享受医保待遇。"
    ),
    "resident.paid_for_you": N_(
        "%(name)s 已为您缴纳 %(year)s 年度居民医保 %(amount)s，%(cover)s 起享受医保待遇。"
    ),
    # 共济额度: %(amount)s is what moved, %(quota)s what the quota holds after it.
    "quota.topped_up": N_(
        "您已向为 %(name)s 设立的共济额度转入 %(amount)s，额度余额 %(quota)s。"
        "这笔钱只能用于 %(name)s 的医保费用。"
    ),
    "quota.topped_up_for_you": N_(
        "%(name)s 向为您设立的共济额度转入了 %(amount)s，额度余额 %(quota)s，"
        "可用于您看病买药的医保费用和居民医保缴费。"
    ),
    "quota.returned": N_(
        "您与 %(name)s 的亲情关系已结束，共济额度中未用完的 %(amount)s 已退回您的个人账户。"
    ),
    # Bank links: %(bank)s is the bank, %(account)s the masked account number.
    "bank_link.pending": N_(
        "%(bank)s 申请将银行账户 %(account)s 关联您的医保账户。如是您本人办理，请在“银行账户”中确认；"
        "如不是，请不要确认，也不要把短信验证码告诉任何人。"
    ),
    "bank_link.created": N_("银行账户 %(account)s（%(bank)s）已关联您的医保账户。"),
    "bank_link.ended": N_("银行账户 %(account)s（%(bank)s）已解除与您医保账户的关联。"),
}
NOTICE_OTHER = N_("您有一条新消息。")

# The unbind conditions for the help page, one per blocker code of
# ``qinqing.unbind.rules.CODES``: (the condition, what to do about it).
BLOCKER_HELP = {
    "LINK_NOT_ACTIVE": (
        N_("只有已生效的亲情关系才能解除。"),
        N_("待家人确认的绑定可以直接撤回或拒绝；已在审核中的申请请等待审核结果。"),
    ),
    "NOT_A_PARTY": (
        N_("只有绑定人或被绑定的家庭成员本人可以申请解除。"),
        N_("请本人登录办理；如需代办，请携带双方身份证件到医保经办机构窗口。"),
    ),
    "ACCOUNT_IN_ARREARS": (
        N_("办理人的医保不能处于欠费状态（按参保地规定）。"),
        N_(
            "请通过税务部门的缴费渠道（电子税务局、缴费App）或参保地医保经办机构补缴欠费，到账后即可办理。"
        ),
    ),
    "ACCOUNT_SUSPENDED": (
        N_("办理人的医保不能处于暂停（封停）状态（按参保地规定）。"),
        N_("请携带身份证到参保地医保经办机构咨询恢复参保。"),
    ),
    "ACCOUNT_TERMINATED": (
        N_("参保关系已终止的，不能在网上解除（按参保地规定）。"),
        N_("请携带身份证到医保经办机构窗口办理。"),
    ),
    "UNSETTLED_PAYMENTS": (
        N_("这条关系上不能有尚未结算的医疗费用。"),
        N_("请等医院或药店结算或撤销费用后再办理；长时间未结算的，请联系就诊的医院或药店。"),
    ),
    "COOLING_OFF": (
        N_("部分地区规定绑定满一定天数后才能解除。"),
        N_("请在页面提示的日期之后再办理。"),
    ),
    "VERIFICATION_REQUIRED": (
        N_("提交前需要本人核验：支付密码或人脸核验。"),
        N_("请在“我的 → 支付密码”中设置支付密码。"),
    ),
    "VERIFICATION_FAILED": (
        N_("支付密码或人脸核验必须正确。"),
        N_("请核对后重试；连续输错 5 次将锁定 3 小时。"),
    ),
    "VERIFICATION_LOCKED": (
        N_("支付密码连续输错 5 次后会锁定 3 小时。"),
        N_("请在锁定结束后再试，或改用人脸核验，或到经办机构窗口凭身份证办理。"),
    ),
    "FACE_UNAVAILABLE": (
        N_("人脸核验只在已开通的地区提供。"),
        N_("请改用支付密码核验。"),
    ),
    "PAYMENT_PASSWORD_NOT_SET": (
        N_("使用支付密码核验前需要先设置支付密码。"),
        N_("请在“我的 → 支付密码”中设置 6 位数字支付密码。"),
    ),
}

# Success banners after a redirect (?done=...): a closed set, never free text.
DONE = {
    "bound_pending": N_("绑定申请已发送，等待家人确认。"),
    "bound": N_("绑定成功，亲情关系已生效。"),
    "bound_proof": N_("绑定申请已提交。还需要证明您是孩子的监护人，证明通过后才生效。"),
    "proof_uploaded": N_("监护证明已提交，正在等待经办机构审核；审核结果会通过消息通知您。"),
    "proof_decided": N_("审核结果已提交，绑定人会收到通知。"),
    "counter_bound_proof": N_(
        "绑定已登记，还需要查验监护证明：绑定人不是户口本上登记的监护人，查验后才生效。"
    ),
    "consented": N_("您已确认绑定，亲情关系已生效。"),
    "declined": N_("已拒绝这条绑定申请。"),
    "withdrawn": N_("已撤回这条绑定申请。"),
    "payment_password": N_("支付密码已设置。"),
    "decided": N_("审核结果已提交，双方都会收到通知。"),
    "logged_out": N_("您已安全退出。"),
    "password_reset": N_("新密码已设置，请用新密码登录。"),
    "counter_bound": N_("绑定成功，亲情关系已生效，双方都会收到通知。"),
    "registered": N_("注册成功，欢迎使用医保亲情账户。"),
    "resident_paid": N_("缴费成功。"),
    "quota_topped_up": N_("已转入共济额度。"),
    "bank_link_confirmed": N_("您已确认，银行账户已关联医保账户。"),
    "bank_link_ended": N_("已解除这个银行账户的关联。"),
}

BANK_LINK_STATUS = {
    "pending": N_("待确认"),
    "active": N_("已关联"),
    "ended": N_("已解除"),
}

PAYMENT_STATUS = {
    "authorized": N_("待结算"),
    "settled": N_("已结算"),
    "voided": N_("已撤销"),
    "expired": N_("已过期"),
}

# A 共济额度's movements (``quota.rules.ENTRY_KIND``), as its history lists them.
QUOTA_ENTRY = {
    "top_up": N_("转入共济额度"),
    "payment": N_("支付医疗费用"),
    "resident_contribution": N_("缴纳居民医保"),
    "refund": N_("退回个人账户"),
}

VERIFICATION_METHOD = {
    "payment_password": N_("支付密码"),
    "face": N_("人脸核验"),
    "id_document": N_("证件核验"),
}
