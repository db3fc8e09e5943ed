"""The procuratorate linkage (执法监督): inspection findings, the bureau's
rectification reports and the procuratorate's closures, with the finding
lifecycle and its deadlines enforced by the gateway.

- ``policy.toml``: the routes to and from the procuratorate (merged into the
  gateway's policy);
- ``findings``: the lifecycle of one finding;
- ``linkage``: the gateway-side rules (entry point ``silian.linkages``: procuratorate);
- ``validation``: the payload rules of findings and closures;
- ``labels``: the Chinese words of finding categories and ledger record types;
- ``formats``: the procuratorate's ledger (findings and closures in) and what it
  receives (rectifications, roster changes, alerts out);
- ``cli``: ``silian procuratorate import|export|watch|columns`` (entry point
  ``silian.commands``).
"""

#: Principal id of the procuratorate (检察院) in the policy.
AGENCY = "procuratorate"
