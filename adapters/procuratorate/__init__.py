"""The procuratorate linkage (执法监督): inspection findings, the bureau's
rectification reports and the procuratorate's closures, with the finding
lifecycle and its deadlines enforced by the gateway.

- ``findings``: the lifecycle of one finding;
- ``linkage``: the gateway-side rules (entry point ``silian.linkages``: procuratorate);
- ``formats``: the procuratorate's ledger (findings and closures in) and what it
  receives (rectifications, roster changes, alerts out);
- ``cli``: ``silian procuratorate import|export|watch|columns``.
"""
