"""The NGO's words for the services it offers (服务类型), as its staff write them.
The first of each is written in reports and ``columns``; the words both partners
use (event kinds, outcomes) are in ``adapters.partner_services.labels``."""

from __future__ import annotations

from gateway.client.connectors.labels import Labels
from gateway.proto.silian.v1 import payloads_pb2 as pb

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
