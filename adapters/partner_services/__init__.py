"""Partner services (帮扶服务): what the NGO and detox linkages share.

Both partners receive pseudonymous referrals from the bureau and send back
service records (``service.record``) naming people by the pseudonyms the
gateway issued to them. This package holds, once, what is the same for both;
it is no linkage of its own (no entry point, no policy):

- ``linkage``: the gateway-side rules for service records;
- ``validation``: the payload rules of ``service.record``;
- ``views``: the bureau's view that resolves pseudonyms (``resolved``);
- ``labels``: the words both partners' files use (event kinds, outcomes, needs);
- ``records``: the service-record spreadsheet, headed in each partner's words;
- ``exports``: what a partner's ``export`` writes (referrals, changes).

Each partner's folder (``adapters/ngo``, ``adapters/detox``) has the shape of
every adapter — ``policy.toml``, ``linkage``, ``validation``, ``labels``,
``formats``, ``cli`` — each module a thin use of this package with the
partner's principal, policy, words and file headers.
"""
