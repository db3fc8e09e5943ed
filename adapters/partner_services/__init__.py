"""Partner services (帮扶服务): what the NGO and detox linkages share.

Both partners receive pseudonymous referrals from the bureau and send back
service records (``service.record``) naming people by the pseudonyms the
gateway issued to them. This package holds the parts that are the same for
both: the gateway-side rules for service records (``linkage``), the bureau's
view that resolves pseudonyms (``views``), and the native-file machinery the
two connectors share. Each partner's folder (``adapters/ngo``,
``adapters/detox``) holds its policy, vocabulary, file formats and commands.
"""
