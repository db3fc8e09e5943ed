"""The NGO's linkage at the gateway (entry point ``silian.linkages: ngo``)."""

from __future__ import annotations

from adapters.partner_services import views
from adapters.partner_services.linkage import PartnerServiceLinkage

#: Principal id of the NGO (民盟 黄丝带) in the policy.
AGENCY = "ngo"

views.register()


class NgoLinkage(PartnerServiceLinkage):
    """The NGO's service records name only people referred to the NGO."""

    def __init__(self) -> None:
        super().__init__(AGENCY)
