"""One package per linkage (police, procuratorate, ngo, detox). Adapters
depend on ``gateway``; the core never imports them."""
