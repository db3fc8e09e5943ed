"""The NGO's native files (黄丝带 服务记录表).

In: the NGO's service-record spreadsheet (CSV or XLSX, Chinese or English
headers; ``silian ngo columns`` lists them), one row per session or group
event, becomes ``service.record`` messages (see
``adapters.partner_services.records``). The NGO's services: 心理咨询, 义诊,
技能培训, 困境儿童帮扶, 专家教育.

Out: the referrals and changes it received (``adapters.partner_services.exports``).
"""

from __future__ import annotations

from adapters.ngo.labels import SERVICE_TYPES
from adapters.partner_services.records import Headers, ServiceRecordMapper, record_columns
from gateway.domain.units import Units

SERVICE_RECORDS = record_columns(
    "NGO service records (黄丝带 服务记录表)",
    Headers(
        record_id=("记录编号", "编号"),
        pseudonyms=("服务对象编号", "服务对象"),
        unit=("区县代码", "区县", "单位"),
        service_type=("服务类型",),
        event_kind=("活动形式", "形式"),
        service_date=("服务日期", "日期"),
        duration=("时长(分钟)", "时长（分钟）", "时长"),
        attendance=("参加人数", "人数"),
        outcome=("服务结果", "结果"),
        provider=("服务人员", "志愿者"),
        notes=("备注",),
    ),
    SERVICE_TYPES,
)


def record_mapper(units: Units) -> ServiceRecordMapper:
    """The mapper of the NGO's service-record spreadsheet."""
    return ServiceRecordMapper(SERVICE_RECORDS, SERVICE_TYPES, units)
