"""One package per linkage (police, procuratorate, ngo, detox), all of one shape:

- ``__init__``: the agency's principal id (``AGENCY``);
- ``policy.toml``: its routes and declared views, merged into the gateway's policy
  when the central ``policy.toml`` declares the principal;
- ``linkage``: the gateway-side rules (entry point ``silian.linkages``); importing it
  registers the adapter's payload rules, views and conditions;
- ``validation``: the payload rules of the kinds the agency sends (``register``);
- ``labels``: the Chinese words of the enum values its files use;
- ``formats``: its native files, in (``RowMapper``) and out (``ExportFormat``);
- ``cli``: ``silian <agency> import|export|watch|columns`` (entry point
  ``silian.commands``).

``partner_services`` holds, once, what the NGO and the detox centre share. A fifth
linkage is one more such folder and its two entry points in ``pyproject.toml``.
Adapters depend on ``gateway``; the core never imports them.
"""
