"""What a partner's ``export`` writes: the referrals and changes it received.

Partners receive only their declared views (see their ``policy.toml``), so the
files hold no name, ID number, address or offence — only what the gateway
sent:

* ``referrals-<time>.csv`` (转介名单), one row per referral: 服务对象编号 (the
  partner's pseudonym of the person, which its service records must quote),
  年龄段, 区县代码, 服务需求 (the Chinese names of the needs, 、 between), 转介状态
  (转介 a referral, 结束转介 the bureau's closure: nothing more comes about the person);
* ``changes-<time>.csv`` (对象变动), one row per roster change of a person
  referred to the partner (e.g. 期满解除矫正: the person's supervision ended):
  服务对象编号, 年龄段, 变动类型, 区县代码, 生效日期.

Each row ends with 消息编号 (the message id: the referral's reference),
发送方 and 网关接收时间 (see ``gateway.client.connectors.exports``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf.message import Message

from adapters.partner_services.labels import SERVICE_TYPES
from gateway.client.connectors import ExportFormat
from gateway.client.connectors.labels import ROSTER_CHANGE_TYPES
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb


def _referral_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.ServiceReferral)
    needs = "、".join(SERVICE_TYPES.label(need) for need in message.needs)
    status = "结束转介" if message.action == pb.REFERRAL_ACTION_CLOSE else "转介"
    subject = message.subject
    yield (subject.pseudonym, subject.age_band, message.unit_code, needs, status)


def _change_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.RosterChange)
    change = ROSTER_CHANGE_TYPES.label(message.change_type) if message.change_type else ""
    subject = message.subject
    yield (subject.pseudonym, subject.age_band, change, message.unit_code, message.effective_date)


#: 转介名单 — one row per referral received.
REFERRALS = ExportFormat(
    kind=kinds.SERVICE_REFERRAL,
    stem="referrals",
    headers=("服务对象编号", "年龄段", "区县代码", "服务需求", "转介状态"),
    rows=_referral_rows,
)

#: 对象变动 — one row per roster change of a referred person.
CHANGES = ExportFormat(
    kind=kinds.ROSTER_CHANGE,
    stem="changes",
    headers=("服务对象编号", "年龄段", "变动类型", "区县代码", "生效日期"),
    rows=_change_rows,
)

#: What a partner's ``export`` writes.
PARTNER_EXPORTS = (REFERRALS, CHANGES)
