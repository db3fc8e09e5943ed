"""The NGO's payload rules: it sends only service records, whose rules
both partners share (``adapters.partner_services.validation``)."""

from __future__ import annotations

from adapters.partner_services.validation import register

__all__ = ["register"]
