"""The NGO's native files (黄丝带 服务记录表).

In: the NGO's service-record spreadsheet (CSV or XLSX, Chinese or English
headers; ``silian ngo columns`` lists them), one row per session or group
event, becomes ``service.record`` messages (see
``adapters.partner_services.records``). The NGO's services: 心理咨询, 义诊,
技能培训, 困境儿童帮扶, 专家教育.

Out: the referrals and changes it received (``adapters.partner_services.exports``).
"""

from __future__ import annotations

from adapters.partner_services.records import Headers, ServiceRecordMapper, record_columns
from gateway.client.connectors import Labels
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

#: The services the NGO offers (服务类型), as its staff write them.
SERVICE_TYPES = Labels.of_enum(
    pb.ServiceType,
    "SERVICE_TYPE_",
    {
        pb.SERVICE_TYPE_COUNSELLING: ("心理咨询", "心理辅导", "counselling"),
        pb.SERVICE_TYPE_FREE_CLINIC: ("义诊", "free_clinic"),
        pb.SERVICE_TYPE_VOCATIONAL_TRAINING: ("技能培训", "职业技能培训", "training"),
        pb.SERVICE_TYPE_CHILD_ASSISTANCE: ("困境儿童帮扶", "儿童帮扶", "child_assistance"),
        pb.SERVICE_TYPE_EXPERT_EDUCATION: ("专家教育", "专家讲座", "expert_education"),
    },
)

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
