"""The detox centre's linkage at the gateway (entry point ``silian.linkages: detox``)."""

from __future__ import annotations

from adapters.detox import AGENCY, validation
from adapters.partner_services import views
from adapters.partner_services.linkage import PartnerServiceLinkage

views.register()
validation.register()


class DetoxLinkage(PartnerServiceLinkage):
    """The detox centre's service records name only people referred to it."""

    def __init__(self) -> None:
        super().__init__(AGENCY)
