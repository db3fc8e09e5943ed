"""The police linkage (信息化核查): the roster goes to the police with identity,
the police's verification results come back, and the gateway raises alerts
from them (越界 out of bounds, new offences, 人机分离, possible 脱管).

- ``policy.toml``: the routes to and from the police (merged into the gateway's policy);
- ``roster``: the people under supervision as the linkage tracks them;
- ``linkage``: the gateway-side rules (entry point ``silian.linkages``: police);
- ``validation``: the payload rules of ``verification.result``;
- ``labels``: the Chinese words of check types and outcomes;
- ``formats``: the police's native files (verification export in, roster and
  requests out);
- ``cli``: ``silian police import|export|watch|columns`` (entry point ``silian.commands``).
"""

#: Principal id of the police (公安局) in the policy.
AGENCY = "police"
