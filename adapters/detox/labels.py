"""The 新航驿站 team's words for its services (活动类型), as its staff write them.
The first of each is written in reports and ``columns``; the words both partners
use (event kinds, outcomes) are in ``adapters.partner_services.labels``."""

from __future__ import annotations

from gateway.client.connectors.labels import Labels
from gateway.proto.silian.v1 import payloads_pb2 as pb

SERVICE_TYPES = Labels.of_enum(
    pb.ServiceType,
    "SERVICE_TYPE_",
    {
        pb.SERVICE_TYPE_DRUG_EDUCATION: ("禁毒教育", "禁毒宣传", "drug_education"),
        pb.SERVICE_TYPE_COUNSELLING: ("心理疏导", "心理咨询", "counselling"),
        pb.SERVICE_TYPE_LEGAL_EDUCATION: ("法治教育", "法制教育", "legal_education"),
        pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE: ("就业指导", "employment_guidance"),
        pb.SERVICE_TYPE_FREE_CLINIC: ("义诊", "free_clinic"),
    },
)
