"""The console's words for the line's codes (channels, statuses, intents, queue reasons), zh and en."""

from __future__ import annotations

CHANNEL_LABELS = {
    "sms": ("短信", "SMS"),
    "voice": ("电话", "Phone"),
    "telegram": ("Telegram", "Telegram"),
    "web": ("网页", "Web"),
}
STATUS_LABELS = {
    "open": ("进行中", "Open"),
    "waiting": ("等待人工", "Waiting"),
    "assigned": ("处理中", "In hand"),
    "closed": ("已结束", "Closed"),
}
INTENT_LABELS = {
    "knowledge": ("知识问答", "Knowledge"),
    "booking": ("预约", "Booking"),
    "grid_case": ("城管报事", "Street report"),
    "case_status": ("进度查询", "Status"),
    "operator": ("转人工", "Hand-off"),
    "emergency": ("紧急", "Emergency"),
    "menu": ("菜单", "Menu"),
    "unknown": ("未能回答", "Unanswered"),
}
ARTICLE_STATUS_LABELS = {
    "published": ("已发布", "Published"),
    "draft": ("草稿", "Draft"),
    "retired": ("已停用", "Retired"),
}
REASON_LABELS = {
    "emergency": ("紧急求助", "Emergency"),
    "callback": ("要求回电", "Call-back"),
    "voicemail": ("语音留言", "Voicemail"),
    "report": ("录音报事", "Recorded report"),
    "asked": ("转人工", "Hand-off"),
    "booking": ("预约服务", "Booking"),
    "grid_case": ("城管报事", "Street problem"),
    "unsure": ("未能回答", "Not answered"),
}


def label(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    """The word for ``key`` in ``lang``; an unknown code is shown as it is."""
    if key is None:
        return ""
    pair = table.get(key)
    return key if pair is None else pair[0 if lang == "zh" else 1]

# Grid cases (helpline/cases/workflow.py): statuses, the actions of the timeline, the traffic light.
CASE_STATUS_LABELS = {
    "reported": ("待受理", "Reported"),
    "registered": ("已立案", "Registered"),
    "voided": ("已作废", "Voided"),
    "dispatched": ("已派遣", "Dispatched"),
    "in_progress": ("处置中", "In progress"),
    "handled": ("已处置", "Handled"),
    "checked": ("已核查", "Checked"),
    "closed": ("已结案", "Closed"),
    "returned": ("已回退", "Returned"),
    "suspended": ("已挂账", "Suspended"),
}
CASE_ACTION_LABELS = {
    "report": ("上报", "Reported"),
    "link": ("重复上报并入", "Repeat report joined"),
    "register": ("立案", "Register"),
    "void": ("作废", "Void"),
    "dispatch": ("派遣", "Dispatch"),
    "accept": ("签收", "Accept"),
    "return": ("回退", "Return"),
    "request_extension": ("申请延时", "Ask for more time"),
    "approve_extension": ("批准延时", "Approve extension"),
    "reject_extension": ("驳回延时", "Refuse extension"),
    "handle": ("处置反馈", "Report handled"),
    "check": ("核查通过", "Check"),
    "rework": ("核查不通过·返工", "Send back for rework"),
    "close": ("结案", "Close"),
    "suspend": ("挂账", "Suspend"),
    "resume": ("恢复", "Resume"),
    "rate": ("群众评价", "Resident's rating"),
    "reopen": ("重新派遣（不满意）", "Reopen"),
    "warn": ("黄灯预警", "Yellow warning"),
    "escalate": ("红灯督办", "Red escalation"),
}
LIGHT_LABELS = {
    "green": ("绿灯·正常", "Green · on time"),
    "yellow": ("黄灯·将超时", "Yellow · due soon"),
    "red": ("红灯·已超时", "Red · overdue"),
}
BOOKING_STATUS_LABELS = {
    "confirmed": ("待接单", "Awaiting provider"),
    "accepted": ("已接单", "Accepted"),
    "completed": ("已完成", "Completed"),
    "cancelled": ("已取消", "Cancelled"),
    "referred": ("转人工安排", "Referred to operator"),
}
