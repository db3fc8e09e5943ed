"""The tamper-evident audit log (DESIGN §4).

``log`` appends entries (and the Merkle subtrees they complete) in the caller's
transaction; ``merkle`` is RFC 9162 hashing, proofs and their verification;
``note`` the C2SP signed-note checkpoint format; ``tree`` proofs from the stored
tree; ``checkpoints`` signs them; ``service`` answers auditors; ``bundle``
exports and verifies offline; ``cli`` is ``silian audit``.
"""
