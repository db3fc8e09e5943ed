"""The words both partners' files use: event kinds (个别/集体), service outcomes,
and the service types as the bureau names them (a referral's needs, 服务需求).
Each value's Chinese label comes first (written on export), then the further
spellings ``import`` accepts. Each partner names the services it offers in its
own words (``adapters/ngo/labels.py``, ``adapters/detox/labels.py``)."""

from __future__ import annotations

from gateway.client.connectors.labels import Labels
from gateway.proto.silian.v1 import payloads_pb2 as pb

SERVICE_TYPES = Labels.of_enum(
    pb.ServiceType,
    "SERVICE_TYPE_",
    {
        pb.SERVICE_TYPE_COUNSELLING: ("心理咨询", "心理辅导"),
        pb.SERVICE_TYPE_FREE_CLINIC: ("义诊",),
        pb.SERVICE_TYPE_VOCATIONAL_TRAINING: ("职业技能培训", "技能培训"),
        pb.SERVICE_TYPE_CHILD_ASSISTANCE: ("困境儿童帮扶",),
        pb.SERVICE_TYPE_EXPERT_EDUCATION: ("专家教育", "专家讲座"),
        pb.SERVICE_TYPE_DRUG_EDUCATION: ("禁毒教育",),
        pb.SERVICE_TYPE_LEGAL_EDUCATION: ("法治教育", "法律教育"),
        pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE: ("就业指导",),
    },
)

EVENT_KINDS = Labels.of_enum(
    pb.EventKind,
    "EVENT_KIND_",
    {pb.EVENT_KIND_INDIVIDUAL: ("个别", "个人"), pb.EVENT_KIND_GROUP: ("集体", "团体")},
)

SERVICE_OUTCOMES = Labels.of_enum(
    pb.ServiceOutcome,
    "SERVICE_OUTCOME_",
    {
        pb.SERVICE_OUTCOME_COMPLETED: ("已完成", "完成"),
        pb.SERVICE_OUTCOME_PARTIAL: ("部分完成",),
        pb.SERVICE_OUTCOME_NO_SHOW: ("未到场", "缺席"),
        pb.SERVICE_OUTCOME_FOLLOW_UP_NEEDED: ("需跟进",),
    },
)
