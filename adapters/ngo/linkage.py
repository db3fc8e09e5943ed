"""The NGO's linkage at the gateway (entry point ``silian.linkages: ngo``)."""

from __future__ import annotations

from adapters.ngo import AGENCY, validation
from adapters.partner_services import views
from adapters.partner_services.linkage import PartnerServiceLinkage

views.register()
validation.register()


class NgoLinkage(PartnerServiceLinkage):
    """The NGO's service records name only people referred to the NGO."""

    def __init__(self) -> None:
        super().__init__(AGENCY)
