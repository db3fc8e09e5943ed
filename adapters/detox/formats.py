"""The detox centre's native files (新航驿站 帮教活动台账).

In: the 新航驿站 team's activity ledger (CSV or XLSX, Chinese or English
headers; ``silian detox columns`` lists them), one row per session or group
event, becomes ``service.record`` messages (see
``adapters.partner_services.records``). The team's services: 禁毒教育, 心理疏导,
法治教育, 就业指导, 义诊.

Out: the referrals and changes it received (``adapters.partner_services.exports``).
"""

from __future__ import annotations

from adapters.detox.labels import SERVICE_TYPES
from adapters.partner_services.records import Headers, ServiceRecordMapper, record_columns
from gateway.domain.units import Units

ACTIVITY_LEDGER = record_columns(
    "detox activity ledger (新航驿站 帮教活动台账)",
    Headers(
        record_id=("活动编号", "编号"),
        pseudonyms=("对象编号", "帮教对象编号"),
        unit=("所属区县", "区县代码", "区县"),
        service_type=("活动类型",),
        event_kind=("活动形式", "形式"),
        service_date=("活动日期", "日期"),
        duration=("活动时长(分钟)", "活动时长（分钟）", "时长(分钟)", "时长"),
        attendance=("参与人数", "参加人数"),
        outcome=("活动效果", "效果"),
        provider=("负责民警", "负责人"),
        notes=("备注",),
    ),
    SERVICE_TYPES,
)


def record_mapper(units: Units) -> ServiceRecordMapper:
    """The mapper of the 新航驿站 team's activity ledger."""
    return ServiceRecordMapper(ACTIVITY_LEDGER, SERVICE_TYPES, units)
