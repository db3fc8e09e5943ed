"""The words of the police's files for the enums they use: check types (核查类型)
and outcomes (核查结果). Each value's Chinese label comes first (written on export
and in alert texts), then the further spellings ``import`` accepts."""

from __future__ import annotations

from gateway.client.connectors.labels import Labels
from gateway.proto.silian.v1 import payloads_pb2 as pb

CHECK_TYPES = Labels.of_enum(
    pb.CheckType,
    "CHECK_TYPE_",
    {
        pb.CHECK_TYPE_HOTEL_STAY: ("旅馆住宿", "住宿", "hotel"),
        pb.CHECK_TYPE_TRAVEL: ("出行", "交通出行", "乘车", "乘机"),
        pb.CHECK_TYPE_INTERNET_CAFE: ("网吧上网", "上网", "internet"),
        pb.CHECK_TYPE_DETENTION: ("拘留",),
        pb.CHECK_TYPE_ARREST: ("逮捕",),
        pb.CHECK_TYPE_NEW_OFFENCE: ("新的违法犯罪", "违法犯罪", "新罪"),
        pb.CHECK_TYPE_DEVICE_SEPARATION: ("人机分离",),
        pb.CHECK_TYPE_VIDEO_CHECK: ("视频点名", "video"),
        pb.CHECK_TYPE_BIG_DATA: ("大数据核查", "big_data_check"),
    },
)

CHECK_OUTCOMES = Labels.of_enum(
    pb.CheckOutcome,
    "CHECK_OUTCOME_",
    {
        pb.CHECK_OUTCOME_NO_HIT: ("未比中", "无异常", "正常"),
        pb.CHECK_OUTCOME_HIT: ("比中", "命中"),
        pb.CHECK_OUTCOME_ANOMALY: ("异常", "核查异常"),
    },
)
